//! Orders: the list with filters, and one order with its lines, totals, history and checkout
//! saga, plus the staff actions (fulfil, complete, cancel, partial refund). Money actions carry
//! the form's attempt as `Idempotency-Key`, so a double submit never refunds twice.

use super::text::{self, A};
use super::{Fields, amount_in, attempt_key, chrome, failure, gate, gate_post, locations};
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
use platform::authz::{Principal, perm};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

const STATUSES: &[&str] = &[
    "pending",
    "awaiting_payment",
    "paid",
    "fulfilled",
    "completed",
    "cancelled",
    "partially_refunded",
    "refunded",
];
const PAGE: usize = 50;

#[derive(Deserialize, Clone)]
pub(crate) struct Line {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub line_total: i64,
}

#[derive(Deserialize, Clone, Default)]
pub(crate) struct Address {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    #[serde(default)]
    pub postcode: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub country: String,
}

#[derive(Deserialize, Clone)]
pub(crate) struct History {
    pub from_status: Option<String>,
    pub to_status: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub note: String,
    pub at: i64,
}

/// An order as the API sends it.
#[derive(Deserialize, Clone)]
pub(crate) struct OrderRow {
    pub id: Uuid,
    pub number: String,
    #[serde(default)]
    pub email: String,
    pub status: String,
    pub fulfilment: String,
    pub location: String,
    #[serde(default)]
    pub address: Option<Address>,
    pub currency: String,
    pub subtotal: i64,
    pub shipping: i64,
    pub total: i64,
    pub refunded: i64,
    #[serde(default)]
    pub lines: Vec<Line>,
    pub created_at: i64,
    #[serde(default)]
    pub history: Vec<History>,
}

#[derive(Deserialize, Clone)]
struct Step {
    seq: i32,
    step: String,
    outcome: String,
    #[serde(default)]
    detail: String,
    at: i64,
}

#[derive(Deserialize, Clone)]
struct Saga {
    state: String,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_detail: Option<String>,
    attempts: i32,
    steps: Vec<Step>,
}

/// A status as a badge: its code (the CSS class) and its words.
pub(crate) struct StatusLabel {
    pub code: String,
    pub label: &'static str,
}

impl StatusLabel {
    pub fn of(a: &A, code: &str) -> StatusLabel {
        StatusLabel {
            code: code.to_string(),
            label: a.order_status(code),
        }
    }
}

struct ListRow {
    url: String,
    number: String,
    date: String,
    email: String,
    fulfilment: &'static str,
    location: String,
    status: StatusLabel,
    total: String,
}

#[derive(Template)]
#[template(path = "admin/orders.html")]
struct ListPage {
    c: Chrome,
    a: &'static A,
    rows: Vec<ListRow>,
    statuses: Vec<(&'static str, &'static str)>,
    status: String,
    location: String,
    locations: Vec<(String, String)>,
    head_office: bool,
    older: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct ListParams {
    status: Option<String>,
    location: Option<String>,
    before: Option<String>,
}

fn clean(s: &Option<String>) -> String {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(64).collect())
        .unwrap_or_default()
}

pub(crate) async fn list(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<ListParams>,
) -> Response {
    let p = match gate(&st, l, &v, &uri) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if !p.has(perm::ORDERS_READ) {
        return error_page(&st, l, Some(&v), StatusCode::FORBIDDEN);
    }
    let a = text::a(l);
    let status = clean(&params.status);
    let status = if STATUSES.contains(&status.as_str()) {
        status
    } else {
        String::new()
    };
    let location = clean(&params.location);
    let before: Option<i64> = params.before.as_deref().and_then(|b| b.parse().ok());
    let mut path = format!("/api/orders?limit={PAGE}");
    if !status.is_empty() {
        path.push_str(&format!("&status={}", enc(&status)));
    }
    if !location.is_empty() {
        path.push_str(&format!("&location={}", enc(&location)));
    }
    if let Some(b) = before {
        path.push_str(&format!("&before={b}"));
    }
    let orders: Vec<OrderRow> = match st.api.call(&v, Method::GET, &path, None::<&()>, None).await {
        Ok(o) => o,
        Err(e) => return failure(&st, l, &v, &e),
    };
    let older = if orders.len() == PAGE {
        orders.last().map(|o| {
            let mut q = format!("/{}/admin/orders?before={}", l.code(), o.created_at);
            if !status.is_empty() {
                q.push_str(&format!("&status={}", enc(&status)));
            }
            if !location.is_empty() {
                q.push_str(&format!("&location={}", enc(&location)));
            }
            q
        })
    } else {
        None
    };
    let locs = locations(&st, &v).await;
    let name_of = |code: &str| {
        locs.iter()
            .find(|x| x.code == code)
            .map(|x| x.name.clone())
            .unwrap_or_else(|| code.to_string())
    };
    let rows = orders
        .iter()
        .map(|o| ListRow {
            url: format!("/{}/admin/orders/{}", l.code(), o.id),
            number: o.number.clone(),
            date: l.datetime(o.created_at),
            email: o.email.clone(),
            fulfilment: fulfilment_label(a, &o.fulfilment),
            location: name_of(&o.location),
            status: StatusLabel::of(a, &o.status),
            total: l.money(o.total, &o.currency),
        })
        .collect();
    let c = chrome(&st, l, &v, &uri, &p, "orders", a.orders);
    render(
        &ListPage {
            c,
            a,
            rows,
            statuses: STATUSES.iter().map(|s| (*s, a.order_status(s))).collect(),
            status,
            location,
            locations: locs
                .iter()
                .map(|x| (x.code.clone(), x.name.clone()))
                .collect(),
            head_office: p.is_head_office(),
            older,
        },
        StatusCode::OK,
    )
}

