//! A variant's price, VAT and state, and a new variant, from the edit page.

use super::edit::{edit_form, fields_of, load};
use super::{client_status, refusal, sku_of, vat_of};
use crate::WebState;
use crate::admin::text::{self};
use crate::admin::{amount_in, attempt_key, failure, field_message, gate_post};
use crate::pages::error_page;
use crate::session::{Visitor, see_other};
use crate::shop::{Form, L};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use catalog::model::Product;
use serde_json::json;

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
    let price = amount_in(form.get("price"), variant.price.currency);
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
    let currency = prod
        .variants
        .first()
        .map(|x| x.price.currency)
        .unwrap_or(kernel::Currency::EUR);
    let price = amount_in(form.get("nv-price"), currency);
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
