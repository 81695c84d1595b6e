//! Who is browsing: the session cookies, their refresh, the CSRF token and the cart cookie.
//!
//! Every cookie is `__Host-` (so only this origin, over HTTPS, on path `/`, can set it),
//! `Secure`, `HttpOnly` and `SameSite=Lax`. The session cookie holds our short-lived access
//! token (the same cookie the API edge accepts); a second cookie holds the rotating refresh
//! token, used here when the access token has expired. Unsafe requests must be same-origin
//! and carry the CSRF token of the page (`_csrf` field, or `X-CSRF-Token` for scripts):
//! synchroniser token over a `__Host-` cookie, checked before any handler runs.

use crate::{WebState, pagecache, pages};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use kernel::{CartId, OrderId};
use platform::authn::{AuthError, Credential, SESSION_COOKIE, same_origin};
use platform::authz::Principal;
use platform::caller::ClientIp;
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

pub const REFRESH_COOKIE: &str = "__Host-comptoir-refresh";
pub const CSRF_COOKIE: &str = "__Host-comptoir-csrf";
pub const CART_COOKIE: &str = "__Host-comptoir-cart";
pub const ORDERS_COOKIE: &str = "__Host-comptoir-orders";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// Forms are small; anything larger is refused before parsing.
pub const MAX_FORM_BYTES: usize = 256 * 1024;
/// At most this many guest orders are remembered by one browser.
const MAX_GUEST_ORDERS: usize = 10;

/// The key that signs the guest-orders cookie.
#[derive(Clone)]
pub struct CookieKey(Arc<[u8; 32]>);

