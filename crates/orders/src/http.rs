//! `/api/checkout` and `/api/orders`.
//!
//! Checkout requires an `Idempotency-Key`: a client that retries (timeout, lost connection,
//! double click) gets the first attempt's answer, never a second order or a second charge.
//! Orders are visible to their customer and to staff of the location that serves them; anyone
//! else gets 404.

use crate::model::*;
use crate::saga::Start;
use crate::store::{self, HistoryEntry, OrderFilter};
use crate::{Orders, SERVICE};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use contracts::carts::{CartsError, PriceChange};
use contracts::inventory::StockError;
use contracts::payments::PayError;
use platform::auth::Caller;
use platform::authz::{Access, RoutePolicy, perm};
use platform::bus::{self, Event, topic};
use platform::http::extract::{ApiQuery, HashedJson};
use platform::idempotency::{self, Idempotency};
use platform::{ApiError, ApiResult, FieldError, Problem};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

#[derive(Clone)]
pub struct OrdersState {
    pub orders: Orders,
    pub idempotency: Idempotency,
}

pub fn policy() -> RoutePolicy {
    use axum::http::Method;
    let read = Access::Permission(perm::ORDERS_READ);
    let write = Access::Permission(perm::ORDERS_WRITE);
    RoutePolicy::new()
        .route(Method::POST, "/api/checkout", Access::Public)
        .route(Method::GET, "/api/orders", Access::Authenticated)
        .route(Method::GET, "/api/orders/{id}", Access::Authenticated)
        .route(Method::GET, "/api/orders/{id}/saga", read)
        .route(Method::GET, "/api/orders/sagas", read)
        .route(Method::POST, "/api/orders/{id}/cancel", write)
        .route(Method::POST, "/api/orders/{id}/fulfil", write)
        .route(Method::POST, "/api/orders/{id}/complete", write)
        .route(Method::POST, "/api/orders/{id}/refunds", write)
}

pub fn router(state: OrdersState) -> Router {
    let policy = Arc::new(policy());
    Router::new()
        .route("/api/checkout", post(checkout))
        .route("/api/orders", get(list_orders))
        .route("/api/orders/sagas", get(list_sagas))
        .route("/api/orders/{id}", get(get_order))
        .route("/api/orders/{id}/saga", get(get_saga))
        .route("/api/orders/{id}/cancel", post(cancel))
        .route("/api/orders/{id}/fulfil", post(fulfil))
        .route("/api/orders/{id}/complete", post(complete))
        .route("/api/orders/{id}/refunds", post(refund))
        .route_layer(axum::middleware::from_fn(move |req, next| {
            platform::authz::enforce(policy.clone(), req, next)
        }))
        .with_state(state)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(checkout, list_orders, get_order, get_saga, list_sagas, cancel, fulfil, complete, refund),
    components(schemas(Problem, Order, OrderLine, OrderStatus, Fulfilment, Address, SagaView,
        SagaStep, SagaState, HistoryEntry, OrderDetail, CheckoutBody, RefundBody, NoteBody,
        contracts::payments::PaymentMethod)),
    tags((name = "orders", description = "Checkout, orders, refunds, the checkout saga"))
)]
pub struct OrdersApi;

fn order_id(s: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| ApiError::not_found("order"))
}

/// The order if the caller may see it: its customer, or staff of its location. 404 otherwise.
async fn visible_order(st: &OrdersState, caller: &Caller, id: &str) -> ApiResult<Order> {
    let id = order_id(id)?;
    let p = caller.require()?;
    let o = store::get_order(&st.orders.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    let own = o.customer.as_deref().is_some_and(|c| p.is_subject(c));
    let staff = p.has(perm::ORDERS_READ) && p.may_act_for_store(&o.location);
    if own || staff {
        Ok(o)
    } else {
        Err(ApiError::not_found("order"))
    }
}

// ---- checkout ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    pub cart_id: Uuid,
    /// Where the confirmation goes.
    pub email: String,
    pub fulfilment: Fulfilment,
    pub payment: contracts::payments::PaymentMethod,
}

fn invalid(field: &str, code: &'static str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, code, message)])
}