fn fulfilment_label(a: &A, f: &str) -> &'static str {
    if f == "collect" {
        a.click_collect
    } else {
        a.delivery
    }
}

struct LineView {
    sku: String,
    name: String,
    quantity: i64,
    unit: String,
    total: String,
}

struct StepView {
    seq: i32,
    step: String,
    outcome: String,
    outcome_label: &'static str,
    detail: String,
    at: String,
}

struct HistoryView {
    from: &'static str,
    to: &'static str,
    actor: String,
    note: String,
    at: String,
}

#[derive(Template)]
#[template(path = "admin/order.html")]
struct DetailPage {
    c: Chrome,
    a: &'static A,
    o: OrderRow,
    status: StatusLabel,
    date: String,
    fulfilment: &'static str,
    location: String,
    lines: Vec<LineView>,
    subtotal: String,
    shipping: String,
    total: String,
    refunded: String,
    left: String,
    has_refunds: bool,
    history: Vec<HistoryView>,
    saga_state: String,
    saga_error: String,
    saga_attempts: i32,
    steps: Vec<StepView>,
    has_saga: bool,
    can_write: bool,
    can_fulfil: bool,
    can_complete: bool,
    can_cancel: bool,
    can_refund: bool,
    attempt: Uuid,
    done: Option<&'static str>,
    error: Option<String>,
    f: Fields,
}

#[derive(Deserialize, Default)]
pub(crate) struct DoneParams {
    done: Option<String>,
}