impl CookieKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        CookieKey(Arc::new(bytes))
    }

    pub fn random() -> Self {
        let mut b = [0u8; 32];
        // getrandom only fails on platforms without an entropy source, which we do not run on
        getrandom::fill(&mut b).unwrap_or_default();
        CookieKey::new(b)
    }

    fn mac(&self, data: &str) -> String {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(self.0.as_slice()) else {
            return String::new();
        };
        m.update(data.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    fn verify(&self, data: &str, mac: &str) -> bool {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(self.0.as_slice()) else {
            return false;
        };
        m.update(data.as_bytes());
        match hex::decode(mac) {
            Ok(bytes) => m.verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

/// The visitor of one request, as the handlers see it.
#[derive(Clone)]
pub struct Visitor {
    pub principal: Option<Principal>,
    pub csrf: String,
    pub cart: Option<CartId>,
    /// Units in the cart, as last seen by these pages (kept in the cart cookie, for the header).
    pub cart_count: i64,
    pub guest_orders: Vec<OrderId>,
    pub ip: IpAddr,
    jar: Arc<Mutex<Vec<String>>>,
}

impl Visitor {
    /// Nobody (for pages rendered before the session is known).
    pub fn anonymous() -> Visitor {
        Visitor {
            principal: None,
            csrf: String::new(),
            cart: None,
            cart_count: 0,
            guest_orders: vec![],
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            jar: Arc::new(Mutex::new(vec![])),
        }
    }

    pub fn is_staff(&self) -> bool {
        self.principal.as_ref().is_some_and(|p| p.role.is_staff())
    }

    pub fn signed_in(&self) -> bool {
        self.principal.is_some()
    }

    fn push(&self, cookie: String) {
        if let Ok(mut j) = self.jar.lock() {
            j.push(cookie);
        }
    }

    /// Starts a session: the two session cookies.
    pub fn set_session(&self, access: &str, access_secs: u64, refresh: &str, refresh_secs: u64) {
        self.push(cookie(SESSION_COOKIE, access, access_secs));
        self.push(cookie(REFRESH_COOKIE, refresh, refresh_secs));
    }

    pub fn clear_session(&self) {
        self.push(expired(SESSION_COOKIE));
        self.push(expired(REFRESH_COOKIE));
    }

    /// Remembers the cart and how many units it holds.
    pub fn set_cart(&self, id: CartId, units: i64) {
        self.push(cookie(CART_COOKIE, &format!("{id}~{units}"), 7 * 86_400));
    }

    pub fn clear_cart(&self) {
        self.push(expired(CART_COOKIE));
    }

    /// Remembers a guest's order in this browser (signed, so it cannot be forged).
    pub fn remember_order(&self, key: &CookieKey, id: OrderId) {
        let mut ids: Vec<OrderId> = vec![id];
        ids.extend(
            self.guest_orders
                .iter()
                .filter(|o| **o != id)
                .take(MAX_GUEST_ORDERS - 1),
        );
        let data = ids
            .iter()
            .map(OrderId::to_string)
            .collect::<Vec<_>>()
            .join("_");
        let mac = key.mac(&data);
        self.push(cookie(ORDERS_COOKIE, &format!("{data}.{mac}"), 30 * 86_400));
    }

    pub fn may_see_guest_order(&self, id: OrderId) -> bool {
        self.guest_orders.contains(&id)
    }
}

fn cookie(name: &str, value: &str, max_age: u64) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

fn expired(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The value of cookie `name`, if the request has it.
pub fn read_cookie<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    for v in h.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for pair in s.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
                && !v.is_empty()
            {
                return Some(v);
            }
        }
    }
    None
}

fn parse_cart(v: &str) -> Option<(CartId, i64)> {
    let (id, n) = v.split_once('~').unwrap_or((v, "0"));
    Some((id.parse().ok()?, n.parse().unwrap_or(0).clamp(0, 9999)))
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap_or_default();
    hex::encode(b)
}

fn parse_guest_orders(key: &CookieKey, v: Option<&str>) -> Vec<OrderId> {
    let Some((data, mac)) = v.and_then(|v| v.rsplit_once('.')) else {
        return vec![];
    };
    if !key.verify(data, mac) {
        return vec![];
    }
    data.split('_')
        .filter_map(|s| s.parse().ok())
        .take(MAX_GUEST_ORDERS)
        .collect()
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The CSRF token a form sent (`_csrf`), from an urlencoded body.
fn form_token(body: &[u8]) -> Option<String> {
    form_urlencoded_pairs(body)
        .into_iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
}

/// The web layer: rate limit, CSRF, session (with refresh), then the handler; the cookies the
/// visitor gained on the way are added to the response.
pub async fn web_layer(st: WebState, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let lang = crate::lang_of_path(parts.uri.path());
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let ip = st.proxies.client_ip(peer, &parts.headers);
    let d = st.limiter.hit(&format!("web-ip:{ip}"), &st.per_ip).await;
    if !d.allowed() {
        return pages::error_page(&st, lang, None, axum::http::StatusCode::TOO_MANY_REQUESTS);
    }

    let jar = Arc::new(Mutex::new(Vec::new()));
    let (csrf, fresh_csrf) = match read_cookie(&parts.headers, CSRF_COOKIE) {
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (t.to_string(), false)
        }
        _ => (random_token(), true),
    };
    let cart_cookie = read_cookie(&parts.headers, CART_COOKIE).and_then(parse_cart);
    let visitor_base = Visitor {
        principal: None,
        csrf: csrf.clone(),
        cart: cart_cookie.map(|c| c.0),
        cart_count: cart_cookie.map(|c| c.1).unwrap_or(0),
        guest_orders: parse_guest_orders(&st.key, read_cookie(&parts.headers, ORDERS_COOKIE)),
        ip,
        jar: jar.clone(),
    };
    if fresh_csrf {
        visitor_base.push(cookie(CSRF_COOKIE, &csrf, 30 * 86_400));
    }

    // unsafe methods: same origin, and the page's token
    let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let body = if unsafe_method {
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return finish(
                    pages::error_page(&st, lang, None, axum::http::StatusCode::PAYLOAD_TOO_LARGE),
                    &jar,
                );
            }
        };
        let presented = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| form_token(&bytes));
        let token_ok = !fresh_csrf && presented.as_deref().is_some_and(|p| constant_eq(p, &csrf));
        if !same_origin(&parts.headers) || !token_ok {
            metrics_csrf();
            return finish(pages::csrf_refused(&st, lang, &visitor_base), &jar);
        }
        Body::from(bytes)
    } else {
        body
    };

    let mut visitor = visitor_base;
    let anonymous = read_cookie(&parts.headers, SESSION_COOKIE).is_none()
        && read_cookie(&parts.headers, REFRESH_COOKIE).is_none()
        && visitor.cart_count == 0;
    let cache_key =
        (parts.method == Method::GET && anonymous && pagecache::cacheable_path(parts.uri.path()))
            .then(|| parts.uri.to_string());
    if let Some(key) = &cache_key {
        if let Some(page) = st.catalogue.pages.get(key) {
            return finish(html_page(page.fill(&csrf)), &jar);
        }
        visitor.csrf = pagecache::TOKEN_SLOT.to_string();
    } else {
        visitor.principal = session(&st, &parts.headers, &visitor).await;
    }
    parts.extensions.insert(ClientIp(ip));
    parts.extensions.insert(visitor);
    let res = next.run(Request::from_parts(parts, body)).await;
    let Some(key) = cache_key else {
        return finish(res, &jar);
    };
    // a public page rendered with the token slot: keep it, and give this visitor their copy
    let (head, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, pagecache::MAX_PAGE_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return finish(
                pages::error_page(
                    &st,
                    lang,
                    None,
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                ),
                &jar,
            );
        }
    };
    let html = String::from_utf8_lossy(&bytes);
    let filled = html.replace(pagecache::TOKEN_SLOT, &csrf);
    if head.status == axum::http::StatusCode::OK {
        st.catalogue.pages.put(key, &html);
    }
    finish(Response::from_parts(head, Body::from(filled)), &jar)
}

