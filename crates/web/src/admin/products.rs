//! Products (head office, `catalog:write`): list and search, create, edit (fields, variants'
//! price and state, a new variant), archive. Every write goes through the catalogue API and
//! then refreshes the storefront's read model, so the shop shows it at once.

use super::text::{self, A};
use super::{
    Fields, Refusal, attempt_key, chrome, failure, field_message, gate, gate_post, get_or_default,
    hundredths, plain_euros, plain_percent,
};
use crate::WebState;
use crate::api::{Problem, enc};
use crate::i18n::Lang;
use crate::pages::{Chrome, error_page, render};
use crate::session::{Visitor, see_other};
use crate::shop::{Form, L};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query as Q, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use catalog::model::{Brand, CategoryNode, Product, ProductPage};
use platform::authz::{Principal, perm};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// Rows of variants on the creation form.
const NEW_ROWS: usize = 3;

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
        match $gate.and_then(|p| writer(&$st, $l, &$v, p)) {
            Ok(p) => p,
            Err(r) => return *r,
        }
    };
}

// ---- list -------------------------------------------------------------------------------------

struct Row {
    url: String,
    name: String,
    brand: String,
    category: String,
    status: String,
    status_label: &'static str,
    price: String,
    public_url: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/products.html")]
struct ListPage {
    c: Chrome,
    a: &'static A,
    q: String,
    status: String,
    rows: Vec<Row>,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct ListParams {
    q: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

pub(crate) async fn list(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<ListParams>,
) -> Response {
    let p = gate_writer!(st, l, v, gate(&st, l, &v, &uri));
    let a = text::a(l);
    let q: String = params
        .q
        .as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(100)
        .collect();
    let status = match params.status.as_deref() {
        Some(s @ ("draft" | "published" | "archived")) => s.to_string(),
        _ => String::new(),
    };
    let mut path = format!(
        "/api/catalog/products?limit=50&status={}",
        if status.is_empty() { "any" } else { &status }
    );
    if !q.is_empty() {
        path.push_str(&format!("&q={}", enc(&q)));
    }
    if let Some(cur) = params.cursor.as_deref().filter(|c| !c.is_empty()) {
        path.push_str(&format!("&cursor={}", enc(cur)));
    }
    let page: ProductPage = match st.api.call(&v, Method::GET, &path, None::<&()>, None).await {
        Ok(x) => x,
        Err(e) if e.status == 400 || e.status == 422 => ProductPage {
            items: vec![],
            next_cursor: None,
        },
        Err(e) => return failure(&st, l, &v, &e),
    };
    let rows = page
        .items
        .iter()
        .map(|x| {
            let min = &x.price_range.min;
            let max = &x.price_range.max;
            let cur = min.currency.to_string();
            let price = if min.amount_minor == max.amount_minor {
                l.money(min.amount_minor, &cur)
            } else {
                format!(
                    "{} – {}",
                    l.money(min.amount_minor, &cur),
                    l.money(max.amount_minor, &cur)
                )
            };
            Row {
                url: format!("/{}/admin/products/{}", l.code(), x.id),
                name: l.pick(&x.name).to_string(),
                brand: x.brand.as_ref().map(|b| b.name.clone()).unwrap_or_default(),
                category: x
                    .category
                    .as_ref()
                    .map(|k| l.pick(&k.name).to_string())
                    .unwrap_or_default(),
                status: x.status.as_str().to_string(),
                status_label: a.product_status(x.status.as_str()),
                price,
                public_url: (x.status == catalog::domain::Status::Published)
                    .then(|| format!("/{}/p/{}", l.code(), x.slug)),
            }
        })
        .collect();
    let next = page.next_cursor.map(|cur| {
        let mut u = format!("/{}/admin/products?cursor={}", l.code(), enc(&cur));
        if !q.is_empty() {
            u.push_str(&format!("&q={}", enc(&q)));
        }
        if !status.is_empty() {
            u.push_str(&format!("&status={status}"));
        }
        u
    });
    let c = chrome(&st, l, &v, &uri, &p, "products", a.products);
    render(
        &ListPage {
            c,
            a,
            q,
            status,
            rows,
            next,
        },
        StatusCode::OK,
    )
}

// ---- choices ----------------------------------------------------------------------------------

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

// ---- create -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/product_new.html")]
struct NewPage {
    c: Chrome,
    a: &'static A,
    brands: Vec<(String, String)>,
    categories: Vec<(String, String)>,
    rows: Vec<NewRow>,
    attempt: Uuid,
    error: Option<String>,
    f: Fields,
}

/// The field ids of one variant row of the creation form (`v0-sku`...).
struct NewRow {
    n: usize,
    sku: String,
    size: String,
    colour: String,
    price: String,
    vat: String,
}

impl NewRow {
    fn new(i: usize) -> NewRow {
        let k = |n: &str| format!("v{i}-{n}");
        NewRow {
            n: i + 1,
            sku: k("sku"),
            size: k("size"),
            colour: k("colour"),
            price: k("price"),
            vat: k("vat"),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn new_form(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    uri: &Uri,
    p: &Principal,
    f: Fields,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let a = text::a(l);
    let (brands, categories) = choices(st, v, l).await;
    let c = chrome(st, l, v, uri, p, "products", a.new_product);
    render(
        &NewPage {
            c,
            a,
            brands,
            categories,
            rows: (0..NEW_ROWS).map(NewRow::new).collect(),
            attempt: Uuid::now_v7(),
            error,
            f,
        },
        status,
    )
}

pub(crate) async fn new_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
) -> Response {
    let p = gate_writer!(st, l, v, gate(&st, l, &v, &uri));
    let mut f = Fields::default();
    f.set("p-status", "draft");
    for i in 0..NEW_ROWS {
        f.set(&format!("v{i}-vat"), "20");
    }
    new_form(&st, l, &v, &uri, &p, f, None, StatusCode::OK).await
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

/// Where an API field error belongs on the creation form; `rows[i]` is the form row of the
/// request's variant `i`.
fn new_form_field(api: &str, rows: &[usize]) -> Option<String> {
    let direct = match api {
        "name.fr" | "slug" => Some("p-name-fr"),
        "name.en" => Some("p-name-en"),
        "description.fr" => Some("p-description-fr"),
        "description.en" => Some("p-description-en"),
        "brand_id" => Some("p-brand"),
        "category_id" => Some("p-category"),
        "status" => Some("p-status"),
        "variants" => Some("v0-sku"),
        _ if api.starts_with("images") => Some("p-image-url"),
        _ => None,
    };
    if let Some(d) = direct {
        return Some(d.to_string());
    }
    let rest = api.strip_prefix("variants[")?;
    let (i, field) = rest.split_once("].")?;
    let row = *rows.get(i.parse::<usize>().ok()?)?;
    let name = match field.split('.').next()? {
        "sku" | "barcode" => "sku",
        "size" => "size",
        "colour" => "colour",
        "price" => "price",
        "vat_rate" => "vat",
        _ => return None,
    };
    Some(format!("v{row}-{name}"))
}

pub(crate) async fn create(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    body: Bytes,
) -> Response {
    let p = gate_writer!(st, l, v, gate_post(&st, l, &v));
    let a = text::a(l);
    let form = Form::parse(&body);
    let mut f = Fields::from_form(&form);
    let page_uri: Uri = format!("/{}/admin/products/new", l.code())
        .parse()
        .unwrap_or(uri);
    let name_fr = form.get("p-name-fr").to_string();
    let name_en = form.get("p-name-en").to_string();
    for (k, val) in [("p-name-fr", &name_fr), ("p-name-en", &name_en)] {
        if val.is_empty() {
            f.error(k, a.err_required);
        }
    }
    let brand = opt_id(form.get("p-brand"));
    if brand.is_err() {
        f.error("p-brand", a.err_invalid);
    }
    let category = opt_id(form.get("p-category"));
    if category.is_err() {
        f.error("p-category", a.err_invalid);
    }
    let status = if form.get("p-status") == "published" {
        "published"
    } else {
        "draft"
    };
    let mut variants = Vec::new();
    let mut rows = Vec::new();
    for i in 0..NEW_ROWS {
        let k = |n: &str| format!("v{i}-{n}");
        let sku = sku_of(form.get(&k("sku")));
        let size = form.get(&k("size")).to_string();
        let colour = form.get(&k("colour")).to_string();
        let price = form.get(&k("price")).to_string();
        if sku.is_empty() && size.is_empty() && colour.is_empty() && price.is_empty() {
            continue;
        }
        f.set(&k("sku"), sku.clone());
        if sku.is_empty() {
            f.error(&k("sku"), a.err_required);
        }
        let amount = hundredths(&price);
        if amount.is_none() {
            f.error(&k("price"), a.err_price);
        }
        let vat = vat_of(form.get(&k("vat")));
        if vat.is_none() {
            f.error(&k("vat"), a.err_vat);
        }
        variants.push(json!({
            "sku": sku,
            "size": (!size.is_empty()).then_some(size),
            "colour": (!colour.is_empty()).then_some(colour),
            "price": {"amount_minor": amount.unwrap_or(0), "currency": "EUR"},
            "vat_rate": vat.unwrap_or(2000),
        }));
        rows.push(i);
    }
    if variants.is_empty() {
        f.error("v0-sku", a.err_one_variant);
    }
    if f.has_errors() {
        return new_form(
            &st,
            l,
            &v,
            &page_uri,
            &p,
            f,
            Some(a.err_form.to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let image = form.get("p-image-url").to_string();
    let images: Vec<Value> = if image.is_empty() {
        vec![]
    } else {
        vec![json!({"url": image, "alt": {"fr": name_fr, "en": name_en}})]
    };
    let body = json!({
        "name": {"fr": name_fr, "en": name_en},
        "description": {"fr": form.get("p-description-fr"), "en": form.get("p-description-en")},
        "brand_id": brand.ok().flatten(),
        "category_id": category.ok().flatten(),
        "status": status,
        "variants": variants,
        "images": images,
    });
    match st
        .api
        .call::<Product>(
            &v,
            Method::POST,
            "/api/catalog/products",
            Some(&body),
            Some(&attempt_key(&form)),
        )
        .await
    {
        Ok(prod) => {
            st.catalogue.invalidate();
            see_other(&format!(
                "/{}/admin/products/{}?done=created",
                l.code(),
                prod.id
            ))
        }
        Err(e) if matches!(e.status, 401 | 403) => failure(&st, l, &v, &e),
        Err(e) => {
            for fe in &e.errors {
                if let Some(id) = new_form_field(&fe.field, &rows) {
                    f.error(&id, field_message(a, &fe.code, &fe.message));
                }
            }
            let status = client_status(&e);
            new_form(&st, l, &v, &page_uri, &p, f, Some(refusal(a, &e)), status).await
        }
    }
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

// ---- edit -------------------------------------------------------------------------------------

struct VariantRow {
    i: usize,
    id: Uuid,
    sku: String,
    size: String,
    colour: String,
    price: String,
    price_shown: String,
    vat: String,
    active: bool,
}

struct ImageRow {
    url: String,
    alt: String,
}

#[derive(Template)]
#[template(path = "admin/product_edit.html")]
struct EditPage {
    c: Chrome,
    a: &'static A,
    id: Uuid,
    slug: String,
    version: i64,
    status: String,
    status_label: &'static str,
    archived: bool,
    published: bool,
    brands: Vec<(String, String)>,
    categories: Vec<(String, String)>,
    variants: Vec<VariantRow>,
    images: Vec<ImageRow>,
    attempt: Uuid,
    done: Option<&'static str>,
    error: Option<String>,
    f: Fields,
}

#[derive(Deserialize, Default)]
pub(crate) struct DoneParams {
    done: Option<String>,
}

async fn load(st: &WebState, v: &Visitor, id: &str) -> Result<Product, Problem> {
    let Ok(pid) = Uuid::parse_str(id) else {
        return Err(Problem {
            status: 404,
            code: "not_found".into(),
            ..Default::default()
        });
    };
    st.api
        .call(
            v,
            Method::GET,
            &format!("/api/catalog/products/{pid}"),
            None::<&()>,
            None,
        )
        .await
}

/// The main form's values from the product as it is.
fn fields_of(prod: &Product) -> Fields {
    let mut f = Fields::default();
    f.set("p-name-fr", prod.name.fr.clone());
    f.set("p-name-en", prod.name.en.clone());
    f.set("p-description-fr", prod.description.fr.clone());
    f.set("p-description-en", prod.description.en.clone());
    f.set(
        "p-brand",
        prod.brand
            .as_ref()
            .map(|b| b.id.to_string())
            .unwrap_or_default(),
    );
    f.set(
        "p-category",
        prod.category
            .as_ref()
            .map(|k| k.id.to_string())
            .unwrap_or_default(),
    );
    f.set("p-status", prod.status.as_str());
    f.set("nv-vat", "20");
    f
}

#[allow(clippy::too_many_arguments)]
async fn edit_form(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    p: &Principal,
    prod: Product,
    f: Option<Fields>,
    done: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let a = text::a(l);
    let (brands, categories) = choices(st, v, l).await;
    let f = f.unwrap_or_else(|| fields_of(&prod));
    let uri: Uri = format!("/{}/admin/products/{}", l.code(), prod.id)
        .parse()
        .unwrap_or_default();
    let title = l.pick(&prod.name).to_string();
    let c = chrome(st, l, v, &uri, p, "products", &title);
    let variants = prod
        .variants
        .iter()
        .enumerate()
        .map(|(i, x)| VariantRow {
            i,
            id: x.id,
            sku: x.sku.clone(),
            size: x.size.clone().unwrap_or_default(),
            colour: x.colour.clone().unwrap_or_default(),
            price: plain_euros(x.price.amount_minor),
            price_shown: l.money(x.price.amount_minor, &x.price.currency.to_string()),
            vat: plain_percent(i64::from(x.vat_rate.basis_points())),
            active: x.active,
        })
        .collect();
    let images = prod
        .images
        .iter()
        .map(|i| ImageRow {
            url: i.url.clone(),
            alt: l.pick(&i.alt).to_string(),
        })
        .collect();
    let s = prod.status.as_str();
    render(
        &EditPage {
            c,
            a,
            id: prod.id,
            slug: prod.slug.clone(),
            version: prod.version,
            status: s.to_string(),
            status_label: a.product_status(s),
            archived: prod.status == catalog::domain::Status::Archived,
            published: prod.status == catalog::domain::Status::Published,
            brands,
            categories,
            variants,
            images,
            attempt: Uuid::now_v7(),
            done,
            error,
            f,
        },
        status,
    )
}

pub(crate) async fn edit_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(id): Path<String>,
    params: Q<DoneParams>,
) -> Response {
    let p = gate_writer!(st, l, v, gate(&st, l, &v, &uri));
    let a = text::a(l);
    let prod = match load(&st, &v, &id).await {
        Ok(x) => x,
        Err(e) => return failure(&st, l, &v, &e),
    };
    let done = match params.done.as_deref() {
        Some("created") => Some(a.done_created),
        Some("saved") => Some(a.done_saved),
        Some("variant_saved") => Some(a.done_variant_saved),
        Some("variant_added") => Some(a.done_variant_added),
        Some("archived") => Some(a.done_archived),
        _ => None,
    };
    edit_form(&st, l, &v, &p, prod, None, done, None, StatusCode::OK).await
}

/// Where an API field error belongs on the edit form.
fn edit_field(api: &str) -> Option<&'static str> {
    Some(match api {
        "name.fr" | "slug" => "p-name-fr",
        "name.en" => "p-name-en",
        "description.fr" => "p-description-fr",
        "description.en" => "p-description-en",
        "brand_id" => "p-brand",
        "category_id" => "p-category",
        "status" => "p-status",
        _ => return None,
    })
}

pub(crate) async fn update(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let p = gate_writer!(st, l, v, gate_post(&st, l, &v));
    let a = text::a(l);
    let prod = match load(&st, &v, &id).await {
        Ok(x) => x,
        Err(e) => return failure(&st, l, &v, &e),
    };
    let form = Form::parse(&body);
    let mut f = Fields::from_form(&form);
    f.set("nv-vat", "20");
    let archived = prod.status == catalog::domain::Status::Archived;
    if !archived {
        f.set(
            "p-status",
            if form.get("p-status") == "published" {
                "published"
            } else {
                "draft"
            },
        );
    }
    if form.get("version") != prod.version.to_string() {
        return edit_form(
            &st,
            l,
            &v,
            &p,
            prod,
            Some(f),
            None,
            Some(a.err_changed.to_string()),
            StatusCode::CONFLICT,
        )
        .await;
    }
    for k in ["p-name-fr", "p-name-en"] {
        if form.get(k).is_empty() {
            f.error(k, a.err_required);
        }
    }
    let brand = opt_id(form.get("p-brand"));
    if brand.is_err() {
        f.error("p-brand", a.err_invalid);
    }
    let category = opt_id(form.get("p-category"));
    if category.is_err() {
        f.error("p-category", a.err_invalid);
    }
    if f.has_errors() {
        return edit_form(
            &st,
            l,
            &v,
            &p,
            prod,
            Some(f),
            None,
            Some(a.err_form.to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let mut patch = json!({
        "name": {"fr": form.get("p-name-fr"), "en": form.get("p-name-en")},
        "description": {"fr": form.get("p-description-fr"), "en": form.get("p-description-en")},
        "brand_id": brand.ok().flatten(),
        "category_id": category.ok().flatten(),
    });
    if !archived {
        patch["status"] = json!(f.val("p-status"));
    }
    // the API refuses the change (412) if someone saved the product since this form was read
    let seen = [("if-match", format!("\"v{}\"", prod.version))];
    match st
        .api
        .call_with::<Product>(
            &v,
            Method::PATCH,
            &format!("/api/catalog/products/{}", prod.id),
            Some(&patch),
            Some(&attempt_key(&form)),
            &seen,
        )
        .await
    {
        Ok(x) => {
            st.catalogue.invalidate();
            see_other(&format!("/{}/admin/products/{}?done=saved", l.code(), x.id))
        }
        Err(e) if matches!(e.status, 401 | 403 | 404) => failure(&st, l, &v, &e),
        Err(e) => {
            for fe in &e.errors {
                if let Some(k) = edit_field(&fe.field) {
                    f.error(k, field_message(a, &fe.code, &fe.message));
                }
            }
            let status = client_status(&e);
            edit_form(
                &st,
                l,
                &v,
                &p,
                prod,
                Some(f),
                None,
                Some(refusal(a, &e)),
                status,
            )
            .await
        }
    }
}

pub(crate) async fn update_variant(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    Path((id, vid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let p = gate_writer!(st, l, v, gate_post(&st, l, &v));
    let a = text::a(l);
    let prod = match load(&st, &v, &id).await {
        Ok(x) => x,
        Err(e) => return failure(&st, l, &v, &e),
    };
    let Some(variant) = prod
        .variants
        .iter()
        .find(|x| x.id.to_string() == vid)
        .cloned()
    else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    let form = Form::parse(&body);
    let price = hundredths(form.get("price"));
    let vat = vat_of(form.get("vat"));
    let (Some(price), Some(vat)) = (price, vat) else {
        let msg = format!(
            "{} {}{} {}",
            a.variant,
            variant.sku,
            a.colon,
            if price.is_none() {
                a.err_price
            } else {
                a.err_vat
            }
        );
        return edit_form(
            &st,
            l,
            &v,
            &p,
            prod,
            None,
            None,
            Some(msg),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let patch = json!({
        "price": {"amount_minor": price, "currency": variant.price.currency},
        "vat_rate": vat,
        "active": form.get("active") == "1",
    });
    match st
        .api
        .call::<Product>(
            &v,
            Method::PATCH,
            &format!("/api/catalog/products/{}/variants/{}", prod.id, variant.id),
            Some(&patch),
            Some(&attempt_key(&form)),
        )
        .await
    {
        Ok(_) => {
            st.catalogue.invalidate();
            see_other(&format!(
                "/{}/admin/products/{}?done=variant_saved",
                l.code(),
                prod.id
            ))
        }
        Err(e) if matches!(e.status, 401 | 403 | 404) => failure(&st, l, &v, &e),
        Err(e) => {
            let detail = e
                .errors
                .first()
                .map(|x| field_message(a, &x.code, &x.message))
                .unwrap_or_else(|| refusal(a, &e));
            let msg = format!("{} {}{} {detail}", a.variant, variant.sku, a.colon);
            let status = client_status(&e);
            edit_form(&st, l, &v, &p, prod, None, None, Some(msg), status).await
        }
    }
}

pub(crate) async fn add_variant(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let p = gate_writer!(st, l, v, gate_post(&st, l, &v));
    let a = text::a(l);
    let prod = match load(&st, &v, &id).await {
        Ok(x) => x,
        Err(e) => return failure(&st, l, &v, &e),
    };
    let form = Form::parse(&body);
    let mut f = fields_of(&prod);
    for k in ["nv-sku", "nv-size", "nv-colour", "nv-price", "nv-vat"] {
        f.set(k, form.get(k));
    }
    let sku = sku_of(form.get("nv-sku"));
    f.set("nv-sku", sku.clone());
    if sku.is_empty() {
        f.error("nv-sku", a.err_required);
    }
    let price = hundredths(form.get("nv-price"));
    if price.is_none() {
        f.error("nv-price", a.err_price);
    }
    let vat = vat_of(form.get("nv-vat"));
    if vat.is_none() {
        f.error("nv-vat", a.err_vat);
    }
    if f.has_errors() {
        return edit_form(
            &st,
            l,
            &v,
            &p,
            prod,
            Some(f),
            None,
            Some(a.err_form.to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let size = form.get("nv-size");
    let colour = form.get("nv-colour");
    let currency = prod
        .variants
        .first()
        .map(|x| x.price.currency)
        .unwrap_or(kernel::Currency::EUR);
    let body = json!({
        "sku": sku,
        "size": (!size.is_empty()).then_some(size),
        "colour": (!colour.is_empty()).then_some(colour),
        "price": {"amount_minor": price.unwrap_or(0), "currency": currency},
        "vat_rate": vat.unwrap_or(2000),
    });
    match st
        .api
        .call::<Product>(
            &v,
            Method::POST,
            &format!("/api/catalog/products/{}/variants", prod.id),
            Some(&body),
            Some(&attempt_key(&form)),
        )
        .await
    {
        Ok(_) => {
            st.catalogue.invalidate();
            see_other(&format!(
                "/{}/admin/products/{}?done=variant_added",
                l.code(),
                prod.id
            ))
        }
        Err(e) if matches!(e.status, 401 | 403 | 404) => failure(&st, l, &v, &e),
        Err(e) => {
            for fe in &e.errors {
                let k = match fe.field.rsplit('.').next().unwrap_or("") {
                    "sku" | "barcode" => "nv-sku",
                    "size" => "nv-size",
                    "colour" => "nv-colour",
                    "amount_minor" | "price" | "currency" => "nv-price",
                    "vat_rate" => "nv-vat",
                    _ => continue,
                };
                f.error(k, field_message(a, &fe.code, &fe.message));
            }
            let status = client_status(&e);
            edit_form(
                &st,
                l,
                &v,
                &p,
                prod,
                Some(f),
                None,
                Some(refusal(a, &e)),
                status,
            )
            .await
        }
    }
}

pub(crate) async fn archive(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    Path(id): Path<String>,
) -> Response {
    let p = gate_writer!(st, l, v, gate_post(&st, l, &v));
    let a = text::a(l);
    let Ok(pid) = Uuid::parse_str(&id) else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    match st
        .api
        .call::<Product>(
            &v,
            Method::POST,
            &format!("/api/catalog/products/{pid}/archive"),
            None::<&()>,
            None,
        )
        .await
    {
        Ok(_) => {
            st.catalogue.invalidate();
            see_other(&format!("/{}/admin/products/{pid}?done=archived", l.code()))
        }
        Err(e) if matches!(e.status, 401 | 403 | 404) => failure(&st, l, &v, &e),
        Err(e) => match load(&st, &v, &id).await {
            Ok(prod) => {
                let status = client_status(&e);
                edit_form(
                    &st,
                    l,
                    &v,
                    &p,
                    prod,
                    None,
                    None,
                    Some(refusal(a, &e)),
                    status,
                )
                .await
            }
            Err(e2) => failure(&st, l, &v, &e2),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_land_on_the_right_row() {
        // the request's variants came from form rows 0 and 2 (row 1 was empty)
        let rows = [0, 2];
        assert_eq!(
            new_form_field("name.fr", &rows).as_deref(),
            Some("p-name-fr")
        );
        assert_eq!(new_form_field("slug", &rows).as_deref(), Some("p-name-fr"));
        assert_eq!(
            new_form_field("variants[1].sku", &rows).as_deref(),
            Some("v2-sku")
        );
        assert_eq!(
            new_form_field("variants[0].price.amount_minor", &rows).as_deref(),
            Some("v0-price")
        );
        assert_eq!(
            new_form_field("variants[1].vat_rate", &rows).as_deref(),
            Some("v2-vat")
        );
        assert_eq!(new_form_field("variants[5].sku", &rows), None);
        assert_eq!(
            new_form_field("images[0].url", &rows).as_deref(),
            Some("p-image-url")
        );
        assert_eq!(new_form_field("attributes[0]", &rows), None);
    }

    #[test]
    fn vat_defaults_to_twenty_percent() {
        assert_eq!(vat_of(""), Some(2000));
        assert_eq!(vat_of("5,5"), Some(550));
        assert_eq!(vat_of("120"), None);
        assert_eq!(vat_of("x"), None);
    }
}
