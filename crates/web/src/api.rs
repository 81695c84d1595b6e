//! The pages act through the same HTTP API as any client: every rule of the services
//! (validation, roles, object-level checks, idempotency) applies to the web exactly as to a till
//! or an integrator. The visitor's identity is handed over the way the edge hands it to a
//! service: in this process as request extensions ([`Api::local`]); to services in other
//! processes ([`Api::remote`]) in the `x-comptoir-identity` header signed with the internal
//! secret, straight to the service that owns the path (the web verified the visitor's session
//! itself, as the edge would, and applies its own rate limits).

use crate::session::Visitor;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use http_body_util::BodyExt;
use platform::caller::{ClientIp, EdgeVerified, IDENTITY_HEADER, InternalKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tower::ServiceExt;

/// A problem answered by the API (or by the call itself).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub errors: Vec<FieldProblem>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl Problem {
    fn transport(detail: String) -> Problem {
        Problem {
            status: 503,
            code: "unavailable".into(),
            detail,
            errors: vec![],
        }
    }

    /// The message of the field `name`, if the API refused it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == name || e.field.ends_with(&format!(".{name}")))
            .map(|e| e.message.as_str())
    }
}

#[derive(Clone)]
pub struct Api {
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Local(Router),
    Remote(Arc<Remote>),
}

/// The services of other processes, by the path prefixes they own.
pub struct Remote {
    /// `(prefix, its instances' base URLs)`, e.g. `("/api/orders", ["http://orders:8080"])`;
    /// calls take the instances in turn.
    pub routes: Vec<(&'static str, Vec<String>)>,
    turn: std::sync::atomic::AtomicUsize,
    pub key: InternalKey,
    pub http: reqwest::Client,
    /// The services of this process, for the paths no remote route owns.
    pub local: Option<Router>,
}

impl Remote {
    pub fn new(
        routes: Vec<(&'static str, Vec<String>)>,
        key: InternalKey,
        timeout: std::time::Duration,
        local: Option<Router>,
    ) -> Result<Remote, String> {
        let http = platform::tls::current()
            .reqwest_builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(std::time::Duration::from_secs(3)))
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| format!("the web's HTTP client: {e}"))?;
        Ok(Remote {
            routes,
            turn: std::sync::atomic::AtomicUsize::new(0),
            key,
            http,
            local,
        })
    }

    /// The instances of the service that owns `path`.
    fn route_of(&self, path: &str) -> Option<&Vec<String>> {
        self.routes
            .iter()
            .find(|(p, _)| {
                path == *p
                    || path
                        .strip_prefix(p)
                        .is_some_and(|r| r.starts_with('/') || r.starts_with('?'))
            })
            .map(|(_, b)| b)
    }

    /// The instance the next call of `path` goes to.
    fn base_of(&self, path: &str) -> Option<&str> {
        self.route_of(path)
            .and_then(|b| {
                let k = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                b.get(k % b.len().max(1))
            })
            .map(String::as_str)
    }
}

impl Problem {
    /// As a handler's error (the pages reuse the services' messages and field errors). The
    /// code is the table's (`kernel::codes`), `error` for one this build does not know.
    pub fn into_api_error(self) -> platform::ApiError {
        let mut e = platform::ApiError::new(
            axum::http::StatusCode::from_u16(self.status)
                .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE),
            kernel::codes::find(&self.code)
                .map(|c| c.code)
                .unwrap_or("unavailable"),
            self.detail,
        );
        e.errors = self
            .errors
            .into_iter()
            .map(|f| platform::FieldError::new(f.field, &f.code, f.message))
            .collect();
        e
    }
}

impl Api {
    /// The services of this process, called in process.
    pub fn new(router: Router) -> Self {
        Api {
            transport: Transport::Local(router),
        }
    }

    /// The services of other processes, over HTTP.
    pub fn remote(remote: Remote) -> Self {
        Api {
            transport: Transport::Remote(Arc::new(remote)),
        }
    }

    /// Calls the API as `visitor`; decodes a success as `T` (use `serde_json::Value` or `()`
    /// when the body does not matter).
    pub async fn call<T: DeserializeOwned>(
        &self,
        visitor: &Visitor,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        idempotency_key: Option<&str>,
    ) -> Result<T, Problem> {
        self.call_with(visitor, method, path, body, idempotency_key, &[])
            .await
    }

