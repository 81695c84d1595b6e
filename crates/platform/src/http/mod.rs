//! HTTP glue shared by every service: errors, extractors, request ids, metrics, compression,
//! security headers, timeouts, health endpoints; CORS for the edge.

pub mod client;
pub mod cors;
pub mod extract;
pub mod health;
pub mod problem;
pub mod request_id;
pub mod schema;
pub mod tls;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use problem::ApiError;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// A label for the metrics of routes that axum does not match itself (the gateway's proxy).
#[derive(Clone, Debug)]
pub struct RouteLabel(pub &'static str);

/// What the access log line of a forwarded request adds (set by the gateway on the answer):
/// who asked (`key:<id>`, `user:<subject>`, `ip:<address>`) and which instance answered.
#[derive(Clone, Debug)]
pub struct Forwarded {
    pub consumer: String,
    pub upstream: &'static str,
    /// `host:port`; empty when no instance answered.
    pub instance: String,
}

/// Options of the common layers.
#[derive(Clone, Debug)]
pub struct EdgeOptions {
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    /// CORS (the gateway's): every answer of this server, errors included, and the preflights.
    pub cors: Option<std::sync::Arc<cors::Cors>>,
}

/// Wraps a router with the layers every Comptoir HTTP server has, outermost first: the request
/// itself ([`request`]: its id and log span, metrics and the access log, the security headers,
/// the timeout), compression, panic catcher, body limit.
pub fn with_common_layers(router: Router, opts: &EdgeOptions) -> Router {
    let timeout = opts.request_timeout;
    let cors = opts.cors.clone();
    let router = match crate::fail::delay_of("http.request") {
        // fault tests: a slow instance (every request waits first)
        Some(d) => router.layer(middleware::from_fn(
            move |req: Request, next: Next| async move {
                tokio::time::sleep(d).await;
                next.run(req).await
            },
        )),
        None => router,
    };
    router
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("a handler panicked").into_response()
            },
        ))
        .layer(compression())
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            request(timeout, cors.clone(), req, next)
        }))
}

/// What every request goes through, in one layer (each layer costs its request a clone of the
/// routes below and a boxed future): its id ([`request_id`]) and log span, CORS, the timeout,
/// the security headers, then its metrics and access log line.
async fn request(
    limit: Duration,
    cors: Option<std::sync::Arc<cors::Cors>>,
    mut req: Request,
    next: Next,
) -> Response {
    let (id, id_header) = request_id::accept(&mut req);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let served = async move {
        let start = Instant::now();
        let method = req.method().clone();
        let route: String = if let Some(m) = req.extensions().get::<MatchedPath>() {
            m.as_str().to_owned()
        } else if let Some(l) = req.extensions().get::<RouteLabel>() {
            l.0.to_owned()
        } else {
            "unmatched".to_owned()
        };
        let preflight = cors.as_ref().and_then(|c| c.preflight(&req));
        let answered_here = preflight.is_some();
        let origin = cors.as_ref().and_then(|c| c.allowed(&req));
        let res = match preflight {
            Some(answer) => answer,
            None => match tokio::time::timeout(limit, next.run(req)).await {
                Ok(res) => res,
                Err(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "request_timeout",
                    "the request took too long and was abandoned",
                )
                .into_response(),
            },
        };
        let mut res = security_headers(res);
        if let Some(c) = cors.as_ref().filter(|_| !answered_here) {
            c.decorate(origin, &mut res);
        }
        record(&method, route, &res, start.elapsed());
        res
    };
    let mut res = request_id::scope(id, served.instrument(span)).await;
    if let Some(v) = id_header {
        res.headers_mut().insert(request_id::HEADER_NAME, v);
    }
    res
}

/// Answers smaller than this are sent as they are: compressing them saves less than it costs.
pub const COMPRESS_MIN_BYTES: u16 = 1024;

/// gzip, brotli or zstd, whichever the client's `Accept-Encoding` prefers (q-values respected,
/// `q=0` refuses; none or `identity`: the plain body), for text of at least
/// [`COMPRESS_MIN_BYTES`]. An answer that already has a `Content-Encoding` (an upstream's, behind
/// the gateway) is never compressed again.
fn compression() -> tower_http::compression::CompressionLayer<
    tower_http::compression::predicate::And<
        tower_http::compression::predicate::SizeAbove,
        CompressibleType,
    >,
> {
    use tower_http::compression::predicate::{Predicate, SizeAbove};
    tower_http::compression::CompressionLayer::new()
        .no_deflate()
        .compress_when(SizeAbove::new(COMPRESS_MIN_BYTES).and(CompressibleType))
}

