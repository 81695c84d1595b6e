//! The site in a real browser: headless Chromium driven over W3C WebDriver (chromedriver)
//! against the real `comptoir` binary, with its demo data. A guest searches, picks two sizes
//! and pays; a declined card leaves the stock and the cart as they were; a store manager
//! adjusts the stock of their store and cannot see another store; the head office creates a
//! product that the storefront shows at once. Every page visited must load without a Content
//! Security Policy violation in the browser's console.
//!
//! Needs chromedriver and Chromium: `COMPTOIR_TEST_CHROMEDRIVER` (or `/usr/bin/chromedriver`).
//! Without them the tests are skipped with a printed reason, except under
//! `COMPTOIR_TEST_STRICT=1`, where they fail. Screenshots of each step are written to
//! `target/browser-artifacts/<test>-<step>.png` (with the console log, `<test>-console.txt`).

use super::webdriver::{Browser, ELEMENT_KEY, Element};
use super::{Server, comptoir, temp_dir};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const CHROMEDRIVER_ENV: &str = "COMPTOIR_TEST_CHROMEDRIVER";

/// One browser at a time: Chromium and a debug build of the server share few cores.
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// chromedriver's path, or `None` (with the reason printed) when there is none. Panics in
/// strict mode when it is missing.
pub(crate) fn chromedriver() -> Option<PathBuf> {
    let path = match std::env::var(CHROMEDRIVER_ENV) {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("/usr/bin/chromedriver"),
    };
    if path.exists() {
        return Some(path);
    }
    assert!(
        !testkit::strict(),
        "{}=1 but there is no chromedriver at {} (set {CHROMEDRIVER_ENV}): the browser tests cannot run",
        testkit::STRICT_ENV,
        path.display()
    );
    eprintln!(
        "skipping the browser tests: no chromedriver at {} (set {CHROMEDRIVER_ENV})",
        path.display()
    );
    None
}

fn artifacts_dir() -> PathBuf {
    let target = match std::env::var("CARGO_TARGET_DIR") {
        Ok(t) if !t.is_empty() => PathBuf::from(t),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    };
    target.join("browser-artifacts")
}

/// The real binary, a headless Chromium, and what the test saw in the browser's console.
struct Shop {
    test: &'static str,
    server: Server,
    /// `http://localhost:<port>`: a secure context for Chromium, so our `__Host-` cookies work.
    base: String,
    /// `http://127.0.0.1:<port>`, for the test's own API calls.
    api: String,
    b: Browser,
    console: Vec<String>,
    _dir: PathBuf,
}

impl Shop {
    async fn open(test: &'static str, chromedriver: &std::path::Path) -> Shop {
        let dir = temp_dir(&format!("browser-{test}"));
        let server = Server::start({
            let mut c = comptoir(&dir);
            c.arg("serve");
            c
        });
        let api = server.base.clone();
        let base = api.replace("://127.0.0.1:", "://localhost:");
        assert!(base.starts_with("http://localhost:"), "{base}");
        let chromium = PathBuf::from("/usr/bin/chromium");
        let b = Browser::start(
            chromedriver,
            chromium.exists().then_some(chromium.as_path()),
        )
        .await
        .unwrap_or_else(|e| panic!("start headless Chromium: {e}"));
        Shop {
            test,
            server,
            base,
            api,
            b,
            console: Vec::new(),
            _dir: dir,
        }
    }

