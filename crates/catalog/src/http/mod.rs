//! Routes of `/api/catalog`, their OpenAPI description, and the write flow shared by every
//! unsafe route: idempotency claim → one transaction (effect + stored response) → cache
//! invalidation.
//!
//! - `wire`: what the API sends and receives (the former `catalog::model`)
//! - `problem`: the one mapping of [`app::Error`] to problem documents

mod problem;
mod schema;
pub mod wire;

use self::wire::*;
use crate::app;
use crate::store::{self, ProductKey};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use bytes::Bytes;
use kernel::Clock;
use platform::authz::{Access, RoutePolicy, perm};
use platform::cache::ResponseCache;
use platform::caller::Caller;
use platform::db::{Db, Tx};
use platform::http::extract::{ApiQuery, HashedJson};
use platform::idempotency::{self, Begin, Claim, Idempotency};
use platform::{ApiError, Problem};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// What the catalogue's handlers share.
#[derive(Clone)]
pub struct CatalogState {
    pub db: Db,
    pub cache: Arc<ResponseCache>,
    pub idempotency: Idempotency,
    pub clock: Arc<dyn Clock>,
}

/// Who may call what. Every route of [`router`] is here: the tests check it.
pub fn policy() -> RoutePolicy {
    use axum::http::Method;
    let write = Access::Permission(perm::CATALOG_WRITE);
    RoutePolicy::new()
        .route(Method::GET, "/api/catalog/products", Access::Public)
        .route(Method::POST, "/api/catalog/products", write)
        .route(Method::GET, "/api/catalog/products/{key}", Access::Public)
        .route(Method::PATCH, "/api/catalog/products/{key}", write)
        .route(Method::POST, "/api/catalog/products/{id}/archive", write)
        .route(Method::POST, "/api/catalog/products/{id}/variants", write)
        .route(
            Method::PATCH,
            "/api/catalog/products/{id}/variants/{variant_id}",
            write,
        )
        .route(Method::GET, "/api/catalog/images/{id}", Access::Public)
        .route(Method::GET, "/api/catalog/categories", Access::Public)
        .route(Method::POST, "/api/catalog/categories", write)
        .route(Method::GET, "/api/catalog/brands", Access::Public)
        .route(Method::POST, "/api/catalog/brands", write)
}

/// The catalogue's routes, to be nested or served at the root (paths include `/api/catalog`).
pub fn router(state: CatalogState) -> Router {
    let policy = Arc::new(policy());
    Router::new()
        .route(
            "/api/catalog/products",
            get(list_products).post(create_product),
        )
        .route(
            "/api/catalog/products/{key}",
            get(get_product).patch(update_product),
        )
        .route("/api/catalog/products/{id}/archive", post(archive_product))
        .route("/api/catalog/products/{id}/variants", post(add_variant))
        .route(
            "/api/catalog/products/{id}/variants/{variant_id}",
            patch(update_variant),
        )
        .route("/api/catalog/images/{id}", get(get_image))
        .route(
            "/api/catalog/categories",
            get(list_categories).post(create_category),
        )
        .route("/api/catalog/brands", get(list_brands).post(create_brand))
        .route_layer(axum::middleware::from_fn(move |req, next| {
            platform::authz::enforce(policy.clone(), req, next)
        }))
        .with_state(state)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_products,
        create_product,
        get_product,
        update_product,
        archive_product,
        add_variant,
        update_variant,
        get_image,
        list_categories,
        create_category,
        list_brands,
        create_brand
    ),
    components(schemas(Problem, platform::FieldError, CategoryNode, wire::Sort,
        wire::Lang, wire::StatusFilter)),
    tags((name = "catalog", description = "Products, variants, categories and brands"))
)]
pub struct CatalogApi;

// ---- the write flow -------------------------------------------------------------------------

enum Pre {
    Go(Option<Claim>),
    Done(Response),
}

