//! The product page: pictures, the variant picker, price with VAT, stock online and per store.

use super::L;
use crate::WebState;
use crate::pages::{Chrome, error_page, render};
use crate::session::Visitor;
use askama::Template;
use axum::extract::{Path, Query as Q, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;

/// One variant as the picker shows it.
struct VariantChoice {
    sku: String,
    label: String,
    price: String,
    available: i64,
    info: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "store/product.html")]
struct ProductPage {
    c: Chrome,
    slug: String,
    name: String,
    brand: String,
    description: String,
    price: String,
    vat_note: String,
    images: Vec<(String, String)>,
    variants: Vec<VariantChoice>,
    stores: Vec<(String, i64)>,
    online: i64,
    sold_out: bool,
    crumbs: Vec<(String, String)>,
    added: bool,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct ProductParams {
    added: Option<String>,
    error: Option<String>,
    sku: Option<String>,
}

pub(super) async fn product(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(slug): Path<String>,
    params: Q<ProductParams>,
) -> Response {
    let t = l.t();
    let params = params.0;
    let snap = match st.catalogue.snapshot().await {
        Ok(s) => s,
        Err(_) => return error_page(&st, l, Some(&v), StatusCode::SERVICE_UNAVAILABLE),
    };
    let Some(e) = snap.product(&slug) else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    let stock = st.catalogue.stock().await;
    let locations = &stock.locations;
    let p = &e.product;
    let name = l.pick(&p.name).to_string();
    let cur = p.price_range.min.currency.to_string();
    let active: Vec<_> = p.variants.iter().filter(|v| v.active).collect();
    let chosen = params
        .sku
        .clone()
        .filter(|s| active.iter().any(|v| &v.sku == s))
        .or_else(|| {
            active
                .iter()
                .find(|v| stock.total(&v.sku) > 0)
                .map(|v| v.sku.clone())
        });
    let variants = active
        .iter()
        .map(|var| {
            let label = [var.size.clone(), var.colour.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · ");
            let label = if label.is_empty() {
                var.sku.clone()
            } else {
                label
            };
            let available = stock.total(&var.sku);
            let price = l.money(var.price.amount_minor, &cur);
            VariantChoice {
                info: format!(
                    "{label}: {price} — {}",
                    if available > 0 {
                        t.in_stock
                    } else {
                        t.out_of_stock
                    }
                ),
                checked: chosen.as_deref() == Some(var.sku.as_str()),
                sku: var.sku.clone(),
                label,
                price,
                available,
            }
        })
        .collect();
    // stock per store for the chosen variant (or the whole product)
    let skus: Vec<&str> = match &chosen {
        Some(s) => vec![s.as_str()],
        None => active.iter().map(|v| v.sku.as_str()).collect(),
    };
    let ship = st.shipping.location.clone();
    let stores = locations
        .iter()
        .filter(|loc| loc.click_and_collect)
        .map(|loc| {
            (
                loc.name.clone(),
                skus.iter().map(|s| stock.at(s, &loc.code)).sum::<i64>(),
            )
        })
        .collect();
    let online = skus.iter().map(|s| stock.at(s, &ship)).sum();
    let sold_out = active.iter().all(|v| stock.total(&v.sku) <= 0);
    let first = active
        .iter()
        .find(|v| Some(&v.sku) == chosen.as_ref())
        .or(active.first());
    let (price, vat_note) = match first {
        Some(var) => (
            l.money(var.price.amount_minor, &cur),
            format!(
                "{} — {} {} ({}\u{a0}%)",
                t.vat_included,
                t.vat_of_which,
                l.money(var.vat_included_minor, &cur),
                f64::from(var.vat_rate.basis_points()) / 100.0
            ),
        ),
        None => (String::new(), String::new()),
    };
    let mut crumbs = vec![(format!("/{}/", l.code()), t.home.to_string())];
    if let Some(cat) = &p.category {
        crumbs.push((
            format!("/{}/c/{}", l.code(), cat.slug),
            l.pick(&cat.name).to_string(),
        ));
    }
    let error = match params.error.as_deref() {
        Some("out_of_stock") => Some(t.err_out_of_stock.to_string()),
        Some(_) => Some(t.err_generic.to_string()),
        None => None,
    };
    let c = Chrome::new(&st, l, &v, &uri, &name).await;
    let page = ProductPage {
        slug: p.slug.clone(),
        brand: p.brand.as_ref().map(|b| b.name.clone()).unwrap_or_default(),
        description: l.pick(&p.description).to_string(),
        images: p
            .images
            .iter()
            .map(|i| {
                let alt = l.pick(&i.alt);
                (
                    i.url.clone(),
                    if alt.is_empty() {
                        name.clone()
                    } else {
                        alt.to_string()
                    },
                )
            })
            .collect(),
        variants,
        stores,
        online,
        sold_out,
        crumbs,
        added: params.added.is_some(),
        error,
        price,
        vat_note,
        name,
        c,
    };
    render(&page, StatusCode::OK)
}