    /// A demo account's password, as printed at first start.
    fn password(&self, email: &str) -> String {
        self.server
            .stdout
            .iter()
            .find(|l| l.split_whitespace().any(|w| w == email))
            .and_then(|l| l.split_whitespace().last().map(str::to_string))
            .unwrap_or_else(|| panic!("no demo password for {email}: {:?}", self.server.stdout))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn visit(&mut self, path: &str) {
        let url = self.url(path);
        self.b
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.b.wait_loaded().await.expect("page loaded");
        self.read_console().await;
    }

    async fn find(&self, css: &str) -> Element {
        self.b
            .wait_for(css)
            .await
            .unwrap_or_else(|e| panic!("[{}] {e}", self.test))
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.b
            .click(&e)
            .await
            .unwrap_or_else(|e| panic!("[{}] click `{css}`: {e}", self.test));
    }

    /// Types into a field (emptied first), or picks the option of a `<select>`.
    async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        let tag = self
            .b
            .execute("return arguments[0].tagName.toLowerCase()", vec![el(&e)])
            .await
            .expect("tag name");
        if tag == "select" {
            let by_value = format!("{css} option[value=\"{value}\"]");
            let option = match self.b.find(&by_value).await {
                Ok(o) => o,
                Err(_) => {
                    // no option with that value: the option whose label starts with it
                    let options = self
                        .b
                        .find_all(&format!("{css} option"))
                        .await
                        .expect("options");
                    let mut found = None;
                    for o in options {
                        let t = self.b.text(&o).await.unwrap_or_default();
                        if t.trim().starts_with(value) {
                            found = Some(o);
                            break;
                        }
                    }
                    found
                        .unwrap_or_else(|| panic!("[{}] no option {value:?} in `{css}`", self.test))
                }
            };
            self.b.click(&option).await.expect("pick the option");
            assert!(self.b.is_selected(&option).await.expect("selected"));
        } else {
            self.b.clear(&e).await.expect("clear");
            self.b.send_keys(&e, value).await.expect("type");
            let now = self.b.property(&e, "value").await.expect("value");
            assert_eq!(
                now,
                json!(value),
                "[{}] `{css}` holds what was typed",
                self.test
            );
        }
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.b.text(&e).await.expect("text")
    }

    /// A screenshot of the viewport: `target/browser-artifacts/<test>-<step>.png`.
    async fn shot(&mut self, step: &str) {
        let path = artifacts_dir().join(format!("{}-{step}.png", self.test));
        self.b
            .screenshot(&path)
            .await
            .unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
        self.read_console().await;
    }

    /// axe-core's WCAG 2 A/AA rules on the current page: no serious or critical violation.
    async fn assert_accessible(&self, what: &str) {
        const AXE: &str = include_str!("vendor/axe-4.14.1.min.js");
        self.b
            .execute(&format!("{AXE}\n;return typeof axe;"), vec![])
            .await
            .unwrap_or_else(|e| panic!("[{}] load axe: {e}", self.test));
        let found = self
            .b
            .execute(
                "return axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})\
                 .then(r => ({passes: r.passes.length, bad: r.violations\
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                   .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' +\
                        v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))}));",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("[{}] run axe: {e}", self.test));
        // axe really ran: rules were checked and passed
        let passes = found["passes"].as_u64().unwrap_or(0);
        assert!(passes >= 10, "[{}] axe checked {what}: {found}", self.test);
        let list = found["bad"].as_array().cloned().unwrap_or_default();
        assert!(
            list.is_empty(),
            "[{}] accessibility of {what}: {list:#?}",
            self.test
        );
    }

    /// Keeps the browser's console messages; a Content Security Policy violation fails the test.
    async fn read_console(&mut self) {
        let page = self.b.url().await.unwrap_or_default();
        let entries = self.b.browser_log().await.unwrap_or_default();
        for (level, message) in entries {
            let line = format!("{level} {page} {message}");
            let csp = message.contains("Content Security Policy")
                || message.contains("Content-Security-Policy");
            self.console.push(line.clone());
            assert!(!csp, "[{}] CSP violation in the browser: {line}", self.test);
        }
    }