fn html_page(html: bytes::Bytes) -> Response {
    let mut r = Body::from(html).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn metrics_csrf() {
    tracing::info!("refused a form post without a valid CSRF token or from another origin");
}

fn finish(mut res: Response, jar: &Arc<Mutex<Vec<String>>>) -> Response {
    if let Ok(j) = jar.lock() {
        for c in j.iter() {
            if let Ok(v) = HeaderValue::from_str(c) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
    }
    res
}

/// The signed-in principal, refreshing an expired access token with the refresh cookie.
async fn session(st: &WebState, h: &HeaderMap, v: &Visitor) -> Option<Principal> {
    let access = read_cookie(h, SESSION_COOKIE);
    let refresh = read_cookie(h, REFRESH_COOKIE);
    if let Some(a) = access {
        match st
            .auth
            .authenticate(&Credential::Cookie(a.to_string()))
            .await
        {
            Ok(p) => return Some(p),
            Err(AuthError::Unavailable(e)) => {
                tracing::warn!(error = %e, "cannot verify a web session");
                return None;
            }
            Err(AuthError::Invalid(_)) => {}
        }
    }
    let r = refresh?;
    match st
        .api
        .call::<identity::model::TokenResponse>(
            &Visitor::anonymous(),
            axum::http::Method::POST,
            "/api/identity/sessions/refresh",
            Some(&identity::model::RefreshRequest {
                refresh_token: r.to_string(),
            }),
            None,
        )
        .await
    {
        Ok(t) => {
            v.set_session(
                &t.access_token,
                t.expires_in,
                &t.refresh_token,
                st.refresh_secs,
            );
            st.auth
                .authenticate(&Credential::Cookie(t.access_token))
                .await
                .ok()
        }
        Err(_) => {
            v.clear_session();
            None
        }
    }
}

/// The form fields of a request body (after the CSRF check), as pairs.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded_pairs(body)
}

/// Redirect after a POST (303, so the browser GETs the next page).
pub fn see_other(to: &str) -> Response {
    let mut r = axum::http::StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_orders_cookie_cannot_be_forged() {
        let k = CookieKey::new([7; 32]);
        let v = Visitor::anonymous();
        let id = OrderId::new();
        v.remember_order(&k, id);
        let set = v.jar.lock().map(|j| j[0].clone()).unwrap_or_default();
        let value = set
            .split(';')
            .next()
            .and_then(|p| p.split_once('='))
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        assert_eq!(parse_guest_orders(&k, Some(&value)), vec![id]);
        let other = OrderId::new();
        let forged = value.replace(&id.to_string(), &other.to_string());
        assert!(parse_guest_orders(&k, Some(&forged)).is_empty());
        assert!(parse_guest_orders(&CookieKey::new([8; 32]), Some(&value)).is_empty());
        assert!(set.starts_with("__Host-"));
        assert!(set.contains("Secure") && set.contains("HttpOnly") && set.contains("SameSite=Lax"));
    }

    #[test]
    fn same_origin_needs_fetch_metadata_or_matching_origin() {
        let mut h = HeaderMap::new();
        assert!(!same_origin(&h));
        h.insert(header::HOST, HeaderValue::from_static("shop.example"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://shop.example"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }
}
