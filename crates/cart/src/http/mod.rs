//! Routes of `/api/carts`, their OpenAPI description and the idempotent write flow.
//!
//! Every route is `Access::Public`, except the merge (signed-in customers): a guest cart is
//! reachable by whoever holds its id (a random UUIDv4), an owned cart by its owner only. The
//! ownership check is in the service, inside the compare-and-set loop; a cart that is not the
//! caller's is answered 404, like one that does not exist.
//!
//! `Idempotency-Key` is honoured on every unsafe route, with the semantics of
//! [`platform::idempotency`]. The key lives in the cart store ([`crate::keyed`]), and a change
//! stores its answer in the same write as the cart: one transaction on SQL, one Lua script on
//! Redis. A retry after a crash gets the first answer, never a second effect.
//!
//! - `wire`: what the API sends and receives
//! - `problem`: the one mapping of [`CartError`] and [`StoreError`] to problem documents

mod problem;
pub mod wire;

use self::wire::{AddLine, CartView, NewCart, SetQuantity, quantity_in};
use crate::app::{CartError, CartResult, Carts};
use crate::domain::{Cart, PriceChange};
use crate::keyed::{Answer, Begin, Claim, Keyed};
use crate::store::StoreError;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use kernel::CartId;
use platform::authz::{Access, PrincipalKind, Role, RoutePolicy};
use platform::caller::Caller;
use platform::db::Db;
use platform::http::extract::{Fingerprint, HashedJson, OptionalHashedJson};
use platform::{ApiError, Problem};
use std::sync::Arc;

/// What the cart handlers share.
#[derive(Clone)]
pub struct CartState {
    pub carts: Arc<Carts>,
}

impl CartState {
    /// `_db`, the service database, is not used: the keys of cart writes are kept by the cart
    /// store (on SQL, in that same database). The parameter stays until the wiring drops it.
    pub fn new(carts: Arc<Carts>, _db: Db) -> Self {
        CartState { carts }
    }
}

/// Who may call what. Every route of [`router`] is here: the tests check it.
pub fn policy() -> RoutePolicy {
    RoutePolicy::new()
        .route(Method::POST, "/api/carts", Access::Public)
        .route(Method::GET, "/api/carts/{id}", Access::Public)
        .route(Method::POST, "/api/carts/{id}/lines", Access::Public)
        .route(Method::PATCH, "/api/carts/{id}/lines/{sku}", Access::Public)
        .route(
            Method::DELETE,
            "/api/carts/{id}/lines/{sku}",
            Access::Public,
        )
        .route(Method::POST, "/api/carts/{id}/merge", Access::Authenticated)
}

/// The cart routes (paths include `/api/carts`).
pub fn router(state: CartState) -> Router {
    let policy = Arc::new(policy());
    Router::new()
        .route("/api/carts", post(create_cart))
        .route("/api/carts/{id}", get(get_cart))
        .route("/api/carts/{id}/lines", post(add_line))
        .route(
            "/api/carts/{id}/lines/{sku}",
            patch(set_quantity).delete(remove_line),
        )
        .route("/api/carts/{id}/merge", post(merge_cart))
        .route_layer(axum::middleware::from_fn(move |req, next| {
            platform::authz::enforce(policy.clone(), req, next)
        }))
        .with_state(state)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_cart, get_cart, add_line, set_quantity, remove_line, merge_cart),
    components(schemas(Problem, platform::FieldError, CartView, PriceChange)),
    tags((name = "cart", description = "Guest and customer shopping carts"))
)]
pub struct CartApi;

// ---- who is asking ---------------------------------------------------------------------------

/// The person asking (their subject), `None` when anonymous or an API key: what ownership is
/// compared with.
fn viewer(caller: &Caller) -> Option<&str> {
    caller
        .principal()
        .filter(|p| p.kind != PrincipalKind::ApiKey)
        .map(|p| p.subject.as_str())
}

/// A signed-in customer's subject: their carts are theirs.
fn customer(caller: &Caller) -> Option<&str> {
    caller
        .principal()
        .filter(|p| p.kind != PrincipalKind::ApiKey && p.role == Role::Customer)
        .map(|p| p.subject.as_str())
}

fn cart_id(s: &str) -> Result<CartId, ApiError> {
    s.parse().map_err(|_| ApiError::not_found("cart"))
}

