//! The edge layer in front of every route: strips forged identity, authenticates, rate-limits,
//! inserts the [`Principal`]; and the same-origin rule for cookie-authenticated writes.

use super::AuthError;
use super::authenticator::Authenticator;
use super::credential::Credential;
use crate::authz::{Principal, PrincipalKind};
use crate::caller::{ClientIp, EdgeVerified, IDENTITY_HEADER};
use crate::http::problem::ApiError;
use crate::ratelimit::{Decision, Limiter, Quota};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
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
}

/// The edge: authentication and rate limits in front of every route.
pub struct Edge {
    pub auth: Arc<Authenticator>,
    pub limiter: Limiter,
    pub limits: EdgeLimits,
}

fn limited(d: Decision) -> Response {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests; wait before retrying",
    );
    e.retry_after = d.retry_after_secs();
    e.into_response()
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
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    req.extensions_mut().insert(ClientIp(ip));
    let ip_key = format!("ip:{ip}");
    let cred = match Credential::from_headers(req.headers()) {
        Ok(c) => c,
        Err(AuthError::Invalid(reason)) => {
            let d = edge.limiter.hit(&ip_key, &edge.limits.per_ip).await;
            if d != Decision::Allow {
                return limited(d);
            }
            return invalid_token(reason);
        }
        Err(AuthError::Unavailable(e)) => {
            return ApiError::unavailable(e).into_response();
        }
    };
    let Some(cred) = cred else {
        let d = edge.limiter.hit(&ip_key, &edge.limits.per_ip).await;
        if d != Decision::Allow {
            return limited(d);
        }
        return next.run(req).await;
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
            let (key, quotas) = match p.kind {
                PrincipalKind::ApiKey => (p.scope_key(), &edge.limits.per_key),
                _ => (p.scope_key(), &edge.limits.per_account),
            };
            let d = edge.limiter.hit(&key, quotas).await;
            if d != Decision::Allow {
                return limited(d);
            }
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(AuthError::Invalid(reason)) => {
            metrics::counter!("comptoir_auth_rejected_total").increment(1);
            let d = edge.limiter.hit(&ip_key, &edge.limits.per_ip).await;
            if d != Decision::Allow {
                return limited(d);
            }
            invalid_token(reason)
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
