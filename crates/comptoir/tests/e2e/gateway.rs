//! The gateway in front of several instances of a service (issue 13), with real processes:
//! three cart instances (carts in the real Redis, so any instance serves any cart) behind one
//! gateway, the other services in one process on SQLite.
//!
//! - One instance killed with SIGKILL under a bounded load of safe reads and keyed writes: no
//!   request fails (what it was doing is sent to another instance; a keyed write it had begun
//!   may be answered 409 `idempotency_in_progress`, "retry shortly", the key's protocol), it
//!   stops getting requests, and after its restart it takes traffic again once two checks
//!   passed.
//! - A slow instance (a fail point delaying every request) gets fewer requests than its peers
//!   under least connections, and its share under round robin.
//! - A frozen instance (SIGSTOP: connections accepted, never answered) opens its breaker, so
//!   that clients stop waiting for it; after SIGCONT the probe closes it.

use super::{Server, comptoir, http, temp_dir};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "an-internal-secret-of-the-gateway-tests-0123456789";

/// Every service but the carts, in one process.
const CORE: &str = "catalog,identity,inventory,orders,payments";

struct Shop {
    dir: PathBuf,
    env: Vec<(String, String)>,
    core: Server,
    /// The cart instances, by the address their peers know (`None` while one is down).
    carts: Vec<(String, Option<Server>)>,
    gateways: Vec<Server>,
    sku: String,
}

/// An address nobody listens on yet (the instances must be named before they start).
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

