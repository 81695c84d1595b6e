//! Every service as its own OS process: gateway, web, catalog, identity, inventory, cart, orders
//! and payments, each `comptoir serve --target <one>`, on PostgreSQL (a schema per service),
//! carts in Redis, events through RabbitMQ. The whole story runs through them — a guest buys in
//! the shop pages of the web process, reached through the gateway (a declined card, then 3-D
//! Secure), a customer checks out through the API, head office refunds and receives stock —
//! and its answers match the one-process mode. Then faults across the network: inventory killed (SIGKILL) in the
//! middle of checkouts and restarted; payments silent (SIGSTOP) for 10 s. Every saga ends paid
//! or compensated, every client retrying with its key gets one answer, and the invariant checker
//! (D1) finds nothing.

use super::web::{Browser, add, checkout, first_product, skus};
use super::{Server, comptoir, head_office_password, http, sign_in, temp_dir};
use comptoir::Target;
use platform::config::Settings;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub(super) const OK_CARD: &str = "4242424242424242";
pub(super) const DECLINED: &str = "4000000000000002";
const THREE_DS: &str = "4000002500003155";

/// One topology at a time: each is eight to ten processes on two cores, beside the rest of the
/// suite (whose cross-process checkout races time out when three topologies share the CPU).
pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The eight processes (or more, with several cart instances) and what they share.
pub(super) struct Topology {
    pub(super) dir: PathBuf,
    env: Vec<(String, String)>,
    /// In start order: each needs only those before it (the cart instances together).
    pub(super) servers: Vec<(Target, Server)>,
    pub(super) head_office: String,
    /// This topology's turn ([`ONE_AT_A_TIME`]), until it is dropped.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// The order the targets start in (a peer before whoever calls it).
const ORDER: [Target; 8] = [
    Target::Catalog,
    Target::Identity,
    Target::Payments,
    Target::Inventory,
    Target::Cart,
    Target::Orders,
    Target::Web,
    Target::Gateway,
];

impl Topology {
    /// PostgreSQL, Redis and RabbitMQ are needed; `None` (with the reason printed) otherwise.
    async fn start(tag: &str) -> Option<Topology> {
        Topology::start_with(tag, 1, None).await
    }

