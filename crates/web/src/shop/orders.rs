//! One order as its customer sees it, including the confirmation after checkout.

use super::L;
use super::cart::LineRow;
use crate::WebState;
use crate::pages::{Chrome, error_page, render};
use crate::session::Visitor;
use askama::Template;
use axum::extract::{Path, Query as Q, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

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
    #[allow(
        dead_code,
        reason = "in the orders API's answer; the storefront does not show refunds"
    )]
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
pub(super) struct PlacedParams {
    placed: Option<String>,
}

pub(super) async fn order_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(id): Path<String>,
    params: Q<PlacedParams>,
) -> Response {
    let t = l.t();
    let Ok(oid) = id.parse::<kernel::OrderId>() else {
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
        None if v.may_see_guest_order(oid) => st
            .orders
            .order(oid)
            .await
            .ok()
            .flatten()
            .and_then(|j| serde_json::from_value(j).ok()),
        None => None,
    };
    let Some(o) = order else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    let locs = st.stock.locations().await.unwrap_or_default();
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