async fn pre_write(
    st: &CatalogState,
    caller: &Caller,
    headers: &HeaderMap,
    request_hash: &str,
) -> Result<Pre, ApiError> {
    let Some(key) = idempotency::key_from_headers(headers)? else {
        return Ok(Pre::Go(None));
    };
    match st
        .idempotency
        .begin(&caller.scope(), &key, request_hash)
        .await?
    {
        Begin::Proceed(c) => Ok(Pre::Go(Some(c))),
        Begin::Replay(r) => Ok(Pre::Done(r)),
    }
}

/// Commits the effect with its stored response, or rolls back and frees the key.
async fn finish<T: Serialize>(
    st: &CatalogState,
    mut tx: Tx,
    claim: Option<Claim>,
    result: Result<T, ApiError>,
    status: StatusCode,
    location: Option<String>,
) -> Response {
    let value = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = tx.rollback().await;
            if let Some(c) = claim {
                c.release(&st.idempotency).await;
            }
            return e.into_response();
        }
    };
    let body = match serde_json::to_vec(&value) {
        Ok(b) => b,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    if let Some(c) = &claim
        && let Err(e) = c
            .complete(
                &mut tx,
                status,
                "application/json",
                &body,
                location.as_deref(),
            )
            .await
    {
        let _ = tx.rollback().await;
        if let Some(c) = claim {
            c.release(&st.idempotency).await;
        }
        return ApiError::from(e).into_response();
    }
    if let Err(e) = tx.commit().await {
        if let Some(c) = claim {
            c.release(&st.idempotency).await;
        }
        return ApiError::from(e).into_response();
    }
    st.cache.invalidate();
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        res.headers_mut().insert(header::LOCATION, l);
    }
    res
}

/// A product write tells the other services (`product.changed`), in its transaction.
async fn announce(
    tx: &mut Tx,
    result: Result<Product, ApiError>,
    now_ms: i64,
) -> Result<Product, ApiError> {
    let p = result?;
    let payload = serde_json::json!({
        "product_id": p.id,
        "slug": p.slug,
        "status": p.status,
        "skus": p.variants.iter().map(|v| v.sku.as_str()).collect::<Vec<_>>(),
    });
    platform::bus::enqueue(
        tx.conn(),
        &platform::bus::Event::new(
            crate::SERVICE,
            platform::bus::topic::PRODUCT_CHANGED,
            &payload,
            now_ms,
        ),
    )
    .await?;
    Ok(p)
}

/// Opens the transaction of a write; a failure releases the claim.
async fn begin_tx(
    st: &CatalogState,
    claim: Option<Claim>,
) -> Result<(Tx, Option<Claim>), Response> {
    match st.db.begin().await {
        Ok(tx) => Ok((tx, claim)),
        Err(e) => {
            if let Some(c) = claim {
                c.release(&st.idempotency).await;
            }
            Err(ApiError::from(e).into_response())
        }
    }
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("").trim();
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    let s = s.strip_prefix('v').unwrap_or(s);
    s.parse::<i64>().map(Some).map_err(|_| {
        ApiError::bad_request(
            "invalid_if_match",
            "If-Match must be the product's ETag, e.g. \"v3\"",
        )
    })
}

fn product_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::not_found("product"))
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"v{version}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

fn json_bytes(body: Bytes, cache_seconds: u64) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if cache_seconds > 0
        && let Ok(v) = HeaderValue::from_str(&format!("public, max-age={cache_seconds}"))
    {
        h.insert(header::CACHE_CONTROL, v);
    }
    res
}

fn cache_key(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default()
}

/// Shared caches may keep an anonymous read as long as this process does.
fn cache_seconds(st: &CatalogState) -> u64 {
    st.cache.ttl().as_secs()
}

// ---- reads ----------------------------------------------------------------------------------