    async fn sign_in(&mut self, email: &str) {
        let password = self.password(email);
        self.visit("/fr/sign-in").await;
        self.fill("#email", email).await;
        self.fill("#password", &password).await;
        self.click("main form[action$=\"/sign-in\"] button[type=submit]")
            .await;
        // signed in: the header offers to sign out (the session cookie was accepted)
        self.b
            .wait_url("leaving the sign-in page", |u| !u.contains("/sign-in"))
            .await
            .unwrap_or_else(|e| panic!("[{}] sign in as {email}: {e}", self.test));
        self.find("header form[action$=\"/sign-out\"]").await;
        self.read_console().await;
    }

    /// The cart count in the header, once it reads `n`.
    async fn wait_cart_count(&self, n: usize) {
        self.b
            .wait_text(
                "header a[href$=\"/cart\"] .badge",
                &format!("{n} in the cart"),
                |t| t.trim() == n.to_string(),
            )
            .await
            .unwrap_or_else(|e| panic!("[{}] {e}", self.test));
    }

    /// The SKUs that can be picked on a product page, in page order.
    async fn pickable_skus(&self) -> Vec<String> {
        self.find("form[action$=\"/cart/add\"]").await;
        let v = self
            .b
            .execute(
                "return Array.from(document.querySelectorAll('input[name=sku]:not([disabled])')).map(e => e.value)",
                vec![],
            )
            .await
            .expect("read the variants");
        serde_json::from_value(v).expect("a list of SKUs")
    }

    async fn add_to_cart(&self, sku: &str, count_after: usize) {
        let radio = format!("input[name=sku][value=\"{sku}\"]");
        self.click(&radio).await;
        let e = self.find(&radio).await;
        assert!(self.b.is_selected(&e).await.expect("selected"), "{sku}");
        self.click("form[action$=\"/cart/add\"] button[type=submit]")
            .await;
        self.wait_cart_count(count_after).await;
        self.find(".alert.ok").await;
    }

    /// Fills the checkout form for a home delivery, with the given test card.
    async fn fill_checkout(&self, email: &str, card: &str) {
        self.find("#place-order").await;
        self.fill("#email", email).await;
        let delivery = self.find("input[name=fulfilment][value=delivery]").await;
        assert!(
            self.b.is_selected(&delivery).await.expect("selected"),
            "home delivery is the default"
        );
        self.fill("#name", "Anne Le Gall").await;
        self.fill("#line1", "12 rue de Brest").await;
        self.fill("#postcode", "35000").await;
        self.fill("#city", "Rennes").await;
        let country = self.find("#country").await;
        if self.b.property(&country, "value").await.expect("value") == json!("") {
            self.fill("#country", "FR").await;
        }
        let card_css = format!("input[name=card][value=\"{card}\"]");
        let radio = self.find(&card_css).await;
        if !self.b.is_selected(&radio).await.expect("selected") {
            self.click(&card_css).await;
        }
        assert!(
            self.b.is_selected(&radio).await.expect("selected"),
            "{card}"
        );
    }