/// A query parameter that parses but names nothing: 400 `invalid_query`, like one that does not
/// parse (`ApiQuery`).
fn bad_query(field: &str, code: &'static str, message: &str) -> ApiError {
    let mut e = invalid(field, code, message);
    e.status = StatusCode::BAD_REQUEST;
    e.code = "invalid_query";
    e.detail = format!("query parameter {field}: {message}");
    e
}

fn check_address(a: &Address) -> ApiResult<()> {
    let fields = [
        ("name", &a.name, 100),
        ("line1", &a.line1, 200),
        ("postcode", &a.postcode, 16),
        ("city", &a.city, 100),
    ];
    for (f, v, max) in fields {
        if v.trim().is_empty() || v.chars().count() > max {
            return Err(invalid(
                &format!("fulfilment.address.{f}"),
                "invalid_address",
                "required, and not too long",
            ));
        }
    }
    if a.country.len() != 2 || !a.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(
            "fulfilment.address.country",
            "invalid_country",
            "an ISO 3166-1 alpha-2 code such as FR",
        ));
    }
    Ok(())
}

/// Place an order from a cart: holds the stock, authorises the payment, confirms the order,
/// commits the stock and captures. `Idempotency-Key` is required.
#[utoipa::path(post, path = "/api/checkout", tag = "orders", request_body = CheckoutBody,
    params(("Idempotency-Key" = String, Header, description = "required: one per checkout attempt")),
    responses(
        (status = 201, description = "paid order", body = Order),
        (status = 402, description = "payment declined or failed; nothing taken", body = Problem),
        (status = 404, description = "no such cart, or not the caller's", body = Problem),
        (status = 409, description = "out of stock, price changed, or the same key still running", body = Problem),
        (status = 422, body = Problem),
        (status = 428, description = "Idempotency-Key missing", body = Problem),
        (status = 503, description = "not finished yet: retry with the same key", body = Problem)))]
async fn checkout(
    State(st): State<OrdersState>,
    caller: Caller,
    headers: HeaderMap,
    body: HashedJson<CheckoutBody>,
) -> Response {
    match checkout_inner(&st, &caller, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn checkout_inner(
    st: &OrdersState,
    caller: &Caller,
    headers: &HeaderMap,
    body: HashedJson<CheckoutBody>,
) -> ApiResult<Response> {
    let Some(key) = idempotency::key_from_headers(headers)? else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "idempotency_key_required",
            "a checkout needs an Idempotency-Key header (one per attempt, reused on retry)",
        ));
    };
    let b = body.value;
    // Keys are the caller's (an account, or every anonymous caller together): the same key
    // with another cart is another request, refused, never a second checkout.
    let scope = caller.scope();
    let o = &st.orders;
    if let Some(r) = retry_of(st, &scope, &key, &body.request_hash).await? {
        return Ok(r);
    }
    let viewer = caller.principal().map(|p| p.subject.clone());
    // I9: a cart another checkout holds is refused before anything is read or priced (the
    // unique index in `start_checkout` decides the races this read lets through).
    if let Some(holder) = store::checkout_holding_cart(&o.db, b.cart_id).await? {
        // the holder may be this very key, started since the lookup above: answer as a retry
        if let Some(r) = retry_of(st, &scope, &key, &body.request_hash).await? {
            return Ok(r);
        }
        return Err(cart_taken(&holder, viewer.as_deref()));
    }
    let email = b.email.trim().to_string();
    if email.len() < 3 || email.len() > 254 || !email.contains('@') {
        return Err(invalid("email", "invalid_email", "an e-mail address"));
    }
    let fresh = o
        .carts
        .for_checkout(b.cart_id, viewer.as_deref())
        .await
        .map_err(|e| match e {
            CartsError::NotFound => ApiError::not_found("cart"),
            CartsError::Unavailable { detail } => {
                tracing::warn!(error = %detail, "carts unavailable at checkout");
                ApiError::unavailable("the cart service is not answering; retry later")
            }
        })?;
    if fresh.lines.is_empty() && fresh.changes.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_cart",
            "the cart is empty",
        ));
    }
    let changes = &fresh.changes;
    if !changes.is_empty() {
        let mut e = ApiError::conflict(
            "price_changed",
            "prices or availability changed since the items were added; review the cart",
        );
        e.errors = changes
            .iter()
            .map(|c| {
                let msg = match c {
                    PriceChange::Changed { old, new, .. } => {
                        format!("price changed from {old} to {new}")
                    }
                    PriceChange::Unavailable { .. } => "no longer available".to_string(),
                };
                FieldError::new(c.sku(), "price_changed", msg)
            })
            .collect();
        return Err(e);
    }
    let location = match &b.fulfilment {
        Fulfilment::Delivery { address } => {
            check_address(address)?;
            o.settings.shipping_location.clone()
        }
        Fulfilment::Collect { store } => {
            let l = o.inventory.location(store).await.map_err(stock_problem)?;
            match l {
                Some(l) if l.click_and_collect => l.code,
                _ => {
                    return Err(invalid(
                        "fulfilment.store",
                        "unknown_store",
                        "not a click & collect store",
                    ));
                }
            }
        }
    };
    let mut lines = Vec::new();
    let mut subtotal: i64 = 0;
    for l in &fresh.lines {
        let line_total = l
            .unit_price
            .checked_mul(l.quantity)
            .ok_or_else(|| invalid("cart", "amount_too_large", "amount too large"))?;
        subtotal = subtotal
            .checked_add(line_total)
            .ok_or_else(|| invalid("cart", "amount_too_large", "amount too large"))?;
        lines.push(OrderLine {
            sku: l.sku.clone(),
            name: l.name.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price,
            line_total,
        });
    }
    let shipping = match b.fulfilment {
        Fulfilment::Delivery { .. } if subtotal < o.settings.free_shipping_from => {
            o.settings.shipping_fee
        }
        _ => 0,
    };
    let total = subtotal + shipping;
    if total > kernel::MAX_AMOUNT_MINOR {
        return Err(invalid("cart", "amount_too_large", "amount too large"));
    }
    let plan = Plan {
        cart_id: b.cart_id,
        customer: viewer,
        email,
        fulfilment: b.fulfilment,
        location,
        currency: fresh.currency.clone(),
        lines,
        subtotal,
        shipping,
        total,
        payment: b.payment,
    };
    match o
        .start_checkout(&scope, &key, &body.request_hash, &plan)
        .await?
    {
        Start::New(id) => {
            o.run(id).await?;
            answer(st, id, &body.request_hash, &body.request_hash, true).await
        }
        Start::Done { status, body } => Ok(replay(status, body)),
        Start::Running(_) => Err(in_progress()),
        Start::KeyReused => Err(key_reused()),
        Start::CartTaken(holder) => Err(cart_taken(&holder, plan.customer.as_deref())),
        Start::Contended => Err(cart_busy_retry()),
    }
}