    /// Same, with extra request headers (`If-Match` for an edit made from a version seen).
    pub async fn call_with<T: DeserializeOwned>(
        &self,
        visitor: &Visitor,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        idempotency_key: Option<&str>,
        headers: &[(&'static str, String)],
    ) -> Result<T, Problem> {
        let (status, bytes) = self
            .raw_with(visitor, method, path, body, idempotency_key, headers)
            .await?;
        if (200..300).contains(&status) {
            let src: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            serde_json::from_slice(src)
                .map_err(|e| Problem::transport(format!("unexpected answer from {path}: {e}")))
        } else {
            let mut p: Problem = serde_json::from_slice(&bytes).unwrap_or_default();
            p.status = status;
            if p.code.is_empty() {
                p.code = "error".into();
            }
            Err(p)
        }
    }

    /// Status and body bytes, whatever the status.
    pub async fn raw(
        &self,
        visitor: &Visitor,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, bytes::Bytes), Problem> {
        self.raw_with(visitor, method, path, body, idempotency_key, &[])
            .await
    }

    async fn raw_with(
        &self,
        visitor: &Visitor,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        idempotency_key: Option<&str>,
        headers: &[(&'static str, String)],
    ) -> Result<(u16, bytes::Bytes), Problem> {
        let router = match &self.transport {
            Transport::Remote(r) if r.route_of(path).is_some() => {
                return remote_call(r, visitor, method, path, body, idempotency_key, headers).await;
            }
            Transport::Remote(r) => r.local.as_ref(),
            Transport::Local(router) => Some(router),
        };
        let Some(router) = router else {
            return Err(Problem::transport(format!("no service answers {path}")));
        };
        let mut b = Request::builder().method(method).uri(path);
        if let Some(k) = idempotency_key {
            b = b.header("idempotency-key", k);
        }
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        let body = match body {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Body::from(
                    serde_json::to_vec(v)
                        .map_err(|e| Problem::transport(format!("encoding a request: {e}")))?,
                )
            }
            None => Body::empty(),
        };
        let mut req = b
            .body(body)
            .map_err(|e| Problem::transport(format!("building a request: {e}")))?;
        req.extensions_mut().insert(EdgeVerified);
        req.extensions_mut().insert(ClientIp(visitor.ip));
        if let Some(p) = &visitor.principal {
            req.extensions_mut().insert(p.clone());
        }
        let res = router
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| Problem::transport(format!("calling {path}: {e}")))?;
        let status = res.status().as_u16();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| Problem::transport(format!("reading {path}: {e}")))?
            .to_bytes();
        Ok((status, bytes))
    }
}

/// One call to the service that owns `path`, in another process.
async fn remote_call(
    r: &Remote,
    visitor: &Visitor,
    method: Method,
    path: &str,
    body: Option<&(impl Serialize + ?Sized)>,
    idempotency_key: Option<&str>,
    headers: &[(&'static str, String)],
) -> Result<(u16, bytes::Bytes), Problem> {
    let base = r
        .base_of(path)
        .ok_or_else(|| Problem::transport(format!("no service answers {path}")))?;
    let now = chrono::Utc::now().timestamp();
    let mut req = r
        .http
        .request(method, format!("{base}{path}"))
        .header(
            IDENTITY_HEADER,
            r.key.sign(visitor.ip, visitor.principal.as_ref(), now),
        )
        .header(header::ACCEPT, "application/json");
    if let Some(id) = platform::http::request_id::current() {
        req = req.header(platform::http::request_id::HEADER, id);
    }
    if let Some(k) = idempotency_key {
        req = req.header("idempotency-key", k);
    }
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    if let Some(v) = body {
        req = req.header(header::CONTENT_TYPE, "application/json").body(
            serde_json::to_vec(v)
                .map_err(|e| Problem::transport(format!("encoding a request: {e}")))?,
        );
    }
    let res = req
        .send()
        .await
        .map_err(|e| Problem::transport(format!("calling {path}: {}", e.without_url())))?;
    let status = res.status().as_u16();
    let bytes = res
        .bytes()
        .await
        .map_err(|e| Problem::transport(format!("reading {path}: {}", e.without_url())))?;
    Ok((status, bytes))
}

/// Percent-encodes one path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_goes_to_the_service_that_owns_its_prefix() {
        let r = Remote::new(
            vec![
                ("/api/orders", vec!["http://orders:1".into()]),
                ("/api/checkout", vec!["http://orders:1".into()]),
                (
                    "/api/carts",
                    vec!["http://cart:2".into(), "http://cart:3".into()],
                ),
            ],
            InternalKey::new(b"k"),
            std::time::Duration::from_secs(1),
            None,
        )
        .expect("remote");
        assert_eq!(r.base_of("/api/orders"), Some("http://orders:1"));
        assert_eq!(r.base_of("/api/orders/42/refunds"), Some("http://orders:1"));
        assert_eq!(
            r.base_of("/api/orders?status=paid"),
            Some("http://orders:1")
        );
        assert_eq!(r.base_of("/api/checkout"), Some("http://orders:1"));
        assert_eq!(r.base_of("/api/carts/1/lines"), Some("http://cart:2"));
        assert_eq!(
            r.base_of("/api/carts/1"),
            Some("http://cart:3"),
            "instances in turn"
        );
        // a longer name is another prefix, and what nobody owns stays in process
        assert_eq!(r.base_of("/api/ordersx"), None);
        assert_eq!(r.base_of("/api/catalog/products"), None);
    }

    #[test]
    fn a_refused_call_keeps_its_code_when_the_table_knows_it() {
        let p = Problem {
            status: 409,
            code: "email_taken".into(),
            detail: "taken".into(),
            errors: vec![FieldProblem {
                field: "email".into(),
                code: "taken".into(),
                message: "already registered".into(),
            }],
        };
        let e = p.into_api_error();
        assert_eq!((e.status.as_u16(), e.code), (409, "email_taken"));
        assert_eq!(e.errors[0].field, "email");
        let unknown = Problem {
            status: 418,
            code: "from_a_newer_peer".into(),
            ..Default::default()
        };
        assert_eq!(unknown.into_api_error().code, "unavailable");
    }
}
