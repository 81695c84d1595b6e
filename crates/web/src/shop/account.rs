//! The customer's account: the account page with order history, sign-up, sign-in, sign-out and
//! password reset. Identity's errors are read through the API's own mapping (`ApiError::from`),
//! so a page and the API never disagree on what went wrong.

use super::cart::CartView;
use super::orders::OrderView;
use super::{Form, L, MsgParams, field_errors, local_path};
use crate::WebState;
use crate::api::{Problem, enc};
use crate::i18n::Lang;
use crate::pages::{Chrome, render};
use crate::session::{Visitor, see_other};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query as Q, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use platform::ApiError;
use std::collections::HashMap;

#[derive(Template)]
#[template(path = "store/account.html")]
struct AccountPage {
    c: Chrome,
    email: String,
    name: String,
    orders: Vec<(String, String, String, String, String)>,
}

pub(super) async fn account(State(st): State<WebState>, L(l): L, v: Visitor, uri: Uri) -> Response {
    if v.principal.is_none() {
        return see_other(&format!(
            "/{}/sign-in?next={}",
            l.code(),
            enc(&format!("/{}/account", l.code()))
        ));
    }
    let me: serde_json::Value = st
        .api
        .call(&v, Method::GET, "/api/identity/me", None::<&()>, None)
        .await
        .unwrap_or_default();
    let list: Vec<OrderView> = st
        .api
        .call(&v, Method::GET, "/api/orders?limit=50", None::<&()>, None)
        .await
        .unwrap_or_default();
    let orders = list
        .iter()
        .map(|o| {
            (
                format!("/{}/orders/{}", l.code(), o.id),
                o.number.clone(),
                l.datetime(o.created_at),
                o.status.clone(),
                l.money(o.total, &o.currency),
            )
        })
        .collect();
    let c = Chrome::new(&st, l, &v, &uri, l.t().account).await;
    let s = |k: &str| {
        me.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    render(
        &AccountPage {
            email: s("email"),
            name: s("name"),
            orders,
            c,
        },
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "store/auth.html")]
struct AuthPage {
    c: Chrome,
    /// `sign_in`, `sign_up`, `reset`, `reset_confirm`
    mode: &'static str,
    next: String,
    token: String,
    email: String,
    name: String,
    error: Option<String>,
    notice: Option<String>,
    field_errors: HashMap<String, String>,
}

impl AuthPage {
    fn err(&self, k: &str) -> String {
        self.field_errors.get(k).cloned().unwrap_or_default()
    }
}

#[allow(clippy::too_many_arguments)]
async fn auth_page(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    uri: &Uri,
    mode: &'static str,
    params: MsgParams,
    email: String,
    name: String,
    error: Option<String>,
    field_errors: HashMap<String, String>,
    status: StatusCode,
) -> Response {
    let t = l.t();
    let title = match mode {
        "sign_up" => t.sign_up,
        "reset" | "reset_confirm" => t.reset_password,
        _ => t.sign_in,
    };
    let notice = match params.done.as_deref() {
        Some("reset_sent") => Some(t.reset_sent.to_string()),
        Some("reset_done") => Some(t.reset_done.to_string()),
        _ => None,
    };
    let c = Chrome::new(st, l, v, uri, title).await;
    render(
        &AuthPage {
            mode,
            next: params
                .next
                .as_deref()
                .map(|n| local_path(n, String::new()))
                .unwrap_or_default(),
            token: params.token.unwrap_or_default(),
            email,
            name,
            error,
            notice,
            field_errors,
            c,
        },
        status,
    )
}

/// An empty sign-in, sign-up or reset form.
async fn blank_auth_page(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    uri: &Uri,
    mode: &'static str,
    p: MsgParams,
) -> Response {
    auth_page(
        st,
        l,
        v,
        uri,
        mode,
        p,
        String::new(),
        String::new(),
        None,
        HashMap::new(),
        StatusCode::OK,
    )
    .await
}

pub(super) async fn sign_in_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<MsgParams>,
) -> Response {
    blank_auth_page(&st, l, &v, &uri, "sign_in", params.0).await
}

