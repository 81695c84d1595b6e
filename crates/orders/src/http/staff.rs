//! Staff actions: fulfil and complete (one transaction with their stored answer), cancel and
//! refund (they move money: the key is claimed first, the money moves, then the order's change
//! and the answer are written together). The use cases are `app::after_sale`'s.

use super::problems::order_problem;
use super::{OrdersState, staff_order};
use crate::domain::{Order, OrderStatus};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::caller::Caller;
use platform::http::extract::HashedJson;
use platform::idempotency;
use platform::{ApiError, ApiResult, Problem};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    #[serde(default)]
    pub note: Option<String>,
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
    let orders = st.orders.clone();
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
                orders
                    .transition(tx, &o, to, &actor, &note)
                    .await
                    .map_err(order_problem)
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
pub(super) async fn fulfil(
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
pub(super) async fn complete(
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
pub(super) async fn cancel(
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
    // Outside any transaction: money back, then stock back (both idempotent on their keys).
    if let Err(e) = st.orders.cancel_effects(&o, &key).await {
        return idempotency::abandon(idem, claim, order_problem(e)).await;
    }
    let actor = caller
        .principal()
        .map(|p| p.subject.clone())
        .unwrap_or_default();
    let note = body.value.note.clone().unwrap_or_default();
    let orders = st.orders.clone();
    let res = idempotency::finish(
        idem,
        &st.orders.db,
        claim,
        StatusCode::OK,
        None,
        move |tx| {
            Box::pin(async move {
                orders
                    .record_cancel(tx, &o, &actor, &note)
                    .await
                    .map_err(order_problem)
            })
        },
    )
    .await;
    st.orders.wake();
    res
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
pub(super) async fn refund(
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
    let refunded = match st.orders.refund_payment(&o, body.value.amount, &key).await {
        Ok(r) => r,
        Err(e) => return idempotency::abandon(idem, claim, order_problem(e)).await,
    };
    let actor = caller
        .principal()
        .map(|p| p.subject.clone())
        .unwrap_or_default();
    let orders = st.orders.clone();
    idempotency::finish(
        idem,
        &st.orders.db,
        claim,
        StatusCode::OK,
        None,
        move |tx| {
            Box::pin(async move {
                orders
                    .record_refund(tx, &o, refunded, &actor)
                    .await
                    .map_err(order_problem)
            })
        },
    )
    .await
}
