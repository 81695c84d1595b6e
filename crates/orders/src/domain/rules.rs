//! The rules a checkout request must meet before a saga starts: the e-mail, the delivery
//! address, the lines priced at the cart's (repriced) unit prices, the delivery fee and the
//! amount cap.

use super::{Address, Fulfilment, OrderLine};
use contracts::carts::CartLine;
use kernel::{Currency, Money};

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
    /// A line in another currency than the cart's, or a home delivery for a cart in a currency
    /// the delivery fee is not priced in.
    #[error("the cart is in {cart}; {what} is in {other}")]
    CurrencyMismatch {
        cart: Currency,
        other: Currency,
        what: &'static str,
    },
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

/// The order lines and their subtotal, every line in the cart's `currency`.
pub fn price_lines(
    currency: Currency,
    cart: &[CartLine],
) -> Result<(Vec<OrderLine>, Money), RuleError> {
    let mut lines = Vec::with_capacity(cart.len());
    let mut subtotal = Money::zero(currency);
    for l in cart {
        if l.unit_price.currency() != currency {
            return Err(RuleError::CurrencyMismatch {
                cart: currency,
                other: l.unit_price.currency(),
                what: "a line",
            });
        }
        let line_total = l
            .unit_price
            .times(l.quantity)
            .map_err(|_| RuleError::AmountTooLarge)?;
        subtotal = subtotal
            .checked_add(line_total)
            .map_err(|_| RuleError::AmountTooLarge)?;
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

/// The home delivery fee and the subtotal from which delivery is free, in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRate {
    pub fee: Money,
    pub free_from: Money,
}

/// The delivery fee: the rate's fee for a home delivery under its threshold, nothing for a
/// click & collect. A home delivery of a cart in another currency than the rate's is refused
/// (there is no rate to charge), never charged a number in the wrong unit.
pub fn shipping(
    fulfilment: &Fulfilment,
    subtotal: Money,
    rate: &DeliveryRate,
) -> Result<Money, RuleError> {
    match fulfilment {
        Fulfilment::Collect { .. } => Ok(Money::zero(subtotal.currency())),
        Fulfilment::Delivery { .. } if rate.fee.currency() != subtotal.currency() => {
            Err(RuleError::CurrencyMismatch {
                cart: subtotal.currency(),
                other: rate.fee.currency(),
                what: "home delivery",
            })
        }
        Fulfilment::Delivery { .. } if subtotal.minor() < rate.free_from.minor() => Ok(rate.fee),
        Fulfilment::Delivery { .. } => Ok(Money::zero(subtotal.currency())),
    }
}

/// The amount charged, at most `kernel::MAX_AMOUNT_MINOR`.
pub fn total(subtotal: Money, shipping: Money) -> Result<Money, RuleError> {
    subtotal
        .checked_add(shipping)
        .ok()
        .filter(|t| t.minor() <= kernel::MAX_AMOUNT_MINOR)
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

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    #[test]
    fn delivery_is_free_from_the_threshold_and_collect_always() {
        let home = Fulfilment::Delivery { address: address() };
        let collect = Fulfilment::Collect {
            store: "rennes".into(),
        };
        let rate = DeliveryRate {
            fee: eur(490),
            free_from: eur(5000),
        };
        assert_eq!(shipping(&home, eur(4999), &rate), Ok(eur(490)));
        assert_eq!(shipping(&home, eur(5000), &rate), Ok(eur(0)));
        assert_eq!(shipping(&collect, eur(10), &rate), Ok(eur(0)));
        // a cart in yen is never charged 490 yen for a rate in euro cents
        let jpy = Currency::parse("JPY").expect("JPY");
        assert!(matches!(
            shipping(&home, Money::new(1200, jpy), &rate),
            Err(RuleError::CurrencyMismatch { .. })
        ));
        assert_eq!(
            shipping(&collect, Money::new(1200, jpy), &rate),
            Ok(Money::zero(jpy))
        );
    }

    #[test]
    fn amounts_past_the_cap_or_overflowing_are_refused() {
        let line = |unit_price, quantity| CartLine {
            sku: "A-1".into(),
            name: "a".into(),
            quantity,
            unit_price: eur(unit_price),
        };
        let eu = Currency::EUR;
        assert_eq!(
            price_lines(eu, &[line(i64::MAX, 2)]).map(|x| x.1),
            Err(RuleError::AmountTooLarge)
        );
        assert_eq!(
            price_lines(eu, &[line(250, 2), line(1, 3)]).map(|x| x.1),
            Ok(eur(503))
        );
        let yen_line = CartLine {
            unit_price: Money::new(100, Currency::parse("JPY").expect("JPY")),
            ..line(1, 1)
        };
        assert!(matches!(
            price_lines(eu, &[line(250, 2), yen_line]),
            Err(RuleError::CurrencyMismatch { .. })
        ));
        assert_eq!(
            total(eur(kernel::MAX_AMOUNT_MINOR), eur(0)),
            Ok(eur(kernel::MAX_AMOUNT_MINOR))
        );
        assert_eq!(
            total(eur(kernel::MAX_AMOUNT_MINOR), eur(1)),
            Err(RuleError::AmountTooLarge)
        );
        assert_eq!(
            total(eur(i64::MAX), eur(490)),
            Err(RuleError::AmountTooLarge)
        );
        assert_eq!(email("  me@example.org "), Ok("me@example.org".into()));
        assert_eq!(email("me"), Err(RuleError::InvalidEmail));
    }
}
