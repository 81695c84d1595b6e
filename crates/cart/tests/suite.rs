//! The cart suite: the same scenarios against `SqlCartStore` on SQLite (always), on PostgreSQL
//! (when `COMPTOIR_TEST_POSTGRES_URL` is set) and against `RedisCartStore` on the real Redis
//! (when `COMPTOIR_TEST_REDIS_URL` is set; a unique key prefix per test), through the service
//! and through the real HTTP router (in process).

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cart::http::CartState;
use cart::model::{MAX_LINES, MAX_QUANTITY};
use cart::{
    Cart, CartError, CartSettings, CartStore, Carts, Commit, Line, PriceBook, PriceChange,
    PriceInfo, RedisCartStore, SqlCartStore, StoreError,
};
use futures_util::future::BoxFuture;
use http_body_util::BodyExt;
use platform::auth::{InternalKey, accept_internal_identity};
use platform::authz::{Principal, PrincipalKind, Role};
use platform::http::{EdgeOptions, with_common_layers};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::TestDb;
use tower::ServiceExt;
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

/// The catalogue, as far as carts are concerned.
#[derive(Default)]
struct Prices(Mutex<HashMap<String, PriceInfo>>);

impl Prices {
    fn set(&self, sku: &str, unit_price: i64, currency: &str, active: bool) {
        self.0.lock().expect("lock").insert(
            sku.to_string(),
            PriceInfo {
                sku: sku.to_string(),
                name: format!("Article {sku}"),
                unit_price,
                currency: currency.to_string(),
                active,
            },
        );
    }
    fn remove(&self, sku: &str) {
        self.0.lock().expect("lock").remove(sku);
    }
}

impl PriceBook for Prices {
    fn prices<'a>(
        &'a self,
        skus: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, PriceInfo>, String>> {
        let map = self.0.lock().expect("lock");
        let found = skus
            .iter()
            .filter_map(|s| map.get(s).map(|p| (s.clone(), p.clone())))
            .collect();
        Box::pin(async move { Ok(found) })
    }
}

// ---- the backends ----------------------------------------------------------------------------------

