//! The web pages over HTTP, without a browser: security headers on every page (S9), CSRF and
//! same-origin on every form (S8), and the storefront's journeys as plain forms (the no-script
//! path): guest checkout, a declined card, the 3-D Secure test page, the guest's order link,
//! sign-up, sign-in with the guest cart merged, sign-out. In process, on SQLite, demo data.

use comptoir::{App, Target};
use platform::config::Settings;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

struct Site {
    base: String,
    inventory: inventory::Inventory,
    identity: identity::service::Identity,
    accounts: Vec<identity::demo::DemoAccount>,
}

async fn start(dir: &Path) -> Site {
    let mut s = Settings::defaults();
    s.data.dir = dir.to_path_buf();
    s.server.bind = "127.0.0.1:0".into();
    let targets: BTreeSet<Target> = Target::ALL.iter().copied().collect();
    let app: App = comptoir::build(&s, &targets).await.expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let inventory = app.commerce.inventory.clone().expect("inventory");
    let identity = app.identity.clone().expect("identity");
    let accounts = app.report.demo_accounts.clone().unwrap_or_default();
    let router = app.router;
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .ok()
    });
    Site {
        base,
        inventory,
        identity,
        accounts,
    }
}

/// A browser without a script engine: keeps cookies, follows nothing by itself.
pub(super) struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

pub(super) struct Page {
    pub(super) status: u16,
    pub(super) location: Option<String>,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) body: String,
}

impl Page {
    /// The value of the first `name="<field>" value="..."` in the page.
    pub(super) fn field(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let at = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no field {name} in:\n{}", self.body));
        let rest = &self.body[at + needle.len()..];
        rest[..rest.find('"').expect("quote")].to_string()
    }

    /// The page's CSRF token (every page carries it in a meta tag).
    pub(super) fn csrf(&self) -> String {
        let needle = "name=\"csrf-token\" content=\"";
        let at = self.body.find(needle).expect("csrf meta");
        let rest = &self.body[at + needle.len()..];
        rest[..rest.find('"').expect("quote")].to_string()
    }
}

impl Browser {
    pub(super) fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            http: platform::tls::current()
                .reqwest_builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let res = req
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("request");
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str().expect("ascii cookie");
            assert!(c.starts_with("__Host-"), "cookie without __Host-: {c}");
            for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
                assert!(c.contains(attr), "cookie without {attr}: {c}");
            }
            let (kv, _) = c.split_once(';').expect("attributes");
            let (k, v) = kv.split_once('=').expect("name=value");
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("ascii").to_string());
        let headers = res.headers().clone();
        let body = res.text().await.expect("body");
        Page {
            status,
            location,
            headers,
            body,
        }
    }

    pub(super) async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// Posts a form as our own page does (same origin).
    pub(super) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form));
        self.send(req).await
    }

    /// GET, then follow redirects (as a browser after a 303).
    pub(super) async fn follow(&mut self, mut page: Page) -> Page {
        for _ in 0..5 {
            match (page.status, &page.location) {
                (301..=308, Some(l)) => {
                    let path = l.strip_prefix(&self.base).unwrap_or(l).to_string();
                    page = self.get(&path).await;
                }
                _ => return page,
            }
        }
        page
    }
}

