//! Checkout: delivery or click & collect, payment, the pending page while the saga runs, and the
//! test provider's 3-D Secure page.

use super::cart::{CartView, LineRow, current_cart, line_rows};
use super::{Form, L};
use crate::WebState;
use crate::api::Problem;
use crate::i18n::Lang;
use crate::pages::{Chrome, error_page, render};
use crate::session::{Visitor, see_other};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

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
        .stock
        .locations()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|x| x.click_and_collect)
        .map(|x| (x.code, x.name))
        .collect();
    let s = &st.shipping;
    let c = Chrome::new(st, l, v, uri, t.checkout).await;
    let page = CheckoutPage {
        lines: line_rows(l, cart),
        subtotal: l.money(cart.subtotal, &cart.currency),
        free_from: l.money(s.free_from, &cart.currency),
        // what home delivery costs for this cart (collection is free)
        fee: l.money(
            if cart.subtotal >= s.free_from {
                0
            } else {
                s.fee
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

pub(super) async fn checkout_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
) -> Response {
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

pub(super) async fn checkout_post(
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
            match st.orders.checkout_holding_cart(cart.id).await {
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
        .and_then(|s| s.parse::<kernel::OrderId>().ok());
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
async fn own_checkout(
    st: &WebState,
    v: &Visitor,
    id: &str,
) -> Option<contracts::orders::CheckoutView> {
    let id: kernel::OrderId = id.parse().ok()?;
    let row = st.orders.checkout(id).await.ok()??;
    let plan = &row.plan;
    let customer = plan.get("customer").and_then(|c| c.as_str());
    let cart = plan
        .get("cart_id")
        .and_then(|c| c.as_str())
        .and_then(|c| c.parse::<kernel::CartId>().ok());
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

pub(super) async fn checkout_status(
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
pub(super) async fn confirm_page(
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
    let plan = row.plan.clone();
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

pub(super) async fn confirm_post(
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
    if let Err(e) = st
        .payments
        .complete_test_action(contracts::orders::payment_of(row.id), approved)
        .await
    {
        tracing::warn!(error = %e, "test 3-D Secure confirmation failed");
        return error_page(&st, l, Some(&v), StatusCode::SERVICE_UNAVAILABLE);
    }
    // drive the saga now rather than waiting for the recovery worker's next poll
    if let Err(e) = st.orders.resume(row.id).await {
        tracing::warn!(error = %e, "checkout saga did not advance yet");
    }
    see_other(&format!("/{}/checkout/{}", l.code(), row.id))
}
