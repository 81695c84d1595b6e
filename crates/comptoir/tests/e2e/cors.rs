//! Cross-origin calls and compression where the edge is: the one process and the gateway of a
//! split installation (both built in process with `comptoir::build`), and a page of another
//! origin in headless Chromium calling the real binary.
//!
//! A listed origin's preflight and calls get the CORS headers with credentials; an unlisted one
//! gets no CORS header at all; preflights are answered at the edge (no credentials needed, not
//! counted by the rate limits, never forwarded). Through the gateway, what the upstream
//! compressed is sent on as it is, not compressed twice.

use super::browser::{ONE_BROWSER, chromedriver};
use super::webdriver::Browser;
use super::{Server, comptoir, sign_in, temp_dir};
use comptoir::Target;
use platform::config::{Secret, Settings};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

const LISTED: &str = "http://localhost:3000";
const UNLISTED: &str = "http://evil.example";

/// Serves an app built by `comptoir::build` on a loopback port: its base URL.
async fn serve(app: comptoir::App) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    serve_on(listener, app);
    base
}

fn serve_on(listener: tokio::net::TcpListener, app: comptoir::App) {
    let router = app.router;
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .ok()
    });
}

fn settings(dir: &Path) -> Settings {
    let mut s = Settings::defaults();
    s.data.dir = dir.to_path_buf();
    s.server.bind = "127.0.0.1:0".into();
    s
}

fn client() -> reqwest::Client {
    platform::tls::current()
        .reqwest_builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The `access-control-*` headers of an answer, `name: value`.
fn cors_headers(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("access-control-"))
        .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
        .collect()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn lists(value: &str, item: &str) -> bool {
    value
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case(item))
}

fn varies_on_origin(r: &reqwest::Response) -> bool {
    r.headers()
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| lists(v, "origin"))
}

