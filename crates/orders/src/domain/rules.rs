//! The rules a checkout request must meet before a saga starts: the e-mail, the delivery
//! address, the lines priced at the cart's (repriced) unit prices, the delivery fee and the
//! amount cap.

use super::{Address, Fulfilment, OrderLine};
use contracts::carts::CartLine;

/// A checkout request that breaks one of these rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("not an e-mail address")]
    InvalidEmail,
    /// A required address field (`name`, `line1`, `postcode`, `city`) is blank or too long.
    #[error("address field {0} is required, and not too long")]
    InvalidAddress(&'static str),
    #[error("the country is not an ISO 3166-1 alpha-2 code")]
    InvalidCountry,
    /// A line, the subtotal or the total overflows, or the total is above
    /// `kernel::MAX_AMOUNT_MINOR`.
    #[error("amount too large")]
    AmountTooLarge,
}

/// The confirmation address, trimmed.
pub fn email(raw: &str) -> Result<String, RuleError> {
    let email = raw.trim().to_string();
    if email.len() < 3 || email.len() > 254 || !email.contains('@') {
        return Err(RuleError::InvalidEmail);
    }
    Ok(email)
}

pub fn check_address(a: &Address) -> Result<(), RuleError> {
    let fields = [
        ("name", &a.name, 100),
        ("line1", &a.line1, 200),
        ("postcode", &a.postcode, 16),
        ("city", &a.city, 100),
    ];
    for (f, v, max) in fields {
        if v.trim().is_empty() || v.chars().count() > max {
            return Err(RuleError::InvalidAddress(f));
        }
    }
    if a.country.len() != 2 || !a.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(RuleError::InvalidCountry);
    }
    Ok(())
}

/// The order lines and their subtotal.
pub fn price_lines(cart: &[CartLine]) -> Result<(Vec<OrderLine>, i64), RuleError> {
    let mut lines = Vec::with_capacity(cart.len());
    let mut subtotal: i64 = 0;
    for l in cart {
        let line_total = l
            .unit_price
            .checked_mul(l.quantity)
            .ok_or(RuleError::AmountTooLarge)?;
        subtotal = subtotal
            .checked_add(line_total)
            .ok_or(RuleError::AmountTooLarge)?;
        lines.push(OrderLine {
            sku: l.sku.clone(),
            name: l.name.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price,
            line_total,
        });
    }
    Ok((lines, subtotal))
}

/// The delivery fee: `fee` for a home delivery under `free_from`, nothing otherwise.
pub fn shipping(fulfilment: &Fulfilment, subtotal: i64, fee: i64, free_from: i64) -> i64 {
    match fulfilment {
        Fulfilment::Delivery { .. } if subtotal < free_from => fee,
        _ => 0,
    }
}

/// The amount charged, at most `kernel::MAX_AMOUNT_MINOR`.
pub fn total(subtotal: i64, shipping: i64) -> Result<i64, RuleError> {
    subtotal
        .checked_add(shipping)
        .filter(|t| *t <= kernel::MAX_AMOUNT_MINOR)
        .ok_or(RuleError::AmountTooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> Address {
        Address {
            name: "Anne".into(),
            line1: "1 rue de Brest".into(),
            line2: None,
            postcode: "29000".into(),
            city: "Quimper".into(),
            country: "FR".into(),
        }
    }

    #[test]
    fn an_address_names_its_first_bad_field() {
        assert_eq!(check_address(&address()), Ok(()));
        let blank = Address {
            postcode: "  ".into(),
            ..address()
        };
        assert_eq!(
            check_address(&blank),
            Err(RuleError::InvalidAddress("postcode"))
        );
        let lower = Address {
            country: "fr".into(),
            ..address()
        };
        assert_eq!(check_address(&lower), Err(RuleError::InvalidCountry));
    }

    #[test]
    fn delivery_is_free_from_the_threshold_and_collect_always() {
        let home = Fulfilment::Delivery { address: address() };
        let collect = Fulfilment::Collect {
            store: "rennes".into(),
        };
        assert_eq!(shipping(&home, 4999, 490, 5000), 490);
        assert_eq!(shipping(&home, 5000, 490, 5000), 0);
        assert_eq!(shipping(&collect, 10, 490, 5000), 0);
    }

    #[test]
    fn amounts_past_the_cap_or_overflowing_are_refused() {
        let line = |unit_price, quantity| CartLine {
            sku: "A-1".into(),
            name: "a".into(),
            quantity,
            unit_price,
        };
        assert_eq!(
            price_lines(&[line(i64::MAX, 2)]).map(|x| x.1),
            Err(RuleError::AmountTooLarge)
        );
        assert_eq!(
            price_lines(&[line(250, 2), line(1, 3)]).map(|x| x.1),
            Ok(503)
        );
        assert_eq!(
            total(kernel::MAX_AMOUNT_MINOR, 0),
            Ok(kernel::MAX_AMOUNT_MINOR)
        );
        assert_eq!(
            total(kernel::MAX_AMOUNT_MINOR, 1),
            Err(RuleError::AmountTooLarge)
        );
        assert_eq!(total(i64::MAX, 490), Err(RuleError::AmountTooLarge));
        assert_eq!(email("  me@example.org "), Ok("me@example.org".into()));
        assert_eq!(email("me"), Err(RuleError::InvalidEmail));
    }
}
