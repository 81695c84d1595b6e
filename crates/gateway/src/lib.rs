//! The gateway: the one entry point. In one-process mode it is just the router that nests every
//! service; with `--target gateway` it forwards each `/api/<service>/` prefix to that service's
//! process over HTTP, keeping the request id, so clients see the same API either way.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use platform::ApiError;
use platform::authz::Principal;
use platform::caller::{ClientIp, IDENTITY_HEADER, InternalKey};
use platform::http::RouteLabel;
use platform::http::health::Check;
use std::sync::Arc;
use std::time::Duration;

/// A service reached over the network.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// Service name, e.g. `catalog`.
    pub name: &'static str,
    /// Path prefix it owns, e.g. `/api/catalog`.
    pub prefix: &'static str,
    /// Its base URL, e.g. `http://10.0.0.7:8080`.
    pub base: Uri,
    /// Label of its requests in the gateway's metrics.
    pub route_label: &'static str,
}

#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct UpstreamError {
    pub setting: &'static str,
    pub message: String,
}

impl Upstream {
    /// Parses a base URL from configuration (`setting` names it in errors).
    pub fn parse(
        name: &'static str,
        prefix: &'static str,
        route_label: &'static str,
        setting: &'static str,
        url: &str,
    ) -> Result<Upstream, UpstreamError> {
        let err = |m: &str| UpstreamError {
            setting,
            message: m.to_string(),
        };
        let base: Uri = url
            .trim_end_matches('/')
            .parse()
            .map_err(|_| err("not a URL"))?;
        match base.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(err(
                    "https upstreams are not supported: keep service-to-service traffic on the \
                     cluster network (or a mesh that adds TLS) and use http://",
                ));
            }
            _ => return Err(err("must start with http://")),
        }
        if base.host().is_none() {
            return Err(err("has no host"));
        }
        if base.path() != "/" && !base.path().is_empty() {
            return Err(err("must not have a path: give the service's base URL"));
        }
        Ok(Upstream {
            name,
            prefix,
            base,
            route_label,
        })
    }

    /// A readiness check that asks the upstream's `/readyz`.
    pub fn readiness(&self, client: &Proxy) -> Check {
        let uri: Option<Uri> = format!("{}readyz", with_slash(&self.base)).parse().ok();
        let client = client.client.clone();
        Check::new(format!("{}_upstream", self.name), move || {
            let uri = uri.clone();
            let client = client.clone();
            Box::pin(async move {
                let uri = uri.ok_or("bad upstream URL")?;
                let req = Request::get(uri)
                    .body(Body::empty())
                    .map_err(|e| e.to_string())?;
                let res = client.request(req).await.map_err(|e| e.to_string())?;
                if res.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("answered {}", res.status()))
                }
            })
        })
    }
}

fn with_slash(u: &Uri) -> String {
    let s = u.to_string();
    if s.ends_with('/') { s } else { format!("{s}/") }
}

/// The pooled HTTP client the gateway forwards with.
#[derive(Clone)]
pub struct Proxy {
    client: Client<HttpConnector, Body>,
    timeout: Duration,
}

impl Proxy {
    pub fn new(timeout: Duration) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector);
        Proxy { client, timeout }
    }
}

#[derive(Clone)]
struct Route {
    upstream: Arc<Upstream>,
    proxy: Proxy,
    identity: Option<InternalKey>,
}

/// Routes forwarding each upstream's prefix. With `identity`, the verified identity the edge
/// found (and the client's address) travels in the signed `x-comptoir-identity` header.
pub fn router(proxy: &Proxy, upstreams: &[Upstream], identity: Option<InternalKey>) -> Router {
    let mut r = Router::new();
    for u in upstreams {
        let route = Route {
            upstream: Arc::new(u.clone()),
            proxy: proxy.clone(),
            identity: identity.clone(),
        };
        let exact = u.prefix.to_string();
        let nested = format!("{}/{{*rest}}", u.prefix);
        r = r
            .route(
                &exact,
                axum::routing::any(forward).with_state(route.clone()),
            )
            .route(&nested, axum::routing::any(forward).with_state(route));
    }
    r
}

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

fn strip_hop_by_hop(h: &mut axum::http::HeaderMap) {
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

async fn forward(State(route): State<Route>, req: Request) -> Response {
    let mut res = forward_inner(&route, req)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    res.extensions_mut()
        .insert(RouteLabel(route.upstream.route_label));
    res
}

async fn forward_inner(route: &Route, req: Request) -> Result<Response, ApiError> {
    let up = &route.upstream;
    let (mut parts, body) = req.into_parts();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target: Uri = format!("{}{}", with_slash(&up.base).trim_end_matches('/'), pq)
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_uri", "the request URI cannot be forwarded"))?;
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
            parts.headers.insert("x-forwarded-for", v);
        }
    }
    if let Some(h) = client_host {
        parts.headers.insert("x-forwarded-host", h);
    }
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static("http"));
    parts.headers.remove(header::HOST);
    parts.headers.remove(IDENTITY_HEADER);
    if let Some(key) = &route.identity {
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
        parts.headers.insert(IDENTITY_HEADER, v);
    }
    parts.uri = target;
    let out = Request::from_parts(parts, body);

    let res = match tokio::time::timeout(route.proxy.timeout, route.proxy.client.request(out)).await
    {
        Err(_) => {
            tracing::warn!(upstream = up.name, "upstream timed out");
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!("the {} service did not answer in time", up.name),
            ));
        }
        Ok(Err(e)) => {
            tracing::warn!(upstream = up.name, error = %e, "upstream unreachable");
            let mut err = ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                format!("the {} service cannot be reached; retry shortly", up.name),
            );
            err.retry_after = Some(1);
            return Err(err);
        }
        Ok(Ok(r)) => r,
    };
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = Body::new(body.map_err(axum::Error::new));
    Ok(Response::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_checked() {
        let p = |u: &str| Upstream::parse("catalog", "/api/catalog", "x", "gateway.catalog_url", u);
        assert!(p("http://127.0.0.1:8081").is_ok());
        assert!(p("http://catalog:8080/").is_ok());
        assert!(p("https://catalog").is_err());
        assert!(p("catalog:8080").is_err());
        assert!(p("http://catalog/api").is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = axum::http::HeaderMap::new();
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
}
