//! What the contract suites of the services share: a service's internal routes served behind
//! the guard every process puts them behind, a [`Peer`] that calls them as another service
//! does, and the signatures that guard must refuse.

use axum::Router;
use contracts::rpc::{Peer, PeerSettings};
use platform::caller::InternalKey;
use std::time::Duration;

/// `internal` (a service's `/internal/...` routes) behind `internal_calls_only(key)`.
pub fn guarded(internal: Router, key: InternalKey) -> Router {
    internal.layer(axum::middleware::from_fn(move |req, next| {
        platform::caller::internal_calls_only(key.clone(), req, next)
    }))
}

/// `internal` served on a port of its own, guarded by `server_key`, and a peer named `name`
/// that calls it as `caller` does, signing with `key`.
pub async fn peer(
    internal: Router,
    server_key: InternalKey,
    name: &'static str,
    caller: &'static str,
    key: InternalKey,
) -> Peer {
    let url = crate::http::serve(guarded(internal, server_key)).await;
    let settings = PeerSettings {
        timeout: Duration::from_secs(10),
        ..Default::default()
    };
    Peer::new(name, caller, &url, key, settings).expect("a peer of a loopback URL")
}

/// Asserts that the guarded `method path` of `app` (with `body`, if any) refuses, 401
/// `invalid_internal_call`, every call [`refused_signatures`] lists (`label` names the run in
/// messages).
pub async fn assert_refused(
    app: &crate::http::TestApp,
    key: &InternalKey,
    (method, path): (&str, &str),
    other: (&str, &str),
    body: Option<&serde_json::Value>,
    label: &str,
) {
    let now = chrono::Utc::now().timestamp();
    for (what, header) in refused_signatures(key, "orders", (method, path), other, now) {
        let m = axum::http::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut c = app.request(m, path);
        if let Some(b) = body {
            c = c.json(b);
        }
        if let Some(v) = &header {
            c = c.header(platform::caller::CALL_HEADER, v);
        }
        let r = c.send().await;
        assert_eq!(
            r.status,
            axum::http::StatusCode::UNAUTHORIZED,
            "{label}: {what}: {}",
            r.body
        );
        assert_eq!(r.code(), "invalid_internal_call", "{label}: {what}");
    }
}

/// The `x-comptoir-call` values a guarded `method path` must refuse, signed by `caller` with
/// `key` where signed: none, another installation's secret, a signature of `other` (another
/// route: method and path), one two minutes old.
pub fn refused_signatures(
    key: &InternalKey,
    caller: &str,
    (method, path): (&str, &str),
    other: (&str, &str),
    now: i64,
) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("no signature", None),
        (
            "another installation's secret",
            Some(InternalKey::new(b"another-secret").sign_call(caller, method, path, now)),
        ),
        (
            "a signature of another route",
            Some(key.sign_call(caller, other.0, other.1, now)),
        ),
        (
            "a signature two minutes old",
            Some(key.sign_call(caller, method, path, now - 120)),
        ),
    ]
}
