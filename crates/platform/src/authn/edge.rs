//! The edge layer in front of every route: strips forged identity, finds the client's address
//! (behind trusted proxies, from `X-Forwarded-For`), authenticates, rate-limits, inserts the
//! [`Principal`]; and the same-origin rule for cookie-authenticated writes.
//!
//! Limited answers, refused or not, carry the `RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset` and `RateLimit-Policy` fields of draft-ietf-httpapi-ratelimit-headers-06
//! (the last version with one field each), describing the quota closest to exhaustion.

use super::AuthError;
use super::authenticator::Authenticator;
use super::credential::Credential;
use crate::authz::{Principal, PrincipalKind};
use crate::caller::{ClientIp, EdgeVerified, IDENTITY_HEADER, TrustedProxies};
use crate::http::problem::ApiError;
use crate::ratelimit::{Decision, Limiter, Quota};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// Rate limits applied at the edge.
#[derive(Debug, Clone, Default)]
pub struct EdgeLimits {
    pub per_ip: Vec<Quota>,
    pub per_account: Vec<Quota>,
    pub per_key: Vec<Quota>,
    /// Route prefixes with their own quotas per consumer, counted apart and enforced on top of
    /// the consumer's own (the longest matching prefix wins).
    pub routes: Vec<(String, Vec<Quota>)>,
}

impl EdgeLimits {
    /// The route prefix of `path` with its own quotas, if any.
    pub fn route(&self, path: &str) -> Option<&(String, Vec<Quota>)> {
        self.routes
            .iter()
            .filter(|(p, _)| path == p || path.starts_with(&format!("{p}/")))
            .max_by_key(|(p, _)| p.len())
    }
}

/// The edge: authentication and rate limits in front of every route.
pub struct Edge {
    pub auth: Arc<Authenticator>,
    pub limiter: Limiter,
    pub limits: EdgeLimits,
    /// Whose `X-Forwarded-For` names the client.
    pub proxies: TrustedProxies,
}

/// The quotas that apply to one request, and what the limiter said of them.
struct Limited {
    decision: Decision,
    quotas: Vec<Quota>,
}

impl Limited {
    /// Counts the request under `consumer`'s `plan` and, on a route with its own quotas, under
    /// `consumer` on that route too.
    async fn check(
        edge: &Edge,
        consumer: &str,
        plan: &[Quota],
        route: Option<&(String, Vec<Quota>)>,
    ) -> Limited {
        let route_key = route.map(|(p, _)| format!("{consumer}|route:{p}"));
        let mut each: Vec<(&str, &[Quota])> = Vec::with_capacity(2);
        if let (Some(k), Some((_, q))) = (&route_key, route) {
            each.push((k, q));
        }
        each.push((consumer, plan));
        let decision = edge.limiter.hit_each(&each).await;
        Limited {
            decision,
            quotas: each.iter().flat_map(|(_, q)| q.iter().copied()).collect(),
        }
    }

    /// 429 `rate_limited` with `Retry-After`, when the request was refused.
    fn refusal(&self) -> Option<Response> {
        if self.decision.allowed() {
            return None;
        }
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; wait before retrying",
        );
        e.retry_after = self.decision.retry_after_secs();
        Some(self.stamp(e.into_response()))
    }

    /// The response with the `RateLimit-*` fields of the quota closest to exhaustion.
    fn stamp(&self, mut res: Response) -> Response {
        let Some(t) = self.decision.tightest else {
            return res;
        };
        // on a refusal, the reset is the moment of Retry-After (as the draft recommends)
        let reset = self.decision.retry_after_secs().unwrap_or(t.reset_secs());
        // "two quota policies MUST NOT be associated with the same quota units value"
        let mut seen = Vec::new();
        let policy: Vec<String> = self
            .quotas
            .iter()
            .filter(|q| {
                let fresh = !seen.contains(&q.limit);
                seen.push(q.limit);
                fresh
            })
            .map(|q| format!("{};w={}", q.limit, q.period.as_secs().max(1)))
            .collect();
        let h = res.headers_mut();
        h.insert(
            HeaderName::from_static("ratelimit-limit"),
            HeaderValue::from(t.quota.limit),
        );
        h.insert(
            HeaderName::from_static("ratelimit-remaining"),
            HeaderValue::from(t.remaining),
        );
        h.insert(
            HeaderName::from_static("ratelimit-reset"),
            HeaderValue::from(reset),
        );
        if let Ok(v) = HeaderValue::from_str(&policy.join(", ")) {
            h.insert(HeaderName::from_static("ratelimit-policy"), v);
        }
        res
    }
}

fn invalid_token(reason: &'static str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", reason).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

/// Paths that are never authenticated nor limited: probes and metrics.
fn exempt(path: &str) -> bool {
    matches!(path, "/livez" | "/readyz" | "/metrics")
}

/// Whether an unsafe request authenticated by cookie comes from our own pages:
/// `Sec-Fetch-Site: same-origin`, else an `Origin` whose host is `Host`; neither is a no.
/// The web pages apply the same rule to every form they receive.
pub fn same_origin(h: &HeaderMap) -> bool {
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    let (Some(origin), Some(host)) = (
        h.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        h.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

/// The edge middleware.
pub async fn edge_layer(edge: Arc<Edge>, mut req: Request, next: Next) -> Response {
    req.headers_mut().remove(IDENTITY_HEADER);
    req.extensions_mut().remove::<Principal>();
    req.extensions_mut().insert(EdgeVerified);
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let ip = edge.proxies.client_ip(peer, req.headers());
    req.extensions_mut().insert(ClientIp(ip));
    let ip_key = format!("ip:{ip}");
    let route = edge.limits.route(req.uri().path());
    let cred = match Credential::from_headers(req.headers()) {
        Ok(c) => c,
        Err(AuthError::Invalid(reason)) => {
            let l = Limited::check(&edge, &ip_key, &edge.limits.per_ip, None).await;
            if let Some(refused) = l.refusal() {
                return refused;
            }
            return l.stamp(invalid_token(reason));
        }
        Err(AuthError::Unavailable(e)) => {
            return ApiError::unavailable(e).into_response();
        }
    };
    let Some(cred) = cred else {
        let l = Limited::check(&edge, &ip_key, &edge.limits.per_ip, route).await;
        if let Some(refused) = l.refusal() {
            return refused;
        }
        return l.stamp(next.run(req).await);
    };
    if matches!(cred, Credential::Cookie(_))
        && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !same_origin(req.headers())
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "a request authenticated by cookie must come from this site",
        )
        .into_response();
    }
    match edge.auth.authenticate(&cred).await {
        Ok(p) => {
            let plan = match p.kind {
                PrincipalKind::ApiKey => &edge.limits.per_key,
                _ => &edge.limits.per_account,
            };
            let l = Limited::check(&edge, &p.scope_key(), plan, route).await;
            if let Some(refused) = l.refusal() {
                return refused;
            }
            req.extensions_mut().insert(p);
            l.stamp(next.run(req).await)
        }
        Err(AuthError::Invalid(reason)) => {
            metrics::counter!("comptoir_auth_rejected_total").increment(1);
            let l = Limited::check(&edge, &ip_key, &edge.limits.per_ip, None).await;
            if let Some(refused) = l.refusal() {
                return refused;
            }
            l.stamp(invalid_token(reason))
        }
        Err(AuthError::Unavailable(e)) => {
            tracing::error!(error = %e, "cannot verify credentials");
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "identity_unavailable",
                "credentials cannot be verified right now; retry shortly",
            );
            err.retry_after = Some(1);
            err.into_response()
        }
    }
}