fn view(cart: &Cart) -> Result<CartView, ApiError> {
    CartView::of(cart).ok_or_else(|| ApiError::internal(format!("cart {} overflows", cart.id)))
}

fn location(id: CartId) -> String {
    format!("/api/carts/{id}")
}

// ---- the write flow ----------------------------------------------------------------------------

/// How a write answers from the cart it leaves (`true`: it created that cart).
type Answering = dyn Fn(&Cart, bool) -> Result<Answer, CartError> + Send + Sync;

/// The answer `status` with the cart's view (and its `Location` when `located`).
fn answer(status: StatusCode, cart: &Cart, located: bool) -> Result<Answer, CartError> {
    let overflow = || StoreError::Corrupt(format!("cart {} overflows", cart.id));
    let view = CartView::of(cart).ok_or_else(overflow)?;
    let body = serde_json::to_string(&view).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Answer {
        status,
        body,
        location: located.then(|| location(cart.id)),
    })
}

/// The answer of a write that changes a cart in place.
fn ok(cart: &Cart, _created: bool) -> Result<Answer, CartError> {
    answer(StatusCode::OK, cart, false)
}

/// Claims the request's `Idempotency-Key`, if it has one. `Err` is the answer to give instead:
/// the stored answer of a retry, or why the key cannot be used now.
async fn claim(
    st: &CartState,
    caller: &Caller,
    headers: &HeaderMap,
    request_hash: &str,
) -> Result<Option<Claim>, Response> {
    let key = platform::idempotency::key_from_headers(headers).map_err(|e| e.into_response())?;
    let Some(key) = key else { return Ok(None) };
    match st
        .carts
        .store()
        .begin(&caller.scope(), &key, request_hash)
        .await
    {
        Ok(Begin::Proceed(c)) => Ok(Some(c)),
        Ok(Begin::Replay(r)) => Err(r),
        Err(e) => Err(e.into_response()),
    }
}

/// Runs a write under the request's `Idempotency-Key` (if any): a retry gets the first answer
/// back, a concurrent duplicate 409, another request with the same key 422. `run` gets the key
/// to store its answer with its change; on an error the key is released, so a retry runs again.
async fn keyed<F>(
    st: &CartState,
    caller: &Caller,
    headers: &HeaderMap,
    request_hash: &str,
    answering: &Answering,
    run: F,
) -> Response
where
    F: AsyncFnOnce(Option<&Keyed<'_>>) -> CartResult<(Cart, bool)>,
{
    let claim = match claim(st, caller, headers, request_hash).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let keyed = claim.as_ref().map(|claim| Keyed {
        claim,
        answer: answering,
    });
    let done = run(keyed.as_ref())
        .await
        .and_then(|(cart, created)| answering(&cart, created));
    match done {
        Ok(a) => {
            // the crash tests abort here: the change and its answer are stored, the answer unsent
            platform::fail::point("cart.after_change");
            a.response()
        }
        Err(e) => {
            if let Some(c) = claim {
                st.carts.store().release(c).await;
            }
            ApiError::from(e).into_response()
        }
    }
}

// ---- routes ------------------------------------------------------------------------------------

/// Create a cart.
///
/// A signed-in customer's cart is theirs (one per customer: if they already have one, it is
/// returned with 200). Anyone else gets a guest cart, reachable by its id. The body is optional.
#[utoipa::path(
    post,
    path = "/api/carts",
    tag = "cart",
    request_body(content = Option<NewCart>, description = "Optional: the cart's currency"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed")),
    responses(
        (status = 201, description = "Created", body = CartView, headers(("location" = String))),
        (status = 200, description = "The signed-in customer's existing cart", body = CartView, headers(("location" = String))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown field or currency", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []), ("session_cookie" = []))
)]
async fn create_cart(
    State(st): State<CartState>,
    caller: Caller,
    headers: HeaderMap,
    body: OptionalHashedJson<NewCart>,
) -> Response {
    let owner = customer(&caller);
    let currency = body.value.currency.as_deref();
    let created = |cart: &Cart, created: bool| {
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        answer(status, cart, true)
    };
    keyed(
        &st,
        &caller,
        &headers,
        &body.request_hash,
        &created,
        async |k| st.carts.create(owner, currency, k).await,
    )
    .await
}

/// Get a cart.
#[utoipa::path(
    get,
    path = "/api/carts/{id}",
    tag = "cart",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "No such cart, expired, or someone else's", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []), ("session_cookie" = []))
)]
async fn get_cart(
    State(st): State<CartState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = cart_id(&id)?;
    let cart = st.carts.get(id, viewer(&caller)).await?;
    Ok(axum::Json(view(&cart)?).into_response())
}

