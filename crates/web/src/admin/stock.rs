//! Stock: the locations (head office), the levels of one location with a SKU filter and the
//! adjustment form, and its movement history. The API answers 404 for a location the visitor
//! may not act for (another store), and so do these pages.

use super::dashboard::Level;
use super::text::{self, A};
use super::{
    Fields, Location, attempt_key, chrome, failure, gate, gate_post, locations, parse_delta,
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
use platform::authz::{Principal, perm};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

#[derive(Template)]
#[template(path = "admin/stock_index.html")]
struct IndexPage {
    c: Chrome,
    a: &'static A,
    locations: Vec<Location>,
}

pub(crate) async fn index(State(st): State<WebState>, L(l): L, v: Visitor, uri: Uri) -> Response {
    let p = match gate(&st, l, &v, &uri) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if !p.has(perm::INVENTORY_READ) {
        return error_page(&st, l, Some(&v), StatusCode::FORBIDDEN);
    }
    if !p.is_head_office() {
        return match &p.store {
            Some(s) => see_other(&format!("/{}/admin/stock/{}", l.code(), enc(s))),
            None => error_page(&st, l, Some(&v), StatusCode::FORBIDDEN),
        };
    }
    let a = text::a(l);
    let c = chrome(&st, l, &v, &uri, &p, "stock", a.stock);
    render(
        &IndexPage {
            c,
            a,
            locations: locations(&st, &v).await,
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct LevelParams {
    sku: Option<String>,
    low: Option<String>,
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/stock.html")]
struct LevelsPage {
    c: Chrome,
    a: &'static A,
    loc: Location,
    levels: Vec<Level>,
    sku: String,
    low: bool,
    can_write: bool,
    head_office: bool,
    attempt: Uuid,
    done: Option<String>,
    error: Option<String>,
    f: Fields,
}

fn sku_of(s: &str) -> String {
    s.trim().to_uppercase().chars().take(64).collect()
}

/// The location `code` if it exists (a typo is a 404, whoever asks).
async fn location(st: &WebState, v: &Visitor, code: &str) -> Option<Location> {
    locations(st, v).await.into_iter().find(|x| x.code == code)
}

pub(crate) async fn levels(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(code): Path<String>,
    params: Q<LevelParams>,
) -> Response {
    let p = match gate(&st, l, &v, &uri) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    let sku = sku_of(params.sku.as_deref().unwrap_or(""));
    let done = match params.done.as_deref() {
        Some("adjusted") if !sku.is_empty() => Some(format!("{} {sku}", a.done_adjusted)),
        Some("adjusted") => Some(a.done_adjusted.to_string()),
        _ => None,
    };
    let mut f = Fields::default();
    f.set("adjust-sku", sku.clone());
    let low = params
        .low
        .as_deref()
        .is_some_and(|x| !x.is_empty() && x != "0");
    levels_page(
        &st,
        l,
        &v,
        &uri,
        &p,
        &code,
        &sku,
        low,
        done,
        None,
        f,
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn levels_page(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    uri: &Uri,
    p: &Principal,
    code: &str,
    sku: &str,
    low: bool,
    done: Option<String>,
    error: Option<String>,
    f: Fields,
    status: StatusCode,
) -> Response {
    let a = text::a(l);
    if !p.has(perm::INVENTORY_READ) {
        return error_page(st, l, Some(v), StatusCode::FORBIDDEN);
    }
    let Some(loc) = location(st, v, code).await else {
        return error_page(st, l, Some(v), StatusCode::NOT_FOUND);
    };
    let mut path = format!("/api/inventory/stock?location={}&limit=1000", enc(code));
    if !sku.is_empty() {
        path.push_str(&format!("&sku={}", enc(sku)));
    }
    if low {
        path.push_str("&low=true");
    }
    let levels: Vec<Level> = match st.api.call(v, Method::GET, &path, None::<&()>, None).await {
        Ok(x) => x,
        Err(e) => return failure(st, l, v, &e),
    };
    let title = format!("{} · {}", a.stock, loc.name);
    let c = chrome(st, l, v, uri, p, "stock", &title);
    render(
        &LevelsPage {
            c,
            a,
            loc,
            levels,
            sku: sku.to_string(),
            low,
            can_write: p.has(perm::INVENTORY_WRITE),
            head_office: p.is_head_office(),
            attempt: Uuid::now_v7(),
            done,
            error,
            f,
        },
        status,
    )
}

pub(crate) async fn adjust(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let p = match gate_post(&st, l, &v) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    if !p.has(perm::INVENTORY_WRITE) {
        return error_page(&st, l, Some(&v), StatusCode::FORBIDDEN);
    }
    let form = Form::parse(&body);
    let mut f = Fields::from_form(&form);
    let sku = sku_of(form.get("adjust-sku"));
    f.set("adjust-sku", sku.clone());
    let delta = parse_delta(form.get("adjust-delta"));
    let reason: String = form.get("adjust-reason").to_string();
    if sku.is_empty() {
        f.error("adjust-sku", a.err_required);
    }
    if delta.is_none() {
        f.error("adjust-delta", a.err_delta);
    }
    if reason.is_empty() {
        f.error("adjust-reason", a.err_required);
    } else if reason.chars().count() > 200 {
        f.error("adjust-reason", a.err_too_long);
    }
    let page_uri: Uri = format!("/{}/admin/stock/{}", l.code(), enc(&code))
        .parse()
        .unwrap_or_default();
    let back = |f: Fields, error: String, status: StatusCode| {
        let (st, v, p, code, sku, page_uri) = (&st, &v, &p, &code, &sku, &page_uri);
        async move {
            levels_page(
                st,
                l,
                v,
                page_uri,
                p,
                code,
                sku,
                false,
                None,
                Some(error),
                f,
                status,
            )
            .await
        }
    };
    let Some(delta) = delta.filter(|_| !f.has_errors()) else {
        return back(f, a.err_form.to_string(), StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let body = json!({
        "location": code,
        "sku": sku,
        "kind": "adjustment",
        "quantity": delta,
        "reason": reason,
    });
    match st
        .api
        .call::<serde_json::Value>(
            &v,
            Method::POST,
            "/api/inventory/movements",
            Some(&body),
            Some(&attempt_key(&form)),
        )
        .await
    {
        Ok(_) => {
            // the shop shows stock per store: let it see the change now
            st.catalogue.invalidate_stock();
            see_other(&format!(
                "/{}/admin/stock/{}?done=adjusted&sku={}",
                l.code(),
                enc(&code),
                enc(&sku)
            ))
        }
        Err(e) if matches!(e.status, 401 | 403 | 404) => failure(&st, l, &v, &e),
        Err(e) => {
            let status = StatusCode::from_u16(e.status)
                .ok()
                .filter(|s| s.is_client_error())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            back(f, refusal(a, &e), status).await
        }
    }
}

fn refusal(a: &A, e: &Problem) -> String {
    match (e.status, e.code.as_str()) {
        (409, "out_of_stock") => a.err_below_zero.to_string(),
        (409, _) => format!("{} ({})", a.err_conflict, e.detail),
        (422, _) => format!("{} ({})", a.err_refused, e.detail),
        (429, _) | (503, _) => a.err_busy.to_string(),
        _ => a.err_generic.to_string(),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct MovementParams {
    sku: Option<String>,
}

#[derive(Deserialize)]
struct Movement {
    sku: String,
    kind: String,
    on_hand_delta: i64,
    held_delta: i64,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    actor: String,
    created_at: i64,
}

struct MovementView {
    at: String,
    sku: String,
    kind: &'static str,
    on_hand: String,
    held: String,
    reference: String,
    actor: String,
}

#[derive(Template)]
#[template(path = "admin/movements.html")]
struct MovementsPage {
    c: Chrome,
    a: &'static A,
    loc: Location,
    sku: String,
    rows: Vec<MovementView>,
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

pub(crate) async fn movements(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    Path(code): Path<String>,
    params: Q<MovementParams>,
) -> Response {
    let p = match gate(&st, l, &v, &uri) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    if !p.has(perm::INVENTORY_READ) {
        return error_page(&st, l, Some(&v), StatusCode::FORBIDDEN);
    }
    let Some(loc) = location(&st, &v, &code).await else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    let sku = sku_of(params.sku.as_deref().unwrap_or(""));
    let mut path = format!("/api/inventory/movements?location={}&limit=200", enc(&code));
    if !sku.is_empty() {
        path.push_str(&format!("&sku={}", enc(&sku)));
    }
    let list: Vec<Movement> = match st.api.call(&v, Method::GET, &path, None::<&()>, None).await {
        Ok(x) => x,
        Err(e) => return failure(&st, l, &v, &e),
    };
    let rows = list
        .into_iter()
        .map(|m| MovementView {
            at: l.datetime(m.created_at),
            sku: m.sku,
            kind: a.movement_kind(&m.kind),
            on_hand: signed(m.on_hand_delta),
            held: signed(m.held_delta),
            reference: m.reference,
            actor: m.actor,
        })
        .collect();
    let title = format!("{} · {}", a.movements, loc.name);
    let c = chrome(&st, l, &v, &uri, &p, "stock", &title);
    render(
        &MovementsPage {
            c,
            a,
            loc,
            sku,
            rows,
        },
        StatusCode::OK,
    )
}
