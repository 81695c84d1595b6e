//! Products (head office, `catalog:write`): list and search, create, edit (fields, variants'
//! price and state, a new variant), archive. Every write goes through the catalogue API and
//! then refreshes the storefront's read model, so the shop shows it at once.
//!
//! This file holds what the forms share (the writer gate, the selects' choices, the parsing of
//! typed values, the message for an API refusal); `list`, `create`, `edit` (with archiving) and
//! `variants` hold the pages and their writes.

use super::text::A;
use super::{Refusal, get_or_default, hundredths};
use crate::WebState;
use crate::api::Problem;
use crate::i18n::Lang;
use crate::pages::error_page;
use crate::session::Visitor;
use axum::http::StatusCode;
use catalog::model::{Brand, CategoryNode};
use platform::authz::{Principal, perm};
use uuid::Uuid;

/// The staff member if they may write the catalogue; the answer otherwise.
fn writer(st: &WebState, l: Lang, v: &Visitor, p: Principal) -> Result<Principal, Refusal> {
    if p.has(perm::CATALOG_WRITE) {
        Ok(p)
    } else {
        Err(Box::new(error_page(st, l, Some(v), StatusCode::FORBIDDEN)))
    }
}

macro_rules! gate_writer {
    ($st:expr, $l:expr, $v:expr, $gate:expr) => {
        match $gate.and_then(|p| $crate::admin::products::writer(&$st, $l, &$v, p)) {
            Ok(p) => p,
            Err(r) => return *r,
        }
    };
}

// Declared after `gate_writer!` so that its pages can use it.
mod create;
mod edit;
mod list;
mod variants;

pub(crate) use create::{create, new_page};
pub(crate) use edit::{archive, edit_page, update};
pub(crate) use list::list;
pub(crate) use variants::{add_variant, update_variant};

/// Brands and categories for the selects: (id, label).
async fn choices(
    st: &WebState,
    v: &Visitor,
    l: Lang,
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let brands: Vec<Brand> = get_or_default(st, v, "/api/catalog/brands").await;
    let tree: Vec<CategoryNode> = get_or_default(st, v, "/api/catalog/categories").await;
    let mut cats = Vec::new();
    fn walk(l: Lang, nodes: &[CategoryNode], prefix: &str, out: &mut Vec<(String, String)>) {
        for n in nodes {
            let name = l.pick(&n.category.name);
            let label = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix} › {name}")
            };
            out.push((n.category.id.to_string(), label.clone()));
            walk(l, &n.children, &label, out);
        }
    }
    walk(l, &tree, "", &mut cats);
    (
        brands
            .into_iter()
            .map(|b| (b.id.to_string(), b.name))
            .collect(),
        cats,
    )
}

fn sku_of(s: &str) -> String {
    s.trim().to_uppercase()
}

/// An optional id from a select (empty: none); `Err` when it is not an id.
fn opt_id(s: &str) -> Result<Option<Uuid>, ()> {
    if s.is_empty() {
        Ok(None)
    } else {
        Uuid::parse_str(s).map(Some).map_err(|_| ())
    }
}

/// A VAT rate typed in percent (empty: 20 %), in basis points.
fn vat_of(s: &str) -> Option<i64> {
    if s.trim().is_empty() {
        return Some(2000);
    }
    hundredths(s).filter(|bp| *bp <= 10_000)
}

/// The status of a re-rendered form after an API refusal.
fn client_status(e: &Problem) -> StatusCode {
    StatusCode::from_u16(e.status)
        .ok()
        .filter(|s| s.is_client_error())
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

fn refusal(a: &A, e: &Problem) -> String {
    match (e.status, e.code.as_str()) {
        (409, "sku_taken") => a.err_sku_taken.to_string(),
        (409, "slug_taken") => a.err_slug_taken.to_string(),
        (409, "product_archived") => a.err_archived.to_string(),
        (409, _) | (412, _) => a.err_changed.to_string(),
        (422, _) | (400, _) => a.err_form.to_string(),
        (429, _) | (503, _) => a.err_busy.to_string(),
        _ => a.err_generic.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vat_defaults_to_twenty_percent() {
        assert_eq!(vat_of(""), Some(2000));
        assert_eq!(vat_of("5,5"), Some(550));
        assert_eq!(vat_of("120"), None);
        assert_eq!(vat_of("x"), None);
    }
}