/// The answer to a checkout of a cart that another checkout holds (I9). The cart's owner (a
/// customer, or for a guest cart whoever knows its id) learns which checkout holds it; anyone
/// else gets the 404 a stranger gets for the cart itself.
fn cart_taken(holder: &store::CheckoutRow, viewer: Option<&str>) -> ApiError {
    let owner = serde_json::from_str::<Plan>(&holder.plan)
        .ok()
        .and_then(|p| p.customer);
    if owner.is_some() && owner.as_deref() != viewer {
        return ApiError::not_found("cart");
    }
    if holder.state == SagaState::Completed.as_str() {
        let number = crate::saga::order_number(holder.id);
        return ApiError::conflict(
            "cart_checked_out",
            format!(
                "this cart was already checked out as order {number} ({})",
                holder.id
            ),
        )
        .with_field(FieldError::new(
            "cart_id",
            "cart_checked_out",
            format!("order {}", holder.id),
        ));
    }
    let mut e = ApiError::conflict(
        "cart_checkout_in_progress",
        format!(
            "this cart is already being checked out (checkout {}); wait for its answer, or \
             retry that attempt with its own Idempotency-Key",
            holder.id
        ),
    )
    .with_field(FieldError::new(
        "cart_id",
        "cart_checkout_in_progress",
        format!("checkout {}", holder.id),
    ));
    e.retry_after = Some(1);
    e
}

fn cart_busy_retry() -> ApiError {
    let mut e = ApiError::conflict(
        "cart_checkout_in_progress",
        "another checkout of this cart started and ended meanwhile; retry shortly",
    );
    e.retry_after = Some(1);
    e
}

/// The answer to a key this caller used before (its replay, "still running", or 422 for
/// another request), or `None` for a new key.
async fn retry_of(
    st: &OrdersState,
    scope: &str,
    key: &str,
    request_hash: &str,
) -> ApiResult<Option<Response>> {
    match store::checkout_by_key(&st.orders.db, scope, key).await? {
        Some(existing) => answer(st, existing.id, &existing.request_hash, request_hash, false)
            .await
            .map(Some),
        None => Ok(None),
    }
}

