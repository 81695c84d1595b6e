//! Catalogue types and rules. No IO, no HTTP: everything here is checked by unit tests (the
//! OpenAPI schemas of the types that travel on the wire are in `http::schema`).

use kernel::{Currency, Money, VatRate};
use serde::{Deserialize, Serialize};

pub const MAX_NAME: usize = 200;
pub const MAX_DESCRIPTION: usize = 10_000;
pub const MAX_SLUG: usize = 120;
pub const MAX_VARIANTS: usize = 200;
pub const MAX_ATTRIBUTES: usize = 50;
pub const MAX_IMAGES: usize = 20;
pub const MAX_SKU: usize = kernel::sku::MAX_LEN;
pub const MAX_OPTION: usize = 40;

/// Publication state of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Visible to the back office only.
    Draft,
    /// Visible to everyone.
    Published,
    /// Withdrawn from sale; kept for orders and history.
    Archived,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Published => "published",
            Status::Archived => "archived",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "draft" => Some(Status::Draft),
            "published" => Some(Status::Published),
            "archived" => Some(Status::Archived),
            _ => None,
        }
    }
}

/// A text in French and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Localized {
    pub fr: String,
    pub en: String,
}

/// The type of an attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    Text,
    Integer,
    Boolean,
    List,
}

/// A typed product attribute, e.g. `{"code": "weight_g", "type": "integer", "value": 320}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    /// Lowercase code, `[a-z][a-z0-9_]*`.
    pub code: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// A string (`text`), an integer (`integer`), a boolean (`boolean`) or an array of strings
    /// (`list`).
    pub value: serde_json::Value,
}

/// A field that breaks a rule: its path (`variants[2].sku`), a stable code (`too_long`; the
/// table of error codes lists them all) and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

/// Collects field errors, then fails once with all of them.
#[derive(Default, Debug)]
pub struct Errors(pub Vec<Violation>);

impl Errors {
    pub fn add(&mut self, field: impl Into<String>, code: &'static str, msg: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            code,
            message: msg.into(),
        });
    }
    pub fn into_result(self) -> Result<(), Vec<Violation>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

pub fn check_text(errs: &mut Errors, field: &str, v: &str, max: usize, required: bool) {
    let n = v.chars().count();
    if required && v.trim().is_empty() {
        errs.add(field, "required", "must not be empty");
    } else if n > max {
        errs.add(
            field,
            "too_long",
            format!("at most {max} characters ({n} given)"),
        );
    } else if v
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        errs.add(
            field,
            "invalid_characters",
            "control characters are not allowed",
        );
    }
}

pub fn check_localized(errs: &mut Errors, field: &str, v: &Localized, max: usize, required: bool) {
    check_text(errs, &format!("{field}.fr"), &v.fr, max, required);
    check_text(errs, &format!("{field}.en"), &v.en, max, required);
}

pub fn check_slug(errs: &mut Errors, field: &str, v: &str) {
    if v.is_empty() || v.len() > MAX_SLUG {
        errs.add(
            field,
            "invalid_length",
            format!("1 to {MAX_SLUG} characters"),
        );
    } else if !v
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || v.starts_with('-')
        || v.ends_with('-')
        || v.contains("--")
    {
        errs.add(
            field,
            "invalid_format",
            "lowercase letters, digits and single hyphens, e.g. `veste-pluie-kerlouan`",
        );
    } else if uuid::Uuid::parse_str(v).is_ok() {
        errs.add(field, "invalid_format", "a slug must not look like an id");
    }
}

pub fn check_sku(errs: &mut Errors, field: &str, v: &str) {
    if let Err(e) = kernel::sku::check(v) {
        errs.add(field, e.code(), e.message());
    }
}

pub fn check_barcode(errs: &mut Errors, field: &str, v: &str) {
    if !kernel::gtin_is_valid(v) {
        errs.add(
            field,
            "invalid_barcode",
            "a GTIN (EAN-8, UPC-A, EAN-13 or GTIN-14) with a valid check digit",
        );
    }
}

pub fn check_price(errs: &mut Errors, field: &str, amount: i64, currency: Currency) {
    match Money::price(amount, currency) {
        Ok(_) => {}
        Err(kernel::KernelError::NegativeAmount) => {
            errs.add(field, "negative", "a price must not be negative")
        }
        Err(e) => errs.add(field, "out_of_range", e.to_string()),
    }
}

