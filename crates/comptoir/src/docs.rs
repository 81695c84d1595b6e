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

/// The whole API's document (as JSON). The gateway describes every service it fronts, whether
/// they run in this process or behind it.
pub fn openapi() -> serde_json::Value {
    let mut doc = SystemApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.merge(catalog::http::CatalogApi::openapi());
    doc.merge(identity::http::IdentityApi::openapi());
    doc.merge(inventory::http::InventoryApi::openapi());
    doc.merge(cart::http::CartApi::openapi());
    doc.merge(orders::http::OrdersApi::openapi());
    doc.merge(payments::http::PaymentsApi::openapi());
    add_security_schemes(&mut doc);
    doc.info.description = Some(format!(
        "{}\n\n### Error codes\n\nEvery error answer is a problem document whose `code` \
         (and the `code` of each entry of its `errors`) is one of these; `in` says whether a \
         code names the problem, a field error, or both. The same table is in `info` as \
         `x-error-codes`.\n{}",
        doc.info.description.as_deref().unwrap_or_default(),
        kernel::codes::markdown()
    ));
    let mut v = document_errors(doc);
    v["info"]["x-error-codes"] = error_codes();
    v
}

/// `kernel::codes::CODES` for machines: `[{code, statuses, in, area, meaning}]`.
fn error_codes() -> serde_json::Value {
    kernel::codes::CODES
        .iter()
        .map(|c| {
            serde_json::json!({
                "code": c.code,
                "statuses": c.statuses,
                "in": match c.kind {
                    kernel::codes::Kind::Problem => "problem",
                    kernel::codes::Kind::Field => "field",
                    kernel::codes::Kind::Both => "both",
                },
                "area": c.area.title(),
                "meaning": c.meaning,
            })
        })
        .collect()
}

/// Every route's access, as its service declares it (what the edge and `enforce` apply).
pub fn policy() -> platform::authz::RoutePolicy {
    catalog::http::policy()
        .merge(identity::http::policy())
        .merge(inventory::http::policy())
        .merge(cart::http::policy())
        .merge(orders::http::policy())
        .merge(payments::http::policy())
}

/// `/a/{id}/b/{x}` → `/a/{}/b/{}`: the document and the router may name a parameter differently.
pub fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

const PROBLEM_REF: &str = "#/components/schemas/Problem";

fn problem_content() -> serde_json::Value {
    serde_json::json!({ (platform::http::problem::PROBLEM_JSON): { "schema": { "$ref": PROBLEM_REF } } })
}

