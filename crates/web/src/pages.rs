//! What every page shares: the frame (header, navigation, footer), rendering, error pages.

use crate::WebState;
use crate::assets::Assets;
use crate::i18n::{Lang, T};
use crate::session::Visitor;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// The frame of a page.
pub struct Chrome {
    pub lang: Lang,
    pub t: &'static T,
    pub title: String,
    pub csrf: String,
    pub signed_in: bool,
    pub staff: bool,
    pub cart_count: i64,
    /// This page in the other language.
    pub other_url: String,
    pub assets: Assets,
    /// Top categories: (slug, name).
    pub nav: Vec<(String, String)>,
    pub search_text: String,
    /// The back office's frame (its own navigation) instead of the shop's.
    pub admin: Option<AdminNav>,
}

/// The back office's navigation.
pub struct AdminNav {
    pub current: &'static str,
    pub head_office: bool,
    pub store: String,
}

impl Chrome {
    pub async fn new(st: &WebState, lang: Lang, v: &Visitor, uri: &Uri, title: &str) -> Chrome {
        let nav = match st.catalogue.snapshot().await {
            Ok(s) => s
                .top_categories()
                .iter()
                .map(|c| (c.slug.clone(), lang.pick(&c.name).to_string()))
                .collect(),
            Err(_) => vec![],
        };
        Chrome::plain(st, lang, v, uri, title, nav)
    }

    pub fn plain(
        st: &WebState,
        lang: Lang,
        v: &Visitor,
        uri: &Uri,
        title: &str,
        nav: Vec<(String, String)>,
    ) -> Chrome {
        Chrome {
            lang,
            t: lang.t(),
            title: title.to_string(),
            csrf: v.csrf.clone(),
            signed_in: v.signed_in(),
            staff: v.is_staff(),
            cart_count: v.cart_count,
            other_url: other_language_url(uri, lang),
            assets: st.assets.clone(),
            nav,
            search_text: String::new(),
            admin: None,
        }
    }

    /// `/fr/...` (or `/en/...`) + `rest`.
    pub fn url(&self, rest: &str) -> String {
        format!("/{}{}", self.lang.code(), rest)
    }
}

fn other_language_url(uri: &Uri, lang: Lang) -> String {
    let path = uri.path();
    let prefix = format!("/{}", lang.code());
    let rest = path.strip_prefix(&prefix).unwrap_or("/");
    let rest = if rest.is_empty() { "/" } else { rest };
    let q = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("/{}{}{}", lang.other().code(), rest, q)
}

/// Renders a template as an HTML response.
pub fn render<T: Template>(t: &T, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = (status, html).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "a template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub c: Chrome,
    pub status: u16,
    pub message: String,
}

/// A page saying what went wrong, in the visitor's language.
pub fn error_page(st: &WebState, lang: Lang, v: Option<&Visitor>, status: StatusCode) -> Response {
    let t = lang.t();
    let message = match status {
        StatusCode::NOT_FOUND => t.err_not_found,
        StatusCode::FORBIDDEN => t.err_forbidden,
        StatusCode::TOO_MANY_REQUESTS => t.err_busy,
        _ => t.err_generic,
    };
    let anon;
    let v = match v {
        Some(v) => v,
        None => {
            anon = Visitor::anonymous();
            &anon
        }
    };
    let uri = Uri::from_static("/");
    let mut c = Chrome::plain(st, lang, v, &uri, message, vec![]);
    c.other_url = format!("/{}/", lang.other().code());
    let mut r = render(
        &ErrorPage {
            c,
            status: status.as_u16(),
            message: message.to_string(),
        },
        status,
    );
    if status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

/// 403 for a form without a valid token or from another site; nothing was changed.
pub fn csrf_refused(st: &WebState, lang: Lang, v: &Visitor) -> Response {
    let uri = Uri::from_static("/");
    let message = lang.t().err_csrf.to_string();
    let mut c = Chrome::plain(st, lang, v, &uri, &message, vec![]);
    c.other_url = format!("/{}/", lang.other().code());
    render(
        &ErrorPage {
            c,
            status: 403,
            message,
        },
        StatusCode::FORBIDDEN,
    )
}
