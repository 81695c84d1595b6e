//! The storefront: home, categories with filters, search and suggestions, product pages, the
//! cart, checkout (delivery or click & collect), the test provider's 3-D Secure page, order
//! confirmation, and the customer's account (sign-up, sign-in, sign-out, password reset,
//! order history).
//!
//! This file holds the routes and what the pages share (the language and form extractors, safe
//! redirects, field errors); each area has its own file: `listing` (home, categories, search,
//! suggestions), `product`, `cart`, `checkout` (with the 3-D Secure test page), `orders`,
//! `account` (sign-up, sign-in, sign-out, password reset, order history).

mod account;
mod cart;
mod checkout;
mod listing;
mod orders;
mod product;

use account::{
    account, reset_confirm_page, reset_confirm_post, reset_link, reset_page, reset_post,
    sign_in_page, sign_in_post, sign_out, sign_up_page, sign_up_post,
};
use cart::{cart_add, cart_page, cart_update};
use checkout::{checkout_page, checkout_post, checkout_status, confirm_page, confirm_post};
use listing::{category, home, search, suggest};
use orders::order_page;
use product::product;

use crate::api::Problem;
use crate::i18n::Lang;
use crate::pages::error_page;
use crate::session::{Visitor, form_pairs, see_other};
use crate::{WebState, lang_of_path};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::collections::HashMap;

/// The page's language, from its path.
pub struct L(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for L {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(L(lang_of_path(parts.uri.path())))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Visitor>()
            .cloned()
            .unwrap_or_else(Visitor::anonymous))
    }
}

/// Form fields by name (the last value wins).
pub struct Form(pub HashMap<String, String>);

impl Form {
    pub fn parse(body: &Bytes) -> Form {
        Form(form_pairs(body).into_iter().collect())
    }
    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("").trim()
    }
}

pub fn routes() -> Router<WebState> {
    let mut r = Router::new()
        .route("/", get(root))
        .route("/account/password-reset", get(reset_link));
    for l in Lang::ALL {
        let p = |s: &str| format!("/{}{s}", l.code());
        r = r
            .route(&p(""), get(root))
            .route(&p("/"), get(home))
            .route(&p("/c/{slug}"), get(category))
            .route(&p("/search"), get(search))
            .route(&p("/search/suggest"), get(suggest))
            .route(&p("/p/{slug}"), get(product))
            .route(&p("/cart"), get(cart_page))
            .route(&p("/cart/add"), post(cart_add))
            .route(&p("/cart/update"), post(cart_update))
            .route(&p("/checkout"), get(checkout_page).post(checkout_post))
            .route(&p("/checkout/{id}"), get(checkout_status))
            .route(
                &p("/checkout/{id}/confirm"),
                get(confirm_page).post(confirm_post),
            )
            .route(&p("/orders/{id}"), get(order_page))
            .route(&p("/account"), get(account))
            .route(&p("/sign-in"), get(sign_in_page).post(sign_in_post))
            .route(&p("/sign-up"), get(sign_up_page).post(sign_up_post))
            .route(&p("/sign-out"), post(sign_out))
            .route(&p("/password-reset"), get(reset_page).post(reset_post))
            .route(
                &p("/password-reset/confirm"),
                get(reset_confirm_page).post(reset_confirm_post),
            )
            .route(&p("/{*rest}"), get(not_found))
    }
    r
}

async fn not_found(State(st): State<WebState>, L(l): L, v: Visitor) -> Response {
    error_page(&st, l, Some(&v), StatusCode::NOT_FOUND)
}

async fn root(headers: HeaderMap) -> Response {
    let l = Lang::negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let mut r = see_other(&format!("/{}/", l.code()));
    r.headers_mut().insert(
        header::VARY,
        axum::http::HeaderValue::from_static("accept-language"),
    );
    r
}

/// A safe place to go back to: a path of ours, never another site.
pub(super) fn local_path(s: &str, fallback: String) -> String {
    if s.starts_with('/') && !s.starts_with("//") && !s.contains('\\') && !s.contains("://") {
        s.to_string()
    } else {
        fallback
    }
}

#[derive(Deserialize, Default)]
pub(super) struct MsgParams {
    error: Option<String>,
    done: Option<String>,
    next: Option<String>,
    token: Option<String>,
}

pub(super) fn field_errors(e: &platform::ApiError) -> HashMap<String, String> {
    e.errors
        .iter()
        .map(|x| (x.field.clone(), x.message.clone()))
        .collect()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            self.detail,
        )
            .into_response()
    }
}
