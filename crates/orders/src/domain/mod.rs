//! The rules of orders, with no IO: an order and its state machine, what a checkout is asked
//! to do (`Plan`) and the rules that build it (`rules`), the saga's states and outcomes
//! (`saga`). Serde shapes here are the stored and wire ones (the plan column, the order JSON);
//! their OpenAPI schemas are declared in `http` (`http::schema`).

pub mod rules;
pub mod saga;

pub use contracts::orders::payment_of;
pub use saga::{CheckoutOutcome, Failure, SagaState};

use kernel::money::minor_units;
use kernel::{CartId, Currency, Money, OrderId};
use serde::{Deserialize, Serialize};

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

/// One SKU of an order, at the price it was sold at. Written as a [`LineRecord`] (amounts in
/// minor units of the order's currency).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(into = "LineRecord")]
pub struct OrderLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// An order line in JSON (the API, the events, the stored plan and order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineRecord {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    /// Minor units.
    pub unit_price: i64,
    /// `quantity × unit_price`, minor units.
    pub line_total: i64,
}

impl From<OrderLine> for LineRecord {
    fn from(l: OrderLine) -> Self {
        LineRecord {
            sku: l.sku,
            name: l.name,
            quantity: l.quantity,
            unit_price: l.unit_price.minor(),
            line_total: l.line_total.minor(),
        }
    }
}

impl LineRecord {
    /// The line, its amounts in `currency` (the order's).
    pub fn in_currency(self, currency: Currency) -> OrderLine {
        OrderLine {
            sku: self.sku,
            name: self.name,
            quantity: self.quantity,
            unit_price: Money::new(self.unit_price, currency),
            line_total: Money::new(self.line_total, currency),
        }
    }
}

/// Stored order lines (JSON text) as lines in `currency`.
pub fn lines_from_json(
    json: &str,
    currency: Currency,
) -> Result<Vec<OrderLine>, serde_json::Error> {
    Ok(serde_json::from_str::<Vec<LineRecord>>(json)?
        .into_iter()
        .map(|l| l.in_currency(currency))
        .collect())
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

/// An order. Its JSON (the API's `Order`) writes the amounts in minor units beside one
/// `currency`.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: OrderId,
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
    pub currency: Currency,
    #[serde(serialize_with = "minor_units")]
    pub subtotal: Money,
    #[serde(serialize_with = "minor_units")]
    pub shipping: Money,
    #[serde(serialize_with = "minor_units")]
    pub total: Money,
    #[serde(serialize_with = "minor_units")]
    pub refunded: Money,
    pub lines: Vec<OrderLine>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Order {
    /// What is left to give back: the total less what was refunded.
    pub fn refundable(&self) -> Money {
        self.total
            .with_minor(self.total.minor() - self.refunded.minor())
    }
}

/// Where an order comes from, for the business metrics (a bounded set: a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The online shop: the storefront's pages, or a shopper's client of the API.
    #[default]
    Web,
    /// A till: an API key bound to a store.
    Pos,
    /// Another integration's API key.
    Api,
}

impl Channel {
    pub const ALL: &'static [Channel] = &[Channel::Web, Channel::Pos, Channel::Api];

    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Pos => "pos",
            Channel::Api => "api",
        }
    }
}

/// What the saga was asked to do: fixed when the checkout starts (prices re-checked then).
/// Stored as JSON (amounts in minor units of `currency`, read back through [`PlanRecord`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "PlanRecord")]
pub struct Plan {
    pub cart_id: CartId,
    pub customer: Option<String>,
    pub email: String,
    pub fulfilment: Fulfilment,
    pub location: String,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    #[serde(serialize_with = "minor_units")]
    pub subtotal: Money,
    #[serde(serialize_with = "minor_units")]
    pub shipping: Money,
    #[serde(serialize_with = "minor_units")]
    pub total: Money,
    pub payment: contracts::payments::PaymentMethod,
    /// Where the order comes from (plans stored before it was recorded: the web).
    pub channel: Channel,
}

/// A stored [`Plan`] as read back.
#[derive(Debug, Clone, Deserialize)]
pub struct PlanRecord {
    pub cart_id: CartId,
    pub customer: Option<String>,
    pub email: String,
    pub fulfilment: Fulfilment,
    pub location: String,
    pub currency: Currency,
    pub lines: Vec<LineRecord>,
    pub subtotal: i64,
    pub shipping: i64,
    pub total: i64,
    pub payment: contracts::payments::PaymentMethod,
    #[serde(default)]
    pub channel: Channel,
}

impl From<PlanRecord> for Plan {
    fn from(r: PlanRecord) -> Self {
        let c = r.currency;
        Plan {
            cart_id: r.cart_id,
            customer: r.customer,
            email: r.email,
            fulfilment: r.fulfilment,
            location: r.location,
            currency: c,
            lines: r.lines.into_iter().map(|l| l.in_currency(c)).collect(),
            subtotal: Money::new(r.subtotal, c),
            shipping: Money::new(r.shipping, c),
            total: Money::new(r.total, c),
            payment: r.payment,
            channel: r.channel,
        }
    }
}

/// The human-facing order number, derived from the id.
pub fn order_number(id: OrderId) -> String {
    let s = id.uuid().simple().to_string().to_uppercase();
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
        "total": o.total.minor(),
        "refunded": o.refunded.minor(),
        "lines": o.lines,
        "reason": reason,
    })
}

impl Plan {
    pub fn summary(&self) -> String {
        format!(
            "{} line(s), {} from {}",
            self.lines.len(),
            self.total,
            self.location
        )
    }

    /// The order this plan places, `pending`, as the saga confirms it at `now`.
    pub fn to_order(&self, id: OrderId, now: i64) -> Order {
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
            currency: self.currency,
            subtotal: self.subtotal,
            shipping: self.shipping,
            total: self.total,
            refunded: Money::zero(self.currency),
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
        let id = OrderId::new();
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
