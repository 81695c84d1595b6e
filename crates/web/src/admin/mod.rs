//! The back office (staff): dashboard, products, stock, orders, staff and API keys.
//!
//! Every page requires a signed-in staff member (anonymous visitors are sent to sign in,
//! customers get 403) and acts through the HTTP API as that person, so the services decide
//! what each one may see and change: a store's staff only ever see their store.

mod dashboard;
mod orders;
mod products;
mod staff;
mod stock;
pub mod text;

use crate::WebState;
use crate::api::{Problem, enc};
use crate::i18n::Lang;
use crate::pages::{AdminNav, Chrome, error_page};
use crate::session::{Visitor, see_other};
use crate::shop::{Form, L};
use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use platform::authz::Principal;
use std::collections::HashMap;
use text::A;
use uuid::Uuid;

pub fn routes() -> Router<WebState> {
    let mut r = Router::new();
    for l in Lang::ALL {
        let p = |s: &str| format!("/{}/admin{s}", l.code());
        r = r
            .route(&p(""), get(dashboard::page))
            .route(&p("/"), get(slash))
            .route(&p("/products"), get(products::list).post(products::create))
            .route(&p("/products/new"), get(products::new_page))
            .route(
                &p("/products/{id}"),
                get(products::edit_page).post(products::update),
            )
            .route(&p("/products/{id}/archive"), post(products::archive))
            .route(&p("/products/{id}/variants"), post(products::add_variant))
            .route(
                &p("/products/{id}/variants/{vid}"),
                post(products::update_variant),
            )
            .route(&p("/stock"), get(stock::index))
            .route(&p("/stock/{location}"), get(stock::levels))
            .route(&p("/stock/{location}/adjust"), post(stock::adjust))
            .route(&p("/stock/{location}/movements"), get(stock::movements))
            .route(&p("/orders"), get(orders::list))
            .route(&p("/orders/{id}"), get(orders::detail))
            .route(&p("/orders/{id}/{action}"), post(orders::act))
            .route(&p("/staff"), get(staff::list).post(staff::create))
            .route(&p("/staff/{id}"), post(staff::update))
            .route(&p("/keys"), get(staff::keys).post(staff::create_key))
            .route(&p("/keys/{id}/revoke"), post(staff::revoke_key))
    }
    r
}

async fn slash(L(l): L) -> Response {
    see_other(&format!("/{}/admin", l.code()))
}

/// The answer to a visitor who may not see a page (boxed: a response is large).
pub(crate) type Refusal = Box<Response>;

/// The signed-in staff member, or the answer for anyone else: sign in first (anonymous), 403
/// (customers).
pub(crate) fn gate(st: &WebState, l: Lang, v: &Visitor, uri: &Uri) -> Result<Principal, Refusal> {
    match &v.principal {
        Some(p) if p.role.is_staff() => Ok(p.clone()),
        Some(_) => Err(Box::new(error_page(st, l, Some(v), StatusCode::FORBIDDEN))),
        None => {
            let next = uri
                .path_and_query()
                .map(|x| x.as_str().to_string())
                .unwrap_or_else(|| format!("/{}/admin", l.code()));
            Err(Box::new(see_other(&format!(
                "/{}/sign-in?next={}",
                l.code(),
                enc(&next)
            ))))
        }
    }
}

/// Like [`gate`] for a form post: an anonymous visitor signs in, then lands on the dashboard
/// (the post itself is not replayed).
pub(crate) fn gate_post(st: &WebState, l: Lang, v: &Visitor) -> Result<Principal, Refusal> {
    let home = format!("/{}/admin", l.code());
    let uri: Uri = home.parse().unwrap_or_default();
    gate(st, l, v, &uri)
}

/// The frame of a back-office page.
pub(crate) fn chrome(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    uri: &Uri,
    p: &Principal,
    current: &'static str,
    title: &str,
) -> Chrome {
    let mut c = Chrome::plain(st, l, v, uri, title, vec![]);
    c.admin = Some(AdminNav {
        current,
        head_office: p.is_head_office(),
        store: p.store.clone().unwrap_or_default(),
    });
    c
}