    /// [`Topology::start`] with `carts` cart instances behind the gateway (the compose stack
    /// runs three): carts live in Redis, so any instance serves any cart. `pool`: at most so
    /// many connections per service's pool (the e2e tests share one PostgreSQL server and its
    /// 100 connections).
    pub(super) async fn start_with(tag: &str, carts: usize, pool: Option<u32>) -> Option<Topology> {
        let (Some(pg), Some(redis), Some(amqp)) = (
            testkit::postgres_url(),
            testkit::redis_url(),
            testkit::rabbitmq_url(),
        ) else {
            eprintln!(
                "skipping the eight-process topology: it needs PostgreSQL, Redis and RabbitMQ"
            );
            return None;
        };
        let turn = ONE_AT_A_TIME.lock().await;
        let dir = temp_dir(tag);
        let t = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let mut env: Vec<(String, String)> = vec![
            (
                "COMPTOIR_AUTH__INTERNAL_SECRET".into(),
                "an-internal-secret-of-the-eight-processes-0123456789".into(),
            ),
            (
                "COMPTOIR_AUTH__ISSUER".into(),
                "http://shop.split.test".into(),
            ),
            ("COMPTOIR_BUS__TRANSPORT".into(), "rabbitmq".into()),
            ("COMPTOIR_BUS__RABBITMQ_URL".into(), amqp),
            ("COMPTOIR_BUS__PREFIX".into(), format!("s{t}")),
            ("COMPTOIR_CART__BACKEND".into(), "redis".into()),
            ("COMPTOIR_CART__REDIS_URL".into(), redis),
            // a peer that stops answering is given up on quickly, then retried by the saga
            ("COMPTOIR_PEERS__TIMEOUT_MS".into(), "1500".into()),
            ("COMPTOIR_ORDERS__RECOVERY_INTERVAL_MS".into(), "300".into()),
            ("COMPTOIR_ORDERS__SAGA_LEASE_SECONDS".into(), "3".into()),
            // every client of the test comes from 127.0.0.1: the per-address limit is not tested here
            ("COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE".into(), "0".into()),
        ];
        for s in Target::SERVICES {
            let up = s.name().to_uppercase();
            if let Some(n) = pool {
                env.push((format!("COMPTOIR_{up}__MAX_CONNECTIONS"), n.to_string()));
            }
            env.push((format!("COMPTOIR_{up}__DATABASE_URL"), pg.clone()));
            env.push((
                format!("COMPTOIR_{up}__DATABASE_SCHEMA"),
                format!("s{t}_{}", s.name()),
            ));
        }
        let mut head_office = None;
        for sub in ["migrate", "demo-data"] {
            let mut c = comptoir(&dir);
            c.arg(sub).envs(env.clone());
            let out = c.output().expect("run");
            assert!(
                out.status.success(),
                "{sub}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            head_office = head_office.or(head_office_password(&lines));
        }
        let mut topo = Topology {
            dir,
            env,
            servers: Vec::new(),
            head_office: head_office.expect("demo-data printed the accounts"),
            _turn: turn,
        };
        for t in ORDER {
            let started: Vec<Server> = if t == Target::Cart && carts > 1 {
                (0..carts).map(|_| Server::start(topo.command(t))).collect()
            } else {
                vec![Server::start(topo.command(t))]
            };
            if Target::SERVICES.contains(&t) || t == Target::Web {
                let urls: Vec<&str> = started.iter().map(|s| s.base.as_str()).collect();
                topo.env.push((
                    format!("COMPTOIR_PEERS__{}_URL", t.name().to_uppercase()),
                    urls.join(", "),
                ));
            }
            topo.servers.extend(started.into_iter().map(|s| (t, s)));
        }
        Some(topo)
    }

    fn command(&self, t: Target) -> Command {
        let mut c = comptoir(&self.dir);
        c.args(["serve", "--target", t.name()])
            .envs(self.env.clone());
        c
    }

    pub(super) fn base(&self, t: Target) -> String {
        self.servers
            .iter()
            .find(|(x, _)| *x == t)
            .map(|(_, s)| s.base.clone())
            .expect("started")
    }

    fn pid(&self, t: Target) -> String {
        self.servers
            .iter()
            .find(|(x, _)| *x == t)
            .map(|(_, s)| s.child.id().to_string())
            .expect("started")
    }

    /// SIGKILL, then a new process of the same target at the same address.
    fn kill_and_restart(&mut self, t: Target) {
        let i = self
            .servers
            .iter()
            .position(|(x, _)| *x == t)
            .expect("started");
        let (_, mut old) = self.servers.remove(i);
        let addr = old.base.trim_start_matches("http://").to_string();
        let _ = old.child.kill();
        let _ = old.child.wait();
        drop(old);
        let s = Server::start_at(self.command(t), &addr);
        self.servers.insert(i, (t, s));
    }

    fn signal(&self, t: Target, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid(t)])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill {sig} {}", t.name());
    }

    /// The settings of these processes, for the checker run in the test.
    fn settings(&self) -> Settings {
        let mut vars: std::collections::BTreeMap<String, String> = self
            .env
            .iter()
            .filter(|(k, _)| !k.starts_with("COMPTOIR_PEERS__") || k.ends_with("TIMEOUT_MS"))
            .cloned()
            .collect();
        vars.insert("COMPTOIR_DATA__DIR".into(), self.dir.display().to_string());
        vars.insert("COMPTOIR_DEMO__SEED".into(), "false".into());
        let mut s = Settings::load(platform::config::Sources {
            file: None,
            env: vars,
        })
        .expect("settings");
        s.server.bind = "127.0.0.1:0".into();
        s
    }

    /// Every process stops on SIGTERM; then D1 runs on the services' databases.
    pub(super) async fn stop_and_check(self, paid_at_least: i64) {
        let settings = self.settings();
        let env = self.env.clone();
        let dir = self.dir.clone();
        for (t, s) in self.servers.into_iter().rev() {
            assert!(s.stop().success(), "{} stops cleanly", t.name());
        }
        d1(&settings, paid_at_least).await;
        cleanup(&env, &dir).await;
    }
}

