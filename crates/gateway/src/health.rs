//! The active side of health: every `interval`, each instance of each service is asked its
//! `/readyz` (a DNS source is resolved again first), and the answers move instances out and
//! back in ([`crate::pool::Instance::checked`]). Also the gauges of instances and breakers.

use crate::client::UpstreamClient;
use crate::upstream::{Service, Source};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often and how patiently instances are checked.
#[derive(Debug, Clone, Copy)]
pub struct CheckTiming {
    pub interval: Duration,
    /// Each check's own timeout.
    pub timeout: Duration,
}

/// Runs the checks of `services` until the process ends.
pub fn spawn(services: Vec<Arc<Service>>, client: Arc<UpstreamClient>, t: CheckTiming) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(t.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let rounds = services.iter().map(|s| check_service(s, &client, t));
            futures_util::future::join_all(rounds).await;
        }
    });
}

/// One round for one service: resolve (DNS source), then check every instance at once. Returns
/// how many answered.
pub async fn check_service(s: &Service, client: &Arc<UpstreamClient>, t: CheckTiming) -> usize {
    if matches!(s.source, Source::Dns { .. }) {
        match s.resolve().await {
            Ok(specs) if !specs.is_empty() => {
                if s.pool
                    .set_instances(specs.iter().map(|x| x.instance()).collect())
                {
                    tracing::info!(
                        upstream = s.name,
                        instances = specs.len(),
                        "instances changed"
                    );
                }
            }
            // keep the last answer: a resolver hiccup must not empty the pool
            Ok(_) => tracing::warn!(upstream = s.name, "the name resolves to no address"),
            Err(e) => tracing::warn!(upstream = s.name, error = %e, "cannot resolve the instances"),
        }
    }
    let instances = s.pool.instances();
    let checks = instances.iter().map(|i| async move {
        let ok = ready(client, &i.authority, t.timeout).await;
        if i.checked(ok, &s.pool.rules) {
            if ok {
                tracing::info!(upstream = s.name, instance = %i.authority, "instance back in");
            } else {
                tracing::warn!(upstream = s.name, instance = %i.authority, "instance taken out: its readiness checks fail");
            }
        }
        metrics::counter!("comptoir_gateway_health_checks_total", "upstream" => s.name,
            "instance" => i.authority.clone(), "outcome" => if ok { "ok" } else { "failed" })
        .increment(1);
        ok
    });
    let answered = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    gauges(s);
    answered
}

/// `comptoir_gateway_instance_healthy` and `comptoir_gateway_breaker_state` of a service.
pub fn gauges(s: &Service) {
    let now = Instant::now();
    for i in s.pool.instances() {
        metrics::gauge!("comptoir_gateway_instance_healthy", "upstream" => s.name,
            "instance" => i.authority.clone())
        .set(if i.healthy() { 1.0 } else { 0.0 });
        metrics::gauge!("comptoir_gateway_breaker_state", "upstream" => s.name,
            "instance" => i.authority.clone())
        .set(i.breaker().gauge(now));
    }
}

/// Whether `authority`'s `/readyz` answers 2xx within `timeout`.
async fn ready(client: &Arc<UpstreamClient>, authority: &str, timeout: Duration) -> bool {
    let Ok(req) = axum::http::Request::get("/readyz")
        .header(axum::http::header::HOST, authority)
        .body(Full::new(Bytes::new()))
    else {
        return false;
    };
    let check = async {
        let res = client.send(authority, req).await.ok()?;
        let ok = res.status().is_success();
        // read to the end, so that the connection is kept
        res.into_body().collect().await.ok()?;
        Some(ok)
    };
    matches!(tokio::time::timeout(timeout, check).await, Ok(Some(true)))
}
