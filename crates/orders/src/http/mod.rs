//! `/api/checkout` and `/api/orders`: the routes, their wire types and OpenAPI, who may see
//! what, the idempotency flow, and (`problems`) the one mapping of the app's errors to problem
//! documents.
//!
//! Checkout requires an `Idempotency-Key`: a client that retries (timeout, lost connection,
//! double click) gets the first attempt's answer, never a second order or a second charge.
//! Orders are visible to their customer and to staff of the location that serves them; anyone
//! else gets 404.
//!
//! - `checkout`: `POST /api/checkout` and the replay of its stored answer
//! - `reads`: orders and sagas
//! - `staff`: fulfil, complete, cancel, refund
//! - `problems`: errors → problem documents; the rendering of a checkout's outcome
//! - `schema`: the OpenAPI schemas of the domain's types

mod checkout;
mod problems;
mod reads;
mod schema;
mod staff;

pub use checkout::CheckoutBody;
pub use problems::render_outcome;
pub use reads::{ListQuery, OrderDetail, SagaQuery, SagaView};
pub use staff::{NoteBody, RefundBody};

use crate::Orders;
use crate::domain::{Address, Fulfilment, Order, OrderLine, OrderStatus, SagaState};
use crate::store::{self, HistoryEntry, SagaStep};
use axum::Router;
use axum::routing::{get, post};
use checkout::__path_checkout;
use platform::authz::{Access, RoutePolicy, perm};
use platform::caller::Caller;
use platform::idempotency::Idempotency;
use platform::{ApiError, ApiResult, Problem};
use reads::{__path_get_order, __path_get_saga, __path_list_orders, __path_list_sagas};
use staff::{__path_cancel, __path_complete, __path_fulfil, __path_refund};
use std::sync::Arc;

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
        .route("/api/checkout", post(checkout::checkout))
        .route("/api/orders", get(reads::list_orders))
        .route("/api/orders/sagas", get(reads::list_sagas))
        .route("/api/orders/{id}", get(reads::get_order))
        .route("/api/orders/{id}/saga", get(reads::get_saga))
        .route("/api/orders/{id}/cancel", post(staff::cancel))
        .route("/api/orders/{id}/fulfil", post(staff::fulfil))
        .route("/api/orders/{id}/complete", post(staff::complete))
        .route("/api/orders/{id}/refunds", post(staff::refund))
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

pub(super) fn order_id(s: &str) -> ApiResult<kernel::OrderId> {
    s.parse().map_err(|_| ApiError::not_found("order"))
}

/// The order if the caller may see it: its customer, or staff of its location. 404 otherwise.
pub(super) async fn visible_order(st: &OrdersState, caller: &Caller, id: &str) -> ApiResult<Order> {
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

/// The order, for staff who may act for its location (404 otherwise).
pub(super) async fn staff_order(st: &OrdersState, caller: &Caller, id: &str) -> ApiResult<Order> {
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