fn assert_page_headers(path: &str, p: &Page) {
    let h = |k: &str| {
        p.headers
            .get(k)
            .map(|v| v.to_str().expect("ascii").to_string())
            .unwrap_or_else(|| panic!("{path}: no {k}"))
    };
    let csp = h("content-security-policy");
    for d in [
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "script-src 'self'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(d), "{path}: CSP lacks {d}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
    assert!(!h("referrer-policy").is_empty());
    let hsts = h("strict-transport-security");
    let age: u64 = hsts
        .trim_start_matches("max-age=")
        .split(';')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("max-age");
    assert!(age >= 31_536_000, "{path}: {hsts}");
}

/// No inline script, no inline style, nothing loaded from another origin.
fn assert_self_contained(path: &str, body: &str) {
    let lower = body.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("<script") {
        let tag_end = rest[i..].find('>').expect("tag end") + i;
        assert!(
            rest[i..tag_end].contains(" src=\"/"),
            "{path}: inline or foreign script: {}",
            &rest[i..tag_end]
        );
        assert!(
            rest[tag_end + 1..].starts_with("</script>"),
            "{path}: script with a body"
        );
        rest = &rest[tag_end..];
    }
    assert!(
        !lower.contains(" style=\""),
        "{path}: inline style attribute"
    );
    // every visible field has a label (for its id) or an aria-label
    for input in lower
        .split("<input")
        .skip(1)
        .chain(lower.split("<select").skip(1))
    {
        let tag = &input[..input.find('>').expect("tag end")];
        // hidden fields need none; radios and boxes here sit inside their <label>
        if [
            "type=\"hidden\"",
            "aria-label=",
            "type=\"radio\"",
            "type=\"checkbox\"",
        ]
        .iter()
        .any(|a| tag.contains(a))
        {
            continue;
        }
        let id = tag
            .split("id=\"")
            .nth(1)
            .map(|r| &r[..r.find('"').expect("quote")])
            .unwrap_or_else(|| panic!("{path}: a field without id or label: {tag}"));
        let inside_label = lower.contains(&format!("for=\"{id}\""));
        assert!(inside_label, "{path}: no label for #{id}");
    }
    assert!(
        lower.contains("<main") || path.contains("/suggest"),
        "{path}: no main landmark"
    );
    assert!(!lower.contains("<style"), "{path}: inline style element");
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!lower.contains(attr), "{path}: external asset ({attr})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_strict_headers_and_forms_need_the_page_token() {
    let dir = tempdir("web-s8-s9");
    let site = start(&dir).await;
    let mut b = Browser::new(&site.base);

    // S9 over the storefront's pages, both languages
    let home = b.get("/fr/").await;
    assert_eq!(home.status, 200);
    let product = first_product(&home.body);
    let mut pages = vec![];
    for l in ["fr", "en"] {
        for p in [
            "/".to_string(),
            "/c/running".into(),
            "/search?q=velo".into(),
            "/search/suggest?q=ch".into(),
            format!("/p/{product}"),
            "/cart".into(),
            "/sign-in".into(),
            "/sign-up".into(),
            "/password-reset".into(),
            "/password-reset/confirm?token=x".into(),
            "/no-such-page".into(),
            format!("/orders/{}", uuid::Uuid::now_v7()),
        ] {
            pages.push(format!("/{l}{p}"));
        }
    }
    for path in &pages {
        let p = b.get(path).await;
        assert!(
            [200, 404].contains(&p.status),
            "{path}: {} {}",
            p.status,
            p.body
        );
        assert_page_headers(path, &p);
        assert_self_contained(path, &p.body);
        let ct = p
            .headers
            .get("content-type")
            .expect("type")
            .to_str()
            .expect("ascii");
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
    }
    let wrong_lang = b.get("/de/").await;
    assert_eq!(wrong_lang.status, 404, "no German pages");
    // the API's answers, errors included, carry HSTS too (issue 11)
    for path in [
        "/api/catalog/products?limit=1",
        "/api/catalog/products/no-such-product",
        "/api/orders",
        "/livez",
    ] {
        let p = b.get(path).await;
        let hsts = p
            .headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path}: no HSTS"));
        assert!(hsts.starts_with("max-age=31536000"), "{path}: {hsts}");
    }
    // assets: ours, cacheable, typed
    let css = home
        .body
        .split("href=\"")
        .find_map(|s| {
            s.strip_prefix("/static/app.")
                .map(|r| r.split('"').next().unwrap_or("").to_string())
        })
        .expect("stylesheet link");
    let css = b.get(&format!("/static/app.{css}")).await;
    assert_eq!(css.status, 200);
    assert!(
        css.headers["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("immutable")
    );
    let manifest = b.get("/manifest.webmanifest").await;
    let m: Value = serde_json::from_str(&manifest.body).expect("manifest json");
    assert_eq!(m["display"], "standalone");
    assert!(m["icons"].as_array().expect("icons").len() >= 2);
    for icon in m["icons"].as_array().expect("icons") {
        let src = icon["src"].as_str().expect("src");
        assert_eq!(b.get(src).await.status, 200, "{src}");
    }
    assert_eq!(b.get("/sw.js").await.status, 200);
    assert_eq!(b.get("/offline.html").await.status, 200);

    // S8: a form post without the page's token, with another's token, from another site, or
    // as a GET changes nothing
    let p = b.get(&format!("/fr/p/{product}")).await;
    let csrf = p.csrf();
    let sku = skus(&p.body)[0].clone();
    let add = format!("/fr/p/{product}");
    let form = [
        ("sku", sku.as_str()),
        ("quantity", "1"),
        ("back", add.as_str()),
    ];
    let no_token = b.post("/fr/cart/add", &form).await;
    assert_eq!(no_token.status, 403);
    let mut with_wrong = form.to_vec();
    with_wrong.push((
        "_csrf",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ));
    assert_eq!(b.post("/fr/cart/add", &with_wrong).await.status, 403);
    let mut with_token = form.to_vec();
    with_token.push(("_csrf", csrf.as_str()));
    let cross = b
        .send(
            b.http
                .post(format!("{}/fr/cart/add", site.base))
                .header("origin", "https://evil.example")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encode(&with_token)),
        )
        .await;
    assert_eq!(cross.status, 403);
    let cross_site = b
        .send(
            b.http
                .post(format!("{}/fr/cart/add", site.base))
                .header("sec-fetch-site", "cross-site")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encode(&with_token)),
        )
        .await;
    assert_eq!(cross_site.status, 403);
    let as_get = b
        .get(&format!("/fr/cart/add?sku={sku}&quantity=1&_csrf={csrf}"))
        .await;
    assert_eq!(as_get.status, 405, "no change through GET");
    assert!(
        !b.cookies.contains_key("__Host-comptoir-cart"),
        "no cart was made by a refused request"
    );
    // a stranger without the CSRF cookie cannot post even with a token read elsewhere
    let mut stranger = Browser::new(&site.base);
    assert_eq!(stranger.post("/fr/cart/add", &with_token).await.status, 403);
    // with the token, from the page: accepted
    let ok = b.post("/fr/cart/add", &with_token).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(b.cookies.contains_key("__Host-comptoir-cart"));
}