fn in_progress() -> ApiError {
    let mut e = ApiError::conflict(
        "idempotency_in_progress",
        "this checkout is still being processed; retry with the same key shortly",
    );
    e.retry_after = Some(1);
    e
}

fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different checkout; use a new key",
    )
}

fn replay(status: u16, body: String) -> Response {
    let mut r = raw(status, body);
    r.headers_mut().insert(
        idempotency::REPLAYED_HEADER,
        HeaderValue::from_static("true"),
    );
    r
}

fn raw(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (ct, body) = if status.is_success() {
        ("application/json", body)
    } else {
        ("application/problem+json", with_request_id(body))
    };
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

/// A stored problem carries the id of the request that answers it (as every problem does), so
/// that a support request can quote it.
fn with_request_id(body: String) -> String {
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_str::<serde_json::Value>(&body)
    else {
        return body;
    };
    match platform::http::request_id::current() {
        Some(id) => {
            m.insert("request_id".into(), serde_json::Value::String(id));
        }
        None => {
            m.remove("request_id");
        }
    }
    serde_json::Value::Object(m).to_string()
}

/// The answer for a saga: its stored final response (a replay unless this request ran it),
/// or "not finished yet".
async fn answer(
    st: &OrdersState,
    id: Uuid,
    stored_hash: &str,
    request_hash: &str,
    ran_it: bool,
) -> ApiResult<Response> {
    if stored_hash != request_hash {
        return Err(key_reused());
    }
    let s = store::checkout(&st.orders.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("checkout"))?;
    match (s.response_status, s.response_body) {
        (Some(status), Some(body)) => {
            let status = u16::try_from(status).unwrap_or(500);
            Ok(if ran_it {
                raw(status, body)
            } else {
                replay(status, body)
            })
        }
        _ if ran_it => {
            let mut e = ApiError::unavailable(
                "the checkout is not finished yet; retry with the same Idempotency-Key",
            );
            e.retry_after = Some(2);
            Err(e)
        }
        _ => Err(in_progress()),
    }
}

// ---- reads ------------------------------------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<String>,
    /// Staff: a location they may act for (head office: any, or all when absent).
    pub location: Option<String>,
    /// Cursor: `created_at` of the last order of the previous page.
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

/// Orders the caller may see: a customer's own; staff: their location's (head office: all).
#[utoipa::path(get, path = "/api/orders", tag = "orders", params(ListQuery),
    security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = [Order])))]
