//! Cross-origin requests at the edge (the Fetch standard's CORS protocol): pages of the origins
//! of `gateway.cors_origins` may call the API from a browser, with credentials; every other
//! origin gets no CORS header at all, so its scripts cannot read an answer. Preflights
//! (`OPTIONS` with `Access-Control-Request-Method`) are answered here, before the edge: they are
//! never authenticated, counted by the rate limits or forwarded.
//!
//! Not tower-http's `CorsLayer`: it sends `Access-Control-Allow-Methods`, `-Allow-Headers`,
//! `-Max-Age` and `-Expose-Headers` whatever the origin, and takes every `OPTIONS` for a
//! preflight.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

/// What a listed origin may send: every method of the API.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// The request headers the API reads, beyond the CORS-safelisted ones.
const ALLOW_HEADERS: &str =
    "authorization, content-type, idempotency-key, if-match, x-api-key, x-request-id";
/// The response headers a listed origin's scripts may read, beyond the safelisted ones.
const EXPOSE_HEADERS: &str = "location, etag, retry-after, www-authenticate, x-request-id, \
     idempotent-replayed, ratelimit, ratelimit-policy, ratelimit-limit, ratelimit-remaining, \
     ratelimit-reset";
/// How long a browser may keep a preflight's answer (seconds; Chromium keeps at most 7200).
const MAX_AGE: &str = "600";

/// The origins allowed to call the API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// Reads `gateway.cors_origins`: comma-separated `http(s)://host[:port]` origins, no path;
    /// empty for none. Default ports are dropped (a browser never sends them) and names are
    /// lowercased (as a browser sends them).
    pub fn parse(list: &str) -> Result<Cors, String> {
        let mut origins = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let o = origin(raw)?;
            if !origins.contains(&o) {
                origins.push(o);
            }
        }
        Ok(Cors { origins })
    }

    /// The allowed origins, as a browser writes them in `Origin`.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        origin
            .to_str()
            .is_ok_and(|o| self.origins.iter().any(|a| a == o))
    }
}

/// One origin of the setting, normalised, or why it is not one.
fn origin(raw: &str) -> Result<String, String> {
    if raw == "*" || raw.contains('*') {
        return Err(format!(
            "`{raw}`: no wildcard, the API answers with credentials; list each origin"
        ));
    }
    let lower = raw.to_ascii_lowercase();
    let (scheme, rest, default_port) = if let Some(r) = lower.strip_prefix("http://") {
        ("http", r, "80")
    } else if let Some(r) = lower.strip_prefix("https://") {
        ("https", r, "443")
    } else {
        return Err(format!("`{raw}` is not an http(s)://host[:port] origin"));
    };
    if rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "`{raw}`: an origin is http(s)://host[:port], without path, query or user"
        ));
    }
    // [v6]:port or name:port
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{raw}`: an IPv6 address ends with ]"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{raw}`: `{addr}` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("`{raw}`: expected :port after the address"))?,
            ),
        };
        (format!("[{addr}]"), port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    let host_ok = host.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if !host_ok {
        return Err(format!("`{raw}`: `{host}` is not a host name"));
    }
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(p) if p == default_port => Ok(format!("{scheme}://{host}")),
        Some(p) => {
            let n: u16 = p
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{raw}`: `{p}` is not a port"))?;
            Ok(format!("{scheme}://{host}:{n}"))
        }
    }
}

fn is_cors_header(name: &HeaderName) -> bool {
    name.as_str().starts_with("access-control-")
}

/// `Vary: Origin`, added to what the response already varies on.
fn vary_origin(h: &mut HeaderMap) {
    let already = h.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("origin") || p.trim() == "*")
        })
    });
    if !already {
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

fn allow(h: &mut HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

impl Cors {
    /// The request's origin when it is listed (its answer gets the CORS headers).
    pub fn allowed(&self, req: &Request) -> Option<HeaderValue> {
        req.headers()
            .get(header::ORIGIN)
            .filter(|o| self.allows(o))
            .cloned()
    }

    /// The answer to a preflight, given here for every route, listed origin or not (a
    /// preflight is never a call of the API); `None` for any other request.
    pub fn preflight(&self, req: &Request) -> Option<Response> {
        let preflight = req.method() == Method::OPTIONS
            && req.headers().contains_key(header::ORIGIN)
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        preflight.then(|| preflight_answer(self.allowed(req)))
    }

    /// The CORS headers of an answer: only this layer speaks CORS (an upstream behind the
    /// gateway does not get the last word).
    pub fn decorate(&self, allowed: Option<HeaderValue>, res: &mut Response) {
        let h = res.headers_mut();
        if h.keys().any(is_cors_header) {
            let foreign: Vec<HeaderName> =
                h.keys().filter(|n| is_cors_header(n)).cloned().collect();
            for n in foreign {
                h.remove(n);
            }
        }
        vary_origin(h);
        if let Some(o) = allowed {
            allow(h, o);
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
}

fn preflight_answer(allowed: Option<HeaderValue>) -> Response {
    {
        // answered here, listed origin or not: a preflight is never a call of the API
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NO_CONTENT;
        let h = res.headers_mut();
        vary_origin(h);
        if let Some(o) = allowed {
            allow(h, o);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE),
            );
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_read_and_normalised() {
        let c = Cors::parse(
            " http://localhost:3000, HTTPS://Shop.Example:443 ,https://shop.example, \
             http://[::1]:8080, http://127.0.0.1:80,",
        )
        .expect("valid");
        assert_eq!(
            c.origins(),
            [
                "http://localhost:3000",
                "https://shop.example",
                "http://[::1]:8080",
                "http://127.0.0.1",
            ]
        );
        assert_eq!(Cors::parse("").expect("empty").origins().len(), 0);
    }

    #[test]
    fn what_is_not_an_origin_is_refused() {
        for bad in [
            "*",
            "https://*.shop.example",
            "localhost:3000",
            "ftp://shop.example",
            "https://shop.example/",
            "https://shop.example/app",
            "https://shop.example?x=1",
            "https://user@shop.example",
            "https://shop.example:0",
            "https://shop.example:99999",
            "https://shop.example:http",
            "https://",
            "https://shop..example",
            "http://[::g]:80",
            "http://[::1]x",
        ] {
            assert!(Cors::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Cors::parse("*")
                .expect_err("wildcard")
                .contains("credentials")
        );
    }

    #[test]
    fn the_setting_is_checked_at_load_and_named() {
        let load = |v: &str| {
            crate::config::Settings::load(crate::config::Sources {
                file: None,
                env: [("COMPTOIR_GATEWAY__CORS_ORIGINS".to_string(), v.to_string())].into(),
            })
        };
        let d = crate::config::Settings::defaults();
        assert_eq!(
            Cors::parse(&d.gateway.cors_origins)
                .expect("default")
                .origins(),
            [
                "http://localhost:3000",
                "http://localhost:3001",
                "http://localhost:5000"
            ]
        );
        for bad in ["*", "https://shop.example/", "shop.example"] {
            let e = load(bad).expect_err(bad);
            assert_eq!(e.setting, "gateway.cors_origins", "{bad}: {e}");
        }
        let s = load("https://shop.example").expect("one origin");
        assert_eq!(s.gateway.cors_origins, "https://shop.example");
    }
}
