//! What the cart API sends and receives: the request bodies, a quantity read from JSON, and
//! the cart as the API shows it.

use crate::domain::{Cart, MAX_QUANTITY};
use chrono::{DateTime, Utc};
use kernel::{CartId, Currency};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/carts`. The body is optional.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCart {
    /// ISO 4217 code of the cart; `EUR` when absent.
    #[serde(default)]
    pub currency: Option<String>,
}

/// `POST /api/carts/{id}/lines`. Prices come from the catalogue, never from the client.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLine {
    pub sku: String,
    /// 1 to 99; added to the line of the same SKU if there is one (capped at 99 in total).
    #[schema(value_type = i64, minimum = 1, maximum = 99)]
    pub quantity: serde_json::Number,
}

/// `PATCH /api/carts/{id}/lines/{sku}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    /// 0 to 99; 0 removes the line.
    #[schema(value_type = i64, minimum = 0, maximum = 99)]
    pub quantity: serde_json::Number,
}

/// A quantity from JSON: any number is accepted by the parser and checked here, so that 0, -1,
/// 2^31, 2^63 or 1.5 all get the same `invalid_quantity` answer.
pub fn quantity_in(n: &serde_json::Number, min: i64) -> Option<i64> {
    n.as_i64().filter(|q| (min..=MAX_QUANTITY).contains(q))
}

/// A line as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineView {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    /// Minor units, the price when the line was added.
    pub unit_price: i64,
    /// `quantity × unit_price`, minor units.
    pub total: i64,
    pub currency: Currency,
}

/// A cart as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CartView {
    pub id: CartId,
    /// The owning customer's subject; null for a guest cart.
    pub owner: Option<String>,
    pub currency: Currency,
    pub lines: Vec<LineView>,
    /// Sum of the lines, minor units.
    pub subtotal: i64,
    /// Sum of the quantities.
    pub item_count: i64,
    /// Increases with every change.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The cart is deleted after this unless it changes before (each change pushes it back).
    pub expires_at: DateTime<Utc>,
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl CartView {
    /// `None` when the amounts overflow (not reachable with the limits enforced on adding).
    pub fn of(cart: &Cart) -> Option<CartView> {
        let lines = cart
            .lines
            .iter()
            .map(|l| {
                Some(LineView {
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price.minor(),
                    total: l.total()?.minor(),
                    currency: l.unit_price.currency(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(CartView {
            id: cart.id,
            owner: cart.owner.clone(),
            currency: cart.currency,
            lines,
            subtotal: cart.subtotal()?.minor(),
            item_count: cart.item_count(),
            version: cart.version,
            created_at: time(cart.created_at),
            updated_at: time(cart.updated_at),
            expires_at: time(cart.expires_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Line;

    fn line(q: i64, p: i64) -> Line {
        Line {
            sku: "A".into(),
            name: "a".into(),
            quantity: q,
            unit_price: kernel::Money::new(p, Currency::EUR),
        }
    }

    #[test]
    fn subtotal_uses_checked_arithmetic() {
        let mut c = Cart {
            id: CartId::new(),
            owner: None,
            currency: Currency::EUR,
            lines: vec![line(2, 1250), line(1, 99)],
            version: 1,
            created_at: 0,
            updated_at: 0,
            expires_at: 1,
        };
        assert_eq!(c.subtotal().map(|m| m.minor()), Some(2599));
        assert_eq!(c.item_count(), 3);
        c.lines.push(line(99, i64::MAX / 10));
        assert_eq!(c.subtotal(), None);
        assert!(CartView::of(&c).is_none());
    }

    #[test]
    fn a_stored_line_keeps_its_json_shape() {
        let l = line(2, 1250);
        let json = serde_json::to_value(&l).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"sku": "A", "name": "a", "quantity": 2, "unit_price": 1250, "currency": "EUR"})
        );
        assert_eq!(serde_json::from_value::<Line>(json).ok(), Some(l));
    }

    #[test]
    fn quantities_outside_the_range_are_refused_whatever_their_json_form() {
        let n = |s: &str| serde_json::from_str::<serde_json::Number>(s).expect("number");
        assert_eq!(quantity_in(&n("1"), 1), Some(1));
        assert_eq!(quantity_in(&n("99"), 1), Some(99));
        assert_eq!(quantity_in(&n("0"), 0), Some(0));
        for bad in [
            "0",
            "-1",
            "100",
            "2147483648",
            "9223372036854775808",
            "1.5",
            "1e3",
        ] {
            assert_eq!(quantity_in(&n(bad), 1), None, "{bad}");
        }
    }
}