impl Shop {
    /// `slow`: the cart instance (by index) whose every request waits 150 ms. One gateway per
    /// entry of `gateways` (its balance), each with `gateway_env`.
    async fn start(
        tag: &str,
        slow: Option<usize>,
        gateways: &[&str],
        gateway_env: &[(&str, &str)],
    ) -> Option<Shop> {
        let Some(redis) = testkit::redis_url() else {
            eprintln!("skipping the gateway tests: they need Redis (shared carts)");
            return None;
        };
        let dir = temp_dir(tag);
        let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
        let cart_urls = addrs
            .iter()
            .map(|a| format!("http://{a}"))
            .collect::<Vec<_>>()
            .join(", ");
        let env: Vec<(String, String)> = vec![
            ("COMPTOIR_AUTH__INTERNAL_SECRET".into(), SECRET.into()),
            (
                "COMPTOIR_AUTH__ISSUER".into(),
                "http://shop.gateway.test".into(),
            ),
            ("COMPTOIR_CART__BACKEND".into(), "redis".into()),
            ("COMPTOIR_CART__REDIS_URL".into(), redis),
            ("COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE".into(), "0".into()),
            ("COMPTOIR_PEERS__CART_URL".into(), cart_urls),
        ];
        let sub = |name: &str| {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).expect("dir");
            d
        };
        let gateway_dirs: Vec<PathBuf> = (0..gateways.len())
            .map(|k| sub(&format!("gateway-{k}")))
            .collect();
        let mut c = comptoir(&sub("core"));
        c.args(["serve", "--target", CORE]).envs(env.clone());
        let core = Server::start(c);
        let mut env = env;
        for peer in ["CATALOG", "IDENTITY", "INVENTORY", "ORDERS", "PAYMENTS"] {
            env.push((format!("COMPTOIR_PEERS__{peer}_URL"), core.base.clone()));
        }
        let mut shop = Shop {
            dir,
            env,
            core,
            carts: Vec::new(),
            gateways: Vec::new(),
            sku: String::new(),
        };
        for (i, a) in addrs.iter().enumerate() {
            let mut c = shop.cart_command(i);
            if slow == Some(i) {
                c.env("COMPTOIR_FAILPOINTS", "http.request=delay(150)");
            }
            let s = Server::start_at(c, a);
            shop.carts.push((a.clone(), Some(s)));
        }
        for (k, balance) in gateways.iter().enumerate() {
            let mut c = comptoir(&gateway_dirs[k]);
            c.args(["serve", "--target", "gateway"])
                .envs(shop.env.clone())
                .env("COMPTOIR_GATEWAY__BALANCE", balance)
                .envs(gateway_env.iter().map(|(k, v)| (*k, *v)));
            shop.gateways.push(Server::start(c));
        }
        let list: Value = http()
            .get(format!("{}/api/catalog/products?limit=1", shop.gw(0)))
            .send()
            .await
            .expect("products")
            .json()
            .await
            .expect("json");
        let slug = list["items"][0]["slug"].as_str().expect("a product");
        shop.sku = super::first_sku(&shop.gw(0), slug).await;
        Some(shop)
    }

    fn cart_command(&self, i: usize) -> Command {
        let d = self.dir.join(format!("cart-{i}"));
        std::fs::create_dir_all(&d).expect("dir");
        let mut c = comptoir(&d);
        c.args(["serve", "--target", "cart"]).envs(self.env.clone());
        c
    }

    fn gw(&self, k: usize) -> String {
        self.gateways[k].base.clone()
    }

    fn cart_pid(&self, i: usize) -> String {
        self.carts[i]
            .1
            .as_ref()
            .map(|s| s.child.id().to_string())
            .expect("running")
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut s) = self.carts[i].1.take() {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }

    fn restart(&mut self, i: usize) {
        let s = Server::start_at(self.cart_command(i), &self.carts[i].0.clone());
        self.carts[i].1 = Some(s);
    }

    fn signal(&self, i: usize, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.cart_pid(i)])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill {sig}");
    }

    fn stop(self) {
        for g in self.gateways {
            assert!(g.stop().success(), "the gateway stops cleanly");
        }
        for (_, s) in self.carts.into_iter() {
            if let Some(s) = s {
                assert!(s.stop().success(), "a cart instance stops cleanly");
            }
        }
        assert!(self.core.stop().success());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A value of the gateway's metrics: the sum of the series of `name` whose labels contain
/// every one of `labels`.
async fn metric(gw: &str, name: &str, labels: &[&str]) -> f64 {
    let text = http()
        .get(format!("{gw}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Requests the gateway sent to the cart instance at `addr`.
async fn sent_to(gw: &str, addr: &str) -> f64 {
    metric(
        gw,
        "comptoir_gateway_upstream_requests_total",
        &["upstream=\"cart\"", &format!("instance=\"{addr}\"")],
    )
    .await
}

/// Polls `f` until it is true, or fails after `secs` with `what`.
async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A guest cart with one line of `sku`, made through `gw`.
async fn new_cart(gw: &str, sku: &str) -> String {
    super::guest_cart(gw, gw, sku).await
}

/// A bounded load: `users` clients, each on its own cart, alternating a read and a keyed
/// write, until `stop`. Counts answers and failures (anything but 2xx).
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<std::sync::Mutex<Vec<String>>>,
    /// 409 `idempotency_in_progress`: told to retry the same key later.
    deferred: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn start(gw: &str, sku: &str, users: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let deferred = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..users {
            let cart = new_cart(gw, sku).await;
            let (gw, sku) = (gw.to_string(), sku.to_string());
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            let deferred = deferred.clone();
            tasks.push(tokio::spawn(async move {
                let c = http();
                let mut n = 0u64;
                // bounded: at most two minutes whatever happens
                let end = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    n += 1;
                    let r = if n.is_multiple_of(2) {
                        c.get(format!("{gw}/api/carts/{cart}")).send().await
                    } else {
                        c.patch(format!("{gw}/api/carts/{cart}/lines/{sku}"))
                            .header("idempotency-key", format!("{cart}-{n}"))
                            .json(&json!({"quantity": 1 + n % 5}))
                            .send()
                            .await
                    };
                    match r {
                        Ok(r) if r.status().is_success() => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            let s = r.status();
                            let body = r.text().await.unwrap_or_default();
                            // a keyed write the killed instance had begun holds its key until
                            // the claim goes stale: the service says "in progress, retry
                            // shortly", which is the protocol's answer, not a failure
                            if s == 409 && body.contains("idempotency_in_progress") {
                                deferred.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            failed
                                .lock()
                                .expect("lock")
                                .push(format!("{s}: {}", &body[..body.len().min(300)]));
                        }
                        Err(e) => failed.lock().expect("lock").push(e.to_string()),
                    }
                }
            }));
        }
        Load {
            stop,
            ok,
            failed,
            deferred,
            tasks,
        }
    }

    fn answered(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `n` more requests were answered.
    async fn run_for(&self, n: u64) {
        let target = self.answered() + n;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.answered() < target {
            assert!(Instant::now() < deadline, "the load keeps being answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The answered, the failed, and how many were told to retry their key later.
    async fn finish(self) -> (u64, Vec<String>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let failed = self.failed.lock().expect("lock").clone();
        (
            self.ok.load(Ordering::Relaxed),
            failed,
            self.deferred.load(Ordering::Relaxed),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_cart_instance_costs_no_request_and_comes_back_after_two_checks() {
    let Some(mut shop) = Shop::start(
        "gw-kill",
        None,
        &["least_connections"],
        &[("COMPTOIR_GATEWAY__HEALTH_INTERVAL_SECONDS", "1")],
    )
    .await
    else {
        return;
    };
    let gw = shop.gw(0);
    let addrs: Vec<String> = shop.carts.iter().map(|(a, _)| a.clone()).collect();
    let load = Load::start(&gw, &shop.sku, 6).await;
    load.run_for(150).await;
    for a in &addrs {
        assert!(sent_to(&gw, a).await > 0.0, "{a} takes its share");
    }

    // SIGKILL under load: the requests it had and the ones sent before it is known dead go
    // to the others
    shop.kill(0);
    let dead = &addrs[0];
    let healthy = |gw: String, a: String| async move {
        metric(
            &gw,
            "comptoir_gateway_instance_healthy",
            &["upstream=\"cart\"", &format!("instance=\"{a}\"")],
        )
        .await
    };
    eventually(15, "the dead instance is taken out", || {
        let (gw, a) = (gw.clone(), dead.clone());
        async move { healthy(gw, a).await == 0.0 }
    })
    .await;
    let frozen = sent_to(&gw, dead).await;
    load.run_for(150).await;
    assert_eq!(
        sent_to(&gw, dead).await,
        frozen,
        "nothing is sent to it while it is out"
    );
    assert!(
        metric(
            &gw,
            "comptoir_gateway_retries_total",
            &["upstream=\"cart\""]
        )
        .await
            > 0.0,
        "what the dead instance failed was sent to another"
    );

    // back: two good checks, then it takes traffic again
    shop.restart(0);
    eventually(15, "the restarted instance is back in", || {
        let (gw, a) = (gw.clone(), dead.clone());
        async move { healthy(gw, a).await == 1.0 }
    })
    .await;
    let back = sent_to(&gw, dead).await;
    load.run_for(150).await;
    assert!(sent_to(&gw, dead).await > back, "it takes traffic again");

    let (ok, failed, deferred) = load.finish().await;
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        ok + failed.len() as u64
    );
    // only the writes the instance was doing when it died can be told to come back later
    assert!(
        deferred <= 6,
        "{deferred} keyed writes were told to retry later"
    );
    shop.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_instance_gets_fewer_requests_under_least_connections_and_its_share_in_turn() {
    let Some(shop) = Shop::start(
        "gw-slow",
        Some(0),
        &["least_connections", "round_robin"],
        &[],
    )
    .await
    else {
        return;
    };
    let addrs: Vec<String> = shop.carts.iter().map(|(a, _)| a.clone()).collect();
    for k in 0..2 {
        let gw = shop.gw(k);
        let load = Load::start(&gw, &shop.sku, 6).await;
        load.run_for(300).await;
        let (_, failed, deferred) = load.finish().await;
        assert!(failed.is_empty() && deferred == 0, "{failed:?}");
        let mut counts = Vec::new();
        for a in &addrs {
            counts.push(sent_to(&gw, a).await);
        }
        let (slow, fast) = (counts[0], counts[1].min(counts[2]));
        if k == 0 {
            assert!(
                slow * 2.0 < fast,
                "least connections: the slow instance got {slow}, the others {counts:?}"
            );
        } else {
            let total: f64 = counts.iter().sum();
            assert!(
                (slow / total - 1.0 / 3.0).abs() < 0.05,
                "round robin: each its third, whatever its speed: {counts:?}"
            );
        }
    }
    shop.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_instance_opens_its_breaker_half_opens_and_closes() {
    // health checks too rare to matter: the breaker alone protects the clients here
    let Some(shop) = Shop::start(
        "gw-breaker",
        None,
        &["round_robin"],
        &[
            ("COMPTOIR_GATEWAY__HEALTH_INTERVAL_SECONDS", "3600"),
            ("COMPTOIR_GATEWAY__ROUTE_TIMEOUTS", "/api/carts=1"),
            ("COMPTOIR_GATEWAY__BREAKER_FAILURES", "3"),
            ("COMPTOIR_GATEWAY__BREAKER_OPEN_SECONDS", "2"),
        ],
    )
    .await
    else {
        return;
    };
    let gw = shop.gw(0);
    let frozen = shop.carts[0].0.clone();
    let cart = new_cart(&gw, &shop.sku).await;
    let state = |gw: String, a: String| async move {
        metric(
            &gw,
            "comptoir_gateway_breaker_state",
            &["upstream=\"cart\"", &format!("instance=\"{a}\"")],
        )
        .await
    };
    // SIGSTOP: it accepts connections and never answers; each read sent there waits out the
    // route's timeout and is answered by another instance
    shop.signal(0, "-STOP");
    let c = http();
    let read = || {
        let (c, url) = (c.clone(), format!("{gw}/api/carts/{cart}"));
        async move {
            c.get(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    eventually(30, "the breaker opens", || {
        let (gw, a) = (gw.clone(), frozen.clone());
        let r = read();
        async move {
            assert_eq!(r.await, 200, "every read is answered");
            state(gw, a).await == 2.0
        }
    })
    .await;
    // open: nobody is sent there
    let sent = sent_to(&gw, &frozen).await;
    for _ in 0..12 {
        assert_eq!(read().await, 200);
    }
    assert_eq!(
        sent_to(&gw, &frozen).await,
        sent,
        "no client waits for it while open"
    );
    // SIGCONT: after the open time, one probe, and the breaker closes
    shop.signal(0, "-CONT");
    eventually(30, "the probe closes the breaker", || {
        let (gw, a) = (gw.clone(), frozen.clone());
        let r = read();
        async move {
            assert_eq!(r.await, 200);
            state(gw, a).await == 0.0
        }
    })
    .await;
    let after = sent_to(&gw, &frozen).await;
    for _ in 0..6 {
        assert_eq!(read().await, 200);
    }
    assert!(
        sent_to(&gw, &frozen).await > after,
        "it takes its turn again"
    );
    shop.stop();
}

/// A product written through one gateway is fresh at once through another's cache: the
/// catalogue's `product.changed` reaches every gateway over RabbitMQ. Through the same gateway,
/// the write itself drops what was cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_written_through_one_gateway_is_fresh_through_the_others_cache() {
    let Some(amqp) = testkit::rabbitmq_url() else {
        eprintln!("skipping the edge cache test: it needs RabbitMQ");
        return;
    };
    let dir = temp_dir("gw-cache");
    let prefix = format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let env: Vec<(String, String)> = vec![
        ("COMPTOIR_AUTH__INTERNAL_SECRET".into(), SECRET.into()),
        (
            "COMPTOIR_AUTH__ISSUER".into(),
            "http://shop.cache.test".into(),
        ),
        ("COMPTOIR_BUS__TRANSPORT".into(), "rabbitmq".into()),
        ("COMPTOIR_BUS__RABBITMQ_URL".into(), amqp),
        ("COMPTOIR_BUS__PREFIX".into(), prefix),
        // answers may be kept five minutes: only invalidation can make them fresh sooner
        ("COMPTOIR_CATALOG__CACHE_TTL_SECONDS".into(), "300".into()),
        ("COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE".into(), "0".into()),
    ];
    let sub = |name: &str| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("dir");
        d
    };
    let mut c = comptoir(&sub("services"));
    c.args(["serve", "--target", "catalog,identity,commerce"])
        .envs(env.clone());
    let services = Server::start(c);
    let password = services.head_office_password().expect("printed");
    let mut gateways = Vec::new();
    for k in 0..2 {
        let mut c = comptoir(&sub(&format!("gateway-{k}")));
        c.args(["serve", "--target", "gateway"]).envs(env.clone());
        for peer in [
            "CATALOG",
            "IDENTITY",
            "INVENTORY",
            "CART",
            "ORDERS",
            "PAYMENTS",
        ] {
            c.env(format!("COMPTOIR_PEERS__{peer}_URL"), &services.base);
        }
        gateways.push(Server::start(c));
    }
    let (a, b) = (gateways[0].base.clone(), gateways[1].base.clone());
    let client = http();
    let list: Value = client
        .get(format!("{a}/api/catalog/products?limit=1"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let slug = list["items"][0]["slug"].as_str().expect("slug").to_string();
    let read = |gw: String| {
        let (client, slug) = (client.clone(), slug.clone());
        async move {
            let r = client
                .get(format!("{gw}/api/catalog/products/{slug}"))
                .send()
                .await
                .expect("read");
            let cache = r
                .headers()
                .get("x-comptoir-cache")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let v: Value = r.json().await.expect("json");
            (v, cache)
        }
    };
    // the demo data's own events (stock receipts) may still be arriving and dropping what is
    // cached: wait until a read stays cached
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        let (first, _) = read(a.clone()).await;
        let (_, cache) = read(a.clone()).await;
        if cache == "hit" {
            break first;
        }
        assert!(
            Instant::now() < deadline,
            "a second read comes from A's cache"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let staff = super::sign_in(&b, &password).await;
    let write = |gw: String, version: i64, name: &'static str| {
        let (client, staff, id) = (
            client.clone(),
            staff.clone(),
            first["id"].as_str().expect("id").to_string(),
        );
        async move {
            let r = client
                .patch(format!("{gw}/api/catalog/products/{id}"))
                .bearer_auth(&staff)
                .header("if-match", format!("\"v{version}\""))
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .json(&json!({"name": {"fr": name, "en": name}}))
                .send()
                .await
                .expect("write");
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.expect("json");
            v["version"].as_i64().expect("version")
        }
    };
    // written through B: A hears of it from the bus
    let version = first["version"].as_i64().expect("version");
    let version = write(b.clone(), version, "Renommé par B").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (now, _) = read(a.clone()).await;
        if now["name"]["fr"] == "Renommé par B" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A still serves the old product 10 s after the write (its answers may live 300 s)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // written through A: the very next read is fresh (the write dropped what A had cached; the
    // demo data's late events may drop it too, so first make sure something is cached)
    let deadline = Instant::now() + Duration::from_secs(30);
    while read(a.clone()).await.1 != "hit" {
        assert!(Instant::now() < deadline, "A caches the product again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    write(a.clone(), version, "Renommé par A").await;
    let (now, cache) = read(a.clone()).await;
    assert_eq!(
        now["name"]["fr"], "Renommé par A",
        "fresh at once after a write through A"
    );
    assert_eq!(cache, "miss");
    for g in gateways {
        assert!(g.stop().success());
    }
    assert!(services.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}