/// The errors the shared layers give, added to each operation where they can happen, and every
/// error answer's body set to a `Problem` in `application/problem+json`:
/// - every operation behind the edge (all but `/livez`, `/readyz`, `/metrics`): 401 (a
///   credential was sent and does not verify, or the route needs one), 429 (per-caller and
///   per-address rate limits, with `Retry-After`), 503 (the request timed out, a database or the
///   identity service does not answer);
/// - a route that needs a permission, and every unsafe method (a cookie-authenticated request
///   from another site): 403;
/// - a JSON body: 400 (not JSON), 413 (too large), 415 (not `application/json`), 422 (does not fit);
/// - query parameters: 400 (one does not parse);
/// - an `If-Match`: 400 (not an ETag);
/// - an `Idempotency-Key`: 400 (malformed), 409 (the same key still running), 422 (the same key
///   with another body), 428 when it is required.
///
/// What an operation declares itself (its own 404, 409, 422...) keeps its description.
fn document_errors(doc: utoipa::openapi::OpenApi) -> serde_json::Value {
    use serde_json::{Value, json};
    let policy = policy();
    let declared = policy.declared();
    let mut v = serde_json::to_value(&doc).expect("the document serialises");
    let Some(paths) = v.get_mut("paths").and_then(Value::as_object_mut) else {
        return v;
    };
    for (path, item) in paths.iter_mut() {
        let system = matches!(path.as_str(), "/livez" | "/readyz" | "/metrics");
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let access = declared
                .iter()
                .find(|(m, p, _)| {
                    m.as_str().eq_ignore_ascii_case(method) && shape(p) == shape(path)
                })
                .map(|(_, _, a)| *a);
            let params: Vec<Value> = op
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let has = |place: &str, name: Option<&str>| {
                params.iter().any(|p| {
                    p["in"] == place
                        && name.is_none_or(|n| {
                            p["name"]
                                .as_str()
                                .is_some_and(|x| x.eq_ignore_ascii_case(n))
                        })
                })
            };
            let key_required = params.iter().any(|p| {
                p["in"] == "header"
                    && p["name"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case("idempotency-key"))
                    && p["required"] == true
            });
            // a JSON body read by `ApiJson`/`HashedJson` (not a raw body such as a webhook's)
            let json_body = op
                .get("requestBody")
                .and_then(|b| b["content"].get("application/json"))
                .is_some_and(|c| c["schema"]["type"] != "string");
            let unsafe_method = !matches!(method.as_str(), "get" | "head" | "options");
            let mut add: Vec<(&str, String)> = Vec::new();
            if !system {
                add.push((
                    "401",
                    match access {
                        Some(platform::authz::Access::Public) | None => {
                            "A credential was sent and does not verify (`invalid_token`)".into()
                        }
                        _ => "Not signed in (`unauthenticated`), or the credential does not \
                              verify (`invalid_token`)"
                            .into(),
                    },
                ));
                add.push((
                    "429",
                    "Too many requests from this caller or address (`rate_limited`); see \
                     `Retry-After`"
                        .into(),
                ));
                add.push((
                    "503",
                    "Abandoned after the request timeout (`request_timeout`), or a database or \
                     the identity service does not answer (`unavailable`, \
                     `identity_unavailable`): retry later"
                        .into(),
                ));
                let perm = matches!(access, Some(platform::authz::Access::Permission(_)));
                if perm || unsafe_method {
                    let mut why = Vec::new();
                    if perm {
                        why.push("the caller lacks the permission (`forbidden`)");
                    }
                    if unsafe_method {
                        why.push(
                            "a request authenticated by cookie comes from another site \
                             (`cross_site_request`)",
                        );
                    }
                    add.push(("403", capitalise(&why.join("; or "))));
                }
            }
            let mut bad_request = Vec::new();
            if json_body {
                bad_request.push("the body is not JSON (`malformed_json`, `unreadable_body`)");
                add.push(("413", "The body is too large (`payload_too_large`)".into()));
                add.push((
                    "415",
                    "The body is not sent as `application/json` (`unsupported_media_type`)".into(),
                ));
                add.push((
                    "422",
                    "The body does not fit: a wrong type, an unknown field or value, a missing \
                     field (`invalid_body`), or a rule is broken (`validation_failed`)"
                        .into(),
                ));
            }
            if has("query", None) {
                bad_request.push("a query parameter does not parse (`invalid_query`)");
            }
            if has("header", Some("idempotency-key")) {
                bad_request.push("the `Idempotency-Key` is malformed (`invalid_idempotency_key`)");
                add.push((
                    "409",
                    "A request with the same `Idempotency-Key` is still running".into(),
                ));
                add.push((
                    "422",
                    "The `Idempotency-Key` was used with another request body".into(),
                ));
            }
            if has("header", Some("if-match")) {
                bad_request.push("`If-Match` is not an ETag (`invalid_if_match`)");
            }
            if key_required {
                add.push(("428", "The `Idempotency-Key` header is missing".into()));
            }
            if !bad_request.is_empty() {
                add.push(("400", capitalise(&bad_request.join("; or "))));
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("responses is an object");
            for (status, description) in add {
                match responses.get_mut(status) {
                    Some(r) => {
                        // the operation's own description comes first; add what it lacks
                        let d = r["description"].as_str().unwrap_or("").to_string();
                        if d.is_empty() {
                            r["description"] = json!(description);
                        } else if !d.contains(&description) {
                            r["description"] = json!(format!("{d}; or: {description}"));
                        }
                    }
                    None => {
                        responses.insert(status.to_string(), json!({ "description": description }));
                    }
                }
            }
            for (status, r) in responses.iter_mut() {
                if status.as_str() >= "400" && status.len() == 3 {
                    r["content"] = problem_content();
                }
                // OpenAPI requires a description on every response
                if r["description"].as_str().is_none_or(str::is_empty) {
                    r["description"] = json!(default_description(status));
                }
                if status == "429" {
                    r["headers"]["Retry-After"] = json!({
                        "description": "Seconds to wait before retrying",
                        "schema": { "type": "integer", "minimum": 0 }
                    });
                }
            }
        }
    }
    v
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn default_description(status: &str) -> String {
    status
        .parse::<u16>()
        .ok()
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
        .to_string()
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn resolve<'a>(doc: &'a Value, r: &str) -> Option<&'a Value> {
        let p = r.strip_prefix('#')?;
        doc.pointer(p)
    }

    fn walk_refs(doc: &Value, v: &Value, at: &str, bad: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref")
                    && resolve(doc, r).is_none()
                {
                    bad.push(format!("{at}: {r}"));
                }
                for (k, x) in m {
                    walk_refs(doc, x, &format!("{at}/{k}"), bad);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk_refs(doc, x, &format!("{at}/{i}"), bad);
                }
            }
            _ => {}
        }
    }

    fn template_params(path: &str) -> Vec<String> {
        path.split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(n, _)| n.to_string()))
            .collect()
    }

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    /// The /api/docs/ page shows the table of codes, and machines find it in `x-error-codes`.
    #[test]
    fn the_document_carries_every_error_code() {
        let doc = super::openapi();
        let text = doc["info"]["description"].as_str().expect("description");
        let listed = doc["info"]["x-error-codes"]
            .as_array()
            .expect("x-error-codes");
        assert_eq!(listed.len(), kernel::codes::CODES.len());
        for (c, l) in kernel::codes::CODES.iter().zip(listed) {
            assert!(
                text.contains(&format!("| `{}` |", c.code)),
                "{} not in the description",
                c.code
            );
            assert_eq!(l["code"], c.code);
            assert_eq!(l["statuses"], serde_json::json!(c.statuses));
        }
        assert!(text.starts_with("Open-source commerce platform"), "{text}");
    }

    #[test]
    fn every_ref_resolves() {
        let doc = super::openapi();
        let mut bad = Vec::new();
        walk_refs(&doc, &doc, "", &mut bad);
        assert!(bad.is_empty(), "dangling $ref: {bad:#?}");
        // the three that were missing once
        for s in ["Lang", "Sort", "StatusFilter", "Problem", "FieldError"] {
            assert!(
                doc["components"]["schemas"][s].is_object(),
                "{s} not registered"
            );
        }
    }

    #[test]
    fn path_parameters_match_the_templates() {
        let doc = super::openapi();
        let mut bad = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let names = template_params(path);
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                for n in &names {
                    let ok = params.iter().any(|p| {
                        p["in"] == "path" && p["name"] == n.as_str() && p["required"] == true
                    });
                    if !ok {
                        bad.push(format!(
                            "{m} {path}: {{{n}}} not declared in: path, required"
                        ));
                    }
                }
                for p in &params {
                    if p["in"] == "path" && !names.iter().any(|n| p["name"] == n.as_str()) {
                        bad.push(format!(
                            "{m} {path}: path parameter {} not in the template",
                            p["name"]
                        ));
                    }
                }
            }
        }
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn list_filters_are_query_parameters() {
        let doc = super::openapi();
        for (path, filters) in [
            (
                "/api/orders",
                &["status", "location", "before", "limit"][..],
            ),
            ("/api/orders/sagas", &["state", "limit"]),
            ("/api/identity/users", &["role", "store", "cursor", "limit"]),
            ("/api/inventory/stock", &["location", "sku", "low", "limit"]),
            ("/api/inventory/movements", &["location", "sku", "limit"]),
            ("/api/inventory/availability", &["skus"]),
        ] {
            let params = doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("GET {path} has no parameters"));
            for f in filters {
                assert!(
                    params.iter().any(|p| p["name"] == *f && p["in"] == "query"),
                    "GET {path}: {f} is not a query parameter"
                );
            }
        }
    }

    #[test]
    fn every_error_is_a_problem_document() {
        let doc = super::openapi();
        let mut bad = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let system = ["/livez", "/readyz", "/metrics"].contains(&path.as_str());
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let responses = op["responses"].as_object().expect("responses");
                let mut errors = 0;
                for (status, r) in responses {
                    if r["description"].as_str().is_none_or(str::is_empty) {
                        bad.push(format!("{m} {path} {status}: no description"));
                    }
                    if status.as_str() < "400" {
                        continue;
                    }
                    errors += 1;
                    let c = &r["content"];
                    let ok = c.as_object().is_some_and(|c| c.len() == 1)
                        && c["application/problem+json"]["schema"]["$ref"]
                            == "#/components/schemas/Problem";
                    if !ok {
                        bad.push(format!(
                            "{m} {path} {status}: not application/problem+json Problem: {c}"
                        ));
                    }
                }
                if !system {
                    // every operation behind the edge can be refused a bad credential and be
                    // rate-limited
                    for s in ["401", "429"] {
                        if !responses.contains_key(s) {
                            bad.push(format!("{m} {path}: {s} undocumented"));
                        }
                    }
                    if errors == 0 {
                        bad.push(format!("{m} {path}: no error response"));
                    }
                }
                let body = op["requestBody"]["content"]["application/json"]["schema"]["type"]
                    != "string"
                    && op["requestBody"]["content"]["application/json"].is_object();
                if body {
                    for s in ["400", "413", "415", "422"] {
                        if !responses.contains_key(s) {
                            bad.push(format!("{m} {path}: JSON body but {s} undocumented"));
                        }
                    }
                }
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                if params.iter().any(|p| p["in"] == "query") && !responses.contains_key("400") {
                    bad.push(format!("{m} {path}: query parameters but 400 undocumented"));
                }
                let key = params
                    .iter()
                    .find(|p| p["in"] == "header" && p["name"] == "Idempotency-Key");
                if let Some(k) = key {
                    if k["required"] == true && !responses.contains_key("428") {
                        bad.push(format!("{m} {path}: required key but 428 undocumented"));
                    }
                    if k["required"] != true && responses.contains_key("428") {
                        bad.push(format!("{m} {path}: optional key but 428 documented"));
                    }
                }
            }
        }
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn protected_operations_document_their_refusals() {
        let doc = super::openapi();
        let policy = super::policy();
        for (m, p, access) in policy.declared() {
            if p.starts_with("/internal/") {
                continue;
            }
            let item = doc["paths"]
                .as_object()
                .expect("paths")
                .iter()
                .find(|(k, _)| super::shape(k) == super::shape(p))
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("{p} not documented"));
            let op = &item[m.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{m} {p} not documented");
            if let platform::authz::Access::Permission(_) = access {
                assert!(
                    op["responses"]["403"].is_object(),
                    "{m} {p}: 403 undocumented"
                );
            }
        }
    }
}
