//! The cart and its lines (stored whole by a [`crate::store::CartStore`]) and the rules that
//! hold on them: the limits, what a SKU and a price may be, who sees a cart. No IO, no HTTP.

use kernel::{CartId, Currency, Money};
use serde::{Deserialize, Serialize};

pub use contracts::carts::PriceChange;
pub use contracts::catalog::PriceInfo;

/// Most of one SKU in a cart.
pub const MAX_QUANTITY: i64 = 99;
/// Most lines in a cart.
pub const MAX_LINES: usize = 50;
/// Longest SKU accepted in a request (the catalogue's limit).
pub const MAX_SKU: usize = 64;

/// A cart, as stored. Times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub id: CartId,
    /// The customer's subject; `None` for a guest cart.
    pub owner: Option<String>,
    /// Every line is in this currency.
    pub currency: Currency,
    pub lines: Vec<Line>,
    /// 1 when created, +1 on every saved change (optimistic concurrency).
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

/// One SKU in a cart, with the price it had when it was added. Stored as [`LineRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LineRecord", into = "LineRecord")]
pub struct Line {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    /// Price of one unit, as the catalogue gave it when the line was added.
    pub unit_price: Money,
}

/// A line as stored in the cart's JSON: the price in minor units beside its currency code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineRecord {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub currency: Currency,
}

impl From<LineRecord> for Line {
    fn from(r: LineRecord) -> Self {
        Line {
            sku: r.sku,
            name: r.name,
            quantity: r.quantity,
            unit_price: Money::new(r.unit_price, r.currency),
        }
    }
}

impl From<Line> for LineRecord {
    fn from(l: Line) -> Self {
        LineRecord {
            sku: l.sku,
            name: l.name,
            quantity: l.quantity,
            unit_price: l.unit_price.minor(),
            currency: l.unit_price.currency(),
        }
    }
}

impl Line {
    /// `quantity × unit_price`, `None` on overflow.
    pub fn total(&self) -> Option<Money> {
        self.unit_price.times(self.quantity).ok()
    }
}

impl Cart {
    /// The sum of the lines, `None` on overflow or a line in another currency (never with the
    /// rules enforced on adding).
    pub fn subtotal(&self) -> Option<Money> {
        Money::sum(
            self.currency,
            self.lines
                .iter()
                .map(Line::total)
                .collect::<Option<Vec<_>>>()?,
        )
        .ok()
    }

    /// Number of items (sum of quantities).
    pub fn item_count(&self) -> i64 {
        self.lines.iter().map(|l| l.quantity).sum()
    }

    pub fn line(&self, sku: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.sku == sku)
    }

    /// Whether `viewer` (a signed-in person's subject, `None` when anonymous) may see and change
    /// this cart: a guest cart is reachable by whoever has its id; an owned cart by its owner
    /// only.
    pub fn visible_to(&self, viewer: Option<&str>) -> bool {
        match &self.owner {
            None => true,
            Some(o) => viewer == Some(o.as_str()),
        }
    }
}

/// A SKU a request may name: not empty, at most [`MAX_SKU`] bytes.
pub fn valid_sku(sku: &str) -> bool {
    !sku.is_empty() && sku.len() <= MAX_SKU
}

/// A unit price a cart may hold: 0 to the kernel's largest amount.
pub fn price_in_range(p: Money) -> bool {
    (0..=kernel::MAX_AMOUNT_MINOR).contains(&p.minor())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owned_cart_is_visible_to_its_owner_only() {
        let mut c = Cart {
            id: CartId::new(),
            owner: None,
            currency: Currency::EUR,
            lines: vec![],
            version: 1,
            created_at: 0,
            updated_at: 0,
            expires_at: 1,
        };
        assert!(c.visible_to(None));
        assert!(c.visible_to(Some("alice")));
        c.owner = Some("alice".into());
        assert!(c.visible_to(Some("alice")));
        assert!(!c.visible_to(Some("bob")));
        assert!(!c.visible_to(None));
    }
}