/// After a session starts: the guest cart joins the customer's, then on to `next`.
async fn signed_in(
    st: &WebState,
    l: Lang,
    v: &Visitor,
    tokens: identity::model::TokenResponse,
    next: &str,
) -> Response {
    v.set_session(
        &tokens.access_token,
        tokens.expires_in,
        &tokens.refresh_token,
        st.refresh_secs,
    );
    let principal = st
        .auth
        .authenticate(&platform::authn::Credential::Token(
            tokens.access_token.clone(),
        ))
        .await
        .ok();
    let staff = principal.as_ref().is_some_and(|p| p.role.is_staff());
    if let (Some(p), Some(cart)) = (principal.clone(), v.cart)
        && !staff
    {
        let mut as_user = v.clone();
        as_user.principal = Some(p);
        match st
            .api
            .call::<CartView>(
                &as_user,
                Method::POST,
                &format!("/api/carts/{cart}/merge"),
                None::<&()>,
                Some(&format!("web-merge-{cart}")),
            )
            .await
        {
            Ok(c) => v.set_cart(c.id, c.item_count),
            Err(e) => tracing::info!(code = %e.code, "guest cart not merged at sign-in"),
        }
    }
    let default = if staff {
        format!("/{}/admin", l.code())
    } else {
        format!("/{}/account", l.code())
    };
    see_other(&local_path(next, default))
}

pub(super) async fn sign_in_post(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let email = f.get("email").to_string();
    let res = sign_in(
        &st,
        &v,
        &identity::model::SignIn {
            email: email.clone(),
            password: f.0.get("password").cloned().unwrap_or_default(),
        },
    )
    .await;
    match res {
        Ok(tokens) => signed_in(&st, l, &v, tokens, f.get("next")).await,
        Err(e) => {
            let t = l.t();
            let (msg, status) = match e.status.as_u16() {
                429 => (t.err_busy, StatusCode::TOO_MANY_REQUESTS),
                503 => (t.err_busy, StatusCode::SERVICE_UNAVAILABLE),
                _ => (t.bad_credentials, StatusCode::UNAUTHORIZED),
            };
            auth_page(
                &st,
                l,
                &v,
                &uri,
                "sign_in",
                MsgParams {
                    next: Some(f.get("next").to_string()),
                    ..Default::default()
                },
                email,
                String::new(),
                Some(msg.to_string()),
                HashMap::new(),
                status,
            )
            .await
        }
    }
}

pub(super) async fn sign_up_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<MsgParams>,
) -> Response {
    blank_auth_page(&st, l, &v, &uri, "sign_up", params.0).await
}

