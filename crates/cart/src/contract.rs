//! This service's side of [`contracts::carts`]: [`Carts`] implements [`CartsApi`] (the
//! in-process implementation), and [`internal_router`] serves it to other processes.

use crate::app::{CartError, Carts};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use contracts::carts::{CartLine, CartsApi, CartsError, CartsResult, CheckoutCart, ViewRequest};
use contracts::rpc::answer;
use futures_util::future::BoxFuture;
use kernel::CartId;
use std::sync::Arc;

fn wire(e: CartError) -> CartsError {
    match e {
        CartError::NotFound => CartsError::NotFound,
        e => CartsError::Unavailable {
            detail: e.to_string(),
        },
    }
}

impl CartsApi for Carts {
    fn for_checkout<'a>(
        &'a self,
        cart_id: CartId,
        viewer: Option<&'a str>,
    ) -> BoxFuture<'a, CartsResult<CheckoutCart>> {
        Box::pin(async move {
            let cart = self.get(cart_id, viewer).await.map_err(wire)?;
            let (fresh, changes) = self.reprice(&cart).await.map_err(wire)?;
            Ok(CheckoutCart {
                id: fresh.id,
                owner: fresh.owner,
                currency: fresh.currency,
                lines: fresh
                    .lines
                    .into_iter()
                    .map(|l| CartLine {
                        sku: l.sku,
                        name: l.name,
                        quantity: l.quantity,
                        unit_price: l.unit_price,
                    })
                    .collect(),
                changes,
            })
        })
    }

    fn checked_out(&self, cart_id: CartId) -> BoxFuture<'_, CartsResult<()>> {
        Box::pin(async move { Carts::checked_out(self, cart_id).await.map_err(wire) })
    }
}

/// `/internal/carts/...`, for the orders service in another process. The wiring puts it behind
/// [`platform::caller::internal_calls_only`].
pub fn internal_router(carts: Arc<Carts>) -> Router {
    Router::new()
        .route("/internal/carts/{id}/checkout-view", post(checkout_view))
        .route("/internal/carts/{id}/checked-out", post(checked_out))
        .with_state(carts)
}

async fn checkout_view(
    State(c): State<Arc<Carts>>,
    Path(id): Path<CartId>,
    axum::Json(q): axum::Json<ViewRequest>,
) -> Response {
    answer(c.for_checkout(id, q.viewer.as_deref()).await)
}

async fn checked_out(State(c): State<Arc<Carts>>, Path(id): Path<CartId>) -> Response {
    answer(CartsApi::checked_out(c.as_ref(), id).await)
}
