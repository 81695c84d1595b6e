//! Static assets, compiled into the binary and served by Comptoir itself (no CDN): the style
//! sheet, our small script, htmx 2.0.11 (from npm, BSD Zero-Clause licence), the icons, the web
//! app manifest, the service worker and the offline page. CSS and scripts get a content hash in
//! their name and a year-long immutable cache; the rest is revalidated.

use crate::WebState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

pub const CSS: &[u8] = include_bytes!("../assets/app.css");
pub const APP_JS: &[u8] = include_bytes!("../assets/app.js");
pub const HTMX_JS: &[u8] = include_bytes!("../assets/htmx-2.0.11.min.js");
pub const ICON_SVG: &[u8] = include_bytes!("../assets/icon.svg");
pub const ICON_192: &[u8] = include_bytes!("../assets/icon-192.png");
pub const ICON_512: &[u8] = include_bytes!("../assets/icon-512.png");
pub const SW_JS: &[u8] = include_bytes!("../assets/sw.js");
pub const OFFLINE_HTML: &[u8] = include_bytes!("../assets/offline.html");

/// The hashed URLs the pages link to.
#[derive(Clone, Debug)]
pub struct Assets {
    pub css: String,
    pub app_js: String,
    pub htmx_js: String,
}

fn hashed(stem: &str, ext: &str, bytes: &[u8]) -> String {
    let h = hex::encode(Sha256::digest(bytes));
    format!("/static/{stem}.{}.{ext}", &h[..12])
}

impl Default for Assets {
    fn default() -> Self {
        Assets {
            css: hashed("app", "css", CSS),
            app_js: hashed("app", "js", APP_JS),
            htmx_js: hashed("htmx", "js", HTMX_JS),
        }
    }
}

fn file(bytes: &'static [u8], ctype: &'static str, immutable: bool) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=3600"
        }),
    );
    r
}

async fn static_file(State(st): State<WebState>, Path(name): Path<String>) -> Response {
    let path = format!("/static/{name}");
    let a = &st.assets;
    if path == a.css {
        file(CSS, "text/css; charset=utf-8", true)
    } else if path == a.app_js {
        file(APP_JS, "text/javascript; charset=utf-8", true)
    } else if path == a.htmx_js {
        file(HTMX_JS, "text/javascript; charset=utf-8", true)
    } else {
        match name.as_str() {
            "icon.svg" => file(ICON_SVG, "image/svg+xml", false),
            // unhashed, for the offline page kept by the service worker
            "app.css" => file(CSS, "text/css; charset=utf-8", false),
            "icon-192.png" => file(ICON_192, "image/png", false),
            "icon-512.png" => file(ICON_512, "image/png", false),
            _ => (StatusCode::NOT_FOUND, "not found").into_response(),
        }
    }
}

const MANIFEST: &str = r##"{
  "name": "Breizhsport",
  "short_name": "Breizhsport",
  "description": "Sport en Bretagne : boutique en ligne, retrait en magasin",
  "lang": "fr",
  "start_url": "/fr/?source=pwa",
  "scope": "/",
  "display": "standalone",
  "background_color": "#ffffff",
  "theme_color": "#1d3b6e",
  "icons": [
    {"src": "/static/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
    {"src": "/static/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any maskable"},
    {"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"}
  ]
}
"##;

pub fn routes(state: WebState) -> Router {
    Router::new()
        .route("/static/{name}", get(static_file))
        .route(
            "/manifest.webmanifest",
            get(|| async {
                file(
                    MANIFEST.as_bytes(),
                    "application/manifest+json; charset=utf-8",
                    false,
                )
            }),
        )
        .route(
            "/sw.js",
            get(|| async {
                let mut r = file(SW_JS, "text/javascript; charset=utf-8", false);
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                r
            }),
        )
        .route(
            "/offline.html",
            get(|| async { file(OFFLINE_HTML, "text/html; charset=utf-8", false) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { file(ICON_SVG, "image/svg+xml", false) }),
        )
        .with_state(state)
}
