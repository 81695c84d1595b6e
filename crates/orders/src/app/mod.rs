//! The use cases of orders, as methods of [`Orders`](crate::Orders): they take plain values,
//! call the peers through their contracts and the store, and fail with `thiserror` enums. What
//! a client sees of those errors (status, code, detail) is decided in one place, `http::problems`.
//!
//! - `checkout`: a checkout request checked and priced into a saga's `Plan`
//! - `after_sale`: staff actions on an order: fulfil, complete, cancel, refund
//!
//! The saga that carries out a plan is `crate::saga`.

pub mod after_sale;
pub mod checkout;

pub use after_sale::OrderError;
pub use checkout::{CartHeld, CheckoutError, CheckoutRequest};
