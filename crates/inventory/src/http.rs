//! Routes of `/api/inventory`. Staff see and change only the locations they may act for
//! (head office: all; a store's staff: their store; warehouse staff: the logistics centre);
//! another location answers 404, as if it did not exist for them.

mod schemas;

use crate::app::{InvError, Inventory, LowCrossings};
use crate::domain::{Location, Mismatch, Movement, MovementKind, Shortage, StockLevel};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use platform::authz::{Access, RoutePolicy, perm};
use platform::caller::Caller;
use platform::http::extract::{ApiJson, ApiQuery, HashedJson};
use platform::idempotency::{self, Idempotency};
use platform::{ApiError, ApiResult, Problem};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone)]
pub struct InventoryState {
    pub inventory: Inventory,
    pub idempotency: Idempotency,
}

impl From<InvError> for ApiError {
    fn from(e: InvError) -> Self {
        match e {
            InvError::UnknownLocation(_) => ApiError::not_found("location"),
            InvError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_stock_change", m)
            }
            InvError::OutOfStock(s) => {
                let mut e = ApiError::conflict("out_of_stock", "not enough stock for this change");
                e.errors = shortage_errors(&s);
                e
            }
            InvError::HoldLost(_) => {
                ApiError::conflict("hold_lost", "the hold is no longer active")
            }
            InvError::InvalidSku { field, error } => {
                ApiError::validation(vec![platform::FieldError::new(
                    field,
                    error.code(),
                    error.message(),
                )])
            }
            InvError::UnknownSku { field, sku } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_sku",
                format!("the catalogue has no SKU `{sku}`"),
            )
            .with_field(platform::FieldError::new(
                field,
                "unknown_sku",
                "not a SKU of the catalogue",
            )),
            InvError::CatalogUnavailable(m) => {
                tracing::warn!(error = %m, "catalogue lookup failed");
                let mut e = ApiError::unavailable("the catalogue cannot be asked; retry later");
                e.retry_after = Some(2);
                e
            }
            InvError::Db(e) => ApiError::from(e),
        }
    }
}

/// One field error per short SKU: `field` is the SKU, the message says what is left.
pub use contracts::inventory::shortage_errors;

pub fn policy() -> RoutePolicy {
    use axum::http::Method;
    let read = Access::Permission(perm::INVENTORY_READ);
    let write = Access::Permission(perm::INVENTORY_WRITE);
    RoutePolicy::new()
        .route(Method::GET, "/api/inventory/locations", Access::Public)
        .route(Method::PUT, "/api/inventory/locations/{code}", write)
        .route(Method::GET, "/api/inventory/availability", Access::Public)
        .route(Method::GET, "/api/inventory/stock", read)
        .route(
            Method::PUT,
            "/api/inventory/stock/{location}/{sku}/threshold",
            write,
        )
        .route(Method::POST, "/api/inventory/movements", write)
        .route(Method::GET, "/api/inventory/movements", read)
        .route(Method::POST, "/api/inventory/transfers", write)
        .route(Method::GET, "/api/inventory/check", read)
}

pub fn router(state: InventoryState) -> Router {
    let policy = Arc::new(policy());
    Router::new()
        .route("/api/inventory/locations", get(list_locations))
        .route("/api/inventory/locations/{code}", put(put_location))
        .route("/api/inventory/availability", get(availability))
        .route("/api/inventory/stock", get(list_stock))
        .route(
            "/api/inventory/stock/{location}/{sku}/threshold",
            put(put_threshold),
        )
        .route(
            "/api/inventory/movements",
            post(record_movement).get(list_movements),
        )
        .route("/api/inventory/transfers", post(transfer))
        .route("/api/inventory/check", get(check))
        .route_layer(axum::middleware::from_fn(move |req, next| {
            platform::authz::enforce(policy.clone(), req, next)
        }))
        .with_state(state)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_locations, put_location, availability, list_stock, put_threshold, record_movement,
        list_movements, transfer, check),
    components(schemas(Problem, Location, StockLevel, Movement, Mismatch, Shortage, MovementKind)),
    tags((name = "inventory", description = "Locations, stock levels, movements, transfers"))
)]
pub struct InventoryApi;

/// The location a staff member may act for, or 404.
fn may_act(caller: &Caller, location: &str) -> ApiResult<()> {
    let p = caller.require()?;
    if p.may_act_for_store(location) {
        Ok(())
    } else {
        Err(ApiError::not_found("location"))
    }
}

/// Listing scope: head office may list everything; others their own location only.
fn scope_location(caller: &Caller, asked: Option<String>) -> ApiResult<Option<String>> {
    let p = caller.require()?;
    if p.is_head_office() {
        return Ok(asked);
    }
    let own = p
        .store
        .clone()
        .ok_or_else(|| ApiError::not_found("location"))?;
    match asked {
        Some(a) if a != own => Err(ApiError::not_found("location")),
        _ => Ok(Some(own)),
    }
}