fn encode(form: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(form).expect("urlencoded")
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("comptoir-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The slug of the first product linked from a page.
pub(super) fn first_product(body: &str) -> String {
    let at = body.find("/p/").expect("a product link");
    let rest = &body[at + 3..];
    rest[..rest.find('"').expect("quote")].to_string()
}

/// The SKUs offered on a product page, in stock first.
pub(super) fn skus(body: &str) -> Vec<String> {
    body.split("name=\"sku\" value=\"")
        .skip(1)
        .filter(|s| !s.split('>').next().unwrap_or("").contains("disabled"))
        .map(|s| s[..s.find('"').expect("quote")].to_string())
        .collect()
}

async fn available(inv: &inventory::Inventory, sku: &str) -> i64 {
    inv.levels(None, Some(sku), false, 100)
        .await
        .expect("levels")
        .iter()
        .map(|l| l.available)
        .sum()
}

/// Adds `sku` from the product page; returns the page after the redirect.
pub(super) async fn add(b: &mut Browser, product: &str, sku: &str, qty: &str) -> Page {
    let p = b.get(&format!("/fr/p/{product}")).await;
    let back = format!("/fr/p/{product}");
    let r = b
        .post(
            "/fr/cart/add",
            &[
                ("_csrf", &p.csrf()),
                ("sku", sku),
                ("quantity", qty),
                ("back", &back),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    b.follow(r).await
}

pub(super) async fn checkout(b: &mut Browser, card: &str) -> Page {
    let form = b.get("/fr/checkout").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let (csrf, attempt) = (form.csrf(), form.field("attempt"));
    b.post(
        "/fr/checkout",
        &[
            ("_csrf", &csrf),
            ("attempt", &attempt),
            ("email", "anne@example.org"),
            ("fulfilment", "delivery"),
            ("name", "Anne Le Goff"),
            ("line1", "3 rue de la Soif"),
            ("postcode", "35000"),
            ("city", "Rennes"),
            ("country", "FR"),
            ("store", "rennes"),
            ("card", card),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_buys_two_sizes_without_javascript_and_a_declined_card_changes_nothing() {
    let dir = tempdir("web-guest");
    let site = start(&dir).await;
    let mut b = Browser::new(&site.base);
    let results = b.get("/fr/search?q=chaussures+running").await;
    assert_eq!(results.status, 200);
    let product = first_product(&results.body);
    let page = b.get(&format!("/fr/p/{product}")).await;
    let offered = skus(&page.body);
    assert!(offered.len() >= 2, "two sizes to pick from");
    let (s1, s2) = (offered[0].clone(), offered[1].clone());
    let before = (
        available(&site.inventory, &s1).await,
        available(&site.inventory, &s2).await,
    );
    let after_add = add(&mut b, &product, &s1, "1").await;
    assert!(after_add.body.contains("alert ok"), "added message");
    add(&mut b, &product, &s2, "2").await;
    let cart = b.get("/fr/cart").await;
    assert!(cart.body.contains(&s1) && cart.body.contains(&s2));
    assert!(
        cart.body.contains("class=\"badge\""),
        "the header counts units"
    );

    // a declined card: the error is shown, nothing is taken, the cart is kept
    let declined = checkout(&mut b, "4000000000000002").await;
    assert_eq!(declined.status, 402, "{}", declined.body);
    assert!(declined.body.contains("id=\"checkout-error\""));
    assert!(declined.body.contains("refusé"));
    assert_eq!(
        (
            available(&site.inventory, &s1).await,
            available(&site.inventory, &s2).await
        ),
        before,
        "stock untouched by a declined payment"
    );
    assert!(b.get("/fr/cart").await.body.contains(&s1));

    // a test card that is not one of ours is refused by the form
    let odd = checkout(&mut b, "4111111111111111").await;
    assert_eq!(odd.status, 422);

    // stock per store on a product page agrees with the inventory, whichever store it is in
    let football = b.get("/fr/c/football").await;
    let ball = first_product(&football.body);
    let page = b.get(&format!("/fr/p/{ball}")).await;
    let first = skus(&page.body)
        .first()
        .cloned()
        .expect("a football in stock somewhere");
    let mut shown = 0;
    for loc in site.inventory.locations().await.expect("locations") {
        if !loc.click_and_collect {
            continue;
        }
        let n = site
            .inventory
            .levels(Some(&loc.code), Some(&first), false, 1)
            .await
            .expect("level")
            .first()
            .map(|l| l.available)
            .unwrap_or(0);
        if n > 0 {
            let text = format!("<span class=\"in\">{n}</span> en stock à {}", loc.name);
            assert!(page.body.contains(&text), "{text} on /fr/p/{ball}");
            shown += 1;
        }
    }
    assert!(shown > 0, "the demo has this ball in some store");

    // the approved card: confirmation, stock taken, cart emptied
    let paid = checkout(&mut b, "4242424242424242").await;
    assert_eq!(paid.status, 303, "{}", paid.body);
    let loc = paid.location.clone().expect("location");
    assert!(loc.starts_with("/fr/orders/"), "{loc}");
    let confirmation = b.follow(paid).await;
    assert_eq!(confirmation.status, 200);
    assert!(confirmation.body.contains("Commande confirmée"));
    assert!(confirmation.body.contains("anne@example.org"));
    assert_eq!(
        (
            available(&site.inventory, &s1).await,
            available(&site.inventory, &s2).await
        ),
        (before.0 - 1, before.1 - 2)
    );
    assert!(
        b.get("/fr/cart")
            .await
            .body
            .contains("Votre panier est vide")
    );
    // the guest sees the order again later; nobody else does
    let order_path = loc.split('?').next().expect("path").to_string();
    assert_eq!(b.get(&order_path).await.status, 200);
    let mut stranger = Browser::new(&site.base);
    assert_eq!(stranger.get(&order_path).await.status, 404);
    // a forged guest-orders cookie does not open it either
    stranger.cookies.insert(
        "__Host-comptoir-orders".into(),
        format!(
            "{}.{}",
            order_path.trim_start_matches("/fr/orders/"),
            "00".repeat(32)
        ),
    );
    assert_eq!(stranger.get(&order_path).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_3d_secure_test_page_confirms_or_refuses_the_payment() {
    let dir = tempdir("web-3ds");
    let site = start(&dir).await;
    for (decision, paid) in [("approve", true), ("refuse", false)] {
        let mut b = Browser::new(&site.base);
        let home = b.get("/fr/c/running").await;
        let product = first_product(&home.body);
        let page = b.get(&format!("/fr/p/{product}")).await;
        let sku = skus(&page.body)[0].clone();
        let before = available(&site.inventory, &sku).await;
        add(&mut b, &product, &sku, "1").await;
        let r = checkout(&mut b, "4000002500003155").await;
        assert_eq!(r.status, 303, "{}", r.body);
        let pending = b.follow(r).await;
        assert_eq!(pending.status, 200);
        let confirm = pending
            .body
            .split("href=\"")
            .find(|s| s.contains("/confirm\""))
            .map(|s| s[..s.find('"').expect("quote")].to_string())
            .expect("a link to the confirmation page");
        let page = b.get(&confirm).await;
        assert_eq!(page.status, 200);
        // another visitor cannot confirm someone else's payment
        let mut other = Browser::new(&site.base);
        let other_page = other.get("/fr/").await;
        let forged = other
            .post(
                &confirm,
                &[("_csrf", &other_page.csrf()), ("decision", "approve")],
            )
            .await;
        assert_eq!(forged.status, 404);
        let done = b
            .post(&confirm, &[("_csrf", &page.csrf()), ("decision", decision)])
            .await;
        assert_eq!(done.status, 303);
        let end = b.follow(done).await;
        if paid {
            assert!(end.body.contains("Commande confirmée"), "{}", end.body);
            assert_eq!(available(&site.inventory, &sku).await, before - 1);
        } else {
            assert!(end.body.contains("refusé"), "{}", end.body);
            assert_eq!(available(&site.inventory, &sku).await, before);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_keeps_the_guest_cart_and_lists_the_orders() {
    let dir = tempdir("web-account");
    let site = start(&dir).await;
    let mut b = Browser::new(&site.base);
    let list = b.get("/en/c/running").await;
    let product = first_product(&list.body);
    let page = b.get(&format!("/en/p/{product}")).await;
    let sku = skus(&page.body)[0].clone();
    add(&mut b, &product, &sku, "1").await;
    let guest_cart = b.cookies["__Host-comptoir-cart"].clone();

    // the account page asks to sign in first
    let acc = b.get("/en/account").await;
    assert_eq!(acc.status, 303);
    // sign-up: a bad password is explained, nothing is created
    let form = b.get("/en/sign-up").await;
    let weak = b
        .post(
            "/en/sign-up",
            &[
                ("_csrf", &form.csrf()),
                ("name", "Yann"),
                ("email", "yann@example.org"),
                ("password", "password"),
            ],
        )
        .await;
    assert_eq!(weak.status, 422);
    assert!(weak.body.contains("aria-invalid=\"true\""), "{}", weak.body);
    let ok = b
        .post(
            "/en/sign-up",
            &[
                ("_csrf", &form.csrf()),
                ("name", "Yann"),
                ("email", "yann@example.org"),
                ("password", "kouign-amann au beurre salé"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(b.cookies.contains_key("__Host-comptoir-session"));
    assert!(b.cookies.contains_key("__Host-comptoir-refresh"));
    // the guest cart became the customer's: anonymous callers no longer reach it
    let cart_id = guest_cart.split('~').next().expect("id");
    let anon = reqwest::get(format!("{}/api/carts/{cart_id}", site.base))
        .await
        .expect("get cart");
    assert_eq!(
        anon.status().as_u16(),
        404,
        "the cart is the customer's now"
    );
    let cart = b.get("/en/cart").await;
    assert!(cart.body.contains(&sku), "the line followed the customer");
    let paid = checkout(&mut b, "4242424242424242").await;
    assert_eq!(paid.status, 303, "{}", paid.body);
    let account = b.get("/en/account").await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("yann@example.org"));
    assert!(account.body.contains("paid"), "{}", account.body);

    // an expired access token is renewed from the refresh cookie
    b.cookies
        .insert("__Host-comptoir-session".into(), "expired.or.bogus".into());
    let again = b.get("/en/account").await;
    assert_eq!(again.status, 200, "refreshed");
    assert_ne!(b.cookies["__Host-comptoir-session"], "expired.or.bogus");

    // sign-out ends the session: the account page asks to sign in again
    let out = b.post("/en/sign-out", &[("_csrf", &again.csrf())]).await;
    assert_eq!(out.status, 303);
    assert!(!b.cookies.contains_key("__Host-comptoir-session"));
    assert_eq!(b.get("/en/account").await.status, 303);
    // and a wrong password is refused with the same words whether the account exists or not
    let f = b.get("/en/sign-in").await;
    let wrong = b
        .post(
            "/en/sign-in",
            &[
                ("_csrf", &f.csrf()),
                ("email", "yann@example.org"),
                ("password", "not the password"),
            ],
        )
        .await;
    let unknown = b
        .post(
            "/en/sign-in",
            &[
                ("_csrf", &f.csrf()),
                ("email", "nobody@example.org"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert!(wrong.body.contains("Wrong e-mail address or password"));
    assert!(unknown.body.contains("Wrong e-mail address or password"));
    // a "next" pointing at another site is ignored
    let signed = b
        .post(
            "/en/sign-in",
            &[
                ("_csrf", &f.csrf()),
                ("email", "yann@example.org"),
                ("password", "kouign-amann au beurre salé"),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location.as_deref(), Some("/en/account"));

    // password reset: the e-mail's link leads to the form; the new password works, the old not
    let mut anon = Browser::new(&site.base);
    let f = anon.get("/en/password-reset").await;
    let sent = anon
        .post(
            "/en/password-reset",
            &[("_csrf", &f.csrf()), ("email", "yann@example.org")],
        )
        .await;
    assert_eq!(sent.status, 303);
    assert!(
        anon.follow(sent)
            .await
            .body
            .contains("reset link is on its way")
    );
    let platform::db::Db::Sqlite(pool) = &site.identity.db else {
        panic!("the embedded default is SQLite");
    };
    let payload: String = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE topic = 'identity.password_reset_requested' \
         ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .expect("the reset message");
    let msg: Value = serde_json::from_str(&payload).expect("json");
    let link = msg["reset_url"].as_str().expect("reset_url").to_string();
    let path = &link[link.find("/account/password-reset").expect("our path")..];
    let form = anon
        .send(
            anon.http
                .get(format!("{}{path}", site.base))
                .header("accept-language", "en-GB,en"),
        )
        .await;
    let form = anon.follow(form).await;
    assert_eq!(form.status, 200);
    let token = form.field("token");
    let done = anon
        .post(
            "/en/password-reset/confirm",
            &[
                ("_csrf", &form.csrf()),
                ("token", &token),
                ("new_password", "galettes saucisses du mardi"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let f = anon.get("/en/sign-in").await;
    let old = anon
        .post(
            "/en/sign-in",
            &[
                ("_csrf", &f.csrf()),
                ("email", "yann@example.org"),
                ("password", "kouign-amann au beurre salé"),
            ],
        )
        .await;
    assert_eq!(old.status, 401);
    let new = anon
        .post(
            "/en/sign-in",
            &[
                ("_csrf", &f.csrf()),
                ("email", "yann@example.org"),
                ("password", "galettes saucisses du mardi"),
            ],
        )
        .await;
    assert_eq!(new.status, 303);
}

/// Signs `email` in through the form (demo account password from the first start).
async fn sign_in_as(site: &Site, email: &str) -> Browser {
    let password = site
        .accounts
        .iter()
        .find(|a| a.email == email)
        .map(|a| a.secret.clone())
        .expect("demo account");
    let mut b = Browser::new(&site.base);
    let f = b.get("/fr/sign-in").await;
    let r = b
        .post(
            "/fr/sign-in",
            &[
                ("_csrf", &f.csrf()),
                ("email", email),
                ("password", &password),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{email}: {}", r.body);
    b
}

async fn on_hand(inv: &inventory::Inventory, location: &str, sku: &str) -> i64 {
    inv.levels(Some(location), Some(sku), false, 10)
        .await
        .expect("levels")
        .first()
        .map(|l| l.on_hand)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_back_office_follows_roles_and_its_writes_reach_the_shop() {
    let dir = tempdir("web-admin");
    let site = start(&dir).await;

    // who may enter
    let mut anon = Browser::new(&site.base);
    let r = anon.get("/fr/admin/orders").await;
    assert_eq!(r.status, 303);
    assert!(
        r.location
            .as_deref()
            .unwrap_or("")
            .starts_with("/fr/sign-in?next=")
    );
    let mut customer = sign_in_as(&site, "client@example.org").await;
    assert_eq!(customer.get("/fr/admin").await.status, 403);
    assert_eq!(customer.get("/fr/admin/stock/rennes").await.status, 403);

    // a store manager: their store only, no catalogue writes
    let mut rennes = sign_in_as(&site, "gerant.rennes@breizhsport.example").await;
    for path in [
        "/fr/admin",
        "/en/admin",
        "/fr/admin/orders",
        "/fr/admin/stock/rennes",
        "/fr/admin/staff",
    ] {
        let p = rennes.get(path).await;
        assert_eq!(p.status, 200, "{path}");
        assert_page_headers(path, &p);
        assert_self_contained(path, &p.body);
    }
    assert_eq!(
        rennes.get("/fr/admin/stock").await.location.as_deref(),
        Some("/fr/admin/stock/rennes")
    );
    assert_eq!(rennes.get("/fr/admin/stock/brest").await.status, 404);
    assert_eq!(
        rennes.get("/fr/admin/stock/brest/movements").await.status,
        404
    );
    assert_eq!(rennes.get("/fr/admin/products").await.status, 403);
    assert_eq!(rennes.get("/fr/admin/keys").await.status, 403);

    // a stock adjustment with a reason, applied once even when the form is sent twice
    let page = rennes.get("/fr/admin/stock/rennes").await;
    let sku = page
        .body
        .split("/fr/admin/stock/rennes?sku=")
        .nth(1)
        .map(|s| s[..s.find('"').expect("quote")].to_string())
        .expect("a SKU in the table");
    let before = on_hand(&site.inventory, "rennes", &sku).await;
    let attempt = page.field("attempt");
    let form = [
        ("_csrf", page.csrf()),
        ("attempt", attempt),
        ("adjust-sku", sku.clone()),
        ("adjust-delta", "3".to_string()),
        ("adjust-reason", "inventaire tournant".to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for _ in 0..2 {
        let r = rennes.post("/fr/admin/stock/rennes/adjust", &form).await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert!(rennes.follow(r).await.body.contains("alert ok"));
    }
    assert_eq!(on_hand(&site.inventory, "rennes", &sku).await, before + 3);
    let history = rennes
        .get(&format!("/fr/admin/stock/rennes/movements?sku={sku}"))
        .await;
    assert!(history.body.contains("inventaire tournant"));
    // another store's stock cannot be changed through the form either
    let r = rennes.post("/fr/admin/stock/brest/adjust", &form).await;
    assert_eq!(r.status, 404);

    // head office creates a product; the shop shows it at once
    let mut hq = sign_in_as(&site, "direction@breizhsport.example").await;
    for path in [
        "/fr/admin/products",
        "/fr/admin/keys",
        "/fr/admin/stock",
        "/fr/admin/stock/brest",
    ] {
        assert_eq!(hq.get(path).await.status, 200, "{path}");
    }
    let new = hq.get("/fr/admin/products/new").await;
    assert_eq!(new.status, 200);
    assert_self_contained("/fr/admin/products/new", &new.body);
    let attempt = new.field("attempt");
    let created = hq
        .post(
            "/fr/admin/products",
            &[
                ("_csrf", &new.csrf()),
                ("attempt", &attempt),
                ("p-name-fr", "Gourde isotherme Kerlann"),
                ("p-name-en", "Kerlann insulated bottle"),
                ("p-description-fr", "Garde l'eau fraîche 24 h."),
                ("p-description-en", "Keeps water cool for 24 h."),
                ("p-status", "published"),
                ("v0-sku", "BZH-GOURDE-1"),
                ("v0-size", "75cl"),
                ("v0-colour", "Bleu"),
                ("v0-price", "24,90"),
                ("v0-vat", "20"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let product_path = created
        .location
        .clone()
        .expect("location")
        .split('?')
        .next()
        .expect("path")
        .to_string();
    assert!(hq.follow(created).await.body.contains("alert ok"));
    let mut shopper = Browser::new(&site.base);
    let found = shopper.get("/fr/search?q=gourde+isotherme").await;
    assert!(
        found.body.contains("Gourde isotherme Kerlann"),
        "in the shop at once"
    );
    let en = shopper.get("/en/search?q=insulated").await;
    assert!(en.body.contains("Kerlann insulated bottle"));
    assert!(en.body.contains("€24.90"));

    // head office renames it: the shop follows; an edit from an outdated form is refused
    let edit = hq.get(&product_path).await;
    assert_eq!(edit.status, 200);
    let (version, attempt) = (edit.field("version"), edit.field("attempt"));
    let rename = |v: &str, a: &str, name: &str| {
        vec![
            ("_csrf".to_string(), edit.csrf()),
            ("attempt".to_string(), a.to_string()),
            ("version".to_string(), v.to_string()),
            ("p-name-fr".to_string(), name.to_string()),
            (
                "p-name-en".to_string(),
                "Kerlann insulated bottle".to_string(),
            ),
            ("p-status".to_string(), "published".to_string()),
            ("p-brand".to_string(), String::new()),
            ("p-category".to_string(), String::new()),
        ]
    };
    let form = rename(&version, &attempt, "Gourde isotherme Kerlann XL");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let saved = hq.post(&product_path, &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let renamed = shopper.get("/fr/search?q=gourde+isotherme").await;
    assert!(renamed.body.contains("Gourde isotherme Kerlann XL"));
    let stale = rename(&version, &uuid::Uuid::now_v7().to_string(), "Vieux nom");
    let stale: Vec<(&str, &str)> = stale
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let refused = hq.post(&product_path, &stale).await;
    assert_eq!(refused.status, 409, "an edit made from an old version");
    assert!(
        !shopper
            .get("/fr/search?q=vieux")
            .await
            .body
            .contains("Vieux nom")
    );

    // archived: it leaves the shop at once
    let page = hq.get(&product_path).await;
    let archived = hq
        .post(
            &format!("{product_path}/archive"),
            &[
                ("_csrf", &page.csrf()),
                ("attempt", &uuid::Uuid::now_v7().to_string()),
            ],
        )
        .await;
    assert_eq!(archived.status, 303, "{}", archived.body);
    let gone = shopper.get("/fr/search?q=gourde+isotherme").await;
    assert!(
        !gone.body.contains("Gourde isotherme Kerlann"),
        "archived products leave the shop"
    );
}