async fn list_orders(
    State(st): State<OrdersState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<axum::Json<Vec<Order>>> {
    let p = caller.require()?;
    if let Some(s) = &q.status
        && OrderStatus::parse(s).is_none()
    {
        return Err(bad_query("status", "invalid_status", "unknown status"));
    }
    let mut f = OrderFilter {
        status: q.status,
        before: q.before,
        limit: q.limit.unwrap_or(50),
        ..Default::default()
    };
    if p.has(perm::ORDERS_READ) {
        if p.is_head_office() {
            f.location = q.location;
        } else {
            let own = p
                .store
                .clone()
                .ok_or_else(|| ApiError::not_found("location"))?;
            if q.location.as_deref().is_some_and(|l| l != own) {
                return Err(ApiError::not_found("location"));
            }
            f.location = Some(own);
        }
    } else {
        f.customer = Some(p.subject.clone());
    }
    Ok(axum::Json(store::list_orders(&st.orders.db, &f).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: Order,
    pub history: Vec<HistoryEntry>,
}

/// One order with its history.
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "the order id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, body = OrderDetail), (status = 404, body = Problem)))]
async fn get_order(
    State(st): State<OrdersState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<OrderDetail>> {
    let order = visible_order(&st, &caller, &id).await?;
    let history = store::order_history(&st.orders.db, order.id).await?;
    Ok(axum::Json(OrderDetail { order, history }))
}

async fn saga_view(st: &OrdersState, id: Uuid) -> ApiResult<Option<SagaView>> {
    let Some(s) = store::checkout(&st.orders.db, id).await? else {
        return Ok(None);
    };
    Ok(Some(SagaView {
        id: s.id,
        state: SagaState::parse(&s.state).unwrap_or(SagaState::Compensating),
        error_code: s.error_code,
        error_detail: s.error_detail,
        attempts: s.attempts,
        created_at: s.created_at,
        updated_at: s.updated_at,
        steps: store::steps(&st.orders.db, id).await?,
    }))
}

/// The checkout saga behind an order: its state and every step (staff of the order's location).
#[utoipa::path(get, path = "/api/orders/{id}/saga", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "the order id")),
    responses((status = 200, body = SagaView), (status = 404, body = Problem)))]
async fn get_saga(
    State(st): State<OrdersState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SagaView>> {
    let p = caller.require()?;
    let sid = order_id(&id)?;
    // A saga without an order (ended before confirmation) is head office's to see.
    match store::get_order(&st.orders.db, sid).await? {
        Some(o) if p.may_act_for_store(&o.location) => {}
        None if p.is_head_office() => {}
        _ => return Err(ApiError::not_found("order")),
    }
    saga_view(&st, sid)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("order"))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SagaQuery {
    /// `open` (not finished: the default), or one saga state.
    pub state: Option<String>,
    pub limit: Option<i64>,
}

/// Checkout sagas by state, newest first (head office): what the recovery worker is on.
#[utoipa::path(get, path = "/api/orders/sagas", tag = "orders", params(SagaQuery),
    security(("bearer" = [])), responses((status = 200, body = [SagaView])))]
async fn list_sagas(
    State(st): State<OrdersState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SagaQuery>,
) -> ApiResult<axum::Json<Vec<SagaView>>> {
    if !caller.require()?.is_head_office() {
        return Err(platform::authz::forbidden("head office"));
    }
    let states: Vec<&str> = match q.state.as_deref() {
        None | Some("open") => SagaState::ALL
            .iter()
            .filter(|s| !s.is_terminal())
            .map(|s| s.as_str())
            .collect(),
        Some(s) => match SagaState::parse(s) {
            Some(x) => vec![x.as_str()],
            None => return Err(bad_query("state", "invalid_state", "unknown saga state")),
        },
    };
    let rows =
        store::checkouts_in(&st.orders.db, &states, q.limit.unwrap_or(50).clamp(1, 200)).await?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(v) = saga_view(&st, r.id).await? {
            out.push(v);
        }
    }
    Ok(axum::Json(out))
}

// ---- staff actions ----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    #[serde(default)]
    pub note: Option<String>,
}

/// The order, for staff who may act for its location (404 otherwise).
async fn staff_order(st: &OrdersState, caller: &Caller, id: &str) -> ApiResult<Order> {
    let id = order_id(id)?;
    let p = caller.require()?;
    let o = store::get_order(&st.orders.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    if !p.may_act_for_store(&o.location) {
        return Err(ApiError::not_found("order"));
    }
    Ok(o)
}

fn wrong_state(o: &Order, to: OrderStatus) -> ApiError {
    ApiError::conflict(
        "invalid_transition",
        format!(
            "an order that is {} cannot become {}",
            o.status.as_str(),
            to.as_str()
        ),
    )
}

async fn simple_transition(
    st: OrdersState,
    caller: Caller,
    headers: HeaderMap,
    id: String,
    body: HashedJson<NoteBody>,
    to: OrderStatus,
) -> Response {
    let o = match staff_order(&st, &caller, &id).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let actor = caller
        .principal()
        .map(|p| p.subject.clone())
        .unwrap_or_default();
    let note = body.value.note.unwrap_or_default();
    let now = st.orders.clock.now().timestamp_millis();
    let res = idempotency::write(
        &st.idempotency,
        &st.orders.db,
        &caller.scope(),
        &headers,
        &body.request_hash,
        StatusCode::OK,
        None,
        move |tx| {
            Box::pin(async move {
                if !store::transition(tx, o.id, o.status, to, &actor, &note, now).await? {
                    return Err(wrong_state(&o, to));
                }
                if to == OrderStatus::Fulfilled {
                    let order = store::order(tx.conn(), o.id).await?.unwrap_or(o.clone());
                    bus::enqueue(
                        tx.conn(),
                        &Event::new(
                            SERVICE,
                            topic::ORDER_FULFILLED,
                            &crate::saga::order_event(&order, None),
                            now,
                        ),
                    )
                    .await?;
                }
                store::order(tx.conn(), o.id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("order"))
            })
        },
    )
    .await;
    st.orders.wake();
    res
}

/// Mark a paid order fulfilled: shipped, or ready for collection at the store.
#[utoipa::path(post, path = "/api/orders/{id}/fulfil", tag = "orders", request_body = NoteBody,
    params(("id" = String, Path, description = "the order id")),
    security(("bearer" = [])), responses((status = 200, body = Order), (status = 404, description = "no such order, or not the caller's to act on", body = Problem), (status = 409, body = Problem)))]