async fn preflight(
    c: &reqwest::Client,
    url: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> reqwest::Response {
    c.request(Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .expect("preflight")
}

/// What a listed origin's preflight must be told.
fn assert_preflight_granted(r: &reqwest::Response, origin: &str, what: &str) {
    assert_eq!(r.status(), 204, "{what}: {:?}", r.headers());
    assert_eq!(header(r, "access-control-allow-origin"), origin, "{what}");
    assert_eq!(
        header(r, "access-control-allow-credentials"),
        "true",
        "{what}"
    );
    let methods = header(r, "access-control-allow-methods");
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(lists(methods, m), "{what}: {m} in {methods}");
    }
    let allowed = header(r, "access-control-allow-headers");
    for h in [
        "authorization",
        "content-type",
        "idempotency-key",
        "if-match",
        "x-api-key",
        "x-request-id",
    ] {
        assert!(lists(allowed, h), "{what}: {h} in {allowed}");
    }
    assert!(varies_on_origin(r), "{what}");
}

/// What a listed origin's call must be told.
fn assert_call_granted(r: &reqwest::Response, origin: &str, what: &str) {
    assert_eq!(header(r, "access-control-allow-origin"), origin, "{what}");
    assert_eq!(
        header(r, "access-control-allow-credentials"),
        "true",
        "{what}"
    );
    let exposed = header(r, "access-control-expose-headers");
    for h in [
        "location",
        "etag",
        "retry-after",
        "x-request-id",
        "idempotent-replayed",
        "ratelimit",
        "ratelimit-policy",
    ] {
        assert!(lists(exposed, h), "{what}: {h} in {exposed}");
    }
    // no preflight-only header on a call
    assert!(
        r.headers().get("access-control-allow-methods").is_none(),
        "{what}"
    );
    assert!(varies_on_origin(r), "{what}");
}

/// The one process with the default origins and a per-address limit of 5 a minute: dozens of
/// preflights, from listed and unlisted origins, to public and protected routes, all answered at
/// the edge without credentials and without using the quota; calls get the headers by origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_one_process_grants_listed_origins_only_and_answers_preflights_at_the_edge() {
    let dir = temp_dir("cors-one");
    let mut s = settings(&dir);
    s.rate_limit.per_ip_per_minute = 5;
    let targets: BTreeSet<Target> = Target::ALL.iter().copied().collect();
    let app = comptoir::build(&s, &targets).await.expect("build");
    let customer = app
        .report
        .demo_accounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .find(|a| a.email == "client@example.org")
        .expect("the demo customer");
    let base = serve(app).await;
    let c = client();

    // 30 preflights from one address, six times its quota: none reaches the edge or a handler
    let routes = [
        ("POST", "/api/catalog/brands"),
        ("GET", "/api/identity/me"),
        ("POST", "/api/carts"),
        (
            "PATCH",
            "/api/carts/0190a3c2-7d4e-7f00-8000-000000000000/lines/X-1",
        ),
        ("DELETE", "/api/identity/sessions/current"),
    ];
    for round in 0..3 {
        for (method, path) in routes {
            let url = format!("{base}{path}");
            let what = format!("preflight {method} {path} #{round}");
            let r = preflight(
                &c,
                &url,
                LISTED,
                method,
                "authorization, content-type, idempotency-key",
            )
            .await;
            assert_preflight_granted(&r, LISTED, &what);
            assert!(r.bytes().await.expect("body").is_empty(), "{what}");
            let r = preflight(&c, &url, UNLISTED, method, "authorization").await;
            assert_eq!(r.status(), 204, "{what} (unlisted)");
            assert_eq!(cors_headers(&r), Vec::<String>::new(), "{what} (unlisted)");
            assert!(varies_on_origin(&r), "{what} (unlisted)");
        }
    }

    // the quota is untouched: a listed origin's anonymous call passes, with the headers
    let list = format!("{base}/api/catalog/products?limit=1");
    let r = c
        .get(&list)
        .header("origin", LISTED)
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), 200, "the preflights used the quota");
    assert_call_granted(&r, LISTED, "GET products");
    // an unlisted origin is answered (a server cannot tell a browser from curl) without any
    // CORS header: its page's script cannot read it
    let r = c
        .get(&list)
        .header("origin", UNLISTED)
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), 200);
    assert_eq!(cors_headers(&r), Vec::<String>::new());
    assert!(varies_on_origin(&r));
    // nor does a request without Origin get any
    let r = c.get(&list).send().await.expect("list");
    assert_eq!(cors_headers(&r), Vec::<String>::new());

    // credentials: a listed origin's signed-in call
    let token = super::security::token(&base, &customer.email, &customer.secret).await;
    let r = c
        .get(format!("{base}/api/identity/me"))
        .header("origin", LISTED)
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), 200);
    assert_call_granted(&r, LISTED, "GET me");
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["email"], customer.email.as_str(), "{me}");
    // a created resource: its Location is exposed with it
    let r = c
        .post(format!("{base}/api/carts"))
        .header("origin", LISTED)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .expect("cart");
    assert_eq!(r.status(), 201);
    assert_call_granted(&r, LISTED, "POST carts");
    assert!(!header(&r, "location").is_empty());
    // an error answered outside any route (no such route, 404) is readable by a listed origin
    // too: the page can show the problem instead of a CORS failure
    let r = c
        .get(format!("{base}/api/no-such-thing"))
        .header("origin", LISTED)
        .send()
        .await
        .expect("404");
    assert_eq!(r.status(), 404);
    assert_call_granted(&r, LISTED, "404");

    // the per-address limit is live: anonymous calls soon get 429, which a listed origin can
    // read (Retry-After exposed)
    let mut limited = None;
    for _ in 0..50 {
        let r = c
            .get(&list)
            .header("origin", LISTED)
            .send()
            .await
            .expect("list");
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let r = limited.expect("the per-address limit of 5 a minute answers 429");
    assert_call_granted(&r, LISTED, "429");
    assert!(!header(&r, "retry-after").is_empty());
    // and preflights still get through while the address is limited
    let r = preflight(&c, &list, LISTED, "GET", "x-request-id").await;
    assert_preflight_granted(&r, LISTED, "preflight while limited");
    let _ = std::fs::remove_dir_all(dir);
}

