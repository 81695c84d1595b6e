//! The gateway: the one entry point. In one-process mode it is just the router that nests every
//! service; with `--target gateway` it forwards each service's prefixes to that service's
//! instances over HTTP, keeping the request id, so clients see the same API either way.
//!
//! - [`upstream`]: a service and where its instances are (a list, or a DNS name).
//! - [`pool`]: which instances take requests (health, circuit breaker) and which one takes the
//!   next (least connections, round robin, weights). No IO.
//! - [`health`]: the active checks of `/readyz`, DNS re-resolution, the gauges.
//! - [`client`]: kept-alive HTTP/1.1 connections to the instances, driven by the requests
//!   that use them.
//! - [`forward`]: one request sent, and sent elsewhere when it failed and may be repeated,
//!   within a retry budget.
//! - [`cache`]: public answers to anonymous reads, dropped by writes and by the bus's events.

pub mod cache;
pub mod client;
pub mod forward;
pub mod health;
pub mod pool;
pub mod upstream;

pub use cache::EdgeCache;
pub use client::UpstreamClient;
pub use forward::{Forwarder, RetryBudget, ServedBy};
pub use pool::{Balance, HealthRules};
pub use upstream::{Service, Upstream, UpstreamError};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use platform::http::RouteLabel;
use platform::http::health::Check;
use std::sync::Arc;

/// The pooled HTTP client the gateway forwards and checks with.
pub fn client() -> Arc<UpstreamClient> {
    Arc::new(UpstreamClient::default())
}

/// Describes the gateway's metrics and starts the series of each service at 0 (the gauges are
/// set by the first health round, the per-instance answers by the first requests).
pub fn describe_metrics(services: &[Arc<Service>], cache: bool) {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "comptoir_gateway_upstream_requests_total",
        "Requests forwarded to an instance, by upstream, instance and class (2xx…5xx, unreachable, error)"
    );
    describe_histogram!(
        "comptoir_gateway_upstream_duration_seconds",
        metrics::Unit::Seconds,
        "Time an instance took to answer a forwarded request, by upstream and instance"
    );
    describe_counter!(
        "comptoir_gateway_retries_total",
        "Forwarded requests sent again to another instance, by upstream"
    );
    describe_counter!(
        "comptoir_gateway_retries_refused_total",
        "Retries not made because the retry budget was spent, by upstream"
    );
    describe_counter!(
        "comptoir_gateway_no_instance_total",
        "Requests answered 503 because no instance of the upstream could take them"
    );
    describe_gauge!(
        "comptoir_gateway_instance_healthy",
        "1 while an instance takes requests (active health checks), by upstream and instance"
    );
    describe_gauge!(
        "comptoir_gateway_breaker_state",
        "An instance's circuit breaker: 0 closed, 1 half-open, 2 open"
    );
    describe_counter!(
        "comptoir_gateway_health_checks_total",
        "Active health checks of instances, by upstream, instance and outcome (ok, failed)"
    );
    describe_counter!(
        "comptoir_gateway_cache_total",
        "Edge cache lookups, by upstream and outcome (hit, miss, write)"
    );
    describe_counter!(
        "comptoir_gateway_cache_invalidated_total",
        "Edge cache entries dropped by writes and change events, by upstream"
    );
    for s in services {
        for name in [
            "comptoir_gateway_retries_total",
            "comptoir_gateway_retries_refused_total",
            "comptoir_gateway_no_instance_total",
        ] {
            metrics::counter!(name, "upstream" => s.name).increment(0);
        }
        if cache {
            for outcome in ["hit", "miss", "write"] {
                metrics::counter!("comptoir_gateway_cache_total", "upstream" => s.name,
                    "outcome" => outcome)
                .increment(0);
            }
            metrics::counter!("comptoir_gateway_cache_invalidated_total",
                "upstream" => s.name.to_string())
            .increment(0);
        }
    }
}

/// The gateway's readiness for a service: its instances are asked now (the answers count as
/// active checks); ready while at least one answers.
pub fn readiness(
    service: Arc<Service>,
    client: Arc<UpstreamClient>,
    timing: health::CheckTiming,
) -> Check {
    Check::new(
        "upstream",
        format!("{}_upstream", service.name),
        move || {
            let (s, client) = (service.clone(), client.clone());
            Box::pin(async move {
                let answering = health::check_service(&s, &client, timing).await;
                if answering > 0 {
                    Ok(())
                } else {
                    Err(format!("no instance answers ({})", s.setting))
                }
            })
        },
    )
}

#[derive(Clone)]
struct Route {
    upstream: Upstream,
    forwarder: Arc<Forwarder>,
    cache: Option<Arc<EdgeCache>>,
}

/// Routes forwarding each upstream's prefix, through `cache` when given.
pub fn router(
    forwarder: Arc<Forwarder>,
    upstreams: &[Upstream],
    cache: Option<Arc<EdgeCache>>,
) -> Router {
    let mut r = Router::new();
    for u in upstreams {
        let route = Route {
            upstream: u.clone(),
            forwarder: forwarder.clone(),
            cache: cache.clone(),
        };
        let exact = u.prefix.to_string();
        r = r.route(
            &exact,
            axum::routing::any(forward_route).with_state(route.clone()),
        );
        if u.prefix != "/" {
            let nested = format!("{}/{{*rest}}", u.prefix);
            r = r.route(&nested, axum::routing::any(forward_route).with_state(route));
        }
    }
    r
}

async fn forward_route(State(route): State<Route>, req: Request) -> Response {
    let consumer = forward::consumer(&req);
    let service = route.upstream.service.name;
    let unsafe_method = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let key = route.cache.as_ref().and_then(|_| {
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        EdgeCache::key(service, req.method(), pq, req.headers())
    });
    let cached = match (&route.cache, &key) {
        (Some(c), Some(k)) => c.get(k, std::time::Instant::now()),
        _ => None,
    };
    let hit = cached.is_some();
    let mut res = match cached {
        Some(r) => r,
        None => forward::forward(&route.forwarder, &route.upstream, req).await,
    };
    if let Some(c) = &route.cache {
        if unsafe_method {
            // the write is done (or refused): what was cached of this service may be stale
            c.invalidate(service);
        } else if let (Some(k), false) = (key, hit) {
            res = c.store(k, service, res, std::time::Instant::now()).await;
        }
        metrics::counter!("comptoir_gateway_cache_total", "upstream" => service,
            "outcome" => if hit { "hit" } else if unsafe_method { "write" } else { "miss" })
        .increment(1);
    }
    let instance = res
        .extensions()
        .get::<ServedBy>()
        .map(|s| s.0.clone())
        .unwrap_or_default();
    res.extensions_mut()
        .insert(RouteLabel(route.upstream.route_label));
    res.extensions_mut().insert(platform::http::Forwarded {
        consumer,
        upstream: route.upstream.service.name,
        instance,
    });
    res
}
