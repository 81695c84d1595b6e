//! People and keys: staff accounts (head office: everyone; a store manager: their store's
//! clerks, as the identity API scopes it) and API keys (head office). Secrets — a generated
//! initial password, a new key — are shown once, on the page that answers the form, and are
//! never stored by these pages.

use super::text::{self, A};
use super::{
    Fields, Refusal, chrome, failure, field_message, gate, gate_post, get_or_default, locations,
};
use crate::WebState;
use crate::api::{Problem, enc};
use crate::i18n::Lang;
use crate::pages::{Chrome, error_page, render};
use crate::session::{Visitor, form_pairs, see_other};
use crate::shop::{Form, L};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query as Q, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use platform::authz::{Principal, Role, perm};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Deserialize, Clone)]
struct User {
    id: Uuid,
    email: String,
    name: String,
    role: String,
    #[serde(default)]
    store: Option<String>,
    #[serde(default)]
    organiser: Option<String>,
    status: String,
}

#[derive(Deserialize, Default)]
struct UserPage {
    items: Vec<User>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize, Default)]
struct Created {
    user: Option<User>,
    #[serde(default)]
    initial_password: Option<String>,
}

/// Staff roles head office may give, in the order of the select.
const STAFF_ROLES: &[Role] = &[
    Role::Clerk,
    Role::StoreManager,
    Role::Warehouse,
    Role::HeadOffice,
    Role::Organiser,
];

struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    role: String,
    role_label: &'static str,
    store: String,
    organiser: String,
    active: bool,
    is_self: bool,
}

#[derive(Template)]
#[template(path = "admin/staff.html")]
struct StaffPage {
    c: Chrome,
    a: &'static A,
    users: Vec<UserRow>,
    roles: Vec<(&'static str, &'static str)>,
    stores: Vec<(String, String)>,
    head_office: bool,
    can_manage: bool,
    show: String,
    next: Option<String>,
    done: Option<&'static str>,
    error: Option<String>,
    f: Fields,
}

#[derive(Deserialize, Default)]
pub(crate) struct StaffParams {
    done: Option<String>,
    cursor: Option<String>,
    show: Option<String>,
}

