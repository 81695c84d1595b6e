//! What the storefront may ask of orders beyond the public API: the state of a checkout it
//! started (the 3-D Secure page, the "still processing" page), which checkout holds a cart, a
//! guest's order (the web proves the guest's claim with its own signed cookie), and "run this
//! saga now" after the shopper answered a payment challenge.
//!
//! Internal routes (answered with [`crate::rpc::answer`]):
//! - `GET /internal/orders/checkouts/{id}` → [`CheckoutView`] or `null`
//! - `GET /internal/orders/carts/{cart_id}/checkout` → the [`CheckoutView`] holding it, or `null`
//! - `GET /internal/orders/{id}` → the order as `GET /api/orders/{id}` renders it, or `null`
//! - `POST /internal/orders/checkouts/{id}/resume` → `null`

use crate::rpc::{Peer, Retry, WireError};
use axum::http::Method;
use futures_util::future::BoxFuture;
use kernel::{CartId, OrderId, PaymentId};
use serde::{Deserialize, Serialize};

/// The payment of a checkout: it has the checkout's (and so the order's) id, on which the
/// authorisation is idempotent. The stock hold has it too.
pub fn payment_of(checkout: OrderId) -> PaymentId {
    PaymentId::from_uuid(checkout.uuid())
}

/// A checkout attempt as its owner's pages show it. Its id is the order's it places.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckoutView {
    pub id: OrderId,
    /// The saga's state (`started`, `awaiting_authorization`, `completed`, ...).
    pub state: String,
    /// The plan the checkout runs (cart, customer, lines, amounts), as recorded.
    pub plan: serde_json::Value,
    /// The answer the checkout request got or will replay, once the saga ended.
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum OrdersError {
    #[error("orders are unavailable: {detail}")]
    Unavailable { detail: String },
}

impl WireError for OrdersError {
    fn status(&self) -> u16 {
        503
    }
    fn unavailable(detail: String) -> Self {
        OrdersError::Unavailable { detail }
    }
}

pub type OrdersResult<T> = Result<T, OrdersError>;

/// What the web asks of orders.
pub trait OrdersApi: Send + Sync {
    fn checkout(&self, id: OrderId) -> BoxFuture<'_, OrdersResult<Option<CheckoutView>>>;
    /// The checkout that holds this cart (I9): running, or ended with an order.
    fn checkout_holding_cart(
        &self,
        cart_id: CartId,
    ) -> BoxFuture<'_, OrdersResult<Option<CheckoutView>>>;
    /// An order, whoever it belongs to: the caller decides who may see it.
    fn order(&self, id: OrderId) -> BoxFuture<'_, OrdersResult<Option<serde_json::Value>>>;
    /// Drives the checkout saga as far as it can go now.
    fn resume(&self, id: OrderId) -> BoxFuture<'_, OrdersResult<()>>;
}

/// Orders over HTTP.
#[derive(Clone, Debug)]
pub struct OrdersClient(pub Peer);

impl OrdersClient {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: String) -> OrdersResult<T> {
        self.0
            .call::<(), _, _>(Method::GET, &path, None, Retry::Safe)
            .await
    }
}

impl OrdersApi for OrdersClient {
    fn checkout(&self, id: OrderId) -> BoxFuture<'_, OrdersResult<Option<CheckoutView>>> {
        Box::pin(self.get(format!("/internal/orders/checkouts/{id}")))
    }

    fn checkout_holding_cart(
        &self,
        cart_id: CartId,
    ) -> BoxFuture<'_, OrdersResult<Option<CheckoutView>>> {
        Box::pin(self.get(format!("/internal/orders/carts/{cart_id}/checkout")))
    }

    fn order(&self, id: OrderId) -> BoxFuture<'_, OrdersResult<Option<serde_json::Value>>> {
        Box::pin(self.get(format!("/internal/orders/{id}")))
    }

    fn resume(&self, id: OrderId) -> BoxFuture<'_, OrdersResult<()>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::POST,
                    &format!("/internal/orders/checkouts/{id}/resume"),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }
}
