//! Browsing the catalogue: home, category and search listings with their filters and sorting,
//! and the search box's suggestions.

use super::L;
use crate::WebState;
use crate::api::enc;
use crate::catalogue::{Entry, Query, Sort};
use crate::i18n::Lang;
use crate::pages::{Chrome, error_page, render};
use crate::session::Visitor;
use askama::Template;
use axum::extract::{Path, Query as Q, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;

/// A product as a card in a grid.
pub struct Card {
    pub url: String,
    pub name: String,
    pub brand: String,
    pub price: String,
    pub from: bool,
    pub image: Option<String>,
    pub alt: String,
}

impl Card {
    fn of(l: Lang, e: &Entry) -> Card {
        let p = &e.product;
        let name = l.pick(&p.name).to_string();
        Card {
            url: format!("/{}/p/{}", l.code(), p.slug),
            brand: p.brand.as_ref().map(|b| b.name.clone()).unwrap_or_default(),
            price: l.money(e.min_price, &p.price_range.min.currency.to_string()),
            from: e.min_price != e.max_price,
            image: p.images.first().map(|i| i.url.clone()),
            alt: p
                .images
                .first()
                .map(|i| l.pick(&i.alt).to_string())
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| name.clone()),
            name,
        }
    }
}

#[derive(Template)]
#[template(path = "store/home.html")]
struct HomePage {
    c: Chrome,
    featured: Vec<Card>,
    tiles: Vec<(String, String)>,
}

pub(super) async fn home(State(st): State<WebState>, L(l): L, v: Visitor, uri: Uri) -> Response {
    let snap = match st.catalogue.snapshot().await {
        Ok(s) => s,
        Err(_) => return error_page(&st, l, Some(&v), StatusCode::SERVICE_UNAVAILABLE),
    };
    let c = Chrome::new(&st, l, &v, &uri, l.t().home).await;
    let featured = snap
        .entries
        .iter()
        .take(8)
        .map(|e| Card::of(l, e))
        .collect();
    let tiles = snap
        .categories
        .iter()
        .filter(|k| k.parent_id.is_some())
        .take(12)
        .map(|k| (k.slug.clone(), l.pick(&k.name).to_string()))
        .collect();
    render(&HomePage { c, featured, tiles }, StatusCode::OK)
}

#[derive(Deserialize, Default)]
pub(super) struct ListParams {
    q: Option<String>,
    brand: Option<String>,
    size: Option<String>,
    colour: Option<String>,
    min: Option<String>,
    max: Option<String>,
    stock: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

/// A price filter typed in euros (`12`, `12,50`), in cents; `None` when blank or not an amount.
fn euros_to_minor(s: Option<&str>) -> Option<i64> {
    kernel::Money::parse_major(s?.trim().trim_end_matches('€'), kernel::Currency::EUR)
        .ok()
        .map(|m| m.minor())
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(100).collect())
}

#[derive(Template)]
#[template(path = "store/listing.html")]
struct ListingPage {
    c: Chrome,
    heading: String,
    action: String,
    crumbs: Vec<(String, String)>,
    subcategories: Vec<(String, String)>,
    cards: Vec<Card>,
    total: usize,
    page: usize,
    pages: usize,
    prev_url: Option<String>,
    next_url: Option<String>,
    brands: Vec<(String, String)>,
    sizes: Vec<String>,
    colours: Vec<String>,
    f_q: String,
    f_brand: String,
    f_size: String,
    f_colour: String,
    f_min: String,
    f_max: String,
    f_stock: bool,
    f_sort: &'static str,
    is_search: bool,
}

pub(super) async fn category(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(slug): Path<String>,
    params: Q<ListParams>,
) -> Response {
    listing(st, l, v, uri, Some(slug), params.0).await
}

pub(super) async fn search(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<ListParams>,
) -> Response {
    listing(st, l, v, uri, None, params.0).await
}