/// The error page for an API refusal that leaves nothing to show: 404 and 403 as such, the
/// rest as "try again".
pub(crate) fn failure(st: &WebState, l: Lang, v: &Visitor, e: &Problem) -> Response {
    let status = match e.status {
        404 => StatusCode::NOT_FOUND,
        403 | 401 => StatusCode::FORBIDDEN,
        429 => StatusCode::TOO_MANY_REQUESTS,
        503 => StatusCode::SERVICE_UNAVAILABLE,
        _ => {
            tracing::warn!(status = e.status, code = %e.code, detail = %e.detail, "back office: API call failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error_page(st, l, Some(v), status)
}

/// The idempotency key of a form: its hidden `attempt` (a uuid, possibly with a `-<n>` suffix
/// for one of several forms on a page), so that a double submit replays; a fresh one when the
/// field is missing or malformed.
pub(crate) fn attempt_key(f: &Form) -> String {
    let a = f.get("attempt");
    let ok = (36..=48).contains(&a.len())
        && a.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && Uuid::parse_str(&a[..36]).is_ok();
    if ok {
        format!("web-{a}")
    } else {
        format!("web-{}", Uuid::now_v7())
    }
}

/// Form values and field errors, for re-rendering a form with what was typed.
#[derive(Default)]
pub(crate) struct Fields {
    vals: HashMap<String, String>,
    errs: HashMap<String, String>,
}

impl Fields {
    pub fn from_form(f: &Form) -> Fields {
        Fields {
            vals: f
                .0
                .iter()
                .filter(|(k, _)| k.as_str() != "_csrf")
                .map(|(k, v)| (k.clone(), v.trim().to_string()))
                .collect(),
            errs: HashMap::new(),
        }
    }
    pub fn set(&mut self, k: &str, v: impl Into<String>) {
        self.vals.insert(k.to_string(), v.into());
    }
    pub fn error(&mut self, k: &str, msg: impl Into<String>) {
        self.errs.entry(k.to_string()).or_insert_with(|| msg.into());
    }
    pub fn has_errors(&self) -> bool {
        !self.errs.is_empty()
    }
    /// The value typed in `k`.
    pub fn val(&self, k: &str) -> &str {
        self.vals.get(k).map(String::as_str).unwrap_or("")
    }
    pub fn is(&self, k: &str, v: &str) -> bool {
        self.val(k) == v
    }
    pub fn has(&self, k: &str) -> bool {
        self.errs.contains_key(k)
    }
    /// The error of field `k` (empty when none).
    pub fn err(&self, k: &str) -> &str {
        self.errs.get(k).map(String::as_str).unwrap_or("")
    }
    /// ` aria-invalid="true" aria-describedby="<k>-err"` when `k` has an error (`k` is an id
    /// written in a template, never user input).
    pub fn inv(&self, k: &str) -> String {
        if self.has(k) {
            format!(" aria-invalid=\"true\" aria-describedby=\"{k}-err\"")
        } else {
            String::new()
        }
    }
    /// Like [`Fields::inv`] for a field that also has a hint (`hint` is its id).
    pub fn inv_hint(&self, k: &str, hint: &str) -> String {
        if self.has(k) {
            format!(" aria-invalid=\"true\" aria-describedby=\"{hint} {k}-err\"")
        } else {
            format!(" aria-describedby=\"{hint}\"")
        }
    }
}

/// An amount typed into a form, in minor units of `currency`, read by its exponent (`59,90`,
/// `59.90` or `1 234,5 €` in euros, `1500` in yen; a trailing `€` or currency code is allowed).
/// `None` when it is not such an amount, or is negative.
pub(crate) fn amount_in(s: &str, currency: kernel::Currency) -> Option<i64> {
    let s = s
        .trim()
        .trim_end_matches('€')
        .trim_end_matches(currency.code());
    kernel::Money::parse_major(s, currency)
        .ok()
        .map(|m| m.minor())
}

/// A number with at most two decimals, in hundredths: a percentage to basis points (`20`,
/// `5,5`, `5.5 %`). `None` when it is not such a number or is negative.
pub(crate) fn hundredths(s: &str) -> Option<i64> {
    let s: String = s
        .trim()
        .trim_end_matches('€')
        .trim_end_matches('%')
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '_'))
        .collect();
    if s.is_empty() {
        return None;
    }
    let s = s.replace(',', ".");
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s.as_str(), ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || int.len() > 12
    {
        return None;
    }
    let units: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let cents: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    units.checked_mul(100)?.checked_add(cents)
}

/// Hundredths as typed back into a form (`59.90`).
fn plain_hundredths(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:02}", m / 100, m % 100)
}

