//! What other services may ask of carts: a cart as checkout sees it (repriced against the
//! catalogue, with what changed), and the end of a cart whose order was placed.
//!
//! Internal routes (answered with [`crate::rpc::answer`]):
//! - `POST /internal/carts/{id}/checkout-view` with [`ViewRequest`] → [`CheckoutCart`]
//! - `POST /internal/carts/{id}/checked-out` → `null` (idempotent: a cart already gone is fine)

use crate::rpc::{Peer, Retry, WireError};
use axum::http::Method;
use futures_util::future::BoxFuture;
use kernel::{CartId, Currency, Money};
use serde::{Deserialize, Serialize};

/// A line whose snapshot no longer matches the catalogue (carts reprice at checkout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PriceChange {
    /// The price changed: the returned cart has the new one.
    Changed { sku: String, old: i64, new: i64 },
    /// No longer sold, unknown to the catalogue or in another currency: removed from the
    /// returned cart.
    Unavailable { sku: String },
}

impl PriceChange {
    pub fn sku(&self) -> &str {
        match self {
            PriceChange::Changed { sku, .. } | PriceChange::Unavailable { sku } => sku,
        }
    }
}

/// One line of a cart at checkout, at the catalogue's current price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    /// In the cart's currency.
    pub unit_price: Money,
}

/// A cart as checkout sees it: the lines that can be bought now, at today's prices, and what
/// changed since they were added (checkout refuses a cart with changes: the shopper reviews it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutCart {
    pub id: CartId,
    /// The customer's subject; `None` for a guest cart.
    pub owner: Option<String>,
    /// The currency of every line.
    pub currency: Currency,
    pub lines: Vec<CartLine>,
    pub changes: Vec<PriceChange>,
}

/// The body of `POST /internal/carts/{id}/checkout-view`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewRequest {
    /// Who asks (a customer's subject), `None` for a guest: a customer's cart is nobody else's.
    pub viewer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum CartsError {
    /// No such cart, expired, or not the viewer's.
    #[error("cart not found")]
    NotFound,
    /// Carts (or the catalogue behind them) could not answer.
    #[error("carts are unavailable: {detail}")]
    Unavailable { detail: String },
}

impl WireError for CartsError {
    fn status(&self) -> u16 {
        match self {
            CartsError::NotFound => 404,
            CartsError::Unavailable { .. } => 503,
        }
    }
    fn unavailable(detail: String) -> Self {
        CartsError::Unavailable { detail }
    }
}

pub type CartsResult<T> = Result<T, CartsError>;

/// What checkout asks of carts.
pub trait CartsApi: Send + Sync {
    /// The cart repriced for checkout, if `viewer` may see it.
    fn for_checkout<'a>(
        &'a self,
        cart_id: CartId,
        viewer: Option<&'a str>,
    ) -> BoxFuture<'a, CartsResult<CheckoutCart>>;
    /// The order was placed: the cart is gone. Idempotent.
    fn checked_out(&self, cart_id: CartId) -> BoxFuture<'_, CartsResult<()>>;
}

/// Carts over HTTP.
#[derive(Clone, Debug)]
pub struct CartsClient(pub Peer);

impl CartsApi for CartsClient {
    fn for_checkout<'a>(
        &'a self,
        cart_id: CartId,
        viewer: Option<&'a str>,
    ) -> BoxFuture<'a, CartsResult<CheckoutCart>> {
        Box::pin(async move {
            self.0
                .call(
                    Method::POST,
                    &format!("/internal/carts/{cart_id}/checkout-view"),
                    Some(&ViewRequest {
                        viewer: viewer.map(str::to_string),
                    }),
                    Retry::Safe,
                )
                .await
        })
    }

    fn checked_out(&self, cart_id: CartId) -> BoxFuture<'_, CartsResult<()>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::POST,
                    &format!("/internal/carts/{cart_id}/checked-out"),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }
}