    /// Units available per location for `sku`, from the public API.
    async fn availability(&self, sku: &str) -> Vec<(String, i64)> {
        let v: Value = http()
            .get(format!(
                "{}/api/inventory/availability?skus={sku}",
                self.api
            ))
            .send()
            .await
            .expect("availability")
            .json()
            .await
            .expect("json");
        let mut out: Vec<(String, i64)> = v
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|a| {
                (
                    a["location"].as_str().unwrap_or_default().to_string(),
                    a["available"].as_i64().unwrap_or_default(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// An access token for a demo account, over the API.
    async fn token(&self, email: &str) -> String {
        let r: Value = http()
            .post(format!("{}/api/identity/sessions", self.api))
            .json(&json!({"email": email, "password": self.password(email)}))
            .send()
            .await
            .expect("sign in")
            .json()
            .await
            .expect("json");
        r["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {r}"))
            .to_string()
    }

    /// The browser's cookies for this site, as a `Cookie` header.
    async fn cookie_header(&self) -> String {
        self.b
            .cookies()
            .await
            .expect("cookies")
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Checks that the page is not wider than the window (no sideways scrolling).
    async fn assert_fits_width(&self, what: &str) {
        let v = self
            .b
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth]",
                vec![],
            )
            .await
            .expect("widths");
        let (scroll, inner) = (v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0));
        assert!(
            scroll <= inner,
            "[{}] {what} is {scroll} px wide in a {inner} px window",
            self.test
        );
    }

    async fn close(self) {
        let path = artifacts_dir().join(format!("{}-console.txt", self.test));
        let _ = std::fs::create_dir_all(artifacts_dir());
        let _ = std::fs::write(
            &path,
            self.console
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        );
        self.b.quit().await;
        let _ = self.server.stop();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn el(e: &Element) -> Value {
    json!({ ELEMENT_KEY: e.0 })
}

fn http() -> reqwest::Client {
    platform::tls::current()
        .reqwest_builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `/fr/orders/<uuid>` (with or without a query string).
fn order_id_of(url: &str) -> Option<uuid::Uuid> {
    let path = url.split('?').next()?;
    let id = path.split("/fr/orders/").nth(1)?;
    uuid::Uuid::parse_str(id).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_guest_searches_picks_two_sizes_and_pays() {
    let Some(driver) = chromedriver() else { return };
    let _one = ONE_BROWSER.lock().await;
    let started = Instant::now();
    let mut s = Shop::open("guest-checkout", &driver).await;

    // the home page
    s.visit("/fr/").await;
    assert!(s.b.title().await.expect("title").contains("Breizhsport"));
    s.find("main a[href*=\"/fr/p/\"]").await;
    s.shot("home").await;
    s.assert_accessible("the home page").await;

    // typing in the search box shows suggestions (htmx), each a product link
    let q = s.find("#q").await;
    s.b.clear(&q).await.expect("clear");
    s.b.send_keys(&q, "chaussures").await.expect("type");
    let suggestions =
        s.b.wait_count("#suggestions a", "suggestions", |n| n > 0)
            .await
            .expect("suggestions appear");
    let href =
        s.b.attribute(&suggestions[0], "href")
            .await
            .expect("href")
            .unwrap_or_default();
    assert!(href.contains("/fr/p/"), "{href}");
    s.shot("suggestions").await;

    // the search results
    s.click("form.search button[type=submit]").await;
    s.b.wait_url("the search page", |u| {
        u.contains("/fr/search") && u.contains("q=chaussures")
    })
    .await
    .expect("search submitted");
    let results =
        s.b.wait_count("main a[href*=\"/fr/p/\"]", "results", |n| n > 0)
            .await
            .expect("results");
    let product =
        s.b.attribute(&results[0], "href")
            .await
            .expect("href")
            .unwrap_or_default();
    let product_path = product
        .split_once("/fr/p/")
        .map(|(_, slug)| format!("/fr/p/{slug}"))
        .unwrap_or_else(|| panic!("a product link: {product}"));
    s.shot("search").await;
    s.assert_accessible("the search results").await;

    // the product page: two sizes into the cart
    s.b.click(&results[0]).await.expect("open the product");
    s.b.wait_url("the product page", |u| u.contains(&product_path))
        .await
        .expect("product page");
    let name = s.text("main h1").await;
    assert!(name.to_lowercase().contains("chaussures"), "{name}");
    let skus = s.pickable_skus().await;
    assert!(
        skus.len() >= 2,
        "two sizes in stock on {product_path}: {skus:?}"
    );
    s.shot("product").await;
    s.assert_accessible("the product page").await;
    // htmx: picking a size updates the stock per store in place (the list is swapped)
    s.b.execute(
        "document.getElementById('stock-list').dataset.before = '1'; return 1",
        vec![],
    )
    .await
    .expect("mark the list");
    s.click(&format!("input[name=sku][value=\"{}\"]", skus[1]))
        .await;
    s.b.wait_count("#stock-list[data-before]", "the list swapped", |n| n == 0)
        .await
        .expect("stock per store refreshed for the chosen size");
    s.find("#stock-list li").await;
    s.add_to_cart(&skus[0], 1).await;
    s.add_to_cart(&skus[1], 2).await;
    s.shot("product-added").await;

    // the cart: two lines
    s.click("header a[href=\"/fr/cart\"]").await;
    s.b.wait_url("the cart", |u| u.ends_with("/fr/cart"))
        .await
        .expect("cart");
    let rows =
        s.b.wait_count("main .table-wrap tbody tr", "two lines", |n| n == 2)
            .await
            .expect("two lines");
    let mut lines = Vec::new();
    for r in &rows {
        lines.push(s.b.text(r).await.expect("line"));
    }
    for sku in &skus[..2] {
        assert!(
            lines.iter().any(|l| l.contains(sku.as_str())),
            "{sku} in {lines:?}"
        );
    }
    s.shot("cart").await;
    s.assert_accessible("the cart").await;

    // htmx: a quantity change updates the cart and the header in place, without a reload
    s.b.execute("window.__stillHere = 1; return 1", vec![])
        .await
        .expect("mark the page");
    let qty = s
        .find("main .table-wrap tbody tr:nth-child(2) input[name=quantity]")
        .await;
    s.b.clear(&qty).await.expect("clear");
    s.b.send_keys(&qty, "1").await.expect("type");
    s.click("main .table-wrap tbody tr:nth-child(2) button.secondary")
        .await;
    s.wait_cart_count(2).await;
    let kept =
        s.b.execute("return window.__stillHere === 1", vec![])
            .await
            .expect("read the mark");
    assert_eq!(kept, json!(true), "the cart was updated in place");
    let rows =
        s.b.wait_count("main .table-wrap tbody tr", "two lines", |n| n == 2)
            .await
            .expect("still two lines");
    let second = s.b.text(&rows[1]).await.expect("line");
    assert!(second.contains(skus[1].as_str()), "{second}");

    // the checkout, paid with the test card that succeeds (the default)
    s.click("main a[href=\"/fr/checkout\"]").await;
    s.b.wait_url("the checkout", |u| u.ends_with("/fr/checkout"))
        .await
        .expect("checkout");
    let ok_card = s.find("input[name=card][value=\"4242424242424242\"]").await;
    assert!(
        s.b.is_selected(&ok_card).await.expect("selected"),
        "the succeeding test card is the default"
    );
    s.fill_checkout("anne.legall@example.org", "4242424242424242")
        .await;
    s.shot("checkout").await;
    s.assert_accessible("the checkout").await;
    s.click("#place-order").await;
    let url =
        s.b.wait_url("the order page", |u| u.contains("/fr/orders/"))
            .await
            .expect("order placed");
    assert!(order_id_of(&url).is_some(), "/fr/orders/<id>: {url}");
    let confirmed = s.text(".alert.ok h1").await;
    assert!(!confirmed.trim().is_empty());
    let page = s.text("main").await;
    assert!(page.contains("anne.legall@example.org"), "{page}");
    for sku in &skus[..2] {
        assert!(page.contains(sku.as_str()), "{sku} on the order page");
    }
    // the cart is done
    assert!(
        s.b.find_all("header a[href=\"/fr/cart\"] .badge")
            .await
            .expect("badge")
            .is_empty()
    );
    s.shot("confirmation").await;
    s.assert_accessible("the confirmation").await;

    // a phone-sized window: the home and product pages fit without sideways scrolling
    s.b.set_window_size(390, 844).await.expect("resize");
    s.visit("/fr/").await;
    let width =
        s.b.execute("return window.innerWidth", vec![])
            .await
            .expect("width");
    assert!(width.as_i64().is_some_and(|w| w <= 390), "{width}");
    s.shot("home-mobile").await;
    s.assert_fits_width("the home page").await;
    s.visit(&product_path).await;
    s.find("main h1").await;
    s.shot("product-mobile").await;
    s.assert_fits_width("the product page").await;

    s.close().await;
    eprintln!("guest checkout in the browser: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_declined_card_keeps_stock_and_cart() {
    let Some(driver) = chromedriver() else { return };
    let _one = ONE_BROWSER.lock().await;
    let started = Instant::now();
    let mut s = Shop::open("declined-card", &driver).await;

    s.visit("/fr/").await;
    s.click("main a[href*=\"/fr/p/\"]").await;
    s.b.wait_url("a product page", |u| u.contains("/fr/p/"))
        .await
        .expect("product");
    let skus = s.pickable_skus().await;
    let sku = skus.first().cloned().expect("a size in stock");
    s.add_to_cart(&sku, 1).await;
    let before = s.availability(&sku).await;
    assert!(!before.is_empty(), "{sku} is stocked somewhere");

    s.visit("/fr/checkout").await;
    s.fill_checkout("refus@example.org", "4000000000000002")
        .await;
    s.click("#place-order").await;
    let error =
        s.b.wait_text("#checkout-error", "the declined message", |t| {
            !t.trim().is_empty()
        })
        .await
        .expect("the card is declined");
    s.shot("declined").await;
    s.assert_accessible("the checkout with its error").await;
    assert!(s.b.url().await.expect("url").ends_with("/fr/checkout"));
    // the form keeps what was typed
    let email = s.find("#email").await;
    assert_eq!(
        s.b.property(&email, "value").await.expect("value"),
        json!("refus@example.org"),
        "{error}"
    );
    assert_eq!(
        s.availability(&sku).await,
        before,
        "a declined card leaves the stock as it was"
    );

    // the cart still holds its line
    s.visit("/fr/cart").await;
    let rows =
        s.b.wait_count("main .table-wrap tbody tr", "one line", |n| n == 1)
            .await
            .expect("the cart is kept");
    assert!(s.b.text(&rows[0]).await.expect("line").contains(&sku));
    s.wait_cart_count(1).await;
    s.shot("cart-kept").await;

    s.close().await;
    eprintln!("declined card in the browser: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_store_manager_adjusts_own_stock_only() {
    let Some(driver) = chromedriver() else { return };
    let _one = ONE_BROWSER.lock().await;
    let started = Instant::now();
    let mut s = Shop::open("store-manager", &driver).await;
    let head_office = s.token("direction@breizhsport.example").await;
    let api = s.api.clone();
    let stock_of = async |sku: Option<&str>| -> Value {
        let q = match sku {
            Some(sku) => format!("location=rennes&sku={sku}"),
            None => "location=rennes&limit=1".to_string(),
        };
        let v: Value = http()
            .get(format!("{api}/api/inventory/stock?{q}"))
            .bearer_auth(&head_office)
            .send()
            .await
            .expect("stock")
            .json()
            .await
            .expect("json");
        v.as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or_else(|| panic!("a stock line at Rennes: {v}"))
    };
    let line = stock_of(None).await;
    let sku = line["sku"].as_str().expect("sku").to_string();
    let on_hand = line["on_hand"].as_i64().expect("on hand");

    s.sign_in("gerant.rennes@breizhsport.example").await;
    s.visit("/fr/admin/stock/rennes").await;
    s.find("main h1").await;
    s.find("#adjust-sku").await;
    s.shot("stock-rennes").await;
    s.assert_accessible("the stock page").await;
    s.fill("#adjust-sku", &sku).await;
    s.fill("#adjust-delta", "3").await;
    s.fill("#adjust-reason", "Inventaire tournant").await;
    s.click("#adjust-submit").await;
    s.find(".alert.ok").await;
    s.shot("adjusted").await;
    let after = stock_of(Some(&sku)).await;
    assert_eq!(after["on_hand"].as_i64(), Some(on_hand + 3), "{after}");
    // the page shows the new figure: the SKU's line, through the page's filter
    s.fill("#f-sku", &sku).await;
    s.click("#stock-filter").await;
    s.b.wait_url("the filtered levels", |u| u.contains("sku="))
        .await
        .expect("filtered");
    s.b.wait_count("#levels tbody tr", "the SKU's line", |n| n == 1)
        .await
        .expect("one line");
    assert_eq!(s.text("#levels tbody tr th").await.trim(), sku);
    assert_eq!(
        s.text("#levels tbody tr td.num").await.trim(),
        (on_hand + 3).to_string(),
        "the new on-hand figure"
    );
    s.shot("adjusted-line").await;

    // another store: the not-found page
    s.visit("/fr/this-page-does-not-exist").await;
    let not_found = s.text("main h1").await;
    s.visit("/fr/admin/stock/brest").await;
    assert_eq!(s.text("main h1").await, not_found);
    s.shot("brest-not-found").await;
    let status = http()
        .get(s.url("/fr/admin/stock/brest"))
        .header("cookie", s.cookie_header().await)
        .send()
        .await
        .expect("brest")
        .status();
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let status = http()
        .get(s.url("/fr/admin/stock/rennes"))
        .header("cookie", s.cookie_header().await)
        .send()
        .await
        .expect("rennes")
        .status();
    assert_eq!(
        status,
        reqwest::StatusCode::OK,
        "the same session sees Rennes"
    );

    s.close().await;
    eprintln!("store manager in the browser: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_head_office_creates_a_product_the_shop_shows() {
    let Some(driver) = chromedriver() else { return };
    let _one = ONE_BROWSER.lock().await;
    let started = Instant::now();
    let mut s = Shop::open("head-office-product", &driver).await;
    let tag: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .filter(char::is_ascii_alphabetic)
        .take(6)
        .collect();
    let tag = format!("Essai{tag}");
    let name_fr = format!("Coupe-vent {tag}");
    let name_en = format!("Windbreaker {tag}");
    let sku = format!("BT-{}-M", tag.to_uppercase());

    s.sign_in("direction@breizhsport.example").await;
    s.visit("/fr/admin/products/new").await;
    s.find("#p-name-fr").await;
    s.fill("#p-name-fr", &name_fr).await;
    s.fill("#p-name-en", &name_en).await;
    s.fill("#p-status", "published").await;
    s.fill("#v0-sku", &sku).await;
    s.fill("#v0-size", "M").await;
    s.fill("#v0-colour", "Bleu").await;
    s.fill("#v0-price", "49,90").await;
    s.fill("#v0-vat", "20").await;
    s.shot("new-product").await;
    s.assert_accessible("the new product form").await;
    s.click("#p-submit").await;
    s.find(".alert.ok").await;
    s.shot("created").await;

    // the storefront finds it at once
    s.visit("/fr/").await;
    let q = s.find("#q").await;
    s.b.send_keys(&q, &format!("{tag}\u{E007}"))
        .await
        .expect("search");
    s.b.wait_url("the search page", |u| u.contains("/fr/search"))
        .await
        .expect("search");
    let results =
        s.b.wait_count("main a[href*=\"/fr/p/\"]", "the new product", |n| n > 0)
            .await
            .expect("results");
    let mut link = None;
    for r in &results {
        if s.b.text(r).await.unwrap_or_default().contains(&name_fr) {
            link = Some(r.clone());
            break;
        }
    }
    let link = link.unwrap_or_else(|| panic!("{name_fr} in the results"));
    s.shot("search").await;
    s.b.click(&link).await.expect("open it");
    s.b.wait_url("its page", |u| u.contains("/fr/p/"))
        .await
        .expect("product page");
    assert_eq!(s.text("main h1").await, name_fr);
    let price = s.text(".big-price").await;
    assert!(price.contains("49,90"), "{price}");
    s.find(&format!("input[name=sku][value=\"{sku}\"]")).await;
    s.shot("product").await;

    s.close().await;
    eprintln!(
        "head office product in the browser: {:?}",
        started.elapsed()
    );
}
