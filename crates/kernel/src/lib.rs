//! Shared vocabulary of every Comptoir service. No IO here: types and rules only.
//!
//! Money is always an integer amount of minor units with an ISO 4217 currency: never a float.

use serde::{Deserialize, Serialize};
use std::fmt;

pub mod codes;
pub mod ids;
pub mod money;
pub mod sku;

pub use ids::{CartId, OrderId, PaymentId};
pub use money::Money;

/// Largest amount accepted anywhere (one hundred million major units of a two-decimal currency).
/// Anything above is a typo or an attack, and keeps sums of many lines far from `i64` overflow.
pub const MAX_AMOUNT_MINOR: i64 = 10_000_000_000;

/// An ISO 4217 currency that Comptoir accepts, with its number of decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(u8);

/// The currencies we accept. Short on purpose: each one must be tested with its exponent.
const CURRENCIES: &[(&str, u8)] = &[
    ("EUR", 2),
    ("USD", 2),
    ("GBP", 2),
    ("CHF", 2),
    ("CAD", 2),
    ("SEK", 2),
    ("DKK", 2),
    ("NOK", 2),
    ("PLN", 2),
    ("JPY", 0),
    ("KWD", 3),
];

impl Currency {
    /// The euro (index 0 of the table).
    pub const EUR: Currency = Currency(0);

    pub fn parse(code: &str) -> Result<Self, KernelError> {
        CURRENCIES
            .iter()
            .position(|(c, _)| *c == code)
            .map(|i| Currency(i as u8))
            .ok_or_else(|| KernelError::UnknownCurrency(code.chars().take(8).collect()))
    }
    pub fn code(&self) -> &'static str {
        CURRENCIES[usize::from(self.0)].0
    }
    /// Number of decimals of the minor unit (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u8 {
        CURRENCIES[usize::from(self.0)].1
    }
    pub fn all_codes() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|(c, _)| *c)
    }
}

impl TryFrom<String> for Currency {
    type Error = KernelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A VAT rate in basis points (2000 = 20 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub struct VatRate(i32);

impl VatRate {
    pub fn from_basis_points(bp: i32) -> Result<Self, KernelError> {
        if !(0..=10_000).contains(&bp) {
            return Err(KernelError::VatOutOfRange);
        }
        Ok(VatRate(bp))
    }
    pub fn basis_points(&self) -> i32 {
        self.0
    }
    /// The tax included in a gross (VAT-inclusive) amount, rounded half-up to the minor unit.
    pub fn included_tax(&self, gross_minor: i64) -> i64 {
        let bp = i128::from(self.0);
        let gross = i128::from(gross_minor);
        let num = gross * bp;
        let den = 10_000 + bp;
        // half-up rounding on non-negative amounts
        let tax = (num * 2 + den) / (den * 2);
        tax as i64
    }
}
impl TryFrom<i32> for VatRate {
    type Error = KernelError;
    fn try_from(v: i32) -> Result<Self, Self::Error> {
        VatRate::from_basis_points(v)
    }
}
impl From<VatRate> for i32 {
    fn from(v: VatRate) -> i32 {
        v.0
    }
}

mod schema {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};

    impl utoipa::PartialSchema for super::Currency {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::String))
                .description(Some("ISO 4217 currency code"))
                .enum_values(Some(super::Currency::all_codes()))
                .examples(["EUR"])
                .into()
        }
    }
    impl utoipa::ToSchema for super::Currency {}

    impl utoipa::PartialSchema for super::VatRate {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Integer))
                .description(Some("VAT rate in basis points (2000 = 20 %)"))
                .minimum(Some(0))
                .maximum(Some(10_000))
                .examples([2000])
                .into()
        }
    }
    impl utoipa::ToSchema for super::VatRate {}
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error(
        "unknown currency `{0}`; accepted: EUR, USD, GBP, CHF, CAD, SEK, DKK, NOK, PLN, JPY, KWD"
    )]
    UnknownCurrency(String),
    #[error("amount must not be negative")]
    NegativeAmount,
    #[error("amount is larger than {MAX_AMOUNT_MINOR} minor units")]
    AmountTooLarge,
    #[error("VAT rate must be between 0 and 10000 basis points")]
    VatOutOfRange,
    #[error("amounts in {left} and {right} cannot be added")]
    CurrencyMismatch {
        left: &'static str,
        right: &'static str,
    },
    #[error(
        "`{0}` is not an amount: digits, one decimal separator, as many decimals as the currency has"
    )]
    NotAnAmount(String),
}

