//! `/livez` (the process answers), `/readyz` (its dependencies answer), `/metrics`.
//!
//! Each readiness check is also the gauge `comptoir_dependency_up{dependency, check}` (1 or 0):
//! `dependency` its kind (`database`, `redis`, `rabbitmq`, `upstream`), `check` its name
//! (`orders_db`, `cart_redis`, `catalog_upstream`…: one process may have several of a kind).
//! Set by every `/readyz` and by [`spawn_refresh`] in the background, so that a dependency that
//! goes away shows on the dashboards even when nothing asks `/readyz`.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A named readiness check: a database ping, an upstream's `/readyz`.
#[derive(Clone)]
pub struct Check {
    pub name: String,
    pub run: Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>,
    /// Whether the process is ready only while this answers (see [`Check::optional`]).
    pub required: bool,
    /// What kind of dependency it checks (the gauge's `dependency` label).
    pub dependency: &'static str,
}

impl Check {
    /// A check named `name` of a `dependency` kind (`database`, `redis`, `rabbitmq`,
    /// `upstream`).
    pub fn new<F>(dependency: &'static str, name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        Check {
            name: name.into(),
            run: Arc::new(f),
            required: true,
            dependency,
        }
    }

    /// Reported (in `/readyz`'s `checks` and its gauge) but not a reason to be taken out of
    /// rotation: a dependency the process copes without for a while (the bus: the outbox keeps
    /// the events; the rate limiter's Redis: limits fall back to this process).
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    pub fn database(name: impl Into<String>, db: crate::db::Db) -> Self {
        Check::new("database", name, move || {
            let db = db.clone();
            Box::pin(async move { db.ping().await.map_err(|e| e.to_string()) })
        })
    }
}

pub fn router(checks: Vec<Check>) -> Router {
    let checks = Arc::new(checks);
    Router::new()
        .route(
            "/livez",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(move || {
                let checks = checks.clone();
                readyz(checks)
            }),
        )
        .route("/metrics", get(metrics))
}

/// Runs every check once (each within 2 s) and sets its `comptoir_dependency_up` gauge.
/// Returns whether every required check answered, and each check's answer.
pub async fn run_checks(checks: &[Check]) -> (bool, BTreeMap<String, String>) {
    let mut results = BTreeMap::new();
    let mut ok = true;
    for c in checks {
        let r = tokio::time::timeout(Duration::from_secs(2), (c.run)()).await;
        let v = match r {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(check = %c.name, error = %e, "readiness check failed");
                "failing"
            }
            Err(_) => "timeout",
        };
        let up = v == "ok";
        ok &= up || !c.required;
        metrics::gauge!("comptoir_dependency_up", "dependency" => c.dependency,
            "check" => c.name.clone())
        .set(if up { 1.0 } else { 0.0 });
        results.insert(c.name.clone(), v.to_string());
    }
    (ok, results)
}

/// Runs the checks now and then every `every`, for their gauges. Stops when the returned
/// handle is aborted or the runtime ends.
pub fn spawn_refresh(checks: Vec<Check>, every: Duration) -> tokio::task::JoinHandle<()> {
    metrics::describe_gauge!(
        "comptoir_dependency_up",
        "1 while this readiness check answers, 0 otherwise; by dependency kind and check name"
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_checks(&checks).await;
        }
    })
}

async fn readyz(checks: Arc<Vec<Check>>) -> impl IntoResponse {
    let (ok, results) = run_checks(&checks).await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({
            "status": if ok { "ready" } else { "not_ready" },
            "checks": results,
        })),
    )
}

async fn metrics() -> impl IntoResponse {
    let body = crate::telemetry::render_metrics();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
