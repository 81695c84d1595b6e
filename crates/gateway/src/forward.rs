//! Forwarding one request: pick an instance, send, and when the instance failed, try another
//! one if the request may be sent twice, within the retry budget.
//!
//! - A request that never reached an instance (the connection was refused or reset before it
//!   was sent) may go to another instance whatever its method.
//! - A request that may have been handled (a timeout, a 502/503/504 answer) goes to another
//!   instance only when sending it twice is harmless: a safe method (`GET`, `HEAD`, `OPTIONS`)
//!   or a request that carries an `Idempotency-Key` (the service answers the second one from
//!   its record of the first).
//! - Retries are at most a fifth of the requests (plus a few per second), so that a sick
//!   upstream is not sent a storm of them ([`RetryBudget`]).

use crate::client::{Driven, SendError, UpstreamClient};
use crate::pool::Pool;
use crate::upstream::Upstream;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::Full;
use platform::ApiError;
use platform::authz::Principal;
use platform::caller::{ClientIp, IDENTITY_HEADER, InternalKey};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most instances one request is tried on.
const MAX_ATTEMPTS: usize = 3;

/// Retries allowed: `ratio` of the requests, plus `floor` per second, as a token bucket.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    floor_per_sec: f64,
    state: Mutex<(f64, Instant)>,
}

impl RetryBudget {
    pub fn new(ratio: f64, floor_per_sec: f64) -> RetryBudget {
        RetryBudget {
            ratio,
            floor_per_sec,
            state: Mutex::new((floor_per_sec, Instant::now())),
        }
    }

    fn cap(&self) -> f64 {
        (self.floor_per_sec * 10.0).max(10.0)
    }

    /// A request was sent: it earns `ratio` of a retry.
    pub fn deposit(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = (s.0 + self.ratio).min(self.cap());
    }

    /// Takes one retry if the budget has one.
    pub fn withdraw(&self, now: Instant) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
        s.1 = now;
        s.0 = (s.0 + elapsed * self.floor_per_sec).min(self.cap());
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the gateway forwards with.
pub struct Forwarder {
    pub client: Arc<UpstreamClient>,
    /// Signs the verified identity into `x-comptoir-identity`.
    pub identity: Option<InternalKey>,
    pub budget: RetryBudget,
    /// Route prefixes with their own timeout (the longest matching prefix wins).
    pub timeouts: Vec<(String, Duration)>,
    pub default_timeout: Duration,
    /// Largest request body forwarded (`server.max_body_bytes`).
    pub max_body: usize,
}

impl Forwarder {
    pub fn timeout_for(&self, path: &str) -> Duration {
        self.timeouts
            .iter()
            .filter(|(p, _)| {
                path.strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|(p, _)| p.len())
            .map(|(_, t)| *t)
            .unwrap_or(self.default_timeout)
    }
}

// Names inserted on every request: static, so that inserting them allocates nothing.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const IDENTITY: HeaderName = HeaderName::from_static(IDENTITY_HEADER);

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // also whatever the Connection header names
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim).map(str::to_ascii_lowercase))
        .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(*n);
    }
}

/// Whether a request that may have been handled can be sent again.
fn may_repeat(method: &Method, headers: &HeaderMap) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || headers.contains_key("idempotency-key")
}

/// The headers every forwarded request carries: hop-by-hop ones dropped, `X-Forwarded-*`,
/// the signed identity.
fn prepare(f: &Forwarder, parts: &mut axum::http::request::Parts, keep_host: bool) {
    let client_host = parts.headers.get(header::HOST).cloned();
    strip_hop_by_hop(&mut parts.headers);
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    if let Some(ip) = peer {
        let xff = match parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            parts.headers.insert(X_FORWARDED_FOR, v);
        }
    }
    if let Some(h) = client_host {
        parts.headers.insert(X_FORWARDED_HOST, h);
    }
    parts
        .headers
        .insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if !keep_host {
        parts.headers.remove(header::HOST);
    }
    parts.headers.remove(IDENTITY_HEADER);
    if let Some(key) = &f.identity {
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .map(|c| c.0)
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let v = key.sign(
            ip,
            parts.extensions.get::<Principal>(),
            chrono::Utc::now().timestamp(),
        );
        parts.headers.insert(IDENTITY, v);
    }
}

enum Failure {
    /// Never reached the instance: any request may go elsewhere.
    NotSent(String),
    /// May have been handled.
    Unknown(String),
}