/// Source of the current time, injectable so that tests can move it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> chrono::DateTime<chrono::Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;
impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

/// Lowercases, strips accents of Latin letters and collapses everything else to single spaces:
/// the form that text search compares, identical on SQLite and PostgreSQL.
pub fn fold_for_search(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = true;
    for ch in s.chars().flat_map(char::to_lowercase) {
        let mapped = match ch {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            'œ' => {
                out.push('o');
                'e'
            }
            'æ' => {
                out.push('a');
                'e'
            }
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        if mapped == ' ' {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
        } else {
            out.push(mapped);
            last_space = false;
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

/// The one search rule of the API and the shop: how a query is folded and split into words,
/// and what it matches.
///
/// - Text is folded by [`fold_for_search`]: lower case, Latin accents stripped (`rôle` → `role`,
///   `Œ` → `oe`).
/// - Word characters are letters and digits (Unicode alphanumerics); everything else
///   (spaces, hyphens, apostrophes, quotes, `=`, `-`, `%`, `_`...) only separates words, so
///   `t-shirt` is the words `t` and `shirt`, `l'eau` is `l` and `eau`, `42mm` stays one word.
///   No word ever holds a SQL `LIKE` wildcard.
/// - A product matches when its folded text ([`search_haystack`]) contains every word (as a
///   substring: `42` finds `42` and `420`, `veste` finds `vestes`). Repeated words count once.
/// - A query with nothing but spaces asks for nothing: no text filter ([`SearchQuery::is_blank`]).
///   A query with characters but no word at all (`' --`, `!!!`) matches nothing: a shopper who
///   typed only punctuation did not ask for the whole catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchQuery {
    words: Vec<String>,
    blank: bool,
}

impl SearchQuery {
    pub fn parse(q: &str) -> Self {
        let mut words: Vec<String> = Vec::new();
        for w in fold_for_search(q).split(' ').filter(|w| !w.is_empty()) {
            if !words.iter().any(|x| x == w) {
                words.push(w.to_string());
            }
        }
        SearchQuery {
            words,
            blank: q.trim().is_empty(),
        }
    }

    /// The folded words, each to be found in the text.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Nothing typed: no text filter at all.
    pub fn is_blank(&self) -> bool {
        self.blank
    }

    /// Something typed but no word (only punctuation): no product matches.
    pub fn matches_nothing(&self) -> bool {
        !self.blank && self.words.is_empty()
    }

    /// Whether a text folded by [`search_haystack`] matches.
    pub fn matches(&self, haystack: &str) -> bool {
        !self.matches_nothing() && self.words.iter().all(|w| haystack.contains(w.as_str()))
    }
}

/// The folded text a product is searched in: its parts folded by [`fold_for_search`], with a
/// space at each end (so that a word can be looked for as ` word ` too).
pub fn search_haystack<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let joined = parts.into_iter().collect::<Vec<_>>().join(" ");
    format!(" {} ", fold_for_search(&joined))
}

/// Turns a name into a URL slug: `Veste imperméable` → `veste-impermeable`.
pub fn slugify(s: &str) -> String {
    fold_for_search(s).replace(' ', "-")
}

/// Validates a GTIN (EAN-8, UPC-A, EAN-13, GTIN-14) check digit.
pub fn gtin_is_valid(code: &str) -> bool {
    let len = code.len();
    if !matches!(len, 8 | 12 | 13 | 14) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u32> = code.bytes().map(|b| u32::from(b - b'0')).collect();
    let (body, check) = digits.split_at(len - 1);
    gtin_check_digit(body) == check[0]
}

/// Computes the GTIN check digit of the digits before it.
pub fn gtin_check_digit(body: &[u32]) -> u32 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_parse_and_exponent() {
        assert_eq!(Currency::parse("EUR").map(|c| c.exponent()), Ok(2));
        assert_eq!(Currency::parse("JPY").map(|c| c.exponent()), Ok(0));
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("XXX").is_err());
    }

    #[test]
    fn vat_included_tax_rounds_half_up() {
        let v = VatRate::from_basis_points(2000).expect("vat");
        assert_eq!(v.included_tax(12000), 2000);
        assert_eq!(v.included_tax(999), 167); // 999 * 0.2 / 1.2 = 166.5
        assert_eq!(
            VatRate::from_basis_points(550)
                .expect("vat")
                .included_tax(0),
            0
        );
        assert!(VatRate::from_basis_points(-1).is_err());
        assert!(VatRate::from_basis_points(10_001).is_err());
    }

    #[test]
    fn fold_and_slug() {
        assert_eq!(
            fold_for_search("  Veste IMPERMÉABLE, homme!"),
            "veste impermeable homme"
        );
        assert_eq!(
            slugify("Chaussures de trail — Œuvre"),
            "chaussures-de-trail-oeuvre"
        );
    }

    #[test]
    fn search_queries_split_into_words_one_way() {
        let words = |q: &str| SearchQuery::parse(q).words().to_vec();
        // SQL meta-characters are separators, never words
        assert_eq!(words("' OR 1=1 --"), ["or", "1"]);
        assert_eq!(words("%_%"), Vec::<String>::new());
        // accents and case
        assert_eq!(words("Chaussure RÔLE"), ["chaussure", "role"]);
        assert_eq!(words("ŒUVRE"), ["oeuvre"]);
        // hyphens and apostrophes separate
        assert_eq!(words("T-Shirt"), ["t", "shirt"]);
        assert_eq!(words("l'eau d’ici"), ["l", "eau", "d", "ici"]);
        // digits and units
        assert_eq!(words("42"), ["42"]);
        assert_eq!(words("42 mm 20L"), ["42", "mm", "20l"]);
        // repeated words count once; spaces of every kind
        assert_eq!(words(" veste\tVESTE\u{a0}pluie "), ["veste", "pluie"]);
    }

    #[test]
    fn blank_queries_filter_nothing_and_punctuation_matches_nothing() {
        let hay = search_haystack(["Veste de pluie Glaz", "Armorik", "VST-001"]);
        assert_eq!(hay, " veste de pluie glaz armorik vst 001 ");
        for q in ["", "   "] {
            let s = SearchQuery::parse(q);
            assert!(
                s.is_blank() && !s.matches_nothing() && s.matches(&hay),
                "{q:?}"
            );
        }
        for q in ["' --", "!!!", "=", "-", "%"] {
            let s = SearchQuery::parse(q);
            assert!(
                !s.is_blank() && s.matches_nothing() && !s.matches(&hay),
                "{q:?}"
            );
        }
        assert!(SearchQuery::parse("VESTE glaz").matches(&hay));
        assert!(SearchQuery::parse("vst-001").matches(&hay));
        assert!(
            SearchQuery::parse("vest").matches(&hay),
            "a prefix is a substring"
        );
        assert!(
            !SearchQuery::parse("veste rouge").matches(&hay),
            "every word"
        );
    }

    #[test]
    fn gtin_checks() {
        assert!(gtin_is_valid("4006381333931"));
        assert!(!gtin_is_valid("4006381333932"));
        assert!(!gtin_is_valid("40063813339a1"));
        assert!(gtin_is_valid("96385074"));
    }
}
