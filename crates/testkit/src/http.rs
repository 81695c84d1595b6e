//! A service's router called in process, as the gateway calls it: the principal travels in the
//! signed identity header ([`InternalKey::sign`]) that [`accept_internal_identity`] verifies.
//!
//! ```text
//! let app = TestApp::new(catalog::http::router(state)).with_common_layers(64 * 1024);
//! let r = app.post("/api/catalog/brands").as_(&principal::head_office())
//!     .json(&json!({"name": "Glaz"})).idempotency_key("k1").await;
//! assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
//! ```

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use platform::authz::Principal;
use platform::caller::{IDENTITY_HEADER, InternalKey, accept_internal_identity};
use platform::http::{EdgeOptions, with_common_layers};
use serde_json::Value;
use std::future::{Future, IntoFuture};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;
use tower::ServiceExt;

/// The client address of requests unless a test says otherwise.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A router and the key its identity header is signed with.
#[derive(Clone)]
pub struct TestApp {
    router: Router,
    key: InternalKey,
}

impl TestApp {
    /// `service` as the gateway reaches it: identities signed with a fresh key are accepted.
    pub fn new(service: Router) -> TestApp {
        TestApp::with_key(service, InternalKey::random())
    }

    /// `service` accepting identities signed with `key`.
    pub fn with_key(service: Router, key: InternalKey) -> TestApp {
        let k = key.clone();
        let router = service.layer(axum::middleware::from_fn(move |req, next| {
            accept_internal_identity(Some(k.clone()), req, next)
        }));
        TestApp { router, key }
    }

    /// A router that already does its own authentication (the identity suite mounts the real
    /// edge): requests are sent as they are; [`Call::as_`] signs with a key nobody checks.
    pub fn unsigned(router: Router) -> TestApp {
        TestApp {
            router,
            key: InternalKey::random(),
        }
    }

    /// Adds the layers every service runs behind (request id, timeout, body limit, problems for
    /// unknown routes), as `platform::http::with_common_layers` does in production.
    pub fn with_common_layers(self, max_body_bytes: usize) -> TestApp {
        let router = with_common_layers(
            self.router,
            &EdgeOptions {
                request_timeout: Duration::from_secs(30),
                max_body_bytes,
                cors: None,
            },
        );
        TestApp { router, ..self }
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    pub fn key(&self) -> &InternalKey {
        &self.key
    }

    pub fn request(&self, method: Method, uri: &str) -> Call<'_> {
        Call {
            app: self,
            method,
            uri: uri.to_string(),
            headers: Vec::new(),
            body: None,
            who: Who::Anonymous,
            ip: LOOPBACK,
            connect_info: false,
        }
    }

    pub fn get(&self, uri: &str) -> Call<'_> {
        self.request(Method::GET, uri)
    }
    pub fn post(&self, uri: &str) -> Call<'_> {
        self.request(Method::POST, uri)
    }
    pub fn put(&self, uri: &str) -> Call<'_> {
        self.request(Method::PUT, uri)
    }
    pub fn patch(&self, uri: &str) -> Call<'_> {
        self.request(Method::PATCH, uri)
    }
    pub fn delete(&self, uri: &str) -> Call<'_> {
        self.request(Method::DELETE, uri)
    }

    /// Sends a request built by hand.
    pub async fn send(&self, req: Request<Body>) -> Res {
        send(&self.router, req).await
    }
}

enum Who {
    Anonymous,
    Signed(Principal),
    /// Signed with a key the service does not hold (a forgery, or a misconfigured secret).
    Forged(Principal),
}

/// One request being built; `.await` sends it.
pub struct Call<'a> {
    app: &'a TestApp,
    method: Method,
    uri: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<String>,
    who: Who,
    ip: IpAddr,
    connect_info: bool,
}

impl Call<'_> {
    /// As `principal`, signed the way the edge signs.
    pub fn as_(mut self, principal: &Principal) -> Self {
        self.who = Who::Signed(principal.clone());
        self
    }

    /// As `principal` when given, anonymous otherwise.
    pub fn as_opt(self, principal: Option<&Principal>) -> Self {
        match principal {
            Some(p) => self.as_(p),
            None => self,
        }
    }

    /// With an identity header that does not verify.
    pub fn forged_as(mut self, principal: &Principal) -> Self {
        self.who = Who::Forged(principal.clone());
        self
    }

    /// A JSON body (and its content type).
    pub fn json(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }

    /// A raw body, sent as it is (set the content type with [`Call::header`]).
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A header; panics on a name or value that is not valid HTTP (a mistake in the test).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name).unwrap_or_else(|e| panic!("header {name}: {e}"));
        let value = HeaderValue::try_from(value).unwrap_or_else(|e| panic!("{name}: {e}"));
        self.headers.push((name, value));
        self
    }

    /// Every `(name, value)` of `headers`.
    pub fn headers<V: AsRef<str>>(self, headers: &[(&str, V)]) -> Self {
        headers
            .iter()
            .fold(self, |c, (k, v)| c.header(k, v.as_ref()))
    }

    pub fn idempotency_key(self, key: &str) -> Self {
        self.header("idempotency-key", key)
    }

    pub fn if_match(self, etag: &str) -> Self {
        self.header("if-match", etag)
    }

    /// From `ip`, as the socket would say (`ConnectInfo`) and as the signed identity says.
    pub fn from_ip(mut self, ip: IpAddr) -> Self {
        self.ip = ip;
        self.connect_info = true;
        self
    }

    /// The request as it will be sent.
    pub fn build(self) -> Request<Body> {
        let mut b = Request::builder().method(self.method).uri(&self.uri);
        for (k, v) in self.headers {
            b = b.header(k, v);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        match &self.who {
            Who::Anonymous => {}
            Who::Signed(p) => {
                b = b.header(IDENTITY_HEADER, self.app.key.sign(self.ip, Some(p), now))
            }
            Who::Forged(p) => {
                let other = InternalKey::new(b"a key the service does not hold");
                b = b.header(IDENTITY_HEADER, other.sign(self.ip, Some(p), now));
            }
        }
        let body = self.body.map(Body::from).unwrap_or_else(Body::empty);
        let mut req = b
            .body(body)
            .unwrap_or_else(|e| panic!("request {}: {e}", self.uri));
        if self.connect_info {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(self.ip, 40000)));
        }
        req
    }

    pub async fn send(self) -> Res {
        let router = self.app.router.clone();
        send(&router, self.build()).await
    }
}

impl<'a> IntoFuture for Call<'a> {
    type Output = Res;
    type IntoFuture = Pin<Box<dyn Future<Output = Res> + Send + 'a>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// An answer: status, headers, and the body (JSON when it parses, else the text as a string,
/// `Null` when empty).
#[derive(Debug, Clone)]
pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub bytes: Bytes,
}

impl Res {
    /// The problem's `code`, or `""`.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// A header as text, when present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `req` through `router` in process and reads the whole answer.
pub async fn send(router: &Router, req: Request<Body>) -> Res {
    let res = match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    read(res).await
}

/// Reads a whole response.
pub async fn read(res: axum::response::Response) -> Res {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_else(|e| panic!("reading the body of a {status} answer: {e}"));
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Res {
        status,
        headers,
        body,
        bytes,
    }
}

/// Serves `app` on 127.0.0.1 on a free port, for as long as the test's runtime lives; answers
/// its base URL (`http://127.0.0.1:<port>`).
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}