struct Env {
    backend: &'static str,
    store: Arc<dyn CartStore>,
    carts: Arc<Carts>,
    clock: Arc<ManualClock>,
    prices: Arc<Prices>,
    router: Router,
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

/// Plays the gateway: turns the test tokens into the signed identity header the service
/// verifies. `Bearer alice` and `Bearer bob` are customers, `Bearer clerk` a store clerk.
async fn as_gateway(
    key: InternalKey,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let ip = "127.0.0.1".parse().expect("ip");
    let now = chrono::Utc::now().timestamp();
    if let Some(v) = req.headers_mut().remove("authorization") {
        let token = v
            .to_str()
            .unwrap_or("")
            .trim_start_matches("Bearer ")
            .to_string();
        let role = if token == "clerk" {
            Role::Clerk
        } else {
            Role::Customer
        };
        let p = Principal {
            subject: token,
            kind: PrincipalKind::User,
            role,
            store: (role == Role::Clerk).then(|| "rennes".to_string()),
            organiser: None,
            scopes: vec![],
            session: None,
        };
        req.headers_mut()
            .insert(platform::auth::IDENTITY_HEADER, key.sign(ip, Some(&p), now));
    }
    next.run(req).await
}

/// The prices every scenario starts with.
fn catalogue() -> Arc<Prices> {
    let prices = Arc::new(Prices::default());
    prices.set("TEE-M", 1990, "EUR", true);
    prices.set("SOCKS", 500, "EUR", true);
    prices.set("CAP", 1500, "EUR", true);
    prices.set("OLD", 900, "EUR", false);
    prices.set("SWISS", 3000, "CHF", true);
    prices
}

/// The cart routes as the gateway reaches them.
fn app(carts: Arc<Carts>, db: &platform::db::Db) -> Router {
    let key = InternalKey::new(b"cart-suite-secret");
    let k2 = key.clone();
    let service = cart::http::router(CartState::new(carts, db.clone()))
        .layer(axum::middleware::from_fn(move |req, next| {
            accept_internal_identity(Some(key.clone()), req, next)
        }))
        .layer(axum::middleware::from_fn(move |req, next| {
            as_gateway(k2.clone(), req, next)
        }));
    with_common_layers(
        service,
        &EdgeOptions {
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
        },
    )
}

struct Res {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Res {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// Sends `req` through `router`.
async fn send(router: &Router, req: Request<Body>) -> Res {
    let res = router.clone().oneshot(req).await.expect("infallible");
    res_of(res).await
}

async fn res_of(res: axum::response::Response) -> Res {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Res {
        status,
        headers,
        body,
    }
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
        let router = app(carts.clone(), &db.db);
        Env {
            backend,
            store,
            carts,
            clock,
            prices,
            router,
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

    async fn send(&self, req: Request<Body>) -> Res {
        send(&self.router, req).await
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
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(w) = who {
            b = b.header("authorization", format!("Bearer {w}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let body = body
            .map(|s| Body::from(s.to_string()))
            .unwrap_or_else(Body::empty);
        self.send(b.body(body).expect("request")).await
    }

    async fn json(&self, method: &str, uri: &str, who: Option<&str>, body: &Value) -> Res {
        self.call(method, uri, who, Some(&body.to_string()), &[])
            .await
    }

    /// Creates a cart through the API and returns its id.
    async fn new_cart(&self, who: Option<&str>) -> Uuid {
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
                {
                    let f: fn(&Env) -> BoxFuture<'_, ()> = $body;
                    f(&env).await;
                }
                env.cleanup().await;
            }
        }
    };
}

fn cart_at(now: i64, owner: Option<&str>) -> Cart {
    Cart {
        id: Uuid::new_v4(),
        owner: owner.map(str::to_string),
        currency: "EUR".into(),
        lines: vec![Line {
            sku: "TEE-M".into(),
            name: "Tee".into(),
            quantity: 2,
            unit_price: 1990,
            currency: "EUR".into(),
        }],
        version: 1,
        created_at: now,
        updated_at: now,
        expires_at: now + DAY_MS,
    }
}

// ---- the store ---------------------------------------------------------------------------------------

on_all_backends!(a_cart_is_saved_loaded_and_deleted, |e| Box::pin(
    async move {
        let b = e.backend;
        let mut c = cart_at(e.clock.ms(), Some("alice"));
        assert_eq!(e.store.load(c.id).await.expect("load"), None, "{b}");
        e.store.save(&c, Commit::default()).await.expect("save v1");
        assert_eq!(
            e.store.load(c.id).await.expect("load"),
            Some(c.clone()),
            "{b}"
        );
        c.version = 2;
        c.lines[0].quantity = 3;
        e.store.save(&c, Commit::default()).await.expect("save v2");
        let back = e.store.load(c.id).await.expect("load").expect("present");
        assert_eq!((back.version, back.lines[0].quantity), (2, 3), "{b}");
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            Some(c.id),
            "{b}"
        );
        e.store.delete(c.id).await.expect("delete");
        assert_eq!(e.store.load(c.id).await.expect("load"), None, "{b}");
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            None,
            "{b}"
        );
        e.store.delete(c.id).await.expect("deleting twice is fine");
    }
));

on_all_backends!(saves_are_compare_and_set_on_the_version, |e| Box::pin(
    async move {
        let b = e.backend;
        let mut c = cart_at(e.clock.ms(), None);
        let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict));
        c.version = 2;
        assert!(
            conflict(e.store.save(&c, Commit::default()).await),
            "{b}: v2 of a missing cart"
        );
        c.version = 1;
        e.store.save(&c, Commit::default()).await.expect("v1");
        assert!(
            conflict(e.store.save(&c, Commit::default()).await),
            "{b}: v1 twice"
        );
        c.version = 3;
        assert!(
            conflict(e.store.save(&c, Commit::default()).await),
            "{b}: skipping v2"
        );
        c.version = 2;
        e.store.save(&c, Commit::default()).await.expect("v2");
        c.lines.clear();
        assert!(
            conflict(e.store.save(&c, Commit::default()).await),
            "{b}: a stale v2"
        );
        let back = e.store.load(c.id).await.expect("load").expect("present");
        assert_eq!(back.lines.len(), 1, "{b}: the stale write changed nothing");

        // a second cart for an owner who has one is a conflict too
        let first = cart_at(e.clock.ms(), Some("dora"));
        e.store
            .save(&first, Commit::default())
            .await
            .expect("first");
        assert!(
            conflict(
                e.store
                    .save(&cart_at(e.clock.ms(), Some("dora")), Commit::default())
                    .await
            ),
            "{b}: one cart per owner"
        );

        // concurrent changes through the service all land, none is lost
        let (guest, _) = e.carts.create(None, None, None).await.expect("create");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let carts = e.carts.clone();
                tokio::spawn(async move { carts.add_line(guest.id, None, "SOCKS", 1, None).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("join").expect("every add lands");
        }
        let after = e.carts.get(guest.id, None).await.expect("get");
        assert_eq!(after.line("SOCKS").map(|l| l.quantity), Some(8), "{b}");
        assert_eq!(after.version, 9, "{b}");
    }
));

on_all_backends!(carts_expire_and_each_change_pushes_the_expiry_back, |e| {
    Box::pin(async move {
        let b = e.backend;
        let t0 = e.clock.ms();
        let (guest, created) = e.carts.create(None, None, None).await.expect("guest");
        assert!(created);
        assert_eq!(guest.expires_at, t0 + 2 * DAY_MS, "{b}: guests keep 2 days");
        let (mine, _) = e
            .carts
            .create(Some("alice"), None, None)
            .await
            .expect("customer");
        assert_eq!(
            mine.expires_at,
            t0 + 7 * DAY_MS,
            "{b}: customers keep 7 days"
        );
        if let Some(r) = &e.redis {
            for (key, ttl) in [
                (r.cart_key(guest.id), 2 * DAY_MS),
                (r.cart_key(mine.id), 7 * DAY_MS),
                (r.owner_key("alice"), 7 * DAY_MS),
            ] {
                let pttl = e.pttl(&key).await;
                assert!(pttl > ttl - 60_000 && pttl <= ttl, "{key}: PTTL {pttl}");
            }
        }

        // a day later, a change gives the guest cart two more days
        e.clock.advance(DAY_MS);
        let changed = e
            .carts
            .add_line(guest.id, None, "TEE-M", 1, None)
            .await
            .expect("add");
        assert_eq!(changed.expires_at, e.clock.ms() + 2 * DAY_MS, "{b}");
        assert_eq!(changed.updated_at, e.clock.ms(), "{b}");
        if let Some(r) = &e.redis {
            let pttl = e.pttl(&r.cart_key(guest.id)).await;
            assert!(pttl > 2 * DAY_MS - 60_000, "{b}: TTL refreshed, {pttl}");
        }

        // two days and a bit later: the guest cart is gone, the customer's is still there
        e.clock.advance(2 * DAY_MS + 1);
        assert!(matches!(
            e.carts.get(guest.id, None).await,
            Err(CartError::NotFound)
        ));
        assert_eq!(e.store.load(guest.id).await.expect("load"), None, "{b}");
        assert!(matches!(
            e.carts.add_line(guest.id, None, "SOCKS", 1, None).await,
            Err(CartError::NotFound)
        ));
        assert_eq!(
            e.carts.get(mine.id, Some("alice")).await.expect("alive").id,
            mine.id
        );
        let purged = e.carts.purge_expired().await.expect("purge");
        if e.redis.is_some() {
            assert_eq!(purged, 0, "Redis expires carts itself");
        } else {
            assert_eq!(purged, 1, "{b}: the guest cart is deleted");
        }

        // past the customer's 7 days: no cart, and a new one can be made
        e.clock.advance(7 * DAY_MS);
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            None,
            "{b}"
        );
        let (fresh, created) = e
            .carts
            .create(Some("alice"), None, None)
            .await
            .expect("again");
        assert!(created, "{b}: the expired cart does not block a new one");
        assert_ne!(fresh.id, mine.id);
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            Some(fresh.id),
            "{b}"
        );
    })
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_removes_an_expired_cart_by_itself() {
    let Some(url) = testkit::redis_url() else {
        return;
    };
    let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
    let prefix = format!("comptoir-test:{}:", Uuid::new_v4().simple());
    let store = RedisCartStore::connect(&url, &prefix, clock.clone())
        .await
        .expect("redis");
    let mut c = cart_at(T0, Some("erin"));
    c.expires_at = T0 + 300;
    store.save(&c, Commit::default()).await.expect("save");
    let mut conn = store.connection();
    for key in [store.cart_key(c.id), store.owner_key("erin")] {
        testkit::eventually("the TTL to remove the key", Duration::from_secs(5), || {
            let mut conn = conn.clone();
            let key = key.clone();
            async move {
                let n: i64 = redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("exists");
                (n == 0).then_some(())
            }
        })
        .await;
    }
    let n: i64 = redis::cmd("EXISTS")
        .arg(store.cart_key(c.id))
        .query_async(&mut conn)
        .await
        .expect("exists");
    assert_eq!(n, 0);
}

on_all_backends!(a_customer_has_one_cart_found_by_owner, |e| Box::pin(
    async move {
        let b = e.backend;
        let (a1, created) = e
            .carts
            .create(Some("alice"), None, None)
            .await
            .expect("create");
        assert!(created);
        assert_eq!(a1.owner.as_deref(), Some("alice"));
        let (a2, created) = e
            .carts
            .create(Some("alice"), None, None)
            .await
            .expect("again");
        assert!(!created, "{b}: the existing cart is returned");
        assert_eq!(a1.id, a2.id);
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            Some(a1.id)
        );
        assert_eq!(e.store.find_by_owner("bob").await.expect("find"), None);

        // concurrent first visits of one customer still make one cart
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let carts = e.carts.clone();
                tokio::spawn(async move { carts.create(Some("carol"), None, None).await })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.expect("join").expect("create").0.id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{b}: {ids:?}");

        // checkout deletes the cart and frees the owner
        e.carts.checked_out(a1.id).await.expect("checked out");
        assert_eq!(e.store.load(a1.id).await.expect("load"), None, "{b}");
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            None,
            "{b}"
        );
        let (a3, created) = e
            .carts
            .create(Some("alice"), None, None)
            .await
            .expect("new");
        assert!(created && a3.id != a1.id, "{b}");
    }
));

