//! The edit form: the product's fields (with its version, so a concurrent change is refused),
//! its variants and pictures as they are, and archiving.

use super::{choices, client_status, opt_id, refusal};
use crate::WebState;
use crate::admin::text::{self, A};
use crate::admin::{
    Fields, attempt_key, chrome, failure, field_message, gate, gate_post, plain_percent,
};
use crate::api::Problem;
use crate::i18n::Lang;
use crate::pages::{Chrome, error_page, render};
use crate::session::{Visitor, see_other};
use crate::shop::{Form, L};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query as Q, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use catalog::model::Product;
use platform::authz::Principal;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

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

pub(super) async fn load(st: &WebState, v: &Visitor, id: &str) -> Result<Product, Problem> {
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
pub(super) fn fields_of(prod: &Product) -> Fields {
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
pub(super) async fn edit_form(
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
            price: x.price.plain(),
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