pub(crate) async fn list(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<StaffParams>,
) -> Response {
    let p = match gate(&st, l, &v, &uri) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    let done = match params.done.as_deref() {
        Some("updated") => Some(a.done_user_updated),
        _ => None,
    };
    let mut f = Fields::default();
    if let Some(s) = &p.store {
        f.set("s-store", s.clone());
    }
    f.set("s-role", "clerk");
    staff_page(
        &st,
        l,
        &v,
        &uri,
        &p,
        params.0.cursor,
        params.0.show,
        done,
        None,
        f,
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn staff_page(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    uri: &Uri,
    p: &Principal,
    cursor: Option<String>,
    show: Option<String>,
    done: Option<&'static str>,
    error: Option<String>,
    f: Fields,
    status: StatusCode,
) -> Response {
    let a = text::a(l);
    if !p.has(perm::STAFF_READ) {
        return error_page(st, l, Some(v), StatusCode::FORBIDDEN);
    }
    let show_all = show.as_deref() == Some("all");
    let mut path = "/api/identity/users?limit=200".to_string();
    if let Some(c) = cursor.as_deref().filter(|c| !c.is_empty()) {
        path.push_str(&format!("&cursor={}", enc(c)));
    }
    let page: UserPage = match st.api.call(v, Method::GET, &path, None::<&()>, None).await {
        Ok(x) => x,
        Err(e) => return failure(st, l, v, &e),
    };
    let users = page
        .items
        .into_iter()
        .filter(|u| show_all || Role::parse(&u.role).is_some_and(|r| r.is_staff()))
        .map(|u| UserRow {
            is_self: u.id.to_string() == p.subject,
            role_label: a.role(&u.role),
            active: u.status == "active",
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role,
            store: u.store.unwrap_or_default(),
            organiser: u.organiser.unwrap_or_default(),
        })
        .collect();
    let head_office = p.is_head_office();
    let roles = if head_office {
        STAFF_ROLES
            .iter()
            .map(|r| (r.as_str(), a.role(r.as_str())))
            .collect()
    } else {
        vec![(Role::Clerk.as_str(), a.role(Role::Clerk.as_str()))]
    };
    let stores = locations(st, v)
        .await
        .into_iter()
        .filter(|x| head_office || p.store.as_deref() == Some(x.code.as_str()))
        .map(|x| (x.code, x.name))
        .collect();
    let next = page.next_cursor.map(|c| {
        let mut u = format!("/{}/admin/staff?cursor={}", l.code(), enc(&c));
        if show_all {
            u.push_str("&show=all");
        }
        u
    });
    let c = chrome(st, l, v, uri, p, "staff", a.staff);
    render(
        &StaffPage {
            c,
            a,
            users,
            roles,
            stores,
            head_office,
            can_manage: p.has(perm::STAFF_MANAGE),
            show: if show_all {
                "all".into()
            } else {
                String::new()
            },
            next,
            done,
            error,
            f,
        },
        status,
    )
}

#[derive(Template)]
#[template(path = "admin/staff_created.html")]
struct CreatedPage {
    c: Chrome,
    a: &'static A,
    email: String,
    name: String,
    role: &'static str,
    store: String,
    password: Option<String>,
}

fn staff_field(api: &str) -> Option<&'static str> {
    Some(match api {
        "email" => "s-email",
        "name" => "s-name",
        "role" => "s-role",
        "store" => "s-store",
        "organiser" => "s-organiser",
        "password" => "s-password",
        _ => return None,
    })
}

pub(crate) async fn create(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    body: Bytes,
) -> Response {
    let p = match gate_post(&st, l, &v) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    if !p.has(perm::STAFF_MANAGE) {
        return error_page(&st, l, Some(&v), StatusCode::FORBIDDEN);
    }
    let form = Form::parse(&body);
    let mut f = Fields::from_form(&form);
    // never typed back into the page
    f.set("s-password", "");
    let uri: Uri = format!("/{}/admin/staff", l.code())
        .parse()
        .unwrap_or_default();
    let email = form.get("s-email");
    let name = form.get("s-name");
    let role = Role::parse(form.get("s-role")).filter(|r| r.is_staff());
    if email.is_empty() {
        f.error("s-email", a.err_required);
    }
    if name.is_empty() {
        f.error("s-name", a.err_required);
    }
    let Some(role) = role else {
        f.error("s-role", a.err_required);
        return staff_page(
            &st,
            l,
            &v,
            &uri,
            &p,
            None,
            None,
            None,
            Some(a.err_form.to_string()),
            f,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let store = form.get("s-store");
    let organiser = form.get("s-organiser");
    if role.needs_store() && store.is_empty() {
        f.error("s-store", a.err_store_needed);
    }
    if role.needs_organiser() && organiser.is_empty() {
        f.error("s-organiser", a.err_required);
    }
    if f.has_errors() {
        return staff_page(
            &st,
            l,
            &v,
            &uri,
            &p,
            None,
            None,
            None,
            Some(a.err_form.to_string()),
            f,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let password = form.0.get("s-password").cloned().unwrap_or_default();
    let mut body = json!({"email": email, "name": name, "role": role.as_str()});
    if role.needs_store() {
        body["store"] = json!(store);
    }
    if role.needs_organiser() {
        body["organiser"] = json!(organiser);
    }
    if !password.is_empty() {
        body["password"] = json!(password);
    }
    match st
        .api
        .call::<Created>(&v, Method::POST, "/api/identity/users", Some(&body), None)
        .await
    {
        Ok(created) => {
            let u = created.user;
            let c = chrome(&st, l, &v, &uri, &p, "staff", a.staff_created);
            render(
                &CreatedPage {
                    c,
                    a,
                    email: u.as_ref().map(|u| u.email.clone()).unwrap_or_default(),
                    name: u.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
                    role: a.role(role.as_str()),
                    store: u.and_then(|u| u.store).unwrap_or_default(),
                    password: created.initial_password,
                },
                StatusCode::OK,
            )
        }
        Err(e) => {
            for fe in &e.errors {
                if let Some(k) = staff_field(&fe.field) {
                    f.error(k, field_message(a, &fe.code, &fe.message));
                }
            }
            let msg = match e.status {
                409 => {
                    f.error("s-email", a.err_taken);
                    a.err_email_taken.to_string()
                }
                404 => {
                    f.error("s-store", a.err_not_your_store);
                    a.err_form.to_string()
                }
                403 => a.err_not_allowed.to_string(),
                422 | 400 => a.err_form.to_string(),
                _ => a.err_generic.to_string(),
            };
            let status = StatusCode::from_u16(e.status)
                .ok()
                .filter(|s| s.is_client_error())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            staff_page(&st, l, &v, &uri, &p, None, None, None, Some(msg), f, status).await
        }
    }
}

/// Changes one account: `action` is `role` (role and store, head office), `disable` or
/// `enable`.
pub(crate) async fn update(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let p = match gate_post(&st, l, &v) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    if !p.has(perm::STAFF_MANAGE) {
        return error_page(&st, l, Some(&v), StatusCode::FORBIDDEN);
    }
    let Ok(uid) = Uuid::parse_str(&id) else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    let form = Form::parse(&body);
    let uri: Uri = format!("/{}/admin/staff", l.code())
        .parse()
        .unwrap_or_default();
    let mut fresh = Fields::default();
    fresh.set("s-role", "clerk");
    if let Some(s) = &p.store {
        fresh.set("s-store", s.clone());
    }
    let patch = match form.get("action") {
        "disable" => json!({"status": "disabled"}),
        "enable" => json!({"status": "active"}),
        "role" => {
            let Some(role) = Role::parse(form.get("role")).filter(|r| r.is_staff()) else {
                return staff_page(
                    &st,
                    l,
                    &v,
                    &uri,
                    &p,
                    None,
                    None,
                    None,
                    Some(a.err_form.to_string()),
                    fresh,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            };
            let mut b = json!({"role": role.as_str()});
            let store = form.get("store");
            if role.needs_store() {
                if store.is_empty() {
                    return staff_page(
                        &st,
                        l,
                        &v,
                        &uri,
                        &p,
                        None,
                        None,
                        None,
                        Some(a.err_store_needed.to_string()),
                        fresh,
                        StatusCode::UNPROCESSABLE_ENTITY,
                    )
                    .await;
                }
                b["store"] = json!(store);
            }
            let organiser = form.get("organiser");
            if role.needs_organiser() && !organiser.is_empty() {
                b["organiser"] = json!(organiser);
            }
            b
        }
        _ => return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND),
    };
    match st
        .api
        .call::<Value>(
            &v,
            Method::PATCH,
            &format!("/api/identity/users/{uid}"),
            Some(&patch),
            None,
        )
        .await
    {
        Ok(_) => see_other(&format!("/{}/admin/staff?done=updated", l.code())),
        Err(e) if e.status == 404 => failure(&st, l, &v, &e),
        Err(e) => {
            let detail = e
                .errors
                .first()
                .map(|x| field_message(a, &x.code, &x.message))
                .unwrap_or_else(|| e.detail.clone());
            let msg = match e.status {
                403 => a.err_not_allowed.to_string(),
                422 | 400 => format!("{} ({detail})", a.err_refused),
                _ => a.err_generic.to_string(),
            };
            let status = StatusCode::from_u16(e.status)
                .ok()
                .filter(|s| s.is_client_error())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            staff_page(
                &st,
                l,
                &v,
                &uri,
                &p,
                None,
                None,
                None,
                Some(msg),
                fresh,
                status,
            )
            .await
        }
    }
}

// ---- API keys ---------------------------------------------------------------------------------

#[derive(Deserialize, Clone)]
struct ApiKey {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: Vec<String>,
    #[serde(default)]
    store: Option<String>,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    last_used_at: Option<String>,
    #[serde(default)]
    revoked_at: Option<String>,
}

#[derive(Deserialize, Default)]
struct KeyList {
    items: Vec<ApiKey>,
}

#[derive(Deserialize)]
struct KeyCreated {
    key: String,
    api_key: ApiKey,
}

struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: String,
    store: String,
    created: String,
    expires: String,
    last_used: String,
    revoked: bool,
}

struct ScopeBox {
    i: usize,
    scope: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    c: Chrome,
    a: &'static A,
    keys: Vec<KeyRow>,
    scopes: Vec<ScopeBox>,
    stores: Vec<(String, String)>,
    done: Option<&'static str>,
    error: Option<String>,
    f: Fields,
}

#[derive(Deserialize, Default)]
pub(crate) struct KeyParams {
    done: Option<String>,
}

/// Head office only (the navigation offers keys to head office).
fn key_admin(st: &WebState, l: Lang, v: &Visitor, p: Principal) -> Result<Principal, Refusal> {
    if p.is_head_office() && p.has(perm::API_KEYS_MANAGE) {
        Ok(p)
    } else {
        Err(Box::new(error_page(st, l, Some(v), StatusCode::FORBIDDEN)))
    }
}

/// A timestamp of the identity API (RFC 3339) as the page's language writes dates.
fn when(l: Lang, s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| l.datetime(d.timestamp_millis()))
        .unwrap_or_else(|_| s.to_string())
}

#[allow(clippy::too_many_arguments)]
async fn keys_page(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    p: &Principal,
    done: Option<&'static str>,
    error: Option<String>,
    f: Fields,
    checked: &[String],
    status: StatusCode,
) -> Response {
    let a = text::a(l);
    let list: KeyList = get_or_default(st, v, "/api/identity/api-keys").await;
    let keys = list
        .items
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.join(", "),
            store: k.store.unwrap_or_default(),
            created: when(l, &k.created_at),
            expires: k.expires_at.map(|x| when(l, &x)).unwrap_or_default(),
            last_used: k.last_used_at.map(|x| when(l, &x)).unwrap_or_default(),
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    let scopes = perm::KEY_SCOPES
        .iter()
        .enumerate()
        .map(|(i, s)| ScopeBox {
            i,
            scope: s,
            checked: checked.iter().any(|c| c == s),
        })
        .collect();
    let stores = locations(st, v)
        .await
        .into_iter()
        .map(|x| (x.code, x.name))
        .collect();
    let uri: Uri = format!("/{}/admin/keys", l.code())
        .parse()
        .unwrap_or_default();
    let c = chrome(st, l, v, &uri, p, "keys", a.api_keys);
    render(
        &KeysPage {
            c,
            a,
            keys,
            scopes,
            stores,
            done,
            error,
            f,
        },
        status,
    )
}

pub(crate) async fn keys(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<KeyParams>,
) -> Response {
    let p = match gate(&st, l, &v, &uri).and_then(|p| key_admin(&st, l, &v, p)) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    let done = match params.done.as_deref() {
        Some("revoked") => Some(a.done_revoked),
        _ => None,
    };
    keys_page(
        &st,
        l,
        &v,
        &p,
        done,
        None,
        Fields::default(),
        &[],
        StatusCode::OK,
    )
    .await
}

#[derive(Template)]
#[template(path = "admin/key_created.html")]
struct KeyCreatedPage {
    c: Chrome,
    a: &'static A,
    key: String,
    name: String,
    prefix: String,
    scopes: String,
    store: String,
    expires: String,
}

pub(crate) async fn create_key(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    body: Bytes,
) -> Response {
    let p = match gate_post(&st, l, &v).and_then(|p| key_admin(&st, l, &v, p)) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    let form = Form::parse(&body);
    let scopes: Vec<String> = form_pairs(&body)
        .into_iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v)
        .filter(|s| perm::KEY_SCOPES.contains(&s.as_str()))
        .collect();
    let mut f = Fields::from_form(&form);
    let name = form.get("k-name");
    if name.is_empty() {
        f.error("k-name", a.err_required);
    }
    if scopes.is_empty() {
        f.error("k-scopes", a.err_one_scope);
    }
    let expiry = form.get("k-expiry");
    let days: Option<u32> = if expiry.is_empty() {
        None
    } else {
        match expiry.parse::<u32>() {
            Ok(d) if (1..=3650).contains(&d) => Some(d),
            _ => {
                f.error("k-expiry", a.err_expiry);
                None
            }
        }
    };
    if f.has_errors() {
        return keys_page(
            &st,
            l,
            &v,
            &p,
            None,
            Some(a.err_form.to_string()),
            f,
            &scopes,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let store = form.get("k-store");
    let body = json!({
        "name": name,
        "scopes": scopes,
        "store": (!store.is_empty()).then_some(store),
        "expires_in_days": days,
    });
    match st
        .api
        .call::<KeyCreated>(
            &v,
            Method::POST,
            "/api/identity/api-keys",
            Some(&body),
            None,
        )
        .await
    {
        Ok(k) => {
            let uri: Uri = format!("/{}/admin/keys", l.code())
                .parse()
                .unwrap_or_default();
            let c = chrome(&st, l, &v, &uri, &p, "keys", a.key_created);
            render(
                &KeyCreatedPage {
                    c,
                    a,
                    key: k.key,
                    name: k.api_key.name,
                    prefix: k.api_key.prefix,
                    scopes: k.api_key.scopes.join(", "),
                    store: k.api_key.store.unwrap_or_default(),
                    expires: k
                        .api_key
                        .expires_at
                        .map(|x| when(l, &x))
                        .unwrap_or_default(),
                },
                StatusCode::OK,
            )
        }
        Err(e) if matches!(e.status, 401 | 403) => failure(&st, l, &v, &e),
        Err(e) => {
            for fe in &e.errors {
                let k = match fe.field.as_str() {
                    "name" => "k-name",
                    "store" => "k-store",
                    "expires_in_days" => "k-expiry",
                    s if s.starts_with("scopes") => "k-scopes",
                    _ => continue,
                };
                f.error(k, field_message(a, &fe.code, &fe.message));
            }
            let status = StatusCode::from_u16(e.status)
                .ok()
                .filter(|s| s.is_client_error())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let msg = key_refusal(a, &e);
            keys_page(&st, l, &v, &p, None, Some(msg), f, &scopes, status).await
        }
    }
}

fn key_refusal(a: &A, e: &Problem) -> String {
    match e.status {
        422 | 400 => a.err_form.to_string(),
        404 => a.err_not_your_store.to_string(),
        _ => a.err_generic.to_string(),
    }
}

pub(crate) async fn revoke_key(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = gate_post(&st, l, &v).and_then(|p| key_admin(&st, l, &v, p)) {
        return *r;
    }
    let Ok(kid) = Uuid::parse_str(&id) else {
        return error_page(&st, l, Some(&v), StatusCode::NOT_FOUND);
    };
    match st
        .api
        .call::<Value>(
            &v,
            Method::DELETE,
            &format!("/api/identity/api-keys/{kid}"),
            None::<&()>,
            None,
        )
        .await
    {
        Ok(_) => see_other(&format!("/{}/admin/keys?done=revoked", l.code())),
        Err(e) => failure(&st, l, &v, &e),
    }
}