/// List products, with filters, a sort and cursor pagination.
///
/// The public sees published products only; the back office sees every state.
#[utoipa::path(
    get,
    path = "/api/catalog/products",
    tag = "catalog",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of products", body = ProductPage),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The token or key is wrong", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Unpublished products asked for without `catalog:write`", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []), ("api_key" = []))
)]
async fn list_products(
    State(st): State<CatalogState>,
    caller: Caller,
    uri: Uri,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let anonymous = !caller.has(perm::CATALOG_WRITE);
    let key = cache_key(&uri);
    if anonymous && let Some(hit) = st.cache.get(&key) {
        return Ok(json_bytes(hit, cache_seconds(&st)));
    }
    let generation = st.cache.generation();
    let spec = app::list_spec(&st.db, &q, caller.has(perm::CATALOG_WRITE)).await?;
    let page = store::list_products(&st.db, &spec).await?;
    let body = Bytes::from(serde_json::to_vec(&page).map_err(ApiError::internal)?);
    if anonymous {
        st.cache.put(key, generation, body.clone());
        return Ok(json_bytes(body, cache_seconds(&st)));
    }
    Ok(json_bytes(body, 0))
}

/// Get a product by id or by slug.
#[utoipa::path(
    get,
    path = "/api/catalog/products/{key}",
    tag = "catalog",
    params(("key" = String, Path, description = "Product id or slug")),
    responses(
        (status = 200, description = "The product", body = Product,
         headers(("etag" = String, description = "Version, for If-Match (back office)"))),
        (status = 404, description = "No such product (or not published)", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []), ("api_key" = []))
)]
async fn get_product(
    State(st): State<CatalogState>,
    caller: Caller,
    uri: Uri,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let anonymous = !caller.has(perm::CATALOG_WRITE);
    let ckey = cache_key(&uri);
    if anonymous && let Some(hit) = st.cache.get(&ckey) {
        return Ok(json_bytes(hit, cache_seconds(&st)));
    }
    let generation = st.cache.generation();
    if key.len() > 200 {
        return Err(ApiError::not_found("product"));
    }
    let pk = match Uuid::parse_str(&key) {
        Ok(id) => ProductKey::Id(id),
        Err(_) => ProductKey::Slug(&key),
    };
    let mut conn = st.db.acquire().await?;
    let product = store::load_product(conn.conn(), pk)
        .await?
        .filter(|p| !anonymous || p.status == crate::domain::Status::Published)
        .ok_or_else(|| ApiError::not_found("product"))?;
    drop(conn);
    let body = Bytes::from(serde_json::to_vec(&product).map_err(ApiError::internal)?);
    if anonymous {
        st.cache.put(ckey, generation, body.clone());
        return Ok(json_bytes(body, cache_seconds(&st)));
    }
    let mut res = json_bytes(body, 0);
    res.headers_mut()
        .insert(header::ETAG, etag(product.version));
    Ok(res)
}

/// A stored product picture (the demo's SVGs).
#[utoipa::path(
    get,
    path = "/api/catalog/images/{id}",
    tag = "catalog",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The picture", content_type = "image/svg+xml"),
        (status = 404, description = "No such picture", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_image(
    State(st): State<CatalogState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("image"))?;
    let (ct, data) = store::image_data(&st.db, id, caller.has(perm::CATALOG_WRITE))
        .await?
        .ok_or_else(|| ApiError::not_found("image"))?;
    let ct = match ct.as_str() {
        "image/svg+xml" | "image/png" | "image/jpeg" | "image/webp" => ct,
        _ => "application/octet-stream".to_string(),
    };
    let mut res = data.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ct) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // an SVG is a document: no script may run in it, even when opened directly
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400, immutable"),
    );
    h.insert(
        axum::http::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    Ok(res)
}

/// The category tree.
#[utoipa::path(
    get,
    path = "/api/catalog/categories",
    tag = "catalog",
    responses((status = 200, description = "Root categories with their children", body = Vec<CategoryNode>))
)]
async fn list_categories(State(st): State<CatalogState>) -> Result<Response, ApiError> {
    let tree = app::category_tree(store::list_categories(&st.db).await?);
    Ok(json_bytes(
        Bytes::from(serde_json::to_vec(&tree).map_err(ApiError::internal)?),
        0,
    ))
}

