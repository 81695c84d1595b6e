//! The reads: orders (a customer's own, or a location's for its staff) with their history, and
//! the checkout sagas behind them.

use super::problems::bad_query;
use super::{OrdersState, order_id, visible_order};
use crate::domain::{Order, OrderStatus, SagaState};
use crate::store::{self, HistoryEntry, OrderFilter, SagaStep};
use axum::extract::{Path, State};
use platform::authz::perm;
use platform::caller::Caller;
use platform::http::extract::ApiQuery;
use platform::{ApiError, ApiResult, Problem};
use serde::{Deserialize, Serialize};

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
pub(super) async fn list_orders(
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
pub(super) async fn get_order(
    State(st): State<OrdersState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<OrderDetail>> {
    let order = visible_order(&st, &caller, &id).await?;
    let history = store::order_history(&st.orders.db, order.id).await?;
    Ok(axum::Json(OrderDetail { order, history }))
}

// A checkout saga as staff see it (no doc comment: it would change the OpenAPI document).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SagaView {
    pub id: kernel::OrderId,
    pub state: SagaState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<String>,
    pub attempts: i32,
    pub created_at: i64,
    pub updated_at: i64,
    pub steps: Vec<SagaStep>,
}

async fn saga_view(st: &OrdersState, id: kernel::OrderId) -> ApiResult<Option<SagaView>> {
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
pub(super) async fn get_saga(
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
pub(super) async fn list_sagas(
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