/// The invariant checker on the services' databases, once everything settled.
async fn d1(settings: &Settings, paid_at_least: i64) {
    let targets: BTreeSet<Target> = [
        Target::Catalog,
        Target::Inventory,
        Target::Cart,
        Target::Orders,
        Target::Payments,
    ]
    .into_iter()
    .collect();
    let app = comptoir::build(settings, &targets).await.expect("build");
    let c = app.commerce;
    let (o, inventory, payments) = (
        c.orders.expect("orders"),
        c.inventory.expect("inventory"),
        c.payments.expect("payments"),
    );
    let books = orders::invariants::Books {
        inventory: &inventory,
        payments: &payments,
    };
    let report = testkit::eventually("D1 finds nothing", Duration::from_secs(60), || async {
        let r = orders::invariants::check(&o, &books, true)
            .await
            .expect("check");
        if r.ok() {
            Some(r)
        } else {
            eprintln!("{:?}", r.violations);
            None
        }
    })
    .await;
    assert_eq!(report.open_sagas, 0);
    assert!(
        report.paid_orders >= paid_at_least,
        "{} paid orders, at least {paid_at_least} acknowledged",
        report.paid_orders
    );
}

async fn cleanup(env: &[(String, String)], dir: &Path) {
    let var = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let _ = platform::rabbit::delete_topology(
        &var("COMPTOIR_BUS__RABBITMQ_URL"),
        &var("COMPTOIR_BUS__PREFIX"),
        &[
            orders::consumers::REFUNDS_GROUP,
            orders::consumers::NOTIFICATIONS_GROUP,
        ],
    )
    .await;
    if let Some(url) = testkit::postgres_url() {
        let schemas: Vec<String> = env
            .iter()
            .filter(|(k, _)| k.ends_with("__DATABASE_SCHEMA"))
            .map(|(_, v)| format!("DROP SCHEMA IF EXISTS {v} CASCADE;"))
            .collect();
        let _ = Command::new("psql")
            .args([url.as_str(), "-qc", &schemas.join(" ")])
            .output();
    }
    let _ = std::fs::remove_dir_all(dir);
}

pub(super) async fn call(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, bool) {
    let mut rb = http().request(method, url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(k) = key {
        rb = rb.header("idempotency-key", k);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    match rb.send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            let replayed = r.headers().contains_key("idempotent-replayed");
            (s, r.json().await.unwrap_or(Value::Null), replayed)
        }
        Err(_) => (0, Value::Null, false),
    }
}