/// All brands.
#[utoipa::path(
    get,
    path = "/api/catalog/brands",
    tag = "catalog",
    responses((status = 200, description = "Brands by name", body = Vec<Brand>))
)]
async fn list_brands(State(st): State<CatalogState>) -> Result<Response, ApiError> {
    let brands = store::list_brands(&st.db).await?;
    Ok(json_bytes(
        Bytes::from(serde_json::to_vec(&brands).map_err(ApiError::internal)?),
        0,
    ))
}

// ---- writes ---------------------------------------------------------------------------------

/// Create a product with its variants.
///
/// Send an `Idempotency-Key` so that a retry never creates two products.
#[utoipa::path(
    post,
    path = "/api/catalog/products",
    tag = "catalog",
    request_body = NewProduct,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed")),
    responses(
        (status = 201, description = "Created", body = Product, headers(("location" = String))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in, or a wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Slug, SKU or barcode taken; or the same key is in flight", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or a key reused for another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn create_product(
    State(st): State<CatalogState>,
    caller: Caller,
    headers: HeaderMap,
    body: HashedJson<NewProduct>,
) -> Response {
    let claim = match pre_write(&st, &caller, &headers, &body.request_hash).await {
        Ok(Pre::Go(c)) => c,
        Ok(Pre::Done(r)) => return r,
        Err(e) => return e.into_response(),
    };
    let (mut tx, claim) = match begin_tx(&st, claim).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = app::create_product(&mut tx, &body.value, st.clock.now())
        .await
        .map_err(ApiError::from);
    let result = announce(&mut tx, result, st.clock.now().timestamp_millis()).await;
    let location = result
        .as_ref()
        .ok()
        .map(|p| format!("/api/catalog/products/{}", p.id));
    finish(&st, tx, claim, result, StatusCode::CREATED, location).await
}

/// Change a product's fields.
#[utoipa::path(
    patch,
    path = "/api/catalog/products/{key}",
    tag = "catalog",
    request_body = ProductPatch,
    params(
        ("key" = Uuid, Path, description = "The product's id (slugs are for reading only)"),
        ("If-Match" = Option<String>, Header, description = "The ETag read before: refuses the change if someone else changed the product since"),
        ("Idempotency-Key" = Option<String>, Header),
    ),
    responses(
        (status = 200, description = "Changed", body = Product),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflict", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn update_product(
    State(st): State<CatalogState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: HashedJson<ProductPatch>,
) -> Response {
    let (id, im) = match (product_id(&id), if_match(&headers)) {
        (Ok(id), Ok(im)) => (id, im),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let claim = match pre_write(&st, &caller, &headers, &body.request_hash).await {
        Ok(Pre::Go(c)) => c,
        Ok(Pre::Done(r)) => return r,
        Err(e) => return e.into_response(),
    };
    let (mut tx, claim) = match begin_tx(&st, claim).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = app::update_product(&mut tx, id, &body.value, im, st.clock.now())
        .await
        .map_err(ApiError::from);
    let result = announce(&mut tx, result, st.clock.now().timestamp_millis()).await;
    finish(&st, tx, claim, result, StatusCode::OK, None).await
}

/// Archive a product: withdrawn from sale, kept for history.
#[utoipa::path(
    post,
    path = "/api/catalog/products/{id}/archive",
    tag = "catalog",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "Archived", body = Product),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn archive_product(
    State(st): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (id, im) = match (product_id(&id), if_match(&headers)) {
        (Ok(id), Ok(im)) => (id, im),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    // archiving is idempotent by nature; no key needed
    let (mut tx, claim) = match begin_tx(&st, None).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = app::archive_product(&mut tx, id, im, st.clock.now())
        .await
        .map_err(ApiError::from);
    let result = announce(&mut tx, result, st.clock.now().timestamp_millis()).await;
    finish(&st, tx, claim, result, StatusCode::OK, None).await
}

/// Add a variant to a product.
#[utoipa::path(
    post,
    path = "/api/catalog/products/{id}/variants",
    tag = "catalog",
    request_body = NewVariant,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "Added; the whole product is returned", body = Product),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "SKU or barcode taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn add_variant(
    State(st): State<CatalogState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: HashedJson<NewVariant>,
) -> Response {
    let id = match product_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let claim = match pre_write(&st, &caller, &headers, &body.request_hash).await {
        Ok(Pre::Go(c)) => c,
        Ok(Pre::Done(r)) => return r,
        Err(e) => return e.into_response(),
    };
    let (mut tx, claim) = match begin_tx(&st, claim).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = app::add_variant(&mut tx, id, &body.value, st.clock.now())
        .await
        .map_err(ApiError::from);
    let result = announce(&mut tx, result, st.clock.now().timestamp_millis()).await;
    finish(&st, tx, claim, result, StatusCode::CREATED, None).await
}