/// Add a SKU to a cart.
///
/// The price is the catalogue's, taken now (never sent by the client). Adding a SKU that is in
/// the cart adds to its line and refreshes its price.
#[utoipa::path(
    post,
    path = "/api/carts/{id}/lines",
    tag = "cart",
    request_body = AddLine,
    params(("id" = uuid::Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "No such cart", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too many concurrent changes, or the same key in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_quantity` (1 to 99 per line), `unknown_sku`, `unavailable`, `currency_mismatch`, `too_many_lines` (50), `invalid_body`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The catalogue does not answer", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []), ("session_cookie" = []))
)]
async fn add_line(
    State(st): State<CartState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: HashedJson<AddLine>,
) -> Response {
    let id = match cart_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let who = viewer(&caller);
    let AddLine { sku, quantity } = &body.value;
    keyed(&st, &caller, &headers, &body.request_hash, &ok, async |k| {
        let q = quantity_in(quantity, 1).ok_or(CartError::InvalidQuantity { min: 1 })?;
        let cart = st.carts.add_line(id, who, sku, q, k).await?;
        Ok((cart, false))
    })
    .await
}

/// Set the quantity of a line (0 removes it).
#[utoipa::path(
    patch,
    path = "/api/carts/{id}/lines/{sku}",
    tag = "cart",
    request_body = SetQuantity,
    params(("id" = uuid::Uuid, Path), ("sku" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "No such cart, or the SKU is not in it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_quantity` (0 to 99), `invalid_body`", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []), ("session_cookie" = []))
)]
async fn set_quantity(
    State(st): State<CartState>,
    caller: Caller,
    Path((id, sku)): Path<(String, String)>,
    headers: HeaderMap,
    body: HashedJson<SetQuantity>,
) -> Response {
    let id = match cart_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let who = viewer(&caller);
    let quantity = &body.value.quantity;
    keyed(&st, &caller, &headers, &body.request_hash, &ok, async |k| {
        let q = quantity_in(quantity, 0).ok_or(CartError::InvalidQuantity { min: 0 })?;
        let cart = st.carts.set_quantity(id, who, &sku, q, k).await?;
        Ok((cart, false))
    })
    .await
}

/// Remove a line.
#[utoipa::path(
    delete,
    path = "/api/carts/{id}/lines/{sku}",
    tag = "cart",
    params(("id" = uuid::Uuid, Path), ("sku" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "No such cart, or the SKU is not in it", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []), ("session_cookie" = []))
)]
async fn remove_line(
    State(st): State<CartState>,
    caller: Caller,
    Path((id, sku)): Path<(String, String)>,
    Fingerprint(hash): Fingerprint,
    headers: HeaderMap,
) -> Response {
    let id = match cart_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let who = viewer(&caller);
    keyed(&st, &caller, &headers, &hash, &ok, async |k| {
        let cart = st.carts.remove_line(id, who, &sku, k).await?;
        Ok((cart, false))
    })
    .await
}

/// Merge a guest cart into the signed-in customer's cart (at sign-in).
///
/// The guest cart's lines join the customer's cart (quantities of the same SKU summed, at most
/// 99) and the guest cart is deleted. A customer without a cart gets the guest cart itself.
#[utoipa::path(
    post,
    path = "/api/carts/{id}/merge",
    tag = "cart",
    params(("id" = uuid::Uuid, Path, description = "The guest cart"), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, description = "The customer's cart", body = CartView, headers(("location" = String))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a customer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such guest cart", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`currency_mismatch`, `too_many_lines`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn merge_cart(
    State(st): State<CartState>,
    caller: Caller,
    Path(id): Path<String>,
    Fingerprint(hash): Fingerprint,
    headers: HeaderMap,
) -> Response {
    let Some(who) = customer(&caller).map(str::to_string) else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a signed-in customer has a cart to merge into",
        )
        .into_response();
    };
    let id = match cart_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let merged = |cart: &Cart, _created: bool| answer(StatusCode::OK, cart, true);
    keyed(&st, &caller, &headers, &hash, &merged, async |k| {
        let cart = st.carts.merge(id, &who, k).await?;
        Ok((cart, false))
    })
    .await
}