/// Every location (stores for click & collect, the logistics centre).
#[utoipa::path(get, path = "/api/inventory/locations", tag = "inventory",
    responses((status = 200, body = [Location])))]
async fn list_locations(State(st): State<InventoryState>) -> ApiResult<axum::Json<Vec<Location>>> {
    Ok(axum::Json(st.inventory.locations().await?))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    pub name: String,
    /// `head_office`, `store` or `warehouse`.
    pub kind: String,
    #[serde(default)]
    pub ships: bool,
    #[serde(default)]
    pub click_and_collect: bool,
}

/// Create or update a location (head office only).
#[utoipa::path(put, path = "/api/inventory/locations/{code}", tag = "inventory",
    params(("code" = String, Path, description = "the location code, e.g. `rennes`")),
    request_body = LocationBody, security(("bearer" = [])),
    responses((status = 200, body = Location), (status = 403, body = Problem)))]
async fn put_location(
    State(st): State<InventoryState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<LocationBody>,
) -> ApiResult<axum::Json<Location>> {
    if !caller.require()?.is_head_office() {
        return Err(platform::authz::forbidden("head office"));
    }
    if b.name.trim().is_empty() || b.name.len() > 100 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_location",
            "a name has 1 to 100 characters",
        ));
    }
    let l = Location {
        code,
        name: b.name.trim().to_string(),
        kind: b.kind,
        ships: b.ships,
        click_and_collect: b.click_and_collect,
    };
    st.inventory.upsert_location(&l).await?;
    Ok(axum::Json(l))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    /// Comma-separated SKUs (up to 100).
    pub skus: String,
}

/// Units available per location for some SKUs (public: what the storefront shows).
#[utoipa::path(get, path = "/api/inventory/availability", tag = "inventory",
    params(AvailabilityQuery), responses((status = 200, body = [Availability])))]
async fn availability(
    State(st): State<InventoryState>,
    ApiQuery(q): ApiQuery<AvailabilityQuery>,
) -> ApiResult<axum::Json<Vec<Availability>>> {
    let skus: Vec<String> = q
        .skus
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(100)
        .map(String::from)
        .collect();
    let levels = st.inventory.availability(&skus).await?;
    Ok(axum::Json(
        levels
            .into_iter()
            .map(|l| Availability {
                location: l.location,
                sku: l.sku,
                available: l.available.max(0),
            })
            .collect(),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Availability {
    pub location: String,
    pub sku: String,
    pub available: i64,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StockQuery {
    pub location: Option<String>,
    pub sku: Option<String>,
    /// Only SKUs at or under their low-stock threshold.
    #[serde(default)]
    pub low: bool,
    pub limit: Option<i64>,
}

/// Stock levels of the locations the caller may see.
#[utoipa::path(get, path = "/api/inventory/stock", tag = "inventory", params(StockQuery),
    security(("bearer" = []), ("api_key" = [])), responses((status = 200, body = [StockLevel]),
        (status = 404, description = "no such location, or not one the caller may act for", body = Problem)))]
async fn list_stock(
    State(st): State<InventoryState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StockQuery>,
) -> ApiResult<axum::Json<Vec<StockLevel>>> {
    let loc = scope_location(&caller, q.location)?;
    Ok(axum::Json(
        st.inventory
            .levels(
                loc.as_deref(),
                q.sku.as_deref(),
                q.low,
                q.limit.unwrap_or(100),
            )
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdBody {
    pub threshold: i64,
}

/// Set the low-stock threshold of a SKU at a location (`stock.low` fires when available
/// stock falls to it).
#[utoipa::path(put, path = "/api/inventory/stock/{location}/{sku}/threshold", tag = "inventory",
    params(("location" = String, Path, description = "the location code"),
        ("sku" = String, Path, description = "the SKU")),
    request_body = ThresholdBody, security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem)))]
async fn put_threshold(
    State(st): State<InventoryState>,
    caller: Caller,
    Path((location, sku)): Path<(String, String)>,
    ApiJson(b): ApiJson<ThresholdBody>,
) -> ApiResult<StatusCode> {
    may_act(&caller, &location)?;
    st.inventory
        .set_threshold(&location, &sku, b.threshold)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MovementBody {
    pub location: String,
    pub sku: String,
    /// `receipt` (positive quantity) or `adjustment` (either sign).
    pub kind: MovementKind,
    pub quantity: i64,
    /// Why (shown in the movement history).
    pub reason: String,
}

/// Record a receipt or an adjustment. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/inventory/movements", tag = "inventory",
    request_body = MovementBody, security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "retry safely")),
    responses((status = 201, body = StockLevel), (status = 404, description = "no such location, or not one the caller may act for", body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn record_movement(
    State(st): State<InventoryState>,
    caller: Caller,
    headers: HeaderMap,
    body: HashedJson<MovementBody>,
) -> Response {
    let b = body.value;
    if let Err(e) = may_act(&caller, &b.location) {
        return e.into_response();
    }
    if let Err(e) = st.inventory.ensure_sku("sku", &b.sku).await {
        return ApiError::from(e).into_response();
    }
    let reason = b.reason.trim().to_string();
    if reason.is_empty() || reason.len() > 200 {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_reason",
            "a reason has 1 to 200 characters",
        )
        .into_response();
    }
    let actor = caller
        .principal()
        .map(|p| p.subject.clone())
        .unwrap_or_default();
    let inv = st.inventory.clone();
    let lows = LowCrossings::default();
    let noted = lows.clone();
    let res = idempotency::write(
        &st.idempotency,
        &st.inventory.db,
        &caller.scope(),
        &headers,
        &body.request_hash,
        StatusCode::CREATED,
        None,
        move |tx| {
            Box::pin(async move {
                Ok(inv
                    .record_in(
                        tx,
                        &b.location,
                        &b.sku,
                        b.kind,
                        b.quantity,
                        &reason,
                        &actor,
                        &noted,
                    )
                    .await?)
            })
        },
    )
    .await;
    // a success is a commit (a replay ran nothing and noted nothing)
    if res.status().is_success() {
        lows.committed();
    }
    st.inventory.wake();
    res
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovementQuery {
    pub location: Option<String>,
    pub sku: Option<String>,
    pub limit: Option<i64>,
}

/// The movement ledger, newest first.
#[utoipa::path(get, path = "/api/inventory/movements", tag = "inventory", params(MovementQuery),
    security(("bearer" = []), ("api_key" = [])), responses((status = 200, body = [Movement]),
        (status = 404, description = "no such location, or not one the caller may act for", body = Problem)))]