pub(super) async fn sign_up_post(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let email = f.get("email").to_string();
    let name = f.get("name").to_string();
    let password = f.0.get("password").cloned().unwrap_or_default();
    let reg = identity::model::Registration {
        email: email.clone(),
        password: password.clone(),
        name: name.clone(),
    };
    let fail = |e: ApiError| {
        let st = st.clone();
        let v = v.clone();
        let uri = uri.clone();
        let email = email.clone();
        let name = name.clone();
        async move {
            let t = l.t();
            let mut errs = field_errors(&e);
            if errs.is_empty() && e.code == "email_taken" {
                errs.insert("email".into(), e.detail.clone());
            }
            let msg = if errs.is_empty() {
                e.detail.clone()
            } else {
                t.err_form.to_string()
            };
            auth_page(
                &st,
                l,
                &v,
                &uri,
                "sign_up",
                MsgParams::default(),
                email,
                name,
                Some(msg),
                errs,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    if let Err(e) = st
        .api
        .call::<serde_json::Value>(
            &v,
            Method::POST,
            "/api/identity/customers",
            Some(&reg),
            None,
        )
        .await
        .map_err(Problem::into_api_error)
    {
        return fail(e).await;
    }
    match sign_in(
        &st,
        &v,
        &identity::model::SignIn {
            email: email.clone(),
            password,
        },
    )
    .await
    {
        Ok(tokens) => signed_in(&st, l, &v, tokens, f.get("next")).await,
        Err(e) => fail(e).await,
    }
}

pub(super) async fn sign_out(State(st): State<WebState>, L(l): L, v: Visitor) -> Response {
    if let Some(p) = &v.principal
        && p.session.is_some()
        && let Err(e) = st
            .api
            .call::<()>(
                &v,
                Method::DELETE,
                "/api/identity/sessions/current",
                None::<&()>,
                None,
            )
            .await
            .map_err(Problem::into_api_error)
    {
        tracing::warn!(error = %e.detail, "sign-out could not end the session");
    }
    v.clear_session();
    v.clear_cart();
    see_other(&format!("/{}/", l.code()))
}

pub(super) async fn reset_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<MsgParams>,
) -> Response {
    blank_auth_page(&st, l, &v, &uri, "reset", params.0).await
}

pub(super) async fn reset_post(State(st): State<WebState>, L(l): L, body: Bytes) -> Response {
    let f = Form::parse(&body);
    // the same answer whether the account exists or not
    if let Err(e) = st
        .api
        .call::<serde_json::Value>(
            &Visitor::anonymous(),
            Method::POST,
            "/api/identity/password-resets",
            Some(&identity::model::ResetRequest {
                email: f.get("email").to_string(),
            }),
            None,
        )
        .await
        .map_err(Problem::into_api_error)
    {
        tracing::info!(code = %e.code, "password reset request refused");
    }
    see_other(&format!("/{}/password-reset?done=reset_sent", l.code()))
}

/// The link of the reset e-mail (identity's `reset_url`): on to the form, in the reader's language.
pub(super) async fn reset_link(headers: HeaderMap, Q(params): Q<MsgParams>) -> Response {
    let l = Lang::negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let token = params.token.unwrap_or_default();
    see_other(&format!(
        "/{}/password-reset/confirm?token={}",
        l.code(),
        enc(&token)
    ))
}

pub(super) async fn reset_confirm_page(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    params: Q<MsgParams>,
) -> Response {
    blank_auth_page(&st, l, &v, &uri, "reset_confirm", params.0).await
}

pub(super) async fn reset_confirm_post(
    State(st): State<WebState>,
    L(l): L,
    v: Visitor,
    uri: Uri,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let token = f.get("token").to_string();
    match st
        .api
        .call::<serde_json::Value>(
            &v,
            Method::POST,
            "/api/identity/password-resets/confirm",
            Some(&identity::model::ResetConfirm {
                token: token.clone(),
                new_password: f.0.get("new_password").cloned().unwrap_or_default(),
            }),
            None,
        )
        .await
        .map(|_| ())
        .map_err(Problem::into_api_error)
    {
        Ok(()) => see_other(&format!("/{}/sign-in?done=reset_done", l.code())),
        Err(e) => {
            let mut errs = field_errors(&e);
            if let Some(m) = errs.remove("new_password") {
                errs.insert("password".into(), m);
            }
            auth_page(
                &st,
                l,
                &v,
                &uri,
                "reset_confirm",
                MsgParams {
                    token: Some(token),
                    ..Default::default()
                },
                String::new(),
                String::new(),
                Some(e.detail.clone()),
                errs,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// Signs in through identity's API, as the visitor (its address counts for the throttling).
async fn sign_in(
    st: &WebState,
    v: &Visitor,
    s: &identity::model::SignIn,
) -> Result<identity::model::TokenResponse, ApiError> {
    st.api
        .call(v, Method::POST, "/api/identity/sessions", Some(s), None)
        .await
        .map_err(Problem::into_api_error)
}