// ---- merge and reprice --------------------------------------------------------------------------------

on_all_backends!(
    merge_sums_quantities_caps_them_and_deletes_the_guest_cart,
    |e| {
        Box::pin(async move {
            let b = e.backend;
            let c = &e.carts;
            let (mine, _) = c.create(Some("alice"), None, None).await.expect("alice");
            c.add_line(mine.id, Some("alice"), "TEE-M", 2, None)
                .await
                .expect("add");
            c.add_line(mine.id, Some("alice"), "SOCKS", 98, None)
                .await
                .expect("add");
            let (guest, _) = c.create(None, None, None).await.expect("guest");
            c.add_line(guest.id, None, "TEE-M", 3, None)
                .await
                .expect("add");
            c.add_line(guest.id, None, "SOCKS", 5, None)
                .await
                .expect("add");
            c.add_line(guest.id, None, "CAP", 1, None)
                .await
                .expect("add");

            let merged = c.merge(guest.id, "alice", None).await.expect("merge");
            assert_eq!(merged.id, mine.id, "{b}");
            let q = |s: &str| merged.line(s).map(|l| l.quantity);
            assert_eq!(q("TEE-M"), Some(5), "{b}: summed");
            assert_eq!(q("SOCKS"), Some(MAX_QUANTITY), "{b}: capped at 99");
            assert_eq!(q("CAP"), Some(1), "{b}: added");
            assert_eq!(e.store.load(guest.id).await.expect("load"), None, "{b}");
            assert_eq!(
                c.get(mine.id, Some("alice")).await.expect("get"),
                merged,
                "{b}: saved"
            );
            assert!(matches!(
                c.merge(guest.id, "alice", None).await,
                Err(CartError::NotFound)
            ));

            // a customer without a cart gets the guest cart itself, with a customer's lifetime
            let (guest2, _) = c.create(None, None, None).await.expect("guest");
            c.add_line(guest2.id, None, "CAP", 2, None)
                .await
                .expect("add");
            let bobs = c.merge(guest2.id, "bob", None).await.expect("merge");
            assert_eq!(bobs.id, guest2.id, "{b}");
            assert_eq!(bobs.owner.as_deref(), Some("bob"));
            assert_eq!(bobs.expires_at, e.clock.ms() + 7 * DAY_MS);
            assert_eq!(
                e.store.find_by_owner("bob").await.expect("find"),
                Some(bobs.id)
            );
            assert!(
                matches!(c.get(guest2.id, None).await, Err(CartError::NotFound)),
                "{b}: now bob's only"
            );
            assert_eq!(
                c.merge(guest2.id, "bob", None).await.expect("again").id,
                bobs.id
            );
            assert!(
                matches!(
                    c.merge(guest2.id, "alice", None).await,
                    Err(CartError::NotFound)
                ),
                "{b}: bob's cart is not a guest cart"
            );

            // lines in another currency do not mix
            let (swiss, _) = c.create(None, Some("CHF"), None).await.expect("CHF cart");
            c.add_line(swiss.id, None, "SWISS", 1, None)
                .await
                .expect("add");
            assert!(
                matches!(
                    c.merge(swiss.id, "alice", None).await,
                    Err(CartError::CurrencyMismatch { .. })
                ),
                "{b}"
            );
            assert!(c.get(swiss.id, None).await.is_ok(), "{b}: nothing changed");
        })
    }
);