/// Change a variant: price, VAT, barcode, size, colour, active.
#[utoipa::path(
    patch,
    path = "/api/catalog/products/{id}/variants/{variant_id}",
    tag = "catalog",
    request_body = VariantPatch,
    params(("id" = Uuid, Path), ("variant_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, description = "Changed; the whole product is returned", body = Product),
        (status = 404, description = "No such product or variant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn update_variant(
    State(st): State<CatalogState>,
    caller: Caller,
    Path((id, variant_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: HashedJson<VariantPatch>,
) -> Response {
    let (id, vid) = match (product_id(&id), Uuid::parse_str(&variant_id)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) => return e.into_response(),
        (_, Err(_)) => return ApiError::not_found("variant").into_response(),
    };
    let claim = match pre_write(&st, &caller, &headers, &body.request_hash).await {
        Ok(Pre::Go(c)) => c,
        Ok(Pre::Done(r)) => return r,
        Err(e) => return e.into_response(),
    };
    let (mut tx, claim) = match begin_tx(&st, claim).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = app::update_variant(&mut tx, id, vid, &body.value, st.clock.now())
        .await
        .map_err(ApiError::from);
    let result = announce(&mut tx, result, st.clock.now().timestamp_millis()).await;
    finish(&st, tx, claim, result, StatusCode::OK, None).await
}

/// Create a category (under a parent or at the root).
#[utoipa::path(
    post,
    path = "/api/catalog/categories",
    tag = "catalog",
    request_body = NewCategory,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "Created", body = Category),
        (status = 409, description = "Slug taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn create_category(
    State(st): State<CatalogState>,
    caller: Caller,
    headers: HeaderMap,
    body: HashedJson<NewCategory>,
) -> Response {
    let claim = match pre_write(&st, &caller, &headers, &body.request_hash).await {
        Ok(Pre::Go(c)) => c,
        Ok(Pre::Done(r)) => return r,
        Err(e) => return e.into_response(),
    };
    let (mut tx, claim) = match begin_tx(&st, claim).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = app::create_category(&mut tx, &body.value, st.clock.now())
        .await
        .map_err(ApiError::from);
    finish(&st, tx, claim, result, StatusCode::CREATED, None).await
}

/// Create a brand.
#[utoipa::path(
    post,
    path = "/api/catalog/brands",
    tag = "catalog",
    request_body = NewBrand,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "Created", body = Brand),
        (status = 409, description = "Slug taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn create_brand(
    State(st): State<CatalogState>,
    caller: Caller,
    headers: HeaderMap,
    body: HashedJson<NewBrand>,
) -> Response {
    let claim = match pre_write(&st, &caller, &headers, &body.request_hash).await {
        Ok(Pre::Go(c)) => c,
        Ok(Pre::Done(r)) => return r,
        Err(e) => return e.into_response(),
    };
    let (mut tx, claim) = match begin_tx(&st, claim).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = app::create_brand(&mut tx, &body.value, st.clock.now())
        .await
        .map_err(ApiError::from);
    finish(&st, tx, claim, result, StatusCode::CREATED, None).await
}
