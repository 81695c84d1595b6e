//! Comptoir's web pages: the storefront (French under `/fr`, English under `/en`) and the back
//! office (`/{lang}/admin`), rendered on the server with askama templates checked at compile
//! time. Every essential step is a plain form that posts and redirects; htmx (served by us,
//! never from a CDN) only enhances: suggestions while typing, cart updates in place.
//!
//! The pages act through the HTTP API ([`api::Api`], in process or over the network) as the
//! signed-in visitor, so the services' rules apply unchanged; public catalogue pages read an
//! in-memory read model ([`catalogue::Catalogue`]); the rest goes through the services'
//! contracts (`contracts::orders`, `inventory`, `payments`), so the web runs with the services
//! or in a process of its own.

pub mod admin;
pub mod api;
pub mod assets;
pub mod catalogue;
pub mod i18n;
pub mod pagecache;
pub mod pages;
pub mod session;
pub mod shop;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use i18n::Lang;
use platform::authn::Authenticator;
use platform::ratelimit::{Limiter, Quota};
use std::sync::Arc;

/// What the pages need, shared by every request.
#[derive(Clone)]
pub struct WebState(Arc<Inner>);

pub struct Inner {
    pub api: api::Api,
    pub auth: Arc<Authenticator>,
    pub catalogue: Arc<catalogue::Catalogue>,
    /// Locations (what the public API does not give in one call).
    pub stock: Arc<dyn contracts::inventory::StockApi>,
    /// Checkouts and guests' orders (beyond the public API).
    pub orders: Arc<dyn contracts::orders::OrdersApi>,
    /// The test provider's 3-D Secure page.
    pub payments: Arc<dyn contracts::payments::PaymentsApi>,
    /// What home delivery costs, shown before checkout (orders' settings).
    pub shipping: Shipping,
    pub key: session::CookieKey,
    pub limiter: Limiter,
    pub per_ip: Vec<Quota>,
    /// Whose `X-Forwarded-For` names the visitor (`server.trusted_proxies`).
    pub proxies: platform::caller::TrustedProxies,
    /// Seconds a refresh cookie lives (the refresh token's own lifetime).
    pub refresh_secs: u64,
    /// Whether checkout offers the built-in test provider's cards (no Stripe configured).
    pub test_payments: bool,
    pub assets: assets::Assets,
}

/// Home delivery as orders prices it (`orders.shipping_*` settings).
#[derive(Debug, Clone)]
pub struct Shipping {
    /// Where home deliveries ship from.
    pub location: String,
    /// Minor units, under `free_from`.
    pub fee: i64,
    pub free_from: i64,
}

impl std::ops::Deref for WebState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl WebState {
    pub fn new(inner: Inner) -> Self {
        WebState(Arc::new(inner))
    }
}

/// The language of a page from its path (`/en/...`); French otherwise.
pub fn lang_of_path(path: &str) -> Lang {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .and_then(Lang::parse)
        .unwrap_or_default()
}

/// The Content-Security-Policy of every page: scripts and styles only from this origin (no
/// inline script, no eval), no plugins, no framing, forms post only here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; \
    worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
    form-action 'self'";

async fn page_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(
            axum::http::HeaderName::from_static(k),
            HeaderValue::from_static(v),
        );
    };
    set(h, "content-security-policy", CSP);
    set(
        h,
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "same-origin");
    set(h, "x-frame-options", "DENY");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    res
}

/// All the web routes, with their layers (security headers, session, CSRF).
pub fn router(state: WebState) -> Router {
    let pages = shop::routes()
        .merge(admin::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            |axum::extract::State(st): axum::extract::State<WebState>, req, next| {
                session::web_layer(st, req, next)
            },
        ))
        .with_state(state.clone());
    Router::new()
        .merge(assets::routes(state.clone()))
        .merge(pages)
        .layer(middleware::from_fn(page_headers))
}
