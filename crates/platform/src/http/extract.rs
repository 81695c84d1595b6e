//! Extractors that turn every malformed input into a problem that names it.

use super::problem::{ApiError, FieldError};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// A JSON body: 415 without a JSON content type, 413 past the body limit, 400 when it is not
/// JSON, 422 (naming the field) when it does not fit the expected shape.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_json_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body with the fingerprint of the whole request ([`fingerprint`]): what an
/// `Idempotency-Key` is bound to.
pub struct HashedJson<T> {
    pub value: T,
    pub request_hash: String,
}

impl<T, S> FromRequest<S> for HashedJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let head = RequestHead::of(&req);
        let bytes = read_json_body(req, state).await?;
        let value = parse_json(&bytes)?;
        Ok(HashedJson {
            value,
            request_hash: head.fingerprint(&bytes),
        })
    }
}

/// A JSON body that may be absent (then `T::default()`), with the request's fingerprint.
pub struct OptionalHashedJson<T> {
    pub value: T,
    pub request_hash: String,
}

impl<T, S> FromRequest<S> for OptionalHashedJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let head = RequestHead::of(&req);
        let is_json = is_json(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalHashedJson {
                value: T::default(),
                request_hash: head.fingerprint(&[]),
            });
        }
        if !is_json {
            return Err(unsupported_media_type());
        }
        Ok(OptionalHashedJson {
            value: parse_json(&bytes)?,
            request_hash: head.fingerprint(&bytes),
        })
    }
}

/// The fingerprint of a request without a body (a `DELETE`, an action with no parameters).
pub struct Fingerprint(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Fingerprint {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let head = RequestHead {
            method: parts.method.to_string(),
            target: target(&parts.uri),
            caller: caller_scope(&parts.extensions),
        };
        Ok(Fingerprint(head.fingerprint(&[])))
    }
}

/// What identifies a request apart from its body.
struct RequestHead {
    method: String,
    target: String,
    caller: String,
}

impl RequestHead {
    fn of(req: &Request) -> Self {
        RequestHead {
            method: req.method().to_string(),
            target: target(req.uri()),
            caller: caller_scope(req.extensions()),
        }
    }
    fn fingerprint(&self, body: &[u8]) -> String {
        fingerprint(&self.method, &self.target, &self.caller, body)
    }
}

fn target(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}

fn caller_scope(ext: &axum::http::Extensions) -> String {
    crate::caller::Caller(ext.get::<crate::authz::Principal>().cloned()).scope()
}

/// The one definition of "the same request" for idempotency keys: SHA-256 over the method,
/// the route with its query string (so the object's id), the caller (account, API key, or
/// anonymous) and the exact body bytes, each length-prefixed so that no two different requests
/// can share an encoding. A key sent again with any of these changed is refused (422).
pub fn fingerprint(method: &str, target: &str, caller: &str, body: &[u8]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [
        method.as_bytes(),
        target.as_bytes(),
        caller.as_bytes(),
        body,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
    )
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false)
}

async fn read_json_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(unsupported_media_type());
    }
    read_body(req, state).await
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than this server accepts",
            )
        } else {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        }
    })
}

/// Parses JSON bytes into `T` with the problem mapping of [`ApiJson`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(&path, &inner)
    })?;
    de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

fn json_error(path: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        }
        Category::Data => {
            let field = if path == "." {
                "body".to_string()
            } else {
                path.to_string()
            };
            let msg = strip_position(&e.to_string());
            let code = if msg.starts_with("unknown field") {
                "unknown_field"
            } else if msg.starts_with("missing field") {
                "required"
            } else if msg.starts_with("unknown variant") {
                "unknown_value"
            } else {
                "invalid_type"
            };
            let mut err = ApiError::validation(vec![FieldError::new(field, code, msg)]);
            err.code = "invalid_body";
            err
        }
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Query parameters: 400 naming the parameter when one does not parse.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(q));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                let field = if path == "." {
                    "query".to_string()
                } else {
                    path
                };
                let mut err = ApiError::validation(vec![FieldError::new(
                    field.clone(),
                    "invalid_parameter",
                    msg.clone(),
                )]);
                err.status = StatusCode::BAD_REQUEST;
                err.code = "invalid_query";
                err.detail = format!("query parameter {field}: {msg}");
                err
            })
    }
}

fn form_urlencoded_parse(q: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(q.as_bytes())
}