async fn listing(
    st: WebState,
    l: Lang,
    v: Visitor,
    uri: Uri,
    slug: Option<String>,
    p: ListParams,
) -> Response {
    let t = l.t();
    let snap = match st.catalogue.snapshot().await {
        Ok(s) => s,
        Err(_) => return error_page(&st, l, Some(&v), StatusCode::SERVICE_UNAVAILABLE),
    };
    let stock = st.catalogue.stock().await;
    let cat = match &slug {
        Some(s) => match snap.category(s) {
            Some(c) => Some(c),
            None => return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND),
        },
        None => None,
    };
    let q = Query {
        category: cat.map(|c| c.id),
        brand: nonempty(&p.brand),
        size: nonempty(&p.size),
        colour: nonempty(&p.colour),
        min_price: euros_to_minor(p.min.as_deref()),
        max_price: euros_to_minor(p.max.as_deref()),
        in_stock: p.stock.as_deref() == Some("1"),
        text: nonempty(&p.q),
        sort: Sort::parse(p.sort.as_deref().unwrap_or("")),
        page: p.page.as_deref().and_then(|s| s.parse().ok()).unwrap_or(1),
    };
    let res = snap.list(&q, &stock);
    let heading = match (cat, &q.text) {
        (Some(c), _) => l.pick(&c.name).to_string(),
        (None, Some(text)) => format!("{} « {text} »", t.search),
        (None, None) => t.all_products.to_string(),
    };
    let mut crumbs = vec![(format!("/{}/", l.code()), t.home.to_string())];
    if let Some(c) = cat
        && let Some(parent) = c
            .parent_id
            .and_then(|pid| snap.categories.iter().find(|k| k.id == pid))
    {
        crumbs.push((
            format!("/{}/c/{}", l.code(), parent.slug),
            l.pick(&parent.name).to_string(),
        ));
    }
    let subcategories = cat
        .map(|c| {
            snap.children(c.id)
                .iter()
                .map(|k| (k.slug.clone(), l.pick(&k.name).to_string()))
                .collect()
        })
        .unwrap_or_default();
    let action = match &slug {
        Some(s) => format!("/{}/c/{s}", l.code()),
        None => format!("/{}/search", l.code()),
    };
    let page_url = |n: usize| {
        let mut pairs: Vec<(&str, String)> = vec![];
        for (k, v) in [
            ("q", &q.text),
            ("brand", &q.brand),
            ("size", &q.size),
            ("colour", &q.colour),
        ] {
            if let Some(v) = v {
                pairs.push((k, v.clone()));
            }
        }
        if let Some(m) = &p.min {
            pairs.push(("min", m.clone()));
        }
        if let Some(m) = &p.max {
            pairs.push(("max", m.clone()));
        }
        if q.in_stock {
            pairs.push(("stock", "1".into()));
        }
        pairs.push(("sort", q.sort.code().into()));
        pairs.push(("page", n.to_string()));
        let qs = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        format!("{action}?{qs}")
    };
    let mut c = Chrome::new(&st, l, &v, &uri, &heading).await;
    c.search_text = q.text.clone().unwrap_or_default();
    let page = ListingPage {
        heading,
        crumbs,
        subcategories,
        cards: res.items.iter().map(|e| Card::of(l, e)).collect(),
        total: res.total,
        page: res.page,
        pages: res.pages,
        prev_url: (res.page > 1).then(|| page_url(res.page - 1)),
        next_url: (res.page < res.pages).then(|| page_url(res.page + 1)),
        brands: res.brands,
        sizes: res.sizes,
        colours: res.colours,
        f_q: q.text.clone().unwrap_or_default(),
        f_brand: q.brand.clone().unwrap_or_default(),
        f_size: q.size.clone().unwrap_or_default(),
        f_colour: q.colour.clone().unwrap_or_default(),
        f_min: p.min.clone().unwrap_or_default(),
        f_max: p.max.clone().unwrap_or_default(),
        f_stock: q.in_stock,
        f_sort: q.sort.code(),
        is_search: slug.is_none(),
        action,
        c,
    };
    render(&page, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "store/suggest.html")]
struct SuggestList {
    items: Vec<(String, String)>,
}

pub(super) async fn suggest(
    State(st): State<WebState>,
    L(l): L,
    params: Q<ListParams>,
) -> Response {
    let text = nonempty(&params.0.q).unwrap_or_default();
    let items = match st.catalogue.snapshot().await {
        Ok(s) => s
            .suggest(&text, 8)
            .iter()
            .map(|e| {
                (
                    format!("/{}/p/{}", l.code(), e.product.slug),
                    l.pick(&e.product.name).to_string(),
                )
            })
            .collect(),
        Err(_) => vec![],
    };
    render(&SuggestList { items }, StatusCode::OK)
}
