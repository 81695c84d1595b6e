//! [`Money`]: an integer amount of minor units with its currency. Sums and products are
//! checked (no overflow, no mixing of currencies); amounts are written and read by the
//! currency's exponent (`129.90 EUR`, `1500 JPY`, `1.234 KWD`), never through a float.

use crate::{Currency, KernelError, MAX_AMOUNT_MINOR};
use serde::{Deserialize, Serialize};

/// An amount of money: integer minor units and a currency.
///
/// Its own serde shape is `{"amount_minor": 12990, "currency": "EUR"}`. Resources that carry one
/// currency for many amounts (an order, a cart, a payment) write the amounts as bare integers
/// beside a single `currency` field instead; [`minor_units`] serialises a `Money` that way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    /// Amount in minor units (cents for EUR).
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    /// Any amount, as stored or computed (a refund total, a difference). Use [`Money::price`]
    /// for an amount that a request gives as a price.
    pub const fn new(amount_minor: i64, currency: Currency) -> Self {
        Money {
            amount_minor,
            currency,
        }
    }

    pub const fn zero(currency: Currency) -> Self {
        Money::new(0, currency)
    }

    /// A price: not negative, not absurd.
    pub fn price(amount_minor: i64, currency: Currency) -> Result<Self, KernelError> {
        if amount_minor < 0 {
            return Err(KernelError::NegativeAmount);
        }
        if amount_minor > MAX_AMOUNT_MINOR {
            return Err(KernelError::AmountTooLarge);
        }
        Ok(Money::new(amount_minor, currency))
    }

    pub const fn minor(&self) -> i64 {
        self.amount_minor
    }

    pub const fn currency(&self) -> Currency {
        self.currency
    }

    pub const fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }

    /// Another amount in the same currency.
    pub const fn with_minor(&self, amount_minor: i64) -> Self {
        Money::new(amount_minor, self.currency)
    }

    /// `self + other`; refused across currencies and on overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, KernelError> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_add(other.amount_minor)
            .map(|a| self.with_minor(a))
            .ok_or(KernelError::AmountTooLarge)
    }

    /// `self - other`; refused across currencies and on overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, KernelError> {
        self.same_currency(other)?;
        self.amount_minor
            .checked_sub(other.amount_minor)
            .map(|a| self.with_minor(a))
            .ok_or(KernelError::AmountTooLarge)
    }

    /// `quantity × self` (a line total); refused on overflow.
    pub fn times(self, quantity: i64) -> Result<Money, KernelError> {
        self.amount_minor
            .checked_mul(quantity)
            .map(|a| self.with_minor(a))
            .ok_or(KernelError::AmountTooLarge)
    }

    /// The sum of `amounts`, all in `currency` (zero when there is none).
    pub fn sum(
        currency: Currency,
        amounts: impl IntoIterator<Item = Money>,
    ) -> Result<Money, KernelError> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    fn same_currency(&self, other: Money) -> Result<(), KernelError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(KernelError::CurrencyMismatch {
                left: self.currency.code(),
                right: other.currency.code(),
            })
        }
    }

    /// The amount in major units, split by the currency's exponent: for `-1234.50 EUR`,
    /// `negative`, units `1234` and fraction `"50"`; the fraction is empty for JPY.
    pub fn parts(&self) -> MoneyParts {
        let exp = u32::from(self.currency.exponent());
        let abs = self.amount_minor.unsigned_abs();
        let div = 10u64.pow(exp);
        MoneyParts {
            negative: self.amount_minor < 0,
            units: abs / div,
            fraction: if exp == 0 {
                String::new()
            } else {
                format!("{:0width$}", abs % div, width = exp as usize)
            },
        }
    }

    /// The amount in major units with a point, as typed into a form: `129.90`, `1500`, `1.234`.
    pub fn plain(&self) -> String {
        let p = self.parts();
        let sign = if p.negative { "-" } else { "" };
        if p.fraction.is_empty() {
            format!("{sign}{}", p.units)
        } else {
            format!("{sign}{}.{}", p.units, p.fraction)
        }
    }

    /// Formats as a plain decimal string with the code, e.g. `129.90 EUR`.
    pub fn display(&self) -> String {
        self.to_string()
    }

    /// Reads an amount typed in major units: digits, at most one decimal separator (`.` or
    /// `,`), at most as many decimals as the currency has, spaces between digit groups allowed
    /// (`1 234,50`). Not negative, not above [`MAX_AMOUNT_MINOR`].
    pub fn parse_major(s: &str, currency: Currency) -> Result<Money, KernelError> {
        let bad = || KernelError::NotAnAmount(s.chars().take(32).collect());
        let cleaned: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
            .collect();
        let (int, frac) = match cleaned.find(['.', ',']) {
            Some(i) => (&cleaned[..i], &cleaned[i + 1..]),
            None => (cleaned.as_str(), ""),
        };
        let exp = usize::from(currency.exponent());
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > exp
            || (exp == 0 && cleaned.len() != int.len())
            || int.len() > 15
        {
            return Err(bad());
        }
        let units: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut fraction: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        for _ in frac.len()..exp {
            fraction *= 10;
        }
        let minor = units
            .checked_mul(10i64.pow(exp as u32))
            .and_then(|u| u.checked_add(fraction))
            .ok_or(KernelError::AmountTooLarge)?;
        Money::price(minor, currency)
    }
}