on_all_backends!(reprice_detects_changed_and_unavailable_lines, |e| Box::pin(
    async move {
        let b = e.backend;
        let c = &e.carts;
        let (cart, _) = c.create(None, None, None).await.expect("create");
        c.add_line(cart.id, None, "TEE-M", 2, None)
            .await
            .expect("add");
        c.add_line(cart.id, None, "SOCKS", 1, None)
            .await
            .expect("add");
        c.add_line(cart.id, None, "CAP", 1, None)
            .await
            .expect("add");
        let before = c.get(cart.id, None).await.expect("get");
        assert_eq!(before.subtotal(), Some(2 * 1990 + 500 + 1500));

        let (same, changes) = c.reprice(&before).await.expect("reprice");
        assert!(changes.is_empty(), "{b}");
        assert_eq!(same, before);

        e.prices.set("TEE-M", 2490, "EUR", true);
        e.prices.set("SOCKS", 500, "EUR", false);
        e.prices.remove("CAP");
        let (now, changes) = c.reprice(&before).await.expect("reprice");
        assert_eq!(
            changes,
            vec![
                PriceChange::Changed {
                    sku: "TEE-M".into(),
                    old: 1990,
                    new: 2490
                },
                PriceChange::Unavailable {
                    sku: "SOCKS".into()
                },
                PriceChange::Unavailable { sku: "CAP".into() },
            ],
            "{b}"
        );
        assert_eq!(now.lines.len(), 1);
        assert_eq!(now.subtotal(), Some(2 * 2490));
        assert_eq!(
            c.get(cart.id, None).await.expect("get"),
            before,
            "{b}: reprice saves nothing"
        );

        let (saved, changes) = c.refresh_prices(cart.id, None).await.expect("refresh");
        assert_eq!(changes.len(), 3);
        assert_eq!(saved.lines, now.lines, "{b}");
        assert_eq!(c.get(cart.id, None).await.expect("get"), saved);
    }
));

