//! The product list: search, filter by state, pages.

use crate::WebState;
use crate::admin::text::{self, A};
use crate::admin::{chrome, failure, gate};
use crate::api::enc;
use crate::pages::{Chrome, render};
use crate::session::Visitor;
use crate::shop::L;
use askama::Template;
use axum::extract::{Query as Q, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use catalog::model::ProductPage;
use serde::Deserialize;

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