pub fn check_vat(errs: &mut Errors, field: &str, bp: i32) -> Option<VatRate> {
    match VatRate::from_basis_points(bp) {
        Ok(v) => Some(v),
        Err(e) => {
            errs.add(field, "out_of_range", e.to_string());
            None
        }
    }
}

pub fn check_attributes(errs: &mut Errors, attrs: &[Attribute]) {
    if attrs.len() > MAX_ATTRIBUTES {
        errs.add(
            "attributes",
            "too_many",
            format!("at most {MAX_ATTRIBUTES} attributes"),
        );
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for (i, a) in attrs.iter().enumerate() {
        let f = format!("attributes[{i}]");
        let code_ok = !a.code.is_empty()
            && a.code.len() <= 40
            && a.code
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase())
            && a.code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !code_ok {
            errs.add(
                format!("{f}.code"),
                "invalid_format",
                "`[a-z][a-z0-9_]*`, at most 40",
            );
        } else if !seen.insert(a.code.clone()) {
            errs.add(format!("{f}.code"), "duplicate", "each attribute code once");
        }
        let v = &a.value;
        let ok = match a.kind {
            AttributeType::Text => v.as_str().is_some_and(|s| s.chars().count() <= 500),
            AttributeType::Integer => v.as_i64().is_some(),
            AttributeType::Boolean => v.is_boolean(),
            AttributeType::List => v.as_array().is_some_and(|items| {
                items.len() <= 50
                    && items
                        .iter()
                        .all(|x| x.as_str().is_some_and(|s| s.chars().count() <= 100))
            }),
        };
        if !ok {
            errs.add(
                format!("{f}.value"),
                "invalid_type",
                match a.kind {
                    AttributeType::Text => "a string of at most 500 characters",
                    AttributeType::Integer => "an integer",
                    AttributeType::Boolean => "true or false",
                    AttributeType::List => {
                        "an array of at most 50 strings of at most 100 characters"
                    }
                },
            );
        }
    }
}

/// The text that search compares, folded by the kernel's one search rule
/// ([`kernel::search_haystack`]), as the shop does.
pub fn search_text(
    name: &Localized,
    brand: Option<&str>,
    category: Option<&Localized>,
    skus: &[&str],
) -> String {
    let mut parts = vec![name.fr.as_str(), name.en.as_str()];
    parts.extend(brand);
    if let Some(c) = category {
        parts.push(&c.fr);
        parts.push(&c.en);
    }
    parts.extend(skus.iter().copied());
    kernel::search_haystack(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        let check = |s: &str| {
            let mut e = Errors::default();
            check_slug(&mut e, "slug", s);
            e.0.first().map(|f| f.code)
        };
        assert_eq!(check("veste-pluie"), None);
        assert_eq!(check("Veste"), Some("invalid_format"));
        assert_eq!(check("-a"), Some("invalid_format"));
        assert_eq!(check("a--b"), Some("invalid_format"));
        assert_eq!(check(""), Some("invalid_length"));
        assert_eq!(
            check("0190d4c6-3a4b-7c2d-8e9f-0a1b2c3d4e5f"),
            Some("invalid_format")
        );
    }

    #[test]
    fn attributes_are_typed() {
        let a = |kind, value| Attribute {
            code: "x".into(),
            kind,
            value,
        };
        let mut e = Errors::default();
        check_attributes(
            &mut e,
            &[
                a(AttributeType::Integer, serde_json::json!(3)),
                Attribute {
                    code: "y".into(),
                    kind: AttributeType::Boolean,
                    value: serde_json::json!("yes"),
                },
            ],
        );
        assert_eq!(e.0.len(), 1, "{:?}", e.0);
        assert!(e.0.iter().any(|f| f.field == "attributes[1].value"));
    }

    #[test]
    fn text_limits_count_characters() {
        let mut e = Errors::default();
        check_text(&mut e, "n", &"é".repeat(MAX_NAME), MAX_NAME, true);
        assert!(e.0.is_empty());
        check_text(&mut e, "n", &"é".repeat(MAX_NAME + 1), MAX_NAME, true);
        assert_eq!(e.0[0].code, "too_long");
    }
}
