//! This service's side of [`contracts::orders`]: [`Orders`] implements [`OrdersApi`] for the
//! web (in process), and [`internal_router`] serves it to a web in another process.

use crate::{Orders, store};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use contracts::orders::{CheckoutView, OrdersApi, OrdersError, OrdersResult};
use contracts::rpc::answer;
use futures_util::future::BoxFuture;
use kernel::OrderId;

fn unavailable(e: sqlx::Error) -> OrdersError {
    OrdersError::Unavailable {
        detail: format!("orders database: {e}"),
    }
}

fn view(row: store::CheckoutRow) -> CheckoutView {
    CheckoutView {
        id: row.id,
        state: row.state,
        plan: serde_json::from_str(&row.plan).unwrap_or_default(),
        response_status: row.response_status,
        response_body: row.response_body,
    }
}

impl OrdersApi for Orders {
    fn checkout(&self, id: OrderId) -> BoxFuture<'_, OrdersResult<Option<CheckoutView>>> {
        Box::pin(async move {
            Ok(store::checkout(&self.db, id)
                .await
                .map_err(unavailable)?
                .map(view))
        })
    }

    fn checkout_holding_cart(
        &self,
        cart_id: kernel::CartId,
    ) -> BoxFuture<'_, OrdersResult<Option<CheckoutView>>> {
        Box::pin(async move {
            Ok(store::checkout_holding_cart(&self.db, cart_id)
                .await
                .map_err(unavailable)?
                .map(view))
        })
    }

    fn order(&self, id: OrderId) -> BoxFuture<'_, OrdersResult<Option<serde_json::Value>>> {
        Box::pin(async move {
            let o = store::get_order(&self.db, id).await.map_err(unavailable)?;
            Ok(o.and_then(|o| serde_json::to_value(&o).ok()))
        })
    }

    fn resume(&self, id: OrderId) -> BoxFuture<'_, OrdersResult<()>> {
        Box::pin(async move {
            self.run(id).await.map_err(unavailable)?;
            Ok(())
        })
    }
}

/// `/internal/orders/...`, for the web in another process. The wiring puts it behind
/// [`platform::caller::internal_calls_only`].
pub fn internal_router(orders: Orders) -> Router {
    Router::new()
        .route("/internal/orders/checkouts/{id}", get(checkout))
        .route("/internal/orders/checkouts/{id}/resume", post(resume))
        .route("/internal/orders/carts/{id}/checkout", get(holding))
        .route("/internal/orders/{id}", get(order))
        .with_state(orders)
}

async fn checkout(State(o): State<Orders>, Path(id): Path<OrderId>) -> Response {
    answer(OrdersApi::checkout(&o, id).await)
}

async fn holding(State(o): State<Orders>, Path(id): Path<kernel::CartId>) -> Response {
    answer(o.checkout_holding_cart(id).await)
}

async fn order(State(o): State<Orders>, Path(id): Path<OrderId>) -> Response {
    answer(OrdersApi::order(&o, id).await)
}

async fn resume(State(o): State<Orders>, Path(id): Path<OrderId>) -> Response {
    answer(o.resume(id).await)
}
