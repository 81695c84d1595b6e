//! The storefront: home, categories with filters, search and suggestions, product pages, the
//! cart, checkout (delivery or click & collect), the test provider's 3-D Secure page, order
//! confirmation, and the customer's account (sign-up, sign-in, sign-out, password reset,
//! order history).

use crate::api::{Problem, enc};
use crate::catalogue::{Entry, Query, Sort};
use crate::i18n::Lang;
use crate::pages::{Chrome, error_page, render};
use crate::session::{Visitor, form_pairs, see_other};
use crate::{WebState, lang_of_path};
use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query as Q, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

/// The page's language, from its path.
pub struct L(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for L {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(L(lang_of_path(parts.uri.path())))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Visitor>()
            .cloned()
            .unwrap_or_else(Visitor::anonymous))
    }
}

/// Form fields by name (the last value wins).
pub struct Form(pub HashMap<String, String>);

impl Form {
    pub fn parse(body: &Bytes) -> Form {
        Form(form_pairs(body).into_iter().collect())
    }
    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("").trim()
    }
}

pub fn routes() -> Router<WebState> {
    let mut r = Router::new()
        .route("/", get(root))
        .route("/account/password-reset", get(reset_link));
    for l in Lang::ALL {
        let p = |s: &str| format!("/{}{s}", l.code());
        r = r
            .route(&p(""), get(root))
            .route(&p("/"), get(home))
            .route(&p("/c/{slug}"), get(category))
            .route(&p("/search"), get(search))
            .route(&p("/search/suggest"), get(suggest))
            .route(&p("/p/{slug}"), get(product))
            .route(&p("/cart"), get(cart_page))
            .route(&p("/cart/add"), post(cart_add))
            .route(&p("/cart/update"), post(cart_update))
            .route(&p("/checkout"), get(checkout_page).post(checkout_post))
            .route(&p("/checkout/{id}"), get(checkout_status))
            .route(
                &p("/checkout/{id}/confirm"),
                get(confirm_page).post(confirm_post),
            )
            .route(&p("/orders/{id}"), get(order_page))
            .route(&p("/account"), get(account))
            .route(&p("/sign-in"), get(sign_in_page).post(sign_in_post))
            .route(&p("/sign-up"), get(sign_up_page).post(sign_up_post))
            .route(&p("/sign-out"), post(sign_out))
            .route(&p("/password-reset"), get(reset_page).post(reset_post))
            .route(
                &p("/password-reset/confirm"),
                get(reset_confirm_page).post(reset_confirm_post),
            )
            .route(&p("/{*rest}"), get(not_found))
    }
    r
}

async fn not_found(State(st): State<WebState>, L(l): L, v: Visitor) -> Response {
    error_page(&st, l, Some(&v), StatusCode::NOT_FOUND)
}

async fn root(headers: HeaderMap) -> Response {
    let l = Lang::negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let mut r = see_other(&format!("/{}/", l.code()));
    r.headers_mut().insert(
        header::VARY,
        axum::http::HeaderValue::from_static("accept-language"),
    );
    r
}

// ---- catalogue --------------------------------------------------------------------------------

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