/// Basis points as a percentage for a form (`20`, `5.5`).
pub(crate) fn plain_percent(bp: i64) -> String {
    let s = plain_hundredths(bp);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// The message shown for an API field error: ours for the codes we know, in the page's
/// language, else the API's own words.
pub(crate) fn field_message(a: &A, code: &str, api: &str) -> String {
    match code {
        "required" => a.err_required.to_string(),
        "sku_taken" | "slug_taken" | "barcode_taken" | "email_taken" | "taken" => {
            a.err_taken.to_string()
        }
        "invalid_format" | "invalid_length" | "invalid_url" | "out_of_range" | "negative"
        | "invalid_email" => format!("{} ({api})", a.err_invalid),
        _ => api.to_string(),
    }
}

/// A signed stock change: `+5`, `-2`, `5` (never zero).
pub(crate) fn parse_delta(s: &str) -> Option<i64> {
    let s = s.trim().replace('\u{2212}', "-");
    let s = s.strip_prefix('+').unwrap_or(&s);
    let n: i64 = s.parse().ok()?;
    if n == 0 || n.abs() > 1_000_000 {
        return None;
    }
    Some(n)
}

/// A GET list whose failure is not worth a page of its own (a missing permission, a service
/// that is slow): empty.
pub(crate) async fn get_or_default<T: serde::de::DeserializeOwned + Default>(
    st: &WebState,
    v: &Visitor,
    path: &str,
) -> T {
    match st
        .api
        .call::<T>(v, axum::http::Method::GET, path, None::<&()>, None)
        .await
    {
        Ok(x) => x,
        Err(e) => {
            if e.status >= 500 {
                tracing::warn!(path, code = %e.code, "back office: a list is unavailable");
            }
            T::default()
        }
    }
}

/// A location as the API lists it.
#[derive(serde::Deserialize, Clone, Default)]
pub(crate) struct Location {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub kind: String,
}

pub(crate) async fn locations(st: &WebState, v: &Visitor) -> Vec<Location> {
    get_or_default(st, v, "/api/inventory/locations").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euros_in_either_notation() {
        assert_eq!(hundredths("59,90"), Some(5990));
        assert_eq!(hundredths("59.90"), Some(5990));
        assert_eq!(hundredths("59"), Some(5900));
        assert_eq!(hundredths("59,9"), Some(5990));
        assert_eq!(hundredths("1 234,50 €"), Some(123_450));
        assert_eq!(hundredths("0,05"), Some(5));
        assert_eq!(hundredths(",5"), Some(50));
        assert_eq!(hundredths("20 %"), Some(2000));
        assert_eq!(hundredths("5,5"), Some(550));
        assert_eq!(hundredths(""), None);
        assert_eq!(hundredths("-3"), None);
        assert_eq!(hundredths("1,234"), None, "three decimals are refused");
        assert_eq!(hundredths("1.2.3"), None);
        assert_eq!(hundredths("abc"), None);
        assert_eq!(hundredths("."), None);
        assert_eq!(hundredths("99999999999999"), None);
    }

    #[test]
    fn amounts_typed_back() {
        assert_eq!(plain_hundredths(5990), "59.90");
        assert_eq!(plain_hundredths(5), "0.05");
        assert_eq!(plain_percent(2000), "20");
        assert_eq!(plain_percent(550), "5.5");
        assert_eq!(plain_percent(0), "0");
        assert_eq!(hundredths(&plain_hundredths(12_345)), Some(12_345));
    }

    #[test]
    fn amounts_are_read_in_their_currency() {
        let eur = kernel::Currency::EUR;
        let jpy = kernel::Currency::parse("JPY").expect("JPY");
        let kwd = kernel::Currency::parse("KWD").expect("KWD");
        assert_eq!(amount_in("59,90", eur), Some(5990));
        assert_eq!(amount_in("1 234,50 €", eur), Some(123_450));
        assert_eq!(amount_in("12.50 EUR", eur), Some(1250));
        assert_eq!(amount_in("1500", jpy), Some(1500), "yen have no cents");
        assert_eq!(amount_in("1500 JPY", jpy), Some(1500));
        assert_eq!(amount_in("15,5", jpy), None);
        assert_eq!(amount_in("1,234", kwd), Some(1234));
        assert_eq!(amount_in("1,234", eur), None);
        assert_eq!(amount_in("-3", eur), None);
        assert_eq!(amount_in("", eur), None);
    }

    #[test]
    fn stock_deltas_are_signed_and_never_zero() {
        assert_eq!(parse_delta("+5"), Some(5));
        assert_eq!(parse_delta("-2"), Some(-2));
        assert_eq!(parse_delta("\u{2212}2"), Some(-2));
        assert_eq!(parse_delta(" 7 "), Some(7));
        assert_eq!(parse_delta("0"), None);
        assert_eq!(parse_delta("+"), None);
        assert_eq!(parse_delta("1.5"), None);
        assert_eq!(parse_delta("ten"), None);
    }
}