async fn list_movements(
    State(st): State<InventoryState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MovementQuery>,
) -> ApiResult<axum::Json<Vec<Movement>>> {
    let loc = scope_location(&caller, q.location)?;
    Ok(axum::Json(
        st.inventory
            .movements(loc.as_deref(), q.sku.as_deref(), q.limit.unwrap_or(100))
            .await?,
    ))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    pub from: String,
    pub to: String,
    pub sku: String,
    pub quantity: i64,
    pub reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TransferDone {
    pub from: String,
    pub to: String,
    pub sku: String,
    pub quantity: i64,
}

/// Move units from a location the caller may act for to another. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/inventory/transfers", tag = "inventory",
    request_body = TransferBody, security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "retry safely")),
    responses((status = 201, body = TransferDone), (status = 404, description = "no such location, or not one the caller may act for", body = Problem),
        (status = 409, body = Problem)))]
async fn transfer(
    State(st): State<InventoryState>,
    caller: Caller,
    headers: HeaderMap,
    body: HashedJson<TransferBody>,
) -> Response {
    let b = body.value;
    if let Err(e) = may_act(&caller, &b.from) {
        return e.into_response();
    }
    if let Err(e) = st.inventory.ensure_sku("sku", &b.sku).await {
        return ApiError::from(e).into_response();
    }
    let actor = caller
        .principal()
        .map(|p| p.subject.clone())
        .unwrap_or_default();
    let inv = st.inventory.clone();
    let lows = LowCrossings::default();
    let noted = lows.clone();
    let res = idempotency::write(
        &st.idempotency,
        &st.inventory.db,
        &caller.scope(),
        &headers,
        &body.request_hash,
        StatusCode::CREATED,
        None,
        move |tx| {
            Box::pin(async move {
                inv.transfer_in(
                    tx, &b.from, &b.to, &b.sku, b.quantity, &b.reason, &actor, &noted,
                )
                .await?;
                Ok(TransferDone {
                    from: b.from,
                    to: b.to,
                    sku: b.sku,
                    quantity: b.quantity,
                })
            })
        },
    )
    .await;
    if res.status().is_success() {
        lows.committed();
    }
    st.inventory.wake();
    res
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckReport {
    /// True when every counter equals its rebuild from the ledger and the active holds.
    pub consistent: bool,
    pub mismatches: Vec<Mismatch>,
    /// SKUs with stock that the catalogue does not know (recorded before SKUs were checked):
    /// reported, never deleted; fix them with adjustments or by creating the variant.
    pub unknown_skus: Vec<String>,
}

/// Rebuild every counter from the ledger and compare (head office).
#[utoipa::path(get, path = "/api/inventory/check", tag = "inventory",
    security(("bearer" = [])), responses((status = 200, body = CheckReport)))]
async fn check(
    State(st): State<InventoryState>,
    caller: Caller,
) -> ApiResult<axum::Json<CheckReport>> {
    if !caller.require()?.is_head_office() {
        return Err(platform::authz::forbidden("head office"));
    }
    let mismatches = st.inventory.check().await?;
    let unknown_skus = st.inventory.unknown_skus().await?;
    Ok(axum::Json(CheckReport {
        consistent: mismatches.is_empty(),
        mismatches,
        unknown_skus,
    }))
}