async fn fulfil(
    State(st): State<OrdersState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: HashedJson<NoteBody>,
) -> Response {
    simple_transition(st, caller, headers, id, body, OrderStatus::Fulfilled).await
}

/// Mark a fulfilled order completed: delivered, or collected at the store.
#[utoipa::path(post, path = "/api/orders/{id}/complete", tag = "orders", request_body = NoteBody,
    params(("id" = String, Path, description = "the order id")),
    security(("bearer" = [])), responses((status = 200, body = Order), (status = 404, description = "no such order, or not the caller's to act on", body = Problem), (status = 409, body = Problem)))]
async fn complete(
    State(st): State<OrdersState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: HashedJson<NoteBody>,
) -> Response {
    simple_transition(st, caller, headers, id, body, OrderStatus::Completed).await
}

fn require_key(headers: &HeaderMap) -> ApiResult<String> {
    idempotency::key_from_headers(headers)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "idempotency_key_required",
            "moving money needs an Idempotency-Key header",
        )
    })
}

/// The start of a staff action that moves money: a required `Idempotency-Key`, claimed first
/// (a replay of a finished action is answered from the store), then the order the caller may
/// act for. Any refusal frees the key.
async fn money_action(
    st: &OrdersState,
    caller: &Caller,
    headers: &HeaderMap,
    request_hash: &str,
    id: &str,
) -> Result<(String, Option<idempotency::Claim>, Order), Response> {
    let key = require_key(headers).map_err(IntoResponse::into_response)?;
    let claim =
        match idempotency::claim(&st.idempotency, &caller.scope(), headers, request_hash).await {
            idempotency::Pre::Done(r) => return Err(r),
            idempotency::Pre::Go(c) => c,
        };
    match staff_order(st, caller, id).await {
        Ok(o) => Ok((key, claim, o)),
        Err(e) => Err(idempotency::abandon(&st.idempotency, claim, e).await),
    }
}

/// Cancel a paid, unfulfilled order: refunds it in full and puts the stock back.
#[utoipa::path(post, path = "/api/orders/{id}/cancel", tag = "orders", request_body = NoteBody,
    params(("id" = String, Path, description = "the order id"), ("Idempotency-Key" = String, Header, description = "required")),
    security(("bearer" = [])), responses((status = 200, body = Order), (status = 404, description = "no such order, or not the caller's to act on", body = Problem), (status = 409, body = Problem)))]
async fn cancel(
    State(st): State<OrdersState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: HashedJson<NoteBody>,
) -> Response {
    let idem = &st.idempotency;
    let (key, claim, o) = match money_action(&st, &caller, &headers, &body.request_hash, &id).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    // Only a paid order not yet fulfilled (the refund's own event may already have marked
    // it refunded).
    let fulfilled = match store::order_history(&st.orders.db, o.id).await {
        Ok(h) => h.iter().any(|h| h.to_status == "fulfilled"),
        Err(e) => return idempotency::abandon(idem, claim, e.into()).await,
    };
    let was_paid =
        o.status == OrderStatus::Paid || (o.status == OrderStatus::Refunded && !fulfilled);
    if !was_paid {
        return idempotency::abandon(idem, claim, wrong_state(&o, OrderStatus::Cancelled)).await;
    }
    // Outside any transaction: money back, then stock back (both idempotent on their keys).
    let left = o.total - o.refunded;
    if left > 0
        && let Err(e) = st
            .orders
            .payments
            .refund(o.id, left, &format!("{}:cancel:{key}", o.id))
            .await
    {
        return idempotency::abandon(idem, claim, payment_error(e)).await;
    }
    if let Err(e) = st.orders.inventory.restock(o.id, "cancellation").await {
        return idempotency::abandon(idem, claim, stock_problem(e)).await;
    }
    let actor = caller
        .principal()
        .map(|p| p.subject.clone())
        .unwrap_or_default();
    let note = body.value.note.clone().unwrap_or_default();
    let now = st.orders.clock.now().timestamp_millis();
    let res = idempotency::finish(
        idem,
        &st.orders.db,
        claim,
        StatusCode::OK,
        None,
        move |tx| {
            Box::pin(async move {
                if store::cancel_paid(tx, o.id, &actor, &note, now).await? {
                    let after = store::order(tx.conn(), o.id)
                        .await?
                        .ok_or_else(|| ApiError::not_found("order"))?;
                    bus::enqueue(
                        tx.conn(),
                        &Event::new(
                            SERVICE,
                            topic::ORDER_CANCELLED,
                            &crate::saga::order_event(&after, Some("cancelled by staff")),
                            now,
                        ),
                    )
                    .await?;
                }
                store::order(tx.conn(), o.id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("order"))
            })
        },
    )
    .await;
    st.orders.wake();
    res
}