// ---- HTTP ----------------------------------------------------------------------------------------------

on_all_backends!(an_owned_cart_answers_404_to_anyone_else, |e| Box::pin(
    async move {
        let b = e.backend;
        let r = e.call("POST", "/api/carts", Some("alice"), None, &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{b}: {:?}", r.body);
        assert_eq!(r.body["owner"], "alice");
        let id = r.body["id"].as_str().expect("id").to_string();
        assert_eq!(
            r.headers.get("location").and_then(|v| v.to_str().ok()),
            Some(format!("/api/carts/{id}").as_str())
        );
        let again = e.call("POST", "/api/carts", Some("alice"), None, &[]).await;
        assert_eq!(again.status, StatusCode::OK, "{b}: her existing cart");
        assert_eq!(again.body["id"], id.as_str());
        let uri = format!("/api/carts/{id}");
        let lines = format!("{uri}/lines");
        let line = format!("{uri}/lines/TEE-M");
        let added = e
            .json(
                "POST",
                &lines,
                Some("alice"),
                &json!({"sku": "TEE-M", "quantity": 2}),
            )
            .await;
        assert_eq!(added.status, StatusCode::OK, "{b}: {:?}", added.body);
        assert_eq!(added.body["subtotal"], 3980);

        for who in [None, Some("bob"), Some("clerk")] {
            let r = e.call("GET", &uri, who, None, &[]).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::NOT_FOUND, "not_found"),
                "{b} {who:?}"
            );
            let r = e
                .json("POST", &lines, who, &json!({"sku": "SOCKS", "quantity": 1}))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{b} {who:?}");
            let r = e.json("PATCH", &line, who, &json!({"quantity": 5})).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{b} {who:?}");
            let r = e.call("DELETE", &line, who, None, &[]).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{b} {who:?}");
        }
        let r = e
            .call("POST", &format!("{uri}/merge"), Some("bob"), None, &[])
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{b}: bob cannot take alice's cart"
        );

        let mine = e.call("GET", &uri, Some("alice"), None, &[]).await;
        assert_eq!(mine.status, StatusCode::OK);
        assert_eq!(mine.body["lines"][0]["quantity"], 2, "{b}: untouched");
        assert_eq!(mine.body["lines"][0]["total"], 3980);
        assert_eq!(mine.body["item_count"], 2);

        // a guest cart is reachable by its id, whoever asks
        let guest = e.new_cart(None).await;
        for who in [None, Some("bob")] {
            let r = e
                .call("GET", &format!("/api/carts/{guest}"), who, None, &[])
                .await;
            assert_eq!(r.status, StatusCode::OK, "{b} {who:?}");
            assert_eq!(r.body["owner"], Value::Null);
        }
        for bad in [Uuid::new_v4().to_string(), "not-an-id".to_string()] {
            let r = e
                .call("GET", &format!("/api/carts/{bad}"), None, None, &[])
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{b}: {bad}");
        }
    }
));

