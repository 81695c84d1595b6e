//! The cart: adding, changing and removing lines, and the cart page.

use super::{Form, L, MsgParams, local_path};
use crate::WebState;
use crate::api::enc;
use crate::i18n::Lang;
use crate::pages::{Chrome, error_page, render};
use crate::session::{Visitor, see_other};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query as Q, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct CartView {
    pub id: kernel::CartId,
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
pub(super) async fn current_cart(st: &WebState, v: &Visitor) -> Option<CartView> {
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

pub(super) async fn cart_add(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    body: Bytes,
) -> Response {
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

pub(super) async fn cart_update(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    body: Bytes,
) -> Response {
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

pub(super) fn line_rows(l: Lang, c: &CartView) -> Vec<LineRow> {
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

pub(super) async fn cart_page(
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
