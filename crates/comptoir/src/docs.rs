//! The OpenAPI 3.1 document (generated from the code of the services this binary holds), the
//! API docs page (Swagger UI, vendored: works offline) and a small home page.

use crate::Target;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use std::collections::BTreeSet;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Comptoir",
        description = "Open-source commerce platform: catalogue, stock, orders, tills and tickets. \
                       Errors are RFC 9457 problem documents with a stable `code`.",
        license(name = "Apache-2.0")
    ),
    paths(livez, readyz, metrics)
)]
struct SystemApi;

/// The process answers.
#[utoipa::path(get, path = "/livez", tag = "operations", responses((status = 200, description = "Alive")))]
#[allow(dead_code)]
async fn livez() {}

/// The process and what it depends on (its databases, its upstreams) answer.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "A dependency is failing; the body names it")))]
#[allow(dead_code)]
async fn readyz() {}

/// Prometheus metrics: requests by route and status, durations, build info.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[allow(dead_code)]
async fn metrics() {}

/// The whole API's document. The gateway describes every service it fronts, whether they run
/// in this process or behind it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = SystemApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.merge(catalog::http::CatalogApi::openapi());
    doc.merge(identity::http::IdentityApi::openapi());
    doc.merge(inventory::http::InventoryApi::openapi());
    doc.merge(cart::http::CartApi::openapi());
    doc.merge(orders::http::OrdersApi::openapi());
    doc.merge(payments::http::PaymentsApi::openapi());
    add_security_schemes(&mut doc);
    doc
}

/// How callers authenticate (see the README's "Identity and access").
fn add_security_schemes(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token from POST /api/identity/sessions (EdDSA JWT, at most 15 \
                     minutes), or from the configured OpenID Connect provider. API keys \
                     (`ck_...`) are accepted here too.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "api_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Api-Key",
            "An API key (`ck_<prefix>_<secret>`) with explicit scopes, often bound to a store",
        ))),
    );
    components.add_security_scheme(
        "session_cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            platform::authn::SESSION_COOKIE,
            "The web session (an access token); unsafe methods must come from the same origin",
        ))),
    );
}

/// The API document and its viewer; `home`: also the plain `/` page (when the storefront does
/// not serve `/`).
pub fn router(_targets: &BTreeSet<Target>, home_page: bool) -> Router {
    let doc = openapi();
    let json = serde_json::to_vec(&doc).unwrap_or_default();
    let swagger: Router = utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .config(utoipa_swagger_ui::Config::from("/api/openapi.json"))
        .into();
    let swagger = swagger.layer(axum::middleware::from_fn(docs_csp));
    let mut r = Router::new().route(
        "/api/openapi.json",
        get(move || {
            let json = json.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], json) }
        }),
    );
    if home_page {
        r = r.route("/", get(home));
    }
    r.merge(swagger)
}

async fn docs_csp(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut res = next.run(req).await;
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
             script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    res
}

async fn home() -> impl IntoResponse {
    let mut res = Html(HOME).into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; \
             frame-ancestors 'none'; form-action 'self'",
        ),
    );
    res
}

const HOME: &str = r#"<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Comptoir — Breizhsport</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
a{color:#0b57d0}code{background:#f3f4f6;padding:.1rem .3rem;border-radius:.2rem}</style></head>
<body><main><h1>Comptoir</h1>
<p>La plateforme de commerce de Breizhsport tourne. / Breizhsport's commerce platform is running.</p>
<ul>
<li><a href="/api/docs/">API documentation</a> (<a href="/api/openapi.json">OpenAPI 3.1</a>)</li>
<li><a href="/api/catalog/products?limit=12">Products</a>,
 <a href="/api/catalog/categories">categories</a>, <a href="/api/catalog/brands">brands</a></li>
<li><a href="/readyz">Readiness</a> and <a href="/metrics">metrics</a></li>
</ul>
<p>Catalogue writes need the back-office token printed at first start:
<code>Authorization: Bearer cpt_…</code></p></main></body></html>
"#;
