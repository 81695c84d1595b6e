//! `/livez` (the process answers), `/readyz` (its dependencies answer), `/metrics`.

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
}

impl Check {
    pub fn new<F>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        Check {
            name: name.into(),
            run: Arc::new(f),
        }
    }

    pub fn database(name: impl Into<String>, db: crate::db::Db) -> Self {
        Check::new(name, move || {
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

async fn readyz(checks: Arc<Vec<Check>>) -> impl IntoResponse {
    let mut results = BTreeMap::new();
    let mut ok = true;
    for c in checks.iter() {
        let r = tokio::time::timeout(Duration::from_secs(2), (c.run)()).await;
        let v = match r {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => {
                ok = false;
                tracing::warn!(check = %c.name, error = %e, "readiness check failed");
                "failing".to_string()
            }
            Err(_) => {
                ok = false;
                "timeout".to_string()
            }
        };
        results.insert(c.name.clone(), v);
    }
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