/// `gateway.cors_origins` is read at start-up: only the origins it lists are granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_origins_come_from_the_setting() {
    let dir = temp_dir("cors-setting");
    let mut s = settings(&dir);
    s.gateway.cors_origins = "https://shop.example, http://127.0.0.1:5173".into();
    let targets: BTreeSet<Target> = Target::ALL.iter().copied().collect();
    let base = serve(comptoir::build(&s, &targets).await.expect("build")).await;
    let c = client();
    let url = format!("{base}/api/catalog/products?limit=1");
    for origin in ["https://shop.example", "http://127.0.0.1:5173"] {
        let r = preflight(&c, &url, origin, "GET", "authorization").await;
        assert_preflight_granted(&r, origin, origin);
        let r = c
            .get(&url)
            .header("origin", origin)
            .send()
            .await
            .expect("get");
        assert_call_granted(&r, origin, origin);
    }
    // the defaults are replaced, not extended; near misses are other origins
    for origin in [
        LISTED,
        "http://shop.example",
        "https://shop.example:8443",
        "https://api.shop.example",
        "null",
    ] {
        let r = preflight(&c, &url, origin, "GET", "authorization").await;
        assert_eq!(cors_headers(&r), Vec::<String>::new(), "{origin}");
        let r = c
            .get(&url)
            .header("origin", origin)
            .send()
            .await
            .expect("get");
        assert_eq!(cors_headers(&r), Vec::<String>::new(), "{origin}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A split installation: the catalogue in its own process, the gateway (and the rest) in
/// another. The gateway answers preflights itself, grants the listed origin on forwarded
/// answers, and sends on what the catalogue compressed without compressing it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_and_compression_through_the_split_gateway() {
    let dir = temp_dir("cors-split");
    let secret = Secret::new("cors-split-internal-secret-0123456789abcdef");
    // the catalogue alone
    let mut cs = settings(&dir.join("catalog"));
    cs.auth.internal_secret = secret.clone();
    let only_catalog: BTreeSet<Target> = [Target::Catalog].into_iter().collect();
    let catalog = serve(comptoir::build(&cs, &only_catalog).await.expect("catalog")).await;
    // the gateway and every other service
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let gateway = format!("http://{}", listener.local_addr().expect("addr"));
    let mut gs = settings(&dir.join("gateway"));
    gs.auth.internal_secret = secret;
    gs.auth.issuer = gateway.clone();
    gs.peers.catalog_url = catalog.clone();
    gs.web.enabled = false;
    let rest: BTreeSet<Target> = Target::ALL
        .iter()
        .copied()
        .filter(|t| *t != Target::Catalog)
        .collect();
    serve_on(
        listener,
        comptoir::build(&gs, &rest).await.expect("gateway"),
    );
    let c = client();
    let url = format!("{gateway}/api/catalog/products?limit=50");

    // the catalogue process has no edge: it speaks no CORS (a forwarded preflight would get its 405)
    let r = preflight(
        &c,
        &format!("{catalog}/api/catalog/products"),
        LISTED,
        "GET",
        "authorization",
    )
    .await;
    assert_eq!(cors_headers(&r), Vec::<String>::new());
    assert_ne!(r.status(), 204);
    // the gateway answers it
    let r = preflight(&c, &url, LISTED, "GET", "authorization").await;
    assert_preflight_granted(&r, LISTED, "preflight at the gateway");
    let r = preflight(&c, &url, UNLISTED, "GET", "authorization").await;
    assert_eq!(r.status(), 204);
    assert_eq!(cors_headers(&r), Vec::<String>::new());

    // plain, the reference
    let r = c
        .get(&url)
        .header("origin", LISTED)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_call_granted(&r, LISTED, "forwarded GET");
    assert_eq!(header(&r, "content-encoding"), "");
    let plain: Value = r.json().await.expect("json");
    assert_eq!(plain["items"].as_array().map(Vec::len), Some(50), "{plain}");
    assert!(serde_json::to_vec(&plain).expect("json").len() > 1024);
    // gzip: one Content-Encoding, and one decoding gives the JSON
    let r = c
        .get(&url)
        .header("origin", UNLISTED)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(cors_headers(&r), Vec::<String>::new());
    let encodings: Vec<_> = r
        .headers()
        .get_all("content-encoding")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    assert_eq!(encodings, ["gzip"]);
    let bytes = r.bytes().await.expect("body");
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes.as_ref())
        .read_to_end(&mut json)
        .expect("one gzip stream");
    let decoded: Value = serde_json::from_slice(&json).expect("JSON after one decoding");
    assert_eq!(decoded, plain);
    let _ = std::fs::remove_dir_all(dir);
}

