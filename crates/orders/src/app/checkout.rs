//! A checkout request checked against the rules and priced into the saga's [`Plan`]: the cart
//! as carts sees it at checkout (repriced through the catalogue), the e-mail, where it is
//! fulfilled, the lines, the delivery fee and the cap.

use crate::Orders;
use crate::domain::rules::{self, RuleError};
use crate::domain::{Channel, Fulfilment, Plan, SagaState};
use crate::store::CheckoutRow;
use contracts::carts::{CartsError, PriceChange};
use contracts::inventory::StockError;
use contracts::payments::PaymentMethod;
use kernel::{CartId, OrderId};

/// What the shopper asks for.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    pub cart_id: CartId,
    pub email: String,
    pub fulfilment: Fulfilment,
    pub payment: PaymentMethod,
    /// Where it comes from (the caller's kind).
    pub channel: Channel,
}

/// Why a checkout request cannot become a plan. Nothing was taken or recorded.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// No such cart, or not the caller's.
    #[error("no such cart")]
    CartNotFound,
    #[error("carts unavailable: {0}")]
    CartsUnavailable(String),
    #[error("the cart is empty")]
    EmptyCart,
    /// Prices or availability changed since the lines were added: the shopper reviews the cart.
    #[error("{} line(s) changed", .0.len())]
    PriceChanged(Vec<PriceChange>),
    /// Click & collect at a location that is not a click & collect store.
    #[error("not a click & collect store")]
    UnknownStore,
    /// Inventory could not say whether the store exists.
    #[error("inventory: {0}")]
    Stock(StockError),
}

impl Orders {
    /// The plan of a checkout by `customer` (`None`: a guest), checked and priced. The checks
    /// run in the order a client sees their errors: e-mail, cart, changes, fulfilment, amounts.
    pub async fn plan_checkout(
        &self,
        req: CheckoutRequest,
        customer: Option<String>,
    ) -> Result<Plan, CheckoutError> {
        let email = rules::email(&req.email)?;
        let cart = self
            .carts
            .for_checkout(req.cart_id, customer.as_deref())
            .await
            .map_err(|e| match e {
                CartsError::NotFound => CheckoutError::CartNotFound,
                CartsError::Unavailable { detail } => CheckoutError::CartsUnavailable(detail),
            })?;
        if cart.lines.is_empty() && cart.changes.is_empty() {
            return Err(CheckoutError::EmptyCart);
        }
        if !cart.changes.is_empty() {
            return Err(CheckoutError::PriceChanged(cart.changes));
        }
        let location = match &req.fulfilment {
            Fulfilment::Delivery { address } => {
                rules::check_address(address)?;
                self.settings.shipping_location.clone()
            }
            Fulfilment::Collect { store } => {
                match self
                    .inventory
                    .location(store)
                    .await
                    .map_err(CheckoutError::Stock)?
                {
                    Some(l) if l.click_and_collect => l.code,
                    _ => return Err(CheckoutError::UnknownStore),
                }
            }
        };
        let (lines, subtotal) = rules::price_lines(cart.currency, &cart.lines)?;
        let shipping = rules::shipping(&req.fulfilment, subtotal, &self.settings.delivery)?;
        let total = rules::total(subtotal, shipping)?;
        Ok(Plan {
            cart_id: req.cart_id,
            customer,
            email,
            fulfilment: req.fulfilment,
            location,
            currency: cart.currency,
            lines,
            subtotal,
            shipping,
            total,
            payment: req.payment,
            channel: req.channel,
        })
    }
}

/// What a caller may learn of the checkout that holds a cart (I9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CartHeld {
    /// The cart is a customer's and the caller is not that customer: as if there were no cart.
    Hidden,
    /// Checked out: this order.
    CheckedOut(OrderId),
    /// This checkout is still running.
    InProgress(OrderId),
}

impl CartHeld {
    /// The cart's owner (a customer, or for a guest cart whoever knows its id) learns which
    /// checkout holds it; anyone else is told nothing.
    pub fn of(holder: &CheckoutRow, viewer: Option<&str>) -> CartHeld {
        let owner = serde_json::from_str::<Plan>(&holder.plan)
            .ok()
            .and_then(|p| p.customer);
        if owner.is_some() && owner.as_deref() != viewer {
            CartHeld::Hidden
        } else if holder.state == SagaState::Completed.as_str() {
            CartHeld::CheckedOut(holder.id)
        } else {
            CartHeld::InProgress(holder.id)
        }
    }
}