/// Sends `req` through `up`'s instances; the answer, or the problem of the last failure.
pub async fn forward(f: &Forwarder, up: &Upstream, req: Request) -> Response {
    let service = &up.service;
    let (mut parts, body) = req.into_parts();
    // buffered, so that it can be sent again; never more than a service would take
    let body: Bytes = match axum::body::to_bytes(body, f.max_body).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body is larger than {} bytes, or was cut",
                    f.max_body
                ),
            )
            .into_response();
        }
    };
    prepare(f, &mut parts, service.keep_host);
    // origin-form: the instance is named by the connection and the Host header
    let Ok(uri) = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<Uri>()
    else {
        return ApiError::bad_request("invalid_uri", "the request URI cannot be forwarded")
            .into_response();
    };
    let timeout = f.timeout_for(parts.uri.path());
    let repeatable = may_repeat(&parts.method, &parts.headers);
    f.budget.deposit();
    let mut tried: Vec<String> = Vec::new();
    let mut last: Option<Response> = None;
    for attempt in 0..MAX_ATTEMPTS {
        let now = Instant::now();
        if attempt > 0 && !f.budget.withdraw(now) {
            metrics::counter!("comptoir_gateway_retries_refused_total", "upstream" => service.name)
                .increment(1);
            break;
        }
        let Some(instance) = service.pool.pick(now, &tried) else {
            break;
        };
        if attempt > 0 {
            metrics::counter!("comptoir_gateway_retries_total", "upstream" => service.name)
                .increment(1);
        }
        tried.push(instance.base.clone());
        let mut out = axum::http::Request::new(Full::new(body.clone()));
        *out.method_mut() = parts.method.clone();
        *out.uri_mut() = uri.clone();
        *out.headers_mut() = parts.headers.clone();
        if (!service.keep_host || !out.headers().contains_key(header::HOST))
            && let Ok(h) = HeaderValue::from_str(&instance.authority)
        {
            out.headers_mut().insert(header::HOST, h);
        }
        let lease = Pool::lease(&instance);
        let started = Instant::now();
        let sent = tokio::time::timeout(timeout, f.client.send(&instance.authority, out)).await;
        let outcome = match sent {
            Err(_) => Err(Failure::Unknown(format!("no answer within {timeout:?}"))),
            Ok(Err(SendError::Connect(e))) => Err(Failure::NotSent(e)),
            Ok(Err(e @ SendError::Failed(_))) => Err(Failure::Unknown(e.to_string())),
            Ok(Ok(res)) => Ok(res),
        };
        let elapsed = started.elapsed().as_secs_f64();
        drop(lease);
        let class = match &outcome {
            Ok(r) => status_class(r.status()),
            Err(Failure::NotSent(_)) => "unreachable",
            Err(Failure::Unknown(_)) => "error",
        };
        let fresh;
        let m = if platform::telemetry::recording() {
            instance
                .metrics
                .get_or_init(|| InstanceMetrics::new(service.name, &instance.authority))
        } else {
            fresh = InstanceMetrics::new(service.name, &instance.authority);
            &fresh
        };
        m.requests[CLASSES
            .iter()
            .position(|c| *c == class)
            .unwrap_or(CLASSES.len() - 1)]
        .increment(1);
        m.duration.record(elapsed);
        match outcome {
            Ok(res) if res.status().as_u16() < 500 => {
                let was = instance.breaker();
                if instance.answered(true, &service.pool.rules, Instant::now()) != was {
                    crate::health::gauges(service);
                }
                return answer(res, &instance.authority);
            }
            Ok(res) => {
                let b = instance.answered(false, &service.pool.rules, Instant::now());
                crate::health::gauges(service);
                let gone = matches!(
                    res.status(),
                    StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                );
                tracing::warn!(upstream = service.name, instance = %instance.authority,
                    status = res.status().as_u16(), breaker = ?b, "instance answered an error");
                let res = answer(res, &instance.authority);
                if gone && repeatable {
                    last = Some(res);
                    continue;
                }
                return res;
            }
            Err(failure) => {
                let b = instance.answered(false, &service.pool.rules, Instant::now());
                crate::health::gauges(service);
                let (may_retry, why, timed_out) = match &failure {
                    Failure::NotSent(e) => (true, e.clone(), false),
                    Failure::Unknown(e) => (repeatable, e.clone(), e.starts_with("no answer")),
                };
                tracing::warn!(upstream = service.name, instance = %instance.authority,
                    error = %why, breaker = ?b, "instance failed");
                let problem = if timed_out {
                    ApiError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "upstream_timeout",
                        format!("the {} service did not answer in time", service.name),
                    )
                } else {
                    let mut e = ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "upstream_unavailable",
                        format!(
                            "the {} service cannot be reached; retry shortly",
                            service.name
                        ),
                    );
                    e.retry_after = Some(1);
                    e
                };
                last = Some(problem.into_response());
                if !may_retry {
                    break;
                }
            }
        }
    }
    last.unwrap_or_else(|| no_instance(up))
}

