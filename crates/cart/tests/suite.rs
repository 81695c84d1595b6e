//! The cart suite: the same scenarios against `SqlCartStore` on SQLite (always), on PostgreSQL
//! (when `COMPTOIR_TEST_POSTGRES_URL` is set) and against `RedisCartStore` on the real Redis
//! (when `COMPTOIR_TEST_REDIS_URL` is set; a unique key prefix per test), through the service
//! and through the real HTTP router (in process); and (in `contract`) the carts contract in
//! process and over HTTP, answers compared.

use axum::http::StatusCode;
use cart::http::CartState;
use cart::model::{MAX_LINES, MAX_QUANTITY};
use cart::{
    Cart, CartError, CartSettings, CartStore, Carts, Commit, Line, PriceChange, RedisCartStore,
    SqlCartStore, StoreError,
};
use futures_util::future::BoxFuture;
use platform::authz::Principal;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use testkit::prices::FakePrices;
use testkit::principal::{self, PrincipalExt};
use testkit::{Res, TestApp, TestDb};
use uuid::Uuid;

const DAY_MS: i64 = 24 * 3600 * 1000;
const T0: i64 = 1_750_000_000_000;

// ---- test doubles --------------------------------------------------------------------------------

/// A clock the test moves.
struct ManualClock(AtomicI64);

impl ManualClock {
    fn ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl kernel::Clock for ManualClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.ms()).expect("a valid time")
    }
}

// ---- the backends ----------------------------------------------------------------------------------

struct Env {
    backend: &'static str,
    store: Arc<dyn CartStore>,
    carts: Arc<Carts>,
    clock: Arc<ManualClock>,
    prices: Arc<FakePrices>,
    app: TestApp,
    /// The Redis store, for the checks of its keys.
    redis: Option<RedisCartStore>,
    /// The service database (on SQL: the carts and the keys of their writes; unused with Redis).
    db: TestDb,
}

async fn envs() -> Vec<Env> {
    let mut out = Vec::new();
    for db in TestDb::all(cart::migrations()).await {
        let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
        let store: Arc<dyn CartStore> = Arc::new(SqlCartStore::new(db.db.clone(), clock.clone()));
        let backend = db.backend;
        out.push(Env::new(backend, store, None, clock, db));
    }
    if let Some(url) = testkit::redis_url() {
        let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
        let prefix = format!("comptoir-test:{}:", Uuid::new_v4().simple());
        let redis = RedisCartStore::connect(&url, &prefix, clock.clone())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{} is set but Redis cannot be used: {e}",
                    testkit::REDIS_ENV
                )
            });
        let db = TestDb::sqlite(cart::migrations()).await;
        let store: Arc<dyn CartStore> = Arc::new(redis.clone());
        out.push(Env::new("redis", store, Some(redis), clock, db));
    }
    out
}

/// The principal behind a test's name for a caller: `clerk` is a clerk of Rennes, any other
/// name (`alice`, `bob`) a customer of that id.
fn who(name: &str) -> Principal {
    if name == "clerk" {
        principal::clerk("rennes").with_subject(name)
    } else {
        principal::customer(name)
    }
}

/// The prices every scenario starts with.
fn catalogue() -> Arc<FakePrices> {
    let prices = Arc::new(FakePrices::default());
    prices.set("TEE-M", 1990, "EUR", true);
    prices.set("SOCKS", 500, "EUR", true);
    prices.set("CAP", 1500, "EUR", true);
    prices.set("OLD", 900, "EUR", false);
    prices.set("SWISS", 3000, "CHF", true);
    prices
}

/// The cart routes as the gateway reaches them.
fn app(carts: Arc<Carts>, db: &platform::db::Db) -> TestApp {
    TestApp::new(cart::http::router(CartState::new(carts, db.clone())))
        .with_common_layers(64 * 1024)
}