/// Text is worth compressing: JSON, HTML, CSS, JavaScript, SVG, XML, plain text. Images, fonts,
/// archives and event streams are not (already compressed, or sent as they come).
#[derive(Clone, Copy, Debug)]
pub struct CompressibleType;

impl tower_http::compression::predicate::Predicate for CompressibleType {
    fn should_compress<B: axum::body::HttpBody>(&self, res: &axum::http::Response<B>) -> bool {
        res.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(compressible)
    }
}

fn compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    match kind {
        "text" => sub != "event-stream",
        "application" => {
            matches!(sub, "json" | "javascript" | "xml" | "ecmascript")
                || sub.ends_with("+json")
                || sub.ends_with("+xml")
        }
        "image" => sub == "svg+xml",
        _ => false,
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
}

fn security_headers(mut res: Response) -> Response {
    // 405 from axum's router has an empty body: give it a problem like every other error.
    if res.status() == StatusCode::METHOD_NOT_ALLOWED
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = res.headers().get(header::ALLOW).cloned();
        res = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed on this route",
        )
        .into_response();
        if let Some(a) = allow {
            res.headers_mut().insert(header::ALLOW, a);
        }
    }
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: HeaderName, v: &'static str| {
        if !h.contains_key(&k) {
            h.insert(k, HeaderValue::from_static(v));
        }
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    // As on the pages: a browser ignores HSTS received over plain HTTP (RFC 6797 §8.1), so it
    // is always sent; behind TLS it pins the API's origin to HTTPS for a year.
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    set(h, header::CACHE_CONTROL, "no-store");
    res
}

/// The metrics and the access log line of an answered request (in the request's span: its id,
/// method, path).
fn record(method: &axum::http::Method, route: String, res: &Response, elapsed: Duration) {
    let route = res
        .extensions()
        .get::<RouteLabel>()
        .map(|l| l.0.to_owned())
        .unwrap_or(route);
    // the access log: one line per request
    match res.extensions().get::<Forwarded>() {
        Some(f) => tracing::info!(
            status = res.status().as_u16(),
            route = %route,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            consumer = %f.consumer,
            upstream = f.upstream,
            instance = %f.instance,
            "request"
        ),
        None => tracing::info!(
            status = res.status().as_u16(),
            route = %route,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        ),
    }
    let (method, status) = (method_label(method), res.status().as_u16());
    let handles = || {
        let labels = [
            ("method", metrics::SharedString::from(method)),
            ("route", metrics::SharedString::from(route.clone())),
            (
                "status",
                metrics::SharedString::from(status_label(res.status())),
            ),
        ];
        RouteMetrics {
            requests: metrics::counter!("comptoir_http_requests_total", &labels),
            duration: metrics::histogram!("comptoir_http_request_duration_seconds", &labels),
        }
    };
    if !crate::telemetry::recording() {
        return handles().record(elapsed);
    }
    let known = ROUTE_METRICS.read().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = known.get(&(method, status)).and_then(|m| m.get(&route)) {
        return m.record(elapsed);
    }
    drop(known);
    let m = handles();
    m.record(elapsed);
    ROUTE_METRICS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry((method, status))
        .or_default()
        .insert(route, m);
}

/// The metrics of a method, route and status, registered once (a lookup by name and labels
/// in the recorder costs more than this map's).
struct RouteMetrics {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

impl RouteMetrics {
    fn record(&self, elapsed: Duration) {
        self.requests.increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }
}

type RouteMetricsMap =
    std::collections::HashMap<(&'static str, u16), std::collections::HashMap<String, RouteMetrics>>;

/// Bounded: methods and statuses are few, routes are the router's templates.
static ROUTE_METRICS: std::sync::LazyLock<std::sync::RwLock<RouteMetricsMap>> =
    std::sync::LazyLock::new(Default::default);

/// The standard methods as static labels (no allocation); any other is `other` (the label
/// set stays bounded whatever a client sends).
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The status code as a static label.
fn status_label(s: StatusCode) -> std::borrow::Cow<'static, str> {
    const COMMON: &[(u16, &str)] = &[
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (301, "301"),
        (302, "302"),
        (303, "303"),
        (304, "304"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (409, "409"),
        (412, "412"),
        (413, "413"),
        (415, "415"),
        (422, "422"),
        (428, "428"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
    ];
    match COMMON.iter().find(|(c, _)| *c == s.as_u16()) {
        Some((_, l)) => std::borrow::Cow::Borrowed(l),
        None => std::borrow::Cow::Owned(s.as_u16().to_string()),
    }
}