on_all_backends!(merging_at_sign_in_through_the_api, |e| Box::pin(
    async move {
        let b = e.backend;
        let guest = e.new_cart(None).await;
        let r = e
            .json(
                "POST",
                &format!("/api/carts/{guest}/lines"),
                None,
                &json!({"sku": "CAP", "quantity": 3}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{b}: {:?}", r.body);
        let merge = format!("/api/carts/{guest}/merge");
        let r = e.call("POST", &merge, None, None, &[]).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{b}"
        );
        let r = e.call("POST", &merge, Some("clerk"), None, &[]).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{b}"
        );

        let mine = e.new_cart(Some("alice")).await;
        let r = e.call("POST", &merge, Some("alice"), None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{b}: {:?}", r.body);
        assert_eq!(r.body["id"], mine.to_string());
        assert_eq!(r.body["lines"][0]["sku"], "CAP");
        assert_eq!(r.body["lines"][0]["quantity"], 3);
        let r = e
            .call("GET", &format!("/api/carts/{guest}"), None, None, &[])
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{b}: the guest cart is gone"
        );
    }
));

on_all_backends!(bad_quantities_get_a_stable_code_and_change_nothing, |e| {
    Box::pin(async move {
        let b = e.backend;
        let id = e.new_cart(None).await;
        let lines = format!("/api/carts/{id}/lines");
        let ok = e
            .json(
                "POST",
                &lines,
                None,
                &json!({"sku": "TEE-M", "quantity": 1}),
            )
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{b}: {:?}", ok.body);
        let numbers = [
            "0",
            "-1",
            "100",
            "2147483648",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551616",
            "1e300",
            "1.5",
            "-9223372036854775808",
        ];
        for q in numbers {
            let body = format!(r#"{{"sku": "SOCKS", "quantity": {q}}}"#);
            let r = e.call("POST", &lines, None, Some(&body), &[]).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_quantity"),
                "{b}: add {q}"
            );
            let body = format!(r#"{{"quantity": {q}}}"#);
            let r = e
                .call("PATCH", &format!("{lines}/TEE-M"), None, Some(&body), &[])
                .await;
            let expected = if q == "0" {
                StatusCode::OK // 0 removes the line: allowed on PATCH
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            assert_eq!(r.status, expected, "{b}: set {q}: {:?}", r.body);
            if q == "0" {
                let again = e
                    .json(
                        "POST",
                        &lines,
                        None,
                        &json!({"sku": "TEE-M", "quantity": 1}),
                    )
                    .await;
                assert_eq!(again.status, StatusCode::OK);
            } else {
                assert_eq!(r.code(), "invalid_quantity", "{b}: set {q}");
            }
        }
        for (body, code) in [
            (r#"{"sku": "SOCKS", "quantity": "3"}"#, "invalid_body"),
            (r#"{"sku": "SOCKS", "quantity": null}"#, "invalid_body"),
            (r#"{"sku": "SOCKS"}"#, "invalid_body"),
            (
                r#"{"sku": "SOCKS", "quantity": 1, "unit_price": 1}"#,
                "invalid_body",
            ),
            (r#"{"sku": "SOCKS", "quantity": 1"#, "malformed_json"),
        ] {
            let r = e.call("POST", &lines, None, Some(body), &[]).await;
            assert!(r.status.is_client_error(), "{b}: {body}");
            assert_eq!(r.code(), code, "{b}: {body}");
        }
        let r = e
            .call(
                "POST",
                &lines,
                None,
                Some(r#"{"sku":"SOCKS","quantity":1,"unit_price":1}"#),
                &[],
            )
            .await;
        assert_eq!(
            r.body["errors"][0]["code"], "unknown_field",
            "{b}: prices are never sent"
        );

        // adding past 99 on one line is refused too
        let r = e
            .json(
                "POST",
                &lines,
                None,
                &json!({"sku": "TEE-M", "quantity": 99}),
            )
            .await;
        assert_eq!(r.code(), "invalid_quantity", "{b}");

        let cart = e.carts.get(id, None).await.expect("get");
        assert_eq!(cart.lines.len(), 1, "{b}: nothing else was added");
        assert_eq!(cart.line("TEE-M").map(|l| l.quantity), Some(1), "{b}");
    })
});

on_all_backends!(lines_follow_the_catalogue_and_the_limits, |e| Box::pin(
    async move {
        let b = e.backend;
        let id = e.new_cart(None).await;
        let lines = format!("/api/carts/{id}/lines");
        let add = |sku: &str, q: i64| json!({"sku": sku, "quantity": q});
        for (sku, code) in [
            ("NOPE", "unknown_sku"),
            ("", "unknown_sku"),
            ("OLD", "unavailable"),
            ("SWISS", "currency_mismatch"),
        ] {
            let r = e.json("POST", &lines, None, &add(sku, 1)).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{b}: {sku}"
            );
        }
        let r = e.json("POST", &lines, None, &add("TEE-M", 2)).await;
        assert_eq!(
            r.body["lines"][0]["unit_price"], 1990,
            "{b}: the catalogue's price"
        );
        assert_eq!(r.body["lines"][0]["name"], "Article TEE-M");
        // adding the same SKU adds to its line, at the current price
        e.prices.set("TEE-M", 1790, "EUR", true);
        let r = e.json("POST", &lines, None, &add("TEE-M", 1)).await;
        assert_eq!(r.body["lines"].as_array().map(Vec::len), Some(1), "{b}");
        assert_eq!(r.body["lines"][0]["quantity"], 3);
        assert_eq!(r.body["subtotal"], 3 * 1790);

        let r = e
            .json(
                "PATCH",
                &format!("{lines}/TEE-M"),
                None,
                &json!({"quantity": 7}),
            )
            .await;
        assert_eq!(r.body["lines"][0]["quantity"], 7, "{b}");
        let r = e
            .json(
                "PATCH",
                &format!("{lines}/CAP"),
                None,
                &json!({"quantity": 7}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{b}: not in the cart");
        let r = e
            .call("DELETE", &format!("{lines}/TEE-M"), None, None, &[])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{b}");
        assert_eq!(r.body["lines"], json!([]));
        assert_eq!(r.body["subtotal"], 0);
        let r = e
            .call("DELETE", &format!("{lines}/TEE-M"), None, None, &[])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{b}");

        // at most 50 lines
        for i in 0..MAX_LINES {
            e.prices.set(&format!("SKU-{i}"), 100, "EUR", true);
            e.carts
                .add_line(id, None, &format!("SKU-{i}"), 1, None)
                .await
                .expect("within the limit");
        }
        let r = e.json("POST", &lines, None, &add("CAP", 1)).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "too_many_lines"),
            "{b}"
        );
        let r = e.json("POST", &lines, None, &add("SKU-0", 1)).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{b}: an existing line still grows"
        );

        // a cart in another currency
        let r = e
            .json("POST", "/api/carts", None, &json!({"currency": "CHF"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{b}");
        assert_eq!(r.body["currency"], "CHF");
        let r = e
            .json("POST", "/api/carts", None, &json!({"currency": "XXX"}))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        let r = e
            .json("POST", "/api/carts", None, &json!({"owner": "alice"}))
            .await;
        assert_eq!(r.code(), "invalid_body", "{b}: unknown fields are refused");
    }
));

// ---- keyed writes: tests/suite/keyed.rs -------------------------------------------------------------

#[path = "suite/keyed.rs"]
mod keyed;

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