pub(crate) async fn detail(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(id): Path<String>,
    params: Q<DoneParams>,
) -> Response {
    let p = match gate(&st, l, &v, &uri) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    let done = match params.done.as_deref() {
        Some("fulfil") => Some(a.done_fulfilled),
        Some("complete") => Some(a.done_completed),
        Some("cancel") => Some(a.done_cancelled),
        Some("refund") => Some(a.done_refunded),
        _ => None,
    };
    detail_page(
        &st,
        l,
        &v,
        &uri,
        &p,
        &id,
        done,
        None,
        Fields::default(),
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn detail_page(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    uri: &Uri,
    p: &Principal,
    id: &str,
    done: Option<&'static str>,
    error: Option<String>,
    f: Fields,
    status: StatusCode,
) -> Response {
    let a = text::a(l);
    if !p.has(perm::ORDERS_READ) {
        return error_page(st, l, Some(v), StatusCode::FORBIDDEN);
    }
    let Ok(oid) = Uuid::parse_str(id) else {
        return error_page(st, l, Some(v), StatusCode::NOT_FOUND);
    };
    let o: OrderRow = match st
        .api
        .call(
            v,
            Method::GET,
            &format!("/api/orders/{oid}"),
            None::<&()>,
            None,
        )
        .await
    {
        Ok(o) => o,
        Err(e) => return failure(st, l, v, &e),
    };
    let saga: Option<Saga> = st
        .api
        .call(
            v,
            Method::GET,
            &format!("/api/orders/{oid}/saga"),
            None::<&()>,
            None,
        )
        .await
        .ok();
    let locs = locations(st, v).await;
    let location = locs
        .iter()
        .find(|x| x.code == o.location)
        .map(|x| x.name.clone())
        .unwrap_or_else(|| o.location.clone());
    let can_write = p.has(perm::ORDERS_WRITE);
    let paid = matches!(
        o.status.as_str(),
        "paid" | "fulfilled" | "completed" | "partially_refunded" | "refunded"
    );
    let left = (o.total - o.refunded).max(0);
    let lines = o
        .lines
        .iter()
        .map(|x| LineView {
            sku: x.sku.clone(),
            name: x.name.clone(),
            quantity: x.quantity,
            unit: l.money(x.unit_price, &o.currency),
            total: l.money(x.line_total, &o.currency),
        })
        .collect();
    let history = o
        .history
        .iter()
        .map(|h| HistoryView {
            from: h
                .from_status
                .as_deref()
                .map(|s| a.order_status(s))
                .unwrap_or(""),
            to: a.order_status(&h.to_status),
            actor: h.actor.clone(),
            note: h.note.clone(),
            at: l.datetime(h.at),
        })
        .collect();
    let mut steps: Vec<StepView> = saga
        .as_ref()
        .map(|s| {
            s.steps
                .iter()
                .map(|x| StepView {
                    seq: x.seq,
                    step: x.step.clone(),
                    outcome: x.outcome.clone(),
                    outcome_label: a.step_outcome(&x.outcome),
                    detail: x.detail.clone(),
                    at: l.datetime(x.at),
                })
                .collect()
        })
        .unwrap_or_default();
    steps.sort_by_key(|s| s.seq);
    let page = DetailPage {
        c: chrome(
            st,
            l,
            v,
            uri,
            p,
            "orders",
            &format!("{} {}", a.order, o.number),
        ),
        a,
        status: StatusLabel::of(a, &o.status),
        date: l.datetime(o.created_at),
        fulfilment: fulfilment_label(a, &o.fulfilment),
        location,
        lines,
        subtotal: l.money(o.subtotal, &o.currency),
        shipping: l.money(o.shipping, &o.currency),
        total: l.money(o.total, &o.currency),
        refunded: l.money(o.refunded, &o.currency),
        left: l.money(left, &o.currency),
        has_refunds: o.refunded > 0,
        history,
        saga_state: saga.as_ref().map(|s| s.state.clone()).unwrap_or_default(),
        saga_error: saga
            .as_ref()
            .and_then(|s| {
                s.error_code
                    .clone()
                    .map(|c| format!("{c}: {}", s.error_detail.clone().unwrap_or_default()))
            })
            .unwrap_or_default(),
        saga_attempts: saga.as_ref().map(|s| s.attempts).unwrap_or(0),
        has_saga: saga.is_some(),
        steps,
        can_write,
        can_fulfil: can_write && o.status == "paid",
        can_complete: can_write && o.status == "fulfilled",
        can_cancel: can_write && o.status == "paid",
        can_refund: can_write && paid && left > 0,
        attempt: Uuid::now_v7(),
        done,
        error,
        f,
        o,
    };
    render(&page, status)
}

/// A staff action on an order: `fulfil`, `complete`, `cancel` or `refund`.
pub(crate) async fn act(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let p = match gate_post(&st, l, &v) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    if !p.has(perm::ORDERS_WRITE) {
        return error_page(&st, l, Some(&v), StatusCode::FORBIDDEN);
    }
    let Ok(oid) = Uuid::parse_str(&id) else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    let f = Form::parse(&body);
    let key = attempt_key(&f);
    let note = f.get("note").chars().take(500).collect::<String>();
    let page_uri: Uri = format!("/{}/admin/orders/{oid}", l.code())
        .parse()
        .unwrap_or(uri);
    let body = match action.as_str() {
        "fulfil" | "complete" | "cancel" => {
            if note.is_empty() {
                json!({})
            } else {
                json!({ "note": note })
            }
        }
        "refund" => {
            let mut fields = super::Fields::from_form(&f);
            // the form names the order's currency; the API checks the amount against the order
            let currency =
                kernel::Currency::parse(f.get("refund-currency")).unwrap_or(kernel::Currency::EUR);
            let amount = amount_in(f.get("refund-amount"), currency).filter(|m| *m > 0);
            let reason = f.get("refund-reason").chars().take(200).collect::<String>();
            match amount {
                Some(m) => json!({ "amount": m, "reason": reason }),
                None => {
                    fields.error("refund-amount", a.err_amount);
                    return detail_page(
                        &st,
                        l,
                        &v,
                        &page_uri,
                        &p,
                        &id,
                        None,
                        Some(a.err_form.to_string()),
                        fields,
                        StatusCode::UNPROCESSABLE_ENTITY,
                    )
                    .await;
                }
            }
        }
        _ => return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND),
    };
    let path = match action.as_str() {
        "refund" => format!("/api/orders/{oid}/refunds"),
        other => format!("/api/orders/{oid}/{other}"),
    };
    match st
        .api
        .call::<serde_json::Value>(&v, Method::POST, &path, Some(&body), Some(&key))
        .await
    {
        Ok(_) => see_other(&format!(
            "/{}/admin/orders/{oid}?done={}",
            l.code(),
            enc(&action)
        )),
        Err(e) if e.status == 403 => error_page(&st, l, Some(&v), StatusCode::FORBIDDEN),
        Err(e) => {
            let mut fields = super::Fields::from_form(&f);
            let msg = refusal(a, &e);
            if action == "refund" && e.status == 422 {
                fields.error("refund-amount", msg.clone());
            }
            let status = match e.status {
                400..=499 if e.status != 404 => {
                    StatusCode::from_u16(e.status).unwrap_or(StatusCode::CONFLICT)
                }
                404 => StatusCode::CONFLICT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            detail_page(
                &st,
                l,
                &v,
                &page_uri,
                &p,
                &id,
                None,
                Some(msg),
                fields,
                status,
            )
            .await
        }
    }
}

/// What to say when the API refuses an action on an order.
fn refusal(a: &A, e: &Problem) -> String {
    match (e.status, e.code.as_str()) {
        (409, "invalid_transition") => a.err_wrong_state.to_string(),
        (409, _) => format!("{} ({})", a.err_conflict, e.detail),
        (422, _) if e.field("amount").is_some() => a.err_over_refund.to_string(),
        (422, _) => format!("{} ({})", a.err_refused, e.detail),
        (402, _) => a.err_payment.to_string(),
        (429, _) | (503, _) => a.err_busy.to_string(),
        _ => a.err_generic.to_string(),
    }
}
