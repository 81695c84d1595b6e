//! The creation form: the product's fields and its first variants, in one request.

use super::{choices, client_status, opt_id, refusal, sku_of, vat_of};
use crate::WebState;
use crate::admin::text::{self, A};
use crate::admin::{
    Fields, amount_in, attempt_key, chrome, failure, field_message, gate, gate_post,
};
use crate::i18n::Lang;
use crate::pages::{Chrome, render};
use crate::session::{Visitor, see_other};
use crate::shop::{Form, L};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use catalog::model::Product;
use platform::authz::Principal;
use serde_json::{Value, json};
use uuid::Uuid;

/// Rows of variants on the creation form.
const NEW_ROWS: usize = 3;

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
        let amount = amount_in(&price, kernel::Currency::EUR);
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
}
