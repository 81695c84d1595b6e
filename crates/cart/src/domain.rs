//! The cart and its lines (stored whole by a [`crate::store::CartStore`]) and the rules that
//! hold on them: the limits, what a SKU and a price may be, who sees a cart. No IO, no HTTP.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    pub id: Uuid,
    /// The customer's subject; `None` for a guest cart.
    pub owner: Option<String>,
    /// ISO 4217 code; every line is in this currency.
    pub currency: String,
    pub lines: Vec<Line>,
    /// 1 when created, +1 on every saved change (optimistic concurrency).
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

/// One SKU in a cart, with the price it had when it was added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    /// Price of one unit in minor units, as the catalogue gave it when the line was added.
    pub unit_price: i64,
    pub currency: String,
}

impl Line {
    /// `quantity × unit_price`, `None` on overflow.
    pub fn total(&self) -> Option<i64> {
        self.quantity.checked_mul(self.unit_price)
    }
}

impl Cart {
    /// The sum of the lines, `None` on overflow (never with the limits enforced on adding).
    pub fn subtotal(&self) -> Option<i64> {
        self.lines
            .iter()
            .try_fold(0i64, |acc, l| acc.checked_add(l.total()?))
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
pub fn price_in_range(p: i64) -> bool {
    (0..=kernel::MAX_AMOUNT_MINOR).contains(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owned_cart_is_visible_to_its_owner_only() {
        let mut c = Cart {
            id: Uuid::new_v4(),
            owner: None,
            currency: "EUR".into(),
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
