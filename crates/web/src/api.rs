//! The pages act through the same HTTP API as any client, called in process: every rule of
//! the services (validation, roles, object-level checks, idempotency) applies to the web
//! exactly as to a till or an integrator. The visitor's identity is handed over the way the
//! edge hands it to a service in this process.

use crate::session::Visitor;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use http_body_util::BodyExt;
use platform::auth::{ClientIp, EdgeVerified};
use serde::Serialize;
use serde::de::DeserializeOwned;
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
    router: Router,
}

impl Api {
    pub fn new(router: Router) -> Self {
        Api { router }
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
        let res = self
            .router
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