impl Env {
    fn new(
        backend: &'static str,
        store: Arc<dyn CartStore>,
        redis: Option<RedisCartStore>,
        clock: Arc<ManualClock>,
        db: TestDb,
    ) -> Env {
        let prices = catalogue();
        let carts = Arc::new(Carts::new(
            store.clone(),
            prices.clone(),
            clock.clone(),
            CartSettings::default(),
        ));
        let app = app(carts.clone(), &db.db);
        Env {
            backend,
            store,
            carts,
            clock,
            prices,
            app,
            redis,
            db,
        }
    }

    async fn cleanup(self) {
        if let Some(r) = &self.redis {
            let mut conn = r.connection();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", r.prefix()))
                .query_async(&mut conn)
                .await
                .expect("keys");
            for k in keys {
                let _: i64 = redis::cmd("DEL")
                    .arg(k)
                    .query_async(&mut conn)
                    .await
                    .expect("del");
            }
        }
        self.db.cleanup().await;
    }

    async fn pttl(&self, key: &str) -> i64 {
        let r = self.redis.as_ref().expect("redis backend");
        let mut conn = r.connection();
        redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("pttl")
    }

    /// A request as `who` (`None`: anonymous) with a raw body (`None`: no body).
    async fn call(
        &self,
        method: &str,
        uri: &str,
        who: Option<&str>,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Res {
        let mut c = self
            .app
            .request(method.parse().expect("method"), uri)
            .as_opt(who.map(self::who).as_ref());
        if let Some(b) = body {
            c = c.header("content-type", "application/json").body(b);
        }
        c.headers(extra).await
    }

    async fn json(&self, method: &str, uri: &str, who: Option<&str>, body: &Value) -> Res {
        self.call(method, uri, who, Some(&body.to_string()), &[])
            .await
    }

    /// Creates a cart through the API and returns its id.
    async fn new_cart(&self, who: Option<&str>) -> kernel::CartId {
        let r = self.call("POST", "/api/carts", who, None, &[]).await;
        assert!(r.status.is_success(), "{}: {:?}", self.backend, r.body);
        r.body["id"].as_str().expect("id").parse().expect("uuid")
    }
}

/// Runs a scenario on every backend, each with fresh storage.
macro_rules! on_all_backends {
    ($name:ident, $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for env in envs().await {
                let f: fn(&Env) -> BoxFuture<'_, ()> = $body;
                let run = testkit::catching(f(&env)).await;
                env.cleanup().await;
                run.resume();
            }
        }
    };
}

fn cart_at(now: i64, owner: Option<&str>) -> Cart {
    Cart {
        id: kernel::CartId::new(),
        owner: owner.map(str::to_string),
        currency: kernel::Currency::EUR,
        lines: vec![Line {
            sku: "TEE-M".into(),
            name: "Tee".into(),
            quantity: 2,
            unit_price: kernel::Money::new(1990, kernel::Currency::EUR),
        }],
        version: 1,
        created_at: now,
        updated_at: now,
        expires_at: now + DAY_MS,
    }
}

// ---- the scenarios: store, merge and reprice, the HTTP API, keyed writes, the contract --------------

#[path = "suite/api.rs"]
mod api;
#[path = "suite/contract.rs"]
mod contract;
#[path = "suite/keyed.rs"]
mod keyed;
#[path = "suite/metrics.rs"]
mod metrics;
#[path = "suite/reprice.rs"]
mod reprice;
#[path = "suite/store.rs"]
mod store;

// ---- policy and documentation ----------------------------------------------------------------------

#[test]
fn every_route_is_in_the_policy_and_in_the_openapi_document() {
    use utoipa::OpenApi;
    let doc = cart::http::CartApi::openapi();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc.paths.paths.iter() {
        let v = serde_json::to_value(item).expect("json");
        for m in ["get", "post", "patch", "delete", "put"] {
            if v.get(m).is_some() {
                documented.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut declared: Vec<(String, String)> = cart::http::policy()
        .declared()
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    declared.sort();
    assert_eq!(documented, declared);
}
