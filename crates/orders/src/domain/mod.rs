//! The rules of orders, with no IO: an order and its state machine, what a checkout is asked
//! to do (`Plan`) and the rules that build it (`rules`), the saga's states and outcomes
//! (`saga`). Serde shapes here are the stored and wire ones (the plan column, the order JSON);
//! their OpenAPI schemas are declared in `http` (`http::schema`).

pub mod rules;
pub mod saga;

pub use saga::{CheckoutOutcome, Failure, SagaState};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub line_total: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fulfilment {
    Delivery { address: Address },
    Collect { store: String },
}

#[derive(Debug, Clone, Serialize)]
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

/// The human-facing order number, derived from the id.
pub fn order_number(id: Uuid) -> String {
    let s = id.simple().to_string().to_uppercase();
    format!("BZH-{}", &s[20..32])
}

/// The payload of the order events.
pub fn order_event(o: &Order, reason: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "order_id": o.id,
        "number": o.number,
        "customer": o.customer,
        "email": o.email,
        "location": o.location,
        "fulfilment": o.fulfilment,
        "currency": o.currency,
        "total": o.total,
        "refunded": o.refunded,
        "lines": o.lines,
        "reason": reason,
    })
}

impl Plan {
    pub fn summary(&self) -> String {
        format!(
            "{} line(s), {} {} from {}",
            self.lines.len(),
            self.total,
            self.currency,
            self.location
        )
    }

    /// The order this plan places, `pending`, as the saga confirms it at `now`.
    pub fn to_order(&self, id: Uuid, now: i64) -> Order {
        let (fulfilment, address) = match &self.fulfilment {
            Fulfilment::Delivery { address } => ("delivery", Some(address.clone())),
            Fulfilment::Collect { .. } => ("collect", None),
        };
        Order {
            id,
            number: order_number(id),
            customer: self.customer.clone(),
            email: self.email.clone(),
            status: OrderStatus::Pending,
            fulfilment: fulfilment.to_string(),
            location: self.location.clone(),
            address,
            currency: self.currency.clone(),
            subtotal: self.subtotal,
            shipping: self.shipping,
            total: self.total,
            refunded: 0,
            lines: self.lines.clone(),
            created_at: now,
            updated_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_are_stable_and_short() {
        let id = Uuid::now_v7();
        let n = order_number(id);
        assert_eq!(n, order_number(id));
        assert!(n.starts_with("BZH-") && n.len() == 16, "{n}");
    }

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
}