/// The page a test server of another origin serves: it calls the API (a public list, a
/// credentialed call, a write) and writes each outcome into the page.
const PROBE_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CORS probe</title></head>
<body>
<pre id="public">pending</pre>
<pre id="credentialed">pending</pre>
<pre id="write">pending</pre>
<script>
const q = new URLSearchParams(location.search);
const api = q.get("api");
const token = q.get("token");
async function probe(id, path, init, show) {
  const out = document.getElementById(id);
  try {
    const r = await fetch(api + path, init);
    const body = await r.json();
    out.textContent = "ok " + r.status + " " + show(r, body);
  } catch (e) {
    out.textContent = "blocked " + e.name + ": " + e.message;
  }
}
probe("public", "/api/catalog/products?limit=1", {},
  (r, b) => "items=" + b.items.length);
probe("credentialed", "/api/identity/me",
  { credentials: "include", headers: { "Authorization": "Bearer " + token } },
  (r, b) => "email=" + b.email + " request-id=" + (r.headers.get("x-request-id") ? "yes" : "no"));
probe("write", "/api/carts",
  { method: "POST", credentials: "include",
    headers: { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
    body: "{}" },
  (r, b) => "location=" + (r.headers.get("location") ? "yes" : "no"));
</script>
</body></html>
"#;

/// A test server of another origin, serving [`PROBE_PAGE`].
async fn page_server() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, origin)
}

fn serve_probe(listener: tokio::net::TcpListener) {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { axum::response::Html(PROBE_PAGE) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
}

/// What the probe page wrote, once each probe has an outcome.
async fn outcomes(b: &Browser, page: &str) -> [String; 3] {
    b.goto(page)
        .await
        .unwrap_or_else(|e| panic!("open {page}: {e}"));
    let mut out = [String::new(), String::new(), String::new()];
    for (i, id) in ["#public", "#credentialed", "#write"].iter().enumerate() {
        out[i] = b
            .wait_text(id, "an outcome", |t| !t.is_empty() && t != "pending")
            .await
            .unwrap_or_else(|e| panic!("{page}: {e}"));
    }
    out
}

/// A page of the listed origin reads the API's answers, credentialed ones included; the same
/// page from an unlisted origin gets `TypeError` from every `fetch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_cors_a_listed_origin_reads_the_api_an_unlisted_one_cannot() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let (listed_listener, listed) = page_server().await;
    let (unlisted_listener, unlisted) = page_server().await;
    serve_probe(listed_listener);
    serve_probe(unlisted_listener);
    let dir: PathBuf = temp_dir("browser-cors");
    let server = Server::start({
        let mut c = comptoir(&dir);
        c.arg("serve")
            .env("COMPTOIR_GATEWAY__CORS_ORIGINS", &listed);
        c
    });
    let password = server.head_office_password().expect("head office password");
    let token = sign_in(&server.base, &password).await;
    let chromium = PathBuf::from("/usr/bin/chromium");
    let b = Browser::start(&driver, chromium.exists().then_some(chromium.as_path()))
        .await
        .unwrap_or_else(|e| panic!("start headless Chromium: {e}"));
    let query = format!("?api={}&token={token}", server.base);

    let [public, credentialed, write] = outcomes(&b, &format!("{listed}/{query}")).await;
    assert_eq!(public, "ok 200 items=1");
    assert_eq!(
        credentialed,
        "ok 200 email=direction@breizhsport.example request-id=yes"
    );
    assert_eq!(write, "ok 201 location=yes");

    let [public, credentialed, write] = outcomes(&b, &format!("{unlisted}/{query}")).await;
    for (what, outcome) in [
        ("public", &public),
        ("credentialed", &credentialed),
        ("write", &write),
    ] {
        assert!(
            outcome.starts_with("blocked TypeError"),
            "{what} from {unlisted}: {outcome}"
        );
    }
    b.quit().await;
    let _ = server.stop();
    let _ = std::fs::remove_dir_all(dir);
}
