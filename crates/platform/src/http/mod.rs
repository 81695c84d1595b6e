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
}

/// Wraps a router with the layers every Comptoir HTTP server has, outermost first: request id
/// (and the log span), metrics, compression, panic catcher, security headers, timeout, body
/// limit.
pub fn with_common_layers(router: Router, opts: &EdgeOptions) -> Router {
    let timeout = opts.request_timeout;
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
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            timeout_layer(timeout, req, next)
        }))
        .layer(middleware::from_fn(security_headers))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("a handler panicked").into_response()
            },
        ))
        .layer(compression())
        .layer(middleware::from_fn(metrics_layer))
        .layer(middleware::from_fn(request_id::layer))
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

async fn timeout_layer(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            "the request took too long and was abandoned",
        )
        .into_response(),
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
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

async fn metrics_layer(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route: String = if let Some(m) = req.extensions().get::<MatchedPath>() {
        m.as_str().to_owned()
    } else if let Some(l) = req.extensions().get::<RouteLabel>() {
        l.0.to_owned()
    } else {
        "unmatched".to_owned()
    };
    let res = next.run(req).await;
    let route = res
        .extensions()
        .get::<RouteLabel>()
        .map(|l| l.0.to_owned())
        .unwrap_or(route);
    let elapsed = start.elapsed();
    // the access log: one line per request, in the request's span (its id, method, path)
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
    let status = res.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("comptoir_http_requests_total", &labels).increment(1);
    metrics::histogram!("comptoir_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    res
}