/// Units of `sku` available across the locations, as the public API says.
pub(super) async fn available(gw: &str, sku: &str) -> i64 {
    let (s, v, _) = call(
        reqwest::Method::GET,
        format!("{gw}/api/inventory/availability?skus={sku}"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v.as_array()
        .expect("levels")
        .iter()
        .map(|l| l["available"].as_i64().unwrap_or(0))
        .sum()
}

pub(super) fn delivery(cart: &str, email: &str, card: &str) -> Value {
    json!({
        "cart_id": cart,
        "email": email,
        "fulfilment": {"type": "delivery", "address": {"name": "Yann Le Bihan",
            "line1": "1 quai Duguay-Trouin", "postcode": "35000", "city": "Rennes",
            "country": "FR"}},
        "payment": {"type": "test_card", "number": card},
    })
}

/// A customer's story through the API of `base` (a gateway, or the one process): what each step
/// answered, ids aside, and the order.
async fn customer_story(base: &str, head_office: &str, sku: &str) -> (Vec<(String, u16)>, Value) {
    use reqwest::Method;
    let mut steps = Vec::new();
    let email = format!("client-{}@example.org", uuid::Uuid::new_v4().simple());
    let (s, v, _) = call(
        Method::POST,
        format!("{base}/api/identity/customers"),
        None,
        None,
        Some(json!({"email": email, "password": "un mot de passe solide", "name": "Yann"})),
    )
    .await;
    steps.push(("register".into(), s));
    assert_eq!(s, 201, "register: {v}");
    let (s, v, _) = call(
        Method::POST,
        format!("{base}/api/identity/sessions"),
        None,
        None,
        Some(json!({"email": email, "password": "un mot de passe solide"})),
    )
    .await;
    steps.push(("sign in".into(), s));
    let token = v["access_token"].as_str().expect("token").to_string();
    let t = Some(token.as_str());
    let (s, v, _) = call(
        Method::POST,
        format!("{base}/api/carts"),
        t,
        None,
        Some(json!({})),
    )
    .await;
    steps.push(("cart".into(), s));
    let cart = v["id"].as_str().expect("cart id").to_string();
    let (s, _, _) = call(
        Method::POST,
        format!("{base}/api/carts/{cart}/lines"),
        t,
        None,
        Some(json!({"sku": sku, "quantity": 1})),
    )
    .await;
    steps.push(("line".into(), s));
    let key = format!("customer-{}", uuid::Uuid::new_v4().simple());
    let body = delivery(&cart, &email, OK_CARD);
    let (s, order, _) = call(
        Method::POST,
        format!("{base}/api/checkout"),
        t,
        Some(&key),
        Some(body.clone()),
    )
    .await;
    steps.push(("checkout".into(), s));
    assert_eq!(s, 201, "checkout: {order}");
    let (s, again, replayed) = call(
        Method::POST,
        format!("{base}/api/checkout"),
        t,
        Some(&key),
        Some(body),
    )
    .await;
    steps.push((format!("retry (replayed: {replayed})"), s));
    assert_eq!(again["id"], order["id"], "the retry answers the same order");
    let id = order["id"].as_str().expect("order id").to_string();
    let (s, _, _) = call(
        Method::GET,
        format!("{base}/api/orders/{id}"),
        t,
        None,
        None,
    )
    .await;
    steps.push(("own order".into(), s));
    // head office refunds part of it
    let staff = sign_in(base, head_office).await;
    let (s, refunded, _) = call(
        Method::POST,
        format!("{base}/api/orders/{id}/refunds"),
        Some(&staff),
        Some(&format!("refund-{id}")),
        Some(json!({"amount": 100, "reason": "geste commercial"})),
    )
    .await;
    steps.push(("refund".into(), s));
    assert_eq!(s, 200, "refund: {refunded}");
    assert_eq!(refunded["refunded"], 100);
    // and receives stock
    let before = available(base, sku).await;
    let (s, v, _) = call(
        Method::POST,
        format!("{base}/api/inventory/movements"),
        Some(&staff),
        None,
        Some(
            json!({"location": "rennes", "sku": sku, "kind": "receipt", "quantity": 5,
            "reason": "réassort"}),
        ),
    )
    .await;
    steps.push(("receipt".into(), s));
    assert_eq!(s, 201, "receipt: {v}");
    assert_eq!(available(base, sku).await, before + 5);
    // a till's API key: the edge asks identity about it (over the network when split), and
    // stops taking it once revoked
    let (s, created, _) = call(
        Method::POST,
        format!("{base}/api/identity/api-keys"),
        Some(&staff),
        None,
        Some(json!({"name": "caisse 2", "scopes": ["inventory:read"], "store": "rennes"})),
    )
    .await;
    steps.push(("api key".into(), s));
    assert_eq!(s, 201, "api key: {created}");
    let secret = created["key"].as_str().expect("the key").to_string();
    let id = created["api_key"]["id"].as_str().expect("id").to_string();
    let with_key = |secret: String| {
        let url = format!("{base}/api/inventory/stock?location=rennes");
        async move {
            http()
                .get(url)
                .header("x-api-key", secret)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let s = with_key(secret.clone()).await;
    steps.push(("stock with the key".into(), s));
    assert_eq!(s, 200);
    let (s, _, _) = call(
        Method::DELETE,
        format!("{base}/api/identity/api-keys/{id}"),
        Some(&staff),
        None,
        None,
    )
    .await;
    steps.push(("revoke".into(), s));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while with_key(secret.clone()).await != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "a revoked key still opens the stock after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (steps, refunded)
}

/// The one-process mode, on its own SQLite files, for the comparison.
fn one_process(dir: &Path) -> Server {
    let mut c = comptoir(dir);
    c.arg("serve");
    Server::start(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_tell_the_one_process_story() {
    let Some(topo) = Topology::start("split").await else {
        return;
    };
    let gw = topo.base(Target::Gateway);

    // a guest in the shop pages of the web process, through the gateway: the one address
    let mut b = Browser::new(&gw);
    let results = b.get("/fr/search?q=chaussures+running").await;
    assert_eq!(results.status, 200, "{}", results.body);
    let product = first_product(&results.body);
    let page = b.get(&format!("/fr/p/{product}")).await;
    let offered = skus(&page.body);
    assert!(offered.len() >= 2, "two sizes to pick from");
    let (s1, s2) = (offered[0].clone(), offered[1].clone());
    let before = (available(&gw, &s1).await, available(&gw, &s2).await);
    add(&mut b, &product, &s1, "1").await;
    add(&mut b, &product, &s2, "2").await;
    let declined = checkout(&mut b, DECLINED).await;
    assert_eq!(declined.status, 402, "{}", declined.body);
    assert_eq!(
        (available(&gw, &s1).await, available(&gw, &s2).await),
        before,
        "a declined card takes nothing"
    );
    let paid = checkout(&mut b, OK_CARD).await;
    assert_eq!(paid.status, 303, "{}", paid.body);
    let confirmation = b.follow(paid).await;
    assert!(
        confirmation.body.contains("Commande confirmée"),
        "{}",
        confirmation.body
    );
    assert_eq!(
        (available(&gw, &s1).await, available(&gw, &s2).await),
        (before.0 - 1, before.1 - 2)
    );
    // the 3-D Secure test page, answered in the web process, resumes the saga in orders'
    add(&mut b, &product, &s1, "1").await;
    let r = checkout(&mut b, THREE_DS).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let pending = b.follow(r).await;
    let confirm = pending
        .body
        .split("href=\"")
        .find(|s| s.contains("/confirm\""))
        .map(|s| s[..s.find('"').expect("quote")].to_string())
        .expect("a link to the confirmation page");
    let page = b.get(&confirm).await;
    let done = b
        .post(
            &confirm,
            &[("_csrf", &page.csrf()), ("decision", "approve")],
        )
        .await;
    assert_eq!(done.status, 303);
    let end = b.follow(done).await;
    assert!(end.body.contains("Commande confirmée"), "{}", end.body);

    // a customer through the gateway, and the same story in one process
    let (split_steps, split_order) = customer_story(&gw, &topo.head_office, &s1).await;
    let one_dir = topo.dir.join("one");
    std::fs::create_dir_all(&one_dir).expect("dir");
    let one = one_process(&one_dir);
    let one_password = one.head_office_password().expect("printed");
    let (one_steps, one_order) = customer_story(&one.base, &one_password, &s1).await;
    assert_eq!(split_steps, one_steps, "the same answers, step by step");
    for field in ["status", "total", "refunded", "currency", "fulfilment"] {
        assert_eq!(split_order[field], one_order[field], "{field}");
    }
    assert!(one.stop().success());

    // the orders process reached its peers over HTTP
    let m = http()
        .get(format!("{}/metrics", topo.base(Target::Orders)))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for peer in ["inventory", "payments", "cart"] {
        assert!(
            m.lines().any(|l| l.starts_with("comptoir_peer_calls_total")
                && l.contains(&format!("peer=\"{peer}\""))
                && l.contains("outcome=\"ok\"")),
            "orders called {peer}: {m}"
        );
    }
    topo.stop_and_check(3).await;
}

/// A guest cart with one unit of `sku`, through the gateway.
pub(super) async fn guest_cart(gw: &str, sku: &str) -> String {
    use reqwest::Method;
    let (s, v, _) = call(
        Method::POST,
        format!("{gw}/api/carts"),
        None,
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let (s, v, _) = call(
        Method::POST,
        format!("{gw}/api/carts/{id}/lines"),
        None,
        None,
        Some(json!({"sku": sku, "quantity": 1})),
    )
    .await;
    assert!(s == 200 || s == 201, "{s} {v}");
    id
}

/// Checks out `cart` with `key`, retrying with the same key until a final answer: what a
/// careful client does when the answer is "not yet" (503, 429, 409 in progress) or lost (0).
async fn checkout_until_final(gw: String, cart: String, key: String) -> (u16, Value) {
    testkit::eventually(
        &format!("checkout {key} gets a final answer"),
        Duration::from_secs(120),
        || {
            let (gw, cart, key) = (gw.clone(), cart.clone(), key.clone());
            async move {
                let (s, v, _) = call(
                    reqwest::Method::POST,
                    format!("{gw}/api/checkout"),
                    None,
                    Some(&key),
                    Some(delivery(&cart, "fault@example.org", OK_CARD)),
                )
                .await;
                let not_yet = matches!(s, 0 | 429 | 502 | 503 | 504)
                    || (s == 409
                        && matches!(
                            v["code"].as_str(),
                            Some("idempotency_in_progress" | "cart_checkout_in_progress")
                        ));
                (!not_yet).then_some((s, v))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_inventory_and_a_silent_payments_lose_nothing() {
    let Some(mut topo) = Topology::start("split-faults").await else {
        return;
    };
    let gw = topo.base(Target::Gateway);
    // a SKU with stock: the first of the running shoes
    let mut b = Browser::new(&topo.base(Target::Web));
    let results = b.get("/fr/search?q=chaussures+running").await;
    let page = b
        .get(&format!("/fr/p/{}", first_product(&results.body)))
        .await;
    let sku = skus(&page.body)[0].clone();
    let stock_before = available(&gw, &sku).await;

    let mut carts = Vec::new();
    for _ in 0..8 {
        carts.push(guest_cart(&gw, &sku).await);
    }
    let run = |carts: &[String], tag: &str| {
        carts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                tokio::spawn(checkout_until_final(
                    gw.clone(),
                    c.clone(),
                    format!("{tag}-{i}"),
                ))
            })
            .collect::<Vec<_>>()
    };
    // inventory dies in the middle of the first four checkouts and comes back
    let first = run(&carts[..4], "kill");
    topo.kill_and_restart(Target::Inventory);
    // payments stops answering for 10 s in the middle of the next four
    topo.signal(Target::Payments, "-STOP");
    let second = run(&carts[4..], "stop");
    tokio::time::sleep(Duration::from_secs(10)).await; // the length of the fault, not a wait
    topo.signal(Target::Payments, "-CONT");

    let mut paid = 0;
    let mut answers = Vec::new();
    for h in first.into_iter().chain(second) {
        let (s, v) = h.await.expect("task");
        assert!(s == 201 || s == 402 || s == 409, "a final answer: {s} {v}");
        if s == 201 {
            paid += 1;
        }
        answers.push((s, v));
    }
    // one answer per key: asking again replays it
    for (i, (s, v)) in answers.iter().enumerate() {
        let (tag, c) = if i < 4 {
            ("kill", &carts[i])
        } else {
            ("stop", &carts[i])
        };
        let idx = if i < 4 { i } else { i - 4 };
        let (s2, v2) = checkout_until_final(gw.clone(), c.clone(), format!("{tag}-{idx}")).await;
        assert_eq!(*s, s2, "the same answer again: {v} then {v2}");
        if *s == 201 {
            assert_eq!(v["id"], v2["id"]);
        }
    }
    eprintln!(
        "faults: answers {:?}",
        answers.iter().map(|(s, _)| *s).collect::<Vec<_>>()
    );
    assert!(paid >= 1, "the platform recovered: {answers:?}");
    assert_eq!(
        available(&gw, &sku).await,
        stock_before - paid,
        "one unit sold per paid order, none twice"
    );
    topo.stop_and_check(paid).await;
}
