//! Orders and their state machine, the checkout request, the saga's states.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an order stands.
///
/// ```text
/// pending ──► awaiting_payment ──► paid ──► fulfilled ──► completed
///    │               │              │  ╲        │
///    └──► cancelled ◄┘              │   ╲       └─► partially_refunded / refunded
///                                   └─► cancelled (refunded in full)
/// ```
/// `pending`: placed, stock held, payment authorised; `awaiting_payment`: stock committed,
/// capture under way; `paid`: captured. Fulfilled = shipped, or ready at the store for click &
/// collect; completed = delivered or collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    AwaitingPayment,
    Paid,
    Fulfilled,
    Completed,
    Cancelled,
    PartiallyRefunded,
    Refunded,
}

impl OrderStatus {
    pub const ALL: &'static [OrderStatus] = &[
        OrderStatus::Pending,
        OrderStatus::AwaitingPayment,
        OrderStatus::Paid,
        OrderStatus::Fulfilled,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Refunded,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::AwaitingPayment => "awaiting_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::PartiallyRefunded => "partially_refunded",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        Self::ALL.iter().copied().find(|x| x.as_str() == s)
    }

    /// The transitions the machine allows; everything else is refused (RELIABILITY.md B6).
    pub fn can_become(&self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Pending, AwaitingPayment)
                | (Pending, Cancelled)
                | (AwaitingPayment, Paid)
                | (AwaitingPayment, Cancelled)
                | (Paid, Fulfilled)
                | (Paid, Cancelled)
                | (Paid, PartiallyRefunded)
                | (Paid, Refunded)
                | (Fulfilled, Completed)
                | (Fulfilled, PartiallyRefunded)
                | (Fulfilled, Refunded)
                | (Completed, PartiallyRefunded)
                | (Completed, Refunded)
                | (PartiallyRefunded, PartiallyRefunded)
                | (PartiallyRefunded, Refunded)
        )
    }

    /// States in which money was captured and the order counts as sold.
    pub fn is_paid(&self) -> bool {
        use OrderStatus::*;
        matches!(
            self,
            Paid | Fulfilled | Completed | PartiallyRefunded | Refunded
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct OrderLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub line_total: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub postcode: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// Home delivery from the logistics centre, or click & collect in a store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fulfilment {
    Delivery { address: Address },
    Collect { store: String },
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    pub email: String,
    pub status: OrderStatus,
    /// `delivery` or `collect`.
    pub fulfilment: String,
    /// The location serving the order: the logistics centre or the collect store.
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    pub currency: String,
    pub subtotal: i64,
    pub shipping: i64,
    pub total: i64,
    pub refunded: i64,
    pub lines: Vec<OrderLine>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the saga was asked to do: fixed when the checkout starts (prices re-checked then).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub cart_id: Uuid,
    pub customer: Option<String>,
    pub email: String,
    pub fulfilment: Fulfilment,
    pub location: String,
    pub currency: String,
    pub lines: Vec<OrderLine>,
    pub subtotal: i64,
    pub shipping: i64,
    pub total: i64,
    pub payment: contracts::payments::PaymentMethod,
}

/// The saga's states. Forward: started → stock_held → payment_authorized → order_confirmed →
/// stock_committed → completed. Backward: compensating → compensated. `failed`: ended before
/// anything was taken (out of stock). `awaiting_authorization`: the provider needs time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SagaStep {
    pub seq: i32,
    pub step: String,
    /// `done`, `failed`, `retry` or `compensated`.
    pub outcome: String,
    pub detail: String,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SagaView {
    pub id: Uuid,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_never_skips_a_step() {
        use OrderStatus::*;
        assert!(Pending.can_become(AwaitingPayment));
        assert!(!Pending.can_become(Paid), "no payment skipped");
        assert!(!Pending.can_become(Fulfilled));
        assert!(!AwaitingPayment.can_become(Fulfilled));
        assert!(
            !Cancelled.can_become(Paid),
            "a cancelled order stays cancelled"
        );
        assert!(!Refunded.can_become(Paid));
        assert!(!Completed.can_become(Fulfilled));
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(*s));
            assert!(!s.can_become(Pending), "{s:?} cannot go back to pending");
        }
    }

    #[test]
    fn saga_states_round_trip() {
        for s in SagaState::ALL {
            assert_eq!(SagaState::parse(s.as_str()), Some(*s));
        }
        assert!(SagaState::Completed.is_terminal());
        assert!(!SagaState::Compensating.is_terminal());
    }
}