async fn home(State(st): State<WebState>, L(l): L, v: Visitor, uri: Uri) -> Response {
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
struct ListParams {
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

fn euros_to_minor(s: Option<&str>) -> Option<i64> {
    let s = s?.trim().replace(',', ".");
    if s.is_empty() {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    if !(0.0..=1_000_000.0).contains(&f) {
        return None;
    }
    Some((f * 100.0).round() as i64)
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

async fn category(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(slug): Path<String>,
    params: Q<ListParams>,
) -> Response {
    listing(st, l, v, uri, Some(slug), params.0).await
}

async fn search(
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

async fn suggest(State(st): State<WebState>, L(l): L, params: Q<ListParams>) -> Response {
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
struct ProductParams {
    added: Option<String>,
    error: Option<String>,
    sku: Option<String>,
}

async fn product(
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
    let ship = st.orders.settings.shipping_location.clone();
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

// ---- cart -------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct CartView {
    pub id: Uuid,
    pub currency: String,
    pub lines: Vec<CartLine>,
    pub subtotal: i64,
    pub item_count: i64,
}

#[derive(Deserialize)]
pub struct CartLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub total: i64,
}

/// The visitor's cart, if it still exists and is theirs.
async fn current_cart(st: &WebState, v: &Visitor) -> Option<CartView> {
    let id = v.cart?;
    st.api
        .call::<CartView>(
            v,
            Method::GET,
            &format!("/api/carts/{id}"),
            None::<&()>,
            None,
        )
        .await
        .ok()
}

/// A safe place to go back to: a path of ours, never another site.
fn local_path(s: &str, fallback: String) -> String {
    if s.starts_with('/') && !s.starts_with("//") && !s.contains('\\') && !s.contains("://") {
        s.to_string()
    } else {
        fallback
    }
}

async fn cart_add(State(st): State<WebState>, L(l): L, v: Visitor, body: Bytes) -> Response {
    let f = Form::parse(&body);
    let sku = f.get("sku").to_string();
    let qty: i64 = f.get("quantity").parse().unwrap_or(1);
    let back = local_path(f.get("back"), format!("/{}/cart", l.code()));
    let sep = if back.contains('?') { '&' } else { '?' };
    if sku.is_empty() {
        return see_other(&format!("{back}{sep}error=choose"));
    }
    let cart = match current_cart(&st, &v).await {
        Some(c) => c.id,
        None => {
            match st
                .api
                .call::<CartView>(&v, Method::POST, "/api/carts", Some(&json!({})), None)
                .await
            {
                Ok(c) => c.id,
                Err(_) => return error_page(&st, l, Some(&v), StatusCode::SERVICE_UNAVAILABLE),
            }
        }
    };
    match st
        .api
        .call::<CartView>(
            &v,
            Method::POST,
            &format!("/api/carts/{cart}/lines"),
            Some(&json!({"sku": sku, "quantity": qty})),
            None,
        )
        .await
    {
        Ok(c) => {
            v.set_cart(c.id, c.item_count);
            see_other(&format!("{back}{sep}added=1&sku={}", enc(&sku)))
        }
        Err(p) => {
            v.set_cart(cart, v.cart_count);
            let code = if p.code == "out_of_stock" {
                "out_of_stock"
            } else {
                "add"
            };
            see_other(&format!("{back}{sep}error={code}&sku={}", enc(&sku)))
        }
    }
}

async fn cart_update(State(st): State<WebState>, L(l): L, v: Visitor, body: Bytes) -> Response {
    let f = Form::parse(&body);
    let Some(cart) = v.cart else {
        return see_other(&format!("/{}/cart", l.code()));
    };
    let sku = f.get("sku");
    let qty: i64 = if f.0.contains_key("remove") {
        0
    } else {
        f.get("quantity").parse().unwrap_or(-1)
    };
    let res = st
        .api
        .call::<CartView>(
            &v,
            Method::PATCH,
            &format!("/api/carts/{cart}/lines/{}", enc(sku)),
            Some(&json!({ "quantity": qty })),
            None,
        )
        .await;
    match res {
        Ok(c) => {
            v.set_cart(c.id, c.item_count);
            see_other(&format!("/{}/cart", l.code()))
        }
        Err(_) => see_other(&format!("/{}/cart?error=quantity", l.code())),
    }
}

pub struct LineRow {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit: String,
    pub total: String,
}

#[derive(Template)]
#[template(path = "store/cart.html")]
struct CartPage {
    c: Chrome,
    lines: Vec<LineRow>,
    subtotal: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct MsgParams {
    error: Option<String>,
    done: Option<String>,
    next: Option<String>,
    token: Option<String>,
}

fn line_rows(l: Lang, c: &CartView) -> Vec<LineRow> {
    c.lines
        .iter()
        .map(|x| LineRow {
            sku: x.sku.clone(),
            name: x.name.clone(),
            quantity: x.quantity,
            unit: l.money(x.unit_price, &c.currency),
            total: l.money(x.total, &c.currency),
        })
        .collect()
}

fn message(l: Lang, code: Option<&str>) -> Option<String> {
    let t = l.t();
    code.map(|c| {
        match c {
            "out_of_stock" => t.err_out_of_stock,
            "price_changed" => t.err_price_changed,
            "payment_declined" | "declined" => t.err_declined,
            _ => t.err_generic,
        }
        .to_string()
    })
}

async fn cart_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<MsgParams>,
) -> Response {
    let params = params.0;
    let cart = current_cart(&st, &v).await;
    if let Some(c) = &cart
        && c.item_count != v.cart_count
    {
        v.set_cart(c.id, c.item_count);
    }
    if cart.is_none() && v.cart.is_some() {
        v.clear_cart();
    }
    let c = Chrome::new(&st, l, &v, &uri, l.t().your_cart).await;
    let page = CartPage {
        lines: cart.as_ref().map(|k| line_rows(l, k)).unwrap_or_default(),
        subtotal: cart
            .as_ref()
            .map(|k| l.money(k.subtotal, &k.currency))
            .unwrap_or_default(),
        error: message(l, params.error.as_deref()),
        c,
    };
    render(&page, StatusCode::OK)
}

// ---- checkout ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "store/checkout.html")]
struct CheckoutPage {
    c: Chrome,
    lines: Vec<LineRow>,
    subtotal: String,
    free_from: String,
    fee: String,
    stores: Vec<(String, String)>,
    attempt: Uuid,
    test_payments: bool,
    error: Option<String>,
    fields: HashMap<String, String>,
    field_errors: HashMap<String, String>,
}

impl CheckoutPage {
    fn val(&self, k: &str) -> String {
        self.fields.get(k).cloned().unwrap_or_default()
    }
    fn err(&self, k: &str) -> String {
        self.field_errors.get(k).cloned().unwrap_or_default()
    }
    fn is(&self, k: &str, v: &str) -> bool {
        self.fields.get(k).map(String::as_str) == Some(v)
    }
}

#[allow(clippy::too_many_arguments)]
async fn checkout_form(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    uri: &Uri,
    cart: &CartView,
    fields: HashMap<String, String>,
    error: Option<String>,
    field_errors: HashMap<String, String>,
    status: StatusCode,
) -> Response {
    let t = l.t();
    let stores = st
        .inventory
        .locations()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|x| x.click_and_collect)
        .map(|x| (x.code, x.name))
        .collect();
    let s = &st.orders.settings;
    let c = Chrome::new(st, l, v, uri, t.checkout).await;
    let page = CheckoutPage {
        lines: line_rows(l, cart),
        subtotal: l.money(cart.subtotal, &cart.currency),
        free_from: l.money(s.free_shipping_from, &cart.currency),
        // what home delivery costs for this cart (collection is free)
        fee: l.money(
            if cart.subtotal >= s.free_shipping_from {
                0
            } else {
                s.shipping_fee
            },
            &cart.currency,
        ),
        stores,
        attempt: Uuid::now_v7(),
        test_payments: st.test_payments,
        error,
        fields,
        field_errors,
        c,
    };
    render(&page, status)
}

async fn checkout_page(State(st): State<WebState>, L(l): L, v: Visitor, uri: Uri) -> Response {
    let Some(cart) = current_cart(&st, &v).await.filter(|c| !c.lines.is_empty()) else {
        return see_other(&format!("/{}/cart", l.code()));
    };
    let mut fields = HashMap::new();
    fields.insert("fulfilment".into(), "delivery".into());
    fields.insert("country".into(), "FR".into());
    fields.insert("card".into(), "4242424242424242".into());
    if let Some(p) = &v.principal
        && let Ok(me) = st
            .api
            .call::<serde_json::Value>(&v, Method::GET, "/api/identity/me", None::<&()>, None)
            .await
    {
        let _ = p;
        for k in ["email", "name"] {
            if let Some(s) = me.get(k).and_then(|x| x.as_str()) {
                fields.insert(k.into(), s.into());
            }
        }
    }
    checkout_form(
        &st,
        l,
        &v,
        &uri,
        &cart,
        fields,
        None,
        HashMap::new(),
        StatusCode::OK,
    )
    .await
}

const TEST_CARDS: &[&str] = &[
    "4242424242424242",
    "4000000000000002",
    "4000000000009995",
    "4000002500003155",
];

async fn checkout_post(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    body: Bytes,
) -> Response {
    let t = l.t();
    let f = Form::parse(&body);
    let Some(cart) = current_cart(&st, &v).await.filter(|c| !c.lines.is_empty()) else {
        return see_other(&format!("/{}/cart", l.code()));
    };
    let attempt = f.get("attempt");
    let attempt = Uuid::parse_str(attempt).unwrap_or_else(|_| Uuid::now_v7());
    let fulfilment = if f.get("fulfilment") == "collect" {
        json!({"type": "collect", "store": f.get("store")})
    } else {
        json!({"type": "delivery", "address": {
            "name": f.get("name"), "line1": f.get("line1"),
            "line2": Some(f.get("line2")).filter(|s| !s.is_empty()),
            "postcode": f.get("postcode"), "city": f.get("city"),
            "country": f.get("country").to_ascii_uppercase(),
        }})
    };
    let card = f.get("card");
    let payment = if st.test_payments {
        if !TEST_CARDS.contains(&card) {
            let mut errs = HashMap::new();
            errs.insert("card".to_string(), t.err_form.to_string());
            return checkout_form(
                &st,
                l,
                &v,
                &uri,
                &cart,
                f.0.clone(),
                Some(t.err_form.to_string()),
                errs,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        json!({"type": "test_card", "number": card})
    } else {
        json!({"type": "stripe", "payment_method": f.get("payment_method")})
    };
    let body = json!({
        "cart_id": cart.id,
        "email": f.get("email"),
        "fulfilment": fulfilment,
        "payment": payment,
    });
    let key = format!("web-{attempt}");
    let res = st
        .api
        .raw(&v, Method::POST, "/api/checkout", Some(&body), Some(&key))
        .await;
    let (status, bytes) = match res {
        Ok(x) => x,
        Err(_) => return error_page(&st, l, Some(&v), StatusCode::SERVICE_UNAVAILABLE),
    };
    match status {
        201 => order_placed(&v, &st, l, &bytes),
        503 | 409 if status == 503 || is_in_progress(&bytes) => {
            // not finished (a confirmation is awaited, or the saga is still running), or this
            // cart's checkout started in another tab: show the checkout that holds the cart
            match orders::store::checkout_holding_cart(&st.orders.db, cart.id).await {
                Ok(Some(row)) => see_other(&format!("/{}/checkout/{}", l.code(), row.id)),
                _ => error_page(&st, l, Some(&v), StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        _ => {
            let p: Problem = serde_json::from_slice(&bytes).unwrap_or_default();
            match p.code.as_str() {
                "out_of_stock" | "price_changed" => {
                    see_other(&format!("/{}/cart?error={}", l.code(), p.code))
                }
                _ => {
                    let mut errs = HashMap::new();
                    for e in &p.errors {
                        let name = e.field.rsplit('.').next().unwrap_or(&e.field).to_string();
                        errs.insert(name, e.message.clone());
                    }
                    let msg = if status == 402 {
                        t.err_declined
                    } else if !errs.is_empty() {
                        t.err_form
                    } else {
                        t.err_generic
                    };
                    checkout_form(
                        &st,
                        l,
                        &v,
                        &uri,
                        &cart,
                        f.0.clone(),
                        Some(msg.to_string()),
                        errs,
                        if status == 402 {
                            StatusCode::PAYMENT_REQUIRED
                        } else {
                            StatusCode::UNPROCESSABLE_ENTITY
                        },
                    )
                    .await
                }
            }
        }
    }
}

fn is_in_progress(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Problem>(bytes).is_ok_and(|p| {
        matches!(
            p.code.as_str(),
            "idempotency_in_progress" | "cart_checkout_in_progress" | "cart_checked_out"
        )
    })
}

/// A paid order: the guest remembers it, the cart is done, the confirmation is shown.
fn order_placed(v: &Visitor, st: &WebState, l: Lang, body: &[u8]) -> Response {
    let id = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|o| o.get("id").and_then(|x| x.as_str()).map(str::to_string))
        .and_then(|s| Uuid::parse_str(&s).ok());
    let Some(id) = id else {
        return error_page(st, l, Some(v), StatusCode::INTERNAL_SERVER_ERROR);
    };
    if v.principal.is_none() {
        v.remember_order(&st.key, id);
    }
    v.clear_cart();
    see_other(&format!("/{}/orders/{id}?placed=1", l.code()))
}

/// The checkout `id`, if the visitor started it (their account, or their guest cart).
async fn own_checkout(st: &WebState, v: &Visitor, id: &str) -> Option<orders::store::CheckoutRow> {
    let id = Uuid::parse_str(id).ok()?;
    let row = orders::store::checkout(&st.orders.db, id).await.ok()??;
    let plan: serde_json::Value = serde_json::from_str(&row.plan).ok()?;
    let customer = plan.get("customer").and_then(|c| c.as_str());
    let cart = plan
        .get("cart_id")
        .and_then(|c| c.as_str())
        .and_then(|c| Uuid::parse_str(c).ok());
    let mine = match (&v.principal, customer) {
        (Some(p), Some(c)) => p.is_subject(c),
        (_, None) => cart.is_some() && cart == v.cart,
        _ => false,
    };
    mine.then_some(row)
}

#[derive(Template)]
#[template(path = "store/pending.html")]
struct PendingPage {
    c: Chrome,
    confirm_url: Option<String>,
    check_url: String,
}

async fn checkout_status(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let Some(row) = own_checkout(&st, &v, &id).await else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    match (row.response_status, row.response_body) {
        (Some(201), Some(body)) => order_placed(&v, &st, l, body.as_bytes()),
        (Some(_), Some(body)) => {
            let p: Problem = serde_json::from_str(&body).unwrap_or_default();
            let code = if p.code.is_empty() {
                "error".into()
            } else {
                p.code
            };
            let code = if code == "payment_declined" || code == "payment_timeout" {
                "payment_declined".to_string()
            } else {
                code
            };
            see_other(&format!("/{}/cart?error={code}", l.code()))
        }
        _ => {
            let waiting = row.state == "awaiting_authorization" && st.test_payments;
            let c = Chrome::new(&st, l, &v, &uri, l.t().payment_pending).await;
            render(
                &PendingPage {
                    confirm_url: waiting
                        .then(|| format!("/{}/checkout/{}/confirm", l.code(), row.id)),
                    check_url: format!("/{}/checkout/{}", l.code(), row.id),
                    c,
                },
                StatusCode::OK,
            )
        }
    }
}

#[derive(Template)]
#[template(path = "store/confirm.html")]
struct ConfirmPage {
    c: Chrome,
    action: String,
    amount: String,
}

/// The test provider's 3-D Secure page (what the bank's page is with a real provider).
async fn confirm_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    if !st.test_payments {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    }
    let Some(row) = own_checkout(&st, &v, &id).await else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    let plan: serde_json::Value = serde_json::from_str(&row.plan).unwrap_or_default();
    let amount = l.money(
        plan.get("total").and_then(|x| x.as_i64()).unwrap_or(0),
        plan.get("currency")
            .and_then(|x| x.as_str())
            .unwrap_or("EUR"),
    );
    let c = Chrome::new(&st, l, &v, &uri, l.t().confirm_payment).await;
    render(
        &ConfirmPage {
            action: format!("/{}/checkout/{}/confirm", l.code(), row.id),
            amount,
            c,
        },
        StatusCode::OK,
    )
}

async fn confirm_post(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if !st.test_payments {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    }
    let Some(row) = own_checkout(&st, &v, &id).await else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    let approved = Form::parse(&body).get("decision") == "approve";
    if let Err(e) =
        payments::TestProvider::complete_action(st.payments.db(), row.id, approved).await
    {
        tracing::warn!(error = %e, "test 3-D Secure confirmation failed");
        return error_page(&st, l, Some(&v), StatusCode::SERVICE_UNAVAILABLE);
    }
    // drive the saga now rather than waiting for the recovery worker's next poll
    if let Err(e) = st.orders.run(row.id).await {
        tracing::warn!(error = %e, "checkout saga did not advance yet");
    }
    see_other(&format!("/{}/checkout/{}", l.code(), row.id))
}

// ---- orders -----------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct OrderView {
    pub id: Uuid,
    pub number: String,
    pub email: String,
    pub status: String,
    pub fulfilment: String,
    pub location: String,
    pub currency: String,
    pub subtotal: i64,
    pub shipping: i64,
    pub total: i64,
    pub refunded: i64,
    pub lines: Vec<OrderLineView>,
    pub created_at: i64,
}

#[derive(Deserialize)]
pub struct OrderLineView {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub line_total: i64,
}

#[derive(Template)]
#[template(path = "store/order.html")]
struct OrderPage {
    c: Chrome,
    o: OrderView,
    placed: bool,
    lines: Vec<LineRow>,
    subtotal: String,
    shipping: String,
    total: String,
    date: String,
    where_label: String,
}

#[derive(Deserialize, Default)]
struct PlacedParams {
    placed: Option<String>,
}

async fn order_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(id): Path<String>,
    params: Q<PlacedParams>,
) -> Response {
    let t = l.t();
    let Ok(oid) = Uuid::parse_str(&id) else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    let order: Option<OrderView> = if v.principal.is_some() {
        st.api
            .call(
                &v,
                Method::GET,
                &format!("/api/orders/{oid}"),
                None::<&()>,
                None,
            )
            .await
            .ok()
    } else {
        None
    };
    let order = match order {
        Some(o) => Some(o),
        None if v.may_see_guest_order(oid) => orders::store::get_order(&st.orders.db, oid)
            .await
            .ok()
            .flatten()
            .and_then(|o| serde_json::to_value(&o).ok())
            .and_then(|j| serde_json::from_value(j).ok()),
        None => None,
    };
    let Some(o) = order else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    let locs = st.inventory.locations().await.unwrap_or_default();
    let loc_name = locs
        .iter()
        .find(|x| x.code == o.location)
        .map(|x| x.name.clone())
        .unwrap_or_else(|| o.location.clone());
    let where_label = if o.fulfilment == "collect" {
        format!("{} {loc_name}", t.collect_at)
    } else {
        t.home_delivery.to_string()
    };
    let title = format!("{} {}", t.order, o.number);
    let c = Chrome::new(&st, l, &v, &uri, &title).await;
    let lines = o
        .lines
        .iter()
        .map(|x| LineRow {
            sku: x.sku.clone(),
            name: x.name.clone(),
            quantity: x.quantity,
            unit: l.money(x.unit_price, &o.currency),
            total: l.money(x.line_total, &o.currency),
        })
        .collect();
    let page = OrderPage {
        placed: params.0.placed.is_some(),
        lines,
        subtotal: l.money(o.subtotal, &o.currency),
        shipping: l.money(o.shipping, &o.currency),
        total: l.money(o.total, &o.currency),
        date: l.datetime(o.created_at),
        where_label,
        o,
        c,
    };
    render(&page, StatusCode::OK)
}

// ---- account ----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "store/account.html")]
struct AccountPage {
    c: Chrome,
    email: String,
    name: String,
    orders: Vec<(String, String, String, String, String)>,
}

async fn account(State(st): State<WebState>, L(l): L, v: Visitor, uri: Uri) -> Response {
    if v.principal.is_none() {
        return see_other(&format!(
            "/{}/sign-in?next={}",
            l.code(),
            enc(&format!("/{}/account", l.code()))
        ));
    }
    let me: serde_json::Value = st
        .api
        .call(&v, Method::GET, "/api/identity/me", None::<&()>, None)
        .await
        .unwrap_or_default();
    let list: Vec<OrderView> = st
        .api
        .call(&v, Method::GET, "/api/orders?limit=50", None::<&()>, None)
        .await
        .unwrap_or_default();
    let orders = list
        .iter()
        .map(|o| {
            (
                format!("/{}/orders/{}", l.code(), o.id),
                o.number.clone(),
                l.datetime(o.created_at),
                o.status.clone(),
                l.money(o.total, &o.currency),
            )
        })
        .collect();
    let c = Chrome::new(&st, l, &v, &uri, l.t().account).await;
    let s = |k: &str| {
        me.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    render(
        &AccountPage {
            email: s("email"),
            name: s("name"),
            orders,
            c,
        },
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "store/auth.html")]
struct AuthPage {
    c: Chrome,
    /// `sign_in`, `sign_up`, `reset`, `reset_confirm`
    mode: &'static str,
    next: String,
    token: String,
    email: String,
    name: String,
    error: Option<String>,
    notice: Option<String>,
    field_errors: HashMap<String, String>,
}

impl AuthPage {
    fn err(&self, k: &str) -> String {
        self.field_errors.get(k).cloned().unwrap_or_default()
    }
}

#[allow(clippy::too_many_arguments)]
async fn auth_page(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    uri: &Uri,
    mode: &'static str,
    params: MsgParams,
    email: String,
    name: String,
    error: Option<String>,
    field_errors: HashMap<String, String>,
    status: StatusCode,
) -> Response {
    let t = l.t();
    let title = match mode {
        "sign_up" => t.sign_up,
        "reset" | "reset_confirm" => t.reset_password,
        _ => t.sign_in,
    };
    let notice = match params.done.as_deref() {
        Some("reset_sent") => Some(t.reset_sent.to_string()),
        Some("reset_done") => Some(t.reset_done.to_string()),
        _ => None,
    };
    let c = Chrome::new(st, l, v, uri, title).await;
    render(
        &AuthPage {
            mode,
            next: params
                .next
                .as_deref()
                .map(|n| local_path(n, String::new()))
                .unwrap_or_default(),
            token: params.token.unwrap_or_default(),
            email,
            name,
            error,
            notice,
            field_errors,
            c,
        },
        status,
    )
}

/// An empty sign-in, sign-up or reset form.
async fn blank_auth_page(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    uri: &Uri,
    mode: &'static str,
    p: MsgParams,
) -> Response {
    auth_page(
        st,
        l,
        v,
        uri,
        mode,
        p,
        String::new(),
        String::new(),
        None,
        HashMap::new(),
        StatusCode::OK,
    )
    .await
}

async fn sign_in_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<MsgParams>,
) -> Response {
    blank_auth_page(&st, l, &v, &uri, "sign_in", params.0).await
}

/// After a session starts: the guest cart joins the customer's, then on to `next`.
async fn signed_in(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    tokens: identity::model::TokenResponse,
    next: &str,
) -> Response {
    v.set_session(
        &tokens.access_token,
        tokens.expires_in,
        &tokens.refresh_token,
        st.refresh_secs,
    );
    let principal = st
        .auth
        .authenticate(&platform::authn::Credential::Token(
            tokens.access_token.clone(),
        ))
        .await
        .ok();
    let staff = principal.as_ref().is_some_and(|p| p.role.is_staff());
    if let (Some(p), Some(cart)) = (principal.clone(), v.cart)
        && !staff
    {
        let mut as_user = v.clone();
        as_user.principal = Some(p);
        match st
            .api
            .call::<CartView>(
                &as_user,
                Method::POST,
                &format!("/api/carts/{cart}/merge"),
                None::<&()>,
                Some(&format!("web-merge-{cart}")),
            )
            .await
        {
            Ok(c) => v.set_cart(c.id, c.item_count),
            Err(e) => tracing::info!(code = %e.code, "guest cart not merged at sign-in"),
        }
    }
    let default = if staff {
        format!("/{}/admin", l.code())
    } else {
        format!("/{}/account", l.code())
    };
    see_other(&local_path(next, default))
}

async fn sign_in_post(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let email = f.get("email").to_string();
    let res = st
        .identity
        .sign_in(
            &identity::model::SignIn {
                email: email.clone(),
                password: f.0.get("password").cloned().unwrap_or_default(),
            },
            v.ip,
        )
        .await;
    match res {
        Ok(tokens) => signed_in(&st, l, &v, tokens, f.get("next")).await,
        Err(e) => {
            let t = l.t();
            let (msg, status) = match e.status.as_u16() {
                429 => (t.err_busy, StatusCode::TOO_MANY_REQUESTS),
                503 => (t.err_busy, StatusCode::SERVICE_UNAVAILABLE),
                _ => (t.bad_credentials, StatusCode::UNAUTHORIZED),
            };
            auth_page(
                &st,
                l,
                &v,
                &uri,
                "sign_in",
                MsgParams {
                    next: Some(f.get("next").to_string()),
                    ..Default::default()
                },
                email,
                String::new(),
                Some(msg.to_string()),
                HashMap::new(),
                status,
            )
            .await
        }
    }
}

async fn sign_up_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<MsgParams>,
) -> Response {
    blank_auth_page(&st, l, &v, &uri, "sign_up", params.0).await
}

fn field_errors(e: &platform::ApiError) -> HashMap<String, String> {
    e.errors
        .iter()
        .map(|x| (x.field.clone(), x.message.clone()))
        .collect()
}

async fn sign_up_post(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let email = f.get("email").to_string();
    let name = f.get("name").to_string();
    let password = f.0.get("password").cloned().unwrap_or_default();
    let reg = identity::model::Registration {
        email: email.clone(),
        password: password.clone(),
        name: name.clone(),
    };
    let fail = |e: platform::ApiError| {
        let st = st.clone();
        let v = v.clone();
        let uri = uri.clone();
        let email = email.clone();
        let name = name.clone();
        async move {
            let t = l.t();
            let mut errs = field_errors(&e);
            if errs.is_empty() && e.code == "email_taken" {
                errs.insert("email".into(), e.detail.clone());
            }
            let msg = if errs.is_empty() {
                e.detail.clone()
            } else {
                t.err_form.to_string()
            };
            auth_page(
                &st,
                l,
                &v,
                &uri,
                "sign_up",
                MsgParams::default(),
                email,
                name,
                Some(msg),
                errs,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    if let Err(e) = st.identity.register(&reg).await {
        return fail(e).await;
    }
    match st
        .identity
        .sign_in(
            &identity::model::SignIn {
                email: email.clone(),
                password,
            },
            v.ip,
        )
        .await
    {
        Ok(tokens) => signed_in(&st, l, &v, tokens, f.get("next")).await,
        Err(e) => fail(e).await,
    }
}

async fn sign_out(State(st): State<WebState>, L(l): L, v: Visitor) -> Response {
    if let Some(p) = &v.principal
        && let Err(e) = st.identity.sign_out(p).await
    {
        tracing::warn!(error = %e.detail, "sign-out could not end the session");
    }
    v.clear_session();
    v.clear_cart();
    see_other(&format!("/{}/", l.code()))
}

async fn reset_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<MsgParams>,
) -> Response {
    blank_auth_page(&st, l, &v, &uri, "reset", params.0).await
}

async fn reset_post(State(st): State<WebState>, L(l): L, body: Bytes) -> Response {
    let f = Form::parse(&body);
    // the same answer whether the account exists or not
    if let Err(e) = st
        .identity
        .request_reset(&identity::model::ResetRequest {
            email: f.get("email").to_string(),
        })
        .await
    {
        tracing::info!(code = %e.code, "password reset request refused");
    }
    see_other(&format!("/{}/password-reset?done=reset_sent", l.code()))
}

/// The link of the reset e-mail (identity's `reset_url`): on to the form, in the reader's language.
async fn reset_link(headers: HeaderMap, Q(params): Q<MsgParams>) -> Response {
    let l = Lang::negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let token = params.token.unwrap_or_default();
    see_other(&format!(
        "/{}/password-reset/confirm?token={}",
        l.code(),
        enc(&token)
    ))
}

async fn reset_confirm_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<MsgParams>,
) -> Response {
    blank_auth_page(&st, l, &v, &uri, "reset_confirm", params.0).await
}

async fn reset_confirm_post(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let token = f.get("token").to_string();
    match st
        .identity
        .confirm_reset(
            &identity::model::ResetConfirm {
                token: token.clone(),
                new_password: f.0.get("new_password").cloned().unwrap_or_default(),
            },
            v.ip,
        )
        .await
    {
        Ok(()) => see_other(&format!("/{}/sign-in?done=reset_done", l.code())),
        Err(e) => {
            let mut errs = field_errors(&e);
            if let Some(m) = errs.remove("new_password") {
                errs.insert("password".into(), m);
            }
            auth_page(
                &st,
                l,
                &v,
                &uri,
                "reset_confirm",
                MsgParams {
                    token: Some(token),
                    ..Default::default()
                },
                String::new(),
                String::new(),
                Some(e.detail.clone()),
                errs,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            self.detail,
        )
            .into_response()
    }
}
