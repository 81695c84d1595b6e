//! The checkout saga's states, why a checkout failed, and how it ended.

use super::Order;
use contracts::inventory::Shortage;
use serde::{Deserialize, Serialize};

/// The saga's states. Forward: started → stock_held → payment_authorized → order_confirmed →
/// stock_committed → completed. Backward: compensating → compensated. `failed`: ended before
/// anything was taken (out of stock). `awaiting_authorization`: the provider needs time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaState {
    Started,
    StockHeld,
    AwaitingAuthorization,
    PaymentAuthorized,
    OrderConfirmed,
    StockCommitted,
    Completed,
    Compensating,
    Compensated,
    Failed,
}

impl SagaState {
    pub const ALL: &'static [SagaState] = &[
        SagaState::Started,
        SagaState::StockHeld,
        SagaState::AwaitingAuthorization,
        SagaState::PaymentAuthorized,
        SagaState::OrderConfirmed,
        SagaState::StockCommitted,
        SagaState::Completed,
        SagaState::Compensating,
        SagaState::Compensated,
        SagaState::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            SagaState::Started => "started",
            SagaState::StockHeld => "stock_held",
            SagaState::AwaitingAuthorization => "awaiting_authorization",
            SagaState::PaymentAuthorized => "payment_authorized",
            SagaState::OrderConfirmed => "order_confirmed",
            SagaState::StockCommitted => "stock_committed",
            SagaState::Completed => "completed",
            SagaState::Compensating => "compensating",
            SagaState::Compensated => "compensated",
            SagaState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<SagaState> {
        Self::ALL.iter().copied().find(|x| x.as_str() == s)
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SagaState::Completed | SagaState::Compensated | SagaState::Failed
        )
    }
}

/// Why a checkout ended without a paid order: the saga's error, recorded in
/// `checkouts.error_code` and answered to the client as the problem's `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Not enough stock to hold (nothing was taken).
    OutOfStock,
    /// The fulfilment location does not exist (nothing was taken).
    UnknownLocation,
    /// Inventory refused a line (nothing was taken).
    InvalidOrder,
    /// The stock hold expired before the order was confirmed.
    HoldExpired,
    PaymentDeclined,
    /// Payments refused the payment details.
    InvalidPayment,
    /// The shopper did not confirm the payment before the hold would expire.
    PaymentTimeout,
    /// The capture failed.
    PaymentFailed,
    /// A forward step kept failing: the saga gave up and compensated.
    CheckoutUnavailable,
    /// Compensated with no error recorded (or one this version does not know).
    CheckoutFailed,
}

impl Failure {
    pub const ALL: &'static [Failure] = &[
        Failure::OutOfStock,
        Failure::UnknownLocation,
        Failure::InvalidOrder,
        Failure::HoldExpired,
        Failure::PaymentDeclined,
        Failure::InvalidPayment,
        Failure::PaymentTimeout,
        Failure::PaymentFailed,
        Failure::CheckoutUnavailable,
        Failure::CheckoutFailed,
    ];

    /// The stored error code, which is also the problem's `code` (in `kernel::codes`).
    pub fn code(&self) -> &'static str {
        match self {
            Failure::OutOfStock => "out_of_stock",
            Failure::UnknownLocation => "unknown_location",
            Failure::InvalidOrder => "invalid_order",
            Failure::HoldExpired => "hold_expired",
            Failure::PaymentDeclined => "payment_declined",
            Failure::InvalidPayment => "invalid_payment",
            Failure::PaymentTimeout => "payment_timeout",
            Failure::PaymentFailed => "payment_failed",
            Failure::CheckoutUnavailable => "checkout_unavailable",
            Failure::CheckoutFailed => "checkout_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Failure> {
        Self::ALL.iter().copied().find(|x| x.code() == s)
    }
}

/// How a checkout ended: what its `Idempotency-Key` answers from then on.
#[derive(Debug, Clone)]
pub enum CheckoutOutcome {
    Paid(Box<Order>),
    Failed {
        failure: Failure,
        /// What went wrong, for the problem's `detail` (for `out_of_stock`: the shortages as
        /// JSON, as `checkouts.error_detail` keeps them).
        detail: String,
        /// The SKUs short, for `out_of_stock`.
        shortages: Vec<Shortage>,
    },
}

impl CheckoutOutcome {
    /// The outcome of a saga that failed with this recorded error; the shortages of an
    /// `out_of_stock` are read back from its detail.
    pub fn failed(failure: Failure, detail: &str) -> CheckoutOutcome {
        let shortages = match failure {
            Failure::OutOfStock => serde_json::from_str(detail).unwrap_or_default(),
            _ => Vec::new(),
        };
        CheckoutOutcome::Failed {
            failure,
            detail: detail.to_string(),
            shortages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saga_states_round_trip() {
        for s in SagaState::ALL {
            assert_eq!(SagaState::parse(s.as_str()), Some(*s));
        }
        assert!(SagaState::Completed.is_terminal());
        assert!(!SagaState::Compensating.is_terminal());
    }

    #[test]
    fn failures_round_trip_and_keep_their_shortages() {
        for f in Failure::ALL {
            assert_eq!(Failure::parse(f.code()), Some(*f));
        }
        let short = r#"[{"sku":"A-1","requested":3,"available":1}]"#;
        let CheckoutOutcome::Failed { shortages, .. } =
            CheckoutOutcome::failed(Failure::OutOfStock, short)
        else {
            panic!("a failure")
        };
        assert_eq!(shortages.len(), 1);
        assert_eq!(shortages[0].available, 1);
    }
}
