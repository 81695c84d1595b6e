//! Request ids: taken from `x-request-id` when the caller (or the gateway) sent a sane one,
//! generated otherwise; echoed in the response, attached to the request's log span and to every
//! problem body.

use axum::extract::Request;
use axum::http::HeaderValue;

pub const HEADER: &str = "x-request-id";
/// [`HEADER`] as a name (inserting it allocates nothing).
pub const HEADER_NAME: axum::http::HeaderName = axum::http::HeaderName::from_static(HEADER);

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served by this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

fn acceptable(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'))
    .then(|| s.to_string())
}

/// The request's id: the one it carries when sane, a new one otherwise (set on the request, so
/// that what it calls passes it on), and the header value the answer echoes.
pub fn accept(req: &mut Request) -> (String, Option<HeaderValue>) {
    if let Some(id) = req.headers().get(HEADER).and_then(acceptable) {
        let v = req.headers().get(HEADER).cloned();
        return (id, v);
    }
    let id = uuid::Uuid::now_v7().to_string();
    let v = HeaderValue::from_str(&id).ok();
    if let Some(v) = &v {
        req.headers_mut().insert(HEADER_NAME, v.clone());
    }
    (id, v)
}

/// Runs `f` as the request `id` ([`current`] answers it inside).
pub async fn scope<F: std::future::Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}