/// The 503 when no instance of the service takes requests now.
fn no_instance(up: &Upstream) -> Response {
    let s = &up.service;
    metrics::counter!("comptoir_gateway_no_instance_total", "upstream" => s.name).increment(1);
    let wait = s
        .pool
        .next_chance(Instant::now())
        .map(|d| d.as_secs().max(1))
        .unwrap_or(5);
    let mut e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream_unavailable",
        format!(
            "no instance of the {} service is available; retry in {wait} s",
            s.name
        ),
    );
    e.retry_after = Some(wait);
    e.into_response()
}

/// The outcomes of a request to an instance, as the `class` label says them.
const CLASSES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "unreachable", "error"];

/// An instance's request metrics, registered once (a lookup by name and labels on every
/// request costs more than the request's own bookkeeping).
#[derive(Debug)]
pub struct InstanceMetrics {
    requests: [metrics::Counter; 7],
    duration: metrics::Histogram,
}

impl InstanceMetrics {
    fn new(upstream: &'static str, instance: &str) -> InstanceMetrics {
        InstanceMetrics {
            requests: CLASSES.map(|class| {
                metrics::counter!("comptoir_gateway_upstream_requests_total",
                    "upstream" => upstream, "instance" => instance.to_string(), "class" => class)
            }),
            duration: metrics::histogram!("comptoir_gateway_upstream_duration_seconds",
                "upstream" => upstream, "instance" => instance.to_string()),
        }
    }
}

fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The upstream's answer as the client gets it, naming the instance for the access log.
fn answer(res: Response<Driven>, instance: &str) -> Response {
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.extensions.insert(ServedBy(instance.to_string()));
    Response::from_parts(parts, Body::new(body))
}

/// Which instance answered.
#[derive(Debug, Clone)]
pub struct ServedBy(pub String);

/// Who asked, as the access log names them: the API key or the account the edge verified, or
/// the client's address.
pub fn consumer(req: &Request) -> String {
    if let Some(p) = req.extensions().get::<Principal>() {
        return p.scope_key();
    }
    match req.extensions().get::<ClientIp>() {
        Some(ip) => format!("ip:{}", ip.0),
        None => "anonymous".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-request-id"));
    }

    #[test]
    fn only_what_may_be_sent_twice_is_repeated() {
        let mut h = HeaderMap::new();
        assert!(may_repeat(&Method::GET, &h));
        assert!(may_repeat(&Method::HEAD, &h));
        assert!(!may_repeat(&Method::POST, &h));
        assert!(!may_repeat(&Method::DELETE, &h));
        h.insert("idempotency-key", HeaderValue::from_static("k1"));
        assert!(may_repeat(&Method::POST, &h));
    }

    #[test]
    fn the_budget_allows_a_fifth_plus_a_floor() {
        let b = RetryBudget::new(0.2, 0.0);
        let t = Instant::now();
        // the floor's initial tokens are none here: 20 requests earn 4 retries
        for _ in 0..20 {
            b.deposit();
        }
        assert_eq!((0..10).filter(|_| b.withdraw(t)).count(), 4);
        // with a floor, time refills it
        let b = RetryBudget::new(0.2, 2.0);
        let t = Instant::now();
        assert_eq!((0..10).filter(|_| b.withdraw(t)).count(), 2);
        assert!(b.withdraw(t + Duration::from_millis(600)));
    }

    #[test]
    fn the_longest_matching_prefix_sets_the_timeout() {
        let f = Forwarder {
            client: crate::client(),
            identity: None,
            budget: RetryBudget::new(0.2, 1.0),
            timeouts: vec![
                ("/api/checkout".into(), Duration::from_secs(30)),
                ("/api".into(), Duration::from_secs(5)),
            ],
            default_timeout: Duration::from_secs(10),
            max_body: 1024,
        };
        assert_eq!(f.timeout_for("/api/checkout"), Duration::from_secs(30));
        assert_eq!(f.timeout_for("/api/checkout/x"), Duration::from_secs(30));
        assert_eq!(f.timeout_for("/api/checkouts"), Duration::from_secs(5));
        assert_eq!(
            f.timeout_for("/.well-known/jwks.json"),
            Duration::from_secs(10)
        );
    }
}