/// A payments answer as a problem: the same status and code a client gets from payments.
fn payment_error(e: PayError) -> ApiError {
    match &e {
        PayError::Invalid { message, .. } => {
            let code = e.code().unwrap_or("payment_refused");
            if code == "unknown_payment" {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message.clone())
            } else {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.clone())
            }
        }
        PayError::Unavailable { detail } => {
            tracing::warn!(error = %detail, "payments unavailable");
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "payment_provider_unavailable",
                "the payment provider is not answering; retry later",
            );
            e.retry_after = Some(5);
            e
        }
    }
}

/// An inventory answer as a problem.
fn stock_problem(e: StockError) -> ApiError {
    match e {
        StockError::UnknownLocation { .. } => ApiError::not_found("location"),
        StockError::Invalid { message } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_stock_change",
            message,
        ),
        StockError::OutOfStock { shortages } => {
            let mut e = ApiError::conflict("out_of_stock", "not enough stock for this change");
            e.errors = contracts::inventory::shortage_errors(&shortages);
            e
        }
        StockError::HoldLost { .. } => {
            ApiError::conflict("hold_lost", "the hold is no longer active")
        }
        StockError::Unavailable { detail } => {
            tracing::warn!(error = %detail, "inventory unavailable");
            let mut e = ApiError::unavailable("inventory is not answering; retry later");
            e.retry_after = Some(2);
            e
        }
    }
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Minor units, at most what is left to refund.
    pub amount: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Refund part or all of a paid order. `Idempotency-Key` is required.
#[utoipa::path(post, path = "/api/orders/{id}/refunds", tag = "orders", request_body = RefundBody,
    params(("id" = String, Path, description = "the order id"), ("Idempotency-Key" = String, Header, description = "required")),
    security(("bearer" = [])),
    responses((status = 200, body = Order), (status = 404, description = "no such order, or not the caller's to act on", body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn refund(
    State(st): State<OrdersState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: HashedJson<RefundBody>,
) -> Response {
    let idem = &st.idempotency;
    let (key, claim, o) = match money_action(&st, &caller, &headers, &body.request_hash, &id).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let amount = body.value.amount;
    if !o.status.is_paid() {
        return idempotency::abandon(idem, claim, wrong_state(&o, OrderStatus::Refunded)).await;
    }
    let left = o.total - o.refunded;
    if amount <= 0 || amount > left {
        let e = invalid("amount", "invalid_amount", &format!("between 1 and {left}"));
        return idempotency::abandon(idem, claim, e).await;
    }
    let refunded = match st
        .orders
        .payments
        .refund(o.id, amount, &format!("{}:refund:{key}", o.id))
        .await
    {
        Ok(p) => p.refunded,
        Err(e) => return idempotency::abandon(idem, claim, payment_error(e)).await,
    };
    let actor = caller
        .principal()
        .map(|p| p.subject.clone())
        .unwrap_or_default();
    let now = st.orders.clock.now().timestamp_millis();
    idempotency::finish(
        idem,
        &st.orders.db,
        claim,
        StatusCode::OK,
        None,
        move |tx| {
            Box::pin(async move {
                store::set_refunded(tx, o.id, refunded, &actor, now).await?;
                store::order(tx.conn(), o.id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("order"))
            })
        },
    )
    .await
}