impl std::fmt::Display for Money {
    /// `129.90 EUR`: see [`Money::display`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.plain(), self.currency)
    }
}

/// An amount split for writing: see [`Money::parts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyParts {
    pub negative: bool,
    pub units: u64,
    /// Exactly as many digits as the currency's exponent.
    pub fraction: String,
}

/// Serialises a [`Money`] field as its bare minor units, for resources that name their
/// currency once: `#[serde(serialize_with = "kernel::money::minor_units")]`.
pub fn minor_units<S: serde::Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(m.amount_minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(c: &str) -> Currency {
        Currency::parse(c).expect("currency")
    }

    #[test]
    fn money_rejects_negative_and_absurd() {
        assert_eq!(
            Money::price(-1, Currency::EUR),
            Err(KernelError::NegativeAmount)
        );
        assert_eq!(
            Money::price(MAX_AMOUNT_MINOR + 1, Currency::EUR),
            Err(KernelError::AmountTooLarge)
        );
        assert!(Money::price(0, Currency::EUR).is_ok());
    }

    #[test]
    fn money_display_follows_exponent() {
        let m = |a, c| Money::new(a, cur(c));
        assert_eq!(m(12990, "EUR").display(), "129.90 EUR");
        assert_eq!(m(5, "EUR").display(), "0.05 EUR");
        assert_eq!(m(-5, "EUR").display(), "-0.05 EUR");
        assert_eq!(m(1500, "JPY").display(), "1500 JPY");
        assert_eq!(m(1234, "KWD").display(), "1.234 KWD");
        assert_eq!(m(1234, "KWD").plain(), "1.234");
        assert_eq!(m(1500, "JPY").parts().fraction, "");
    }

    #[test]
    fn sums_never_mix_currencies_nor_overflow() {
        let eur = Money::new(100, Currency::EUR);
        let jpy = Money::new(100, cur("JPY"));
        assert_eq!(eur.checked_add(eur), Ok(Money::new(200, Currency::EUR)));
        assert_eq!(
            eur.checked_sub(eur.times(3).expect("x3"))
                .map(|m| m.minor()),
            Ok(-200)
        );
        assert!(matches!(
            eur.checked_add(jpy),
            Err(KernelError::CurrencyMismatch { .. })
        ));
        assert_eq!(
            Money::new(i64::MAX, Currency::EUR).checked_add(eur),
            Err(KernelError::AmountTooLarge)
        );
        assert_eq!(eur.times(i64::MAX), Err(KernelError::AmountTooLarge));
        assert_eq!(
            Money::sum(Currency::EUR, [eur, eur, eur]),
            Ok(Money::new(300, Currency::EUR))
        );
        assert_eq!(
            Money::sum(Currency::EUR, []),
            Ok(Money::zero(Currency::EUR))
        );
        assert!(Money::sum(Currency::EUR, [jpy]).is_err());
    }

    #[test]
    fn amounts_are_read_by_the_currency_exponent() {
        let p = |s: &str, c: &str| Money::parse_major(s, cur(c)).map(|m| m.minor());
        assert_eq!(p("59,90", "EUR"), Ok(5990));
        assert_eq!(p("59.9", "EUR"), Ok(5990));
        assert_eq!(p("59", "EUR"), Ok(5900));
        assert_eq!(p("1 234,50", "EUR"), Ok(123_450));
        assert_eq!(p(",5", "EUR"), Ok(50));
        assert_eq!(p("1500", "JPY"), Ok(1500));
        assert_eq!(p("1.234", "KWD"), Ok(1234));
        assert_eq!(p("1.2", "KWD"), Ok(1200));
        assert!(p("15.5", "JPY").is_err(), "no decimals in yen");
        assert!(p("15.", "JPY").is_err());
        assert!(p("1,234", "EUR").is_err(), "three decimals in euros");
        assert!(p("-3", "EUR").is_err());
        assert!(p("", "EUR").is_err());
        assert!(p(".", "EUR").is_err());
        assert!(p("1.2.3", "EUR").is_err());
        assert!(p("abc", "EUR").is_err());
        assert!(p("1e3", "EUR").is_err());
        assert_eq!(
            p("999999999999999", "EUR"),
            Err(KernelError::AmountTooLarge)
        );
        for (m, c) in [(12_345, "EUR"), (7, "KWD"), (42, "JPY")] {
            let money = Money::new(m, cur(c));
            assert_eq!(Money::parse_major(&money.plain(), cur(c)), Ok(money));
        }
    }

    #[test]
    fn a_resource_writes_bare_minor_units() {
        #[derive(Serialize)]
        struct Total {
            currency: Currency,
            #[serde(serialize_with = "minor_units")]
            total: Money,
        }
        let t = Total {
            currency: Currency::EUR,
            total: Money::new(12990, Currency::EUR),
        };
        assert_eq!(
            serde_json::to_value(&t).expect("json"),
            serde_json::json!({"currency": "EUR", "total": 12990})
        );
    }
}
