//! The commerce core end to end, in process, on SQLite and (when configured) PostgreSQL:
//! checkout saga, flash sale (L3), duplicate lines (L4), declines and failed captures,
//! idempotent retries (D2), flow skipping (B6), recovery of abandoned sagas, lost provider
//! responses (F8), refunds and the events they publish, the invariant checker (D1) after each;
//! the business metrics each of them moves (`metrics`).
//! Requests go through `testkit::TestApp` as a principal signed the way the edge signs
//! (`H::call_as`); the scenarios are in `checkout`, `machine`, `recovery`, `carts` and `metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use contracts::carts::{CartsApi, CartsClient};
use contracts::inventory::{StockApi, StockClient};
use contracts::payments::{PaymentsApi, PaymentsClient};
use inventory::{Inventory, MovementKind};
use kernel::SystemClock;
use orders::{OrderSettings, Orders};
use platform::bus::{EventBus, InProcessBus, Relay};
use platform::caller::InternalKey;
use platform::idempotency::Idempotency;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use testkit::prices::FakePrices;
use testkit::principal::{self, PrincipalExt};
use testkit::{TestApp, TestDb};
use uuid::Uuid;

const CONTRACT_SECRET: &[u8] = b"orders-suite-contract-secret-0123456789";

/// The internal routes of inventory, payments and carts on a port of their own, as another
/// process would serve them; answers their base URL.
async fn serve_contracts(
    inventory: &Inventory,
    payments: &payments::Payments,
    carts: &Arc<cart::Carts>,
) -> String {
    let key = InternalKey::new(CONTRACT_SECRET);
    let app = inventory::contract::internal_router(inventory.clone())
        .merge(payments::contract::internal_router(payments.clone()))
        .merge(cart::contract::internal_router(carts.clone()))
        .layer(axum::middleware::from_fn(move |req, next| {
            platform::caller::internal_calls_only(key.clone(), req, next)
        }));
    testkit::http::serve(app).await
}

struct H {
    app: TestApp,
    orders: Orders,
    inventory: Inventory,
    payments: payments::Payments,
    carts: Arc<cart::Carts>,
    dbs: Vec<TestDb>,
    backend: &'static str,
    cart_backend: &'static str,
    faults: payments::Faults,
}

impl H {
    /// SQLite and PostgreSQL with the saga's peers in process, and SQLite with the peers over
    /// HTTP (their contracts' clients against their internal routes): one suite for both
    /// implementations of each contract.
    async fn all() -> Vec<H> {
        let mut out = vec![H::new(false).await];
        if testkit::postgres_url().is_some() {
            out.push(H::new(true).await);
        }
        out.push(H::remote().await);
        out
    }

    async fn new(pg: bool) -> H {
        H::with_bus(pg, Arc::new(InProcessBus::new()), Duration::from_secs(10)).await
    }

    async fn remote() -> H {
        H::build(
            false,
            Arc::new(InProcessBus::new()),
            Duration::from_secs(10),
            true,
        )
        .await
    }

    async fn with_bus(pg: bool, bus: Arc<dyn EventBus>, lease: Duration) -> H {
        H::build(pg, bus, lease, false).await
    }

    async fn build(pg: bool, bus: Arc<dyn EventBus>, lease: Duration, remote: bool) -> H {
        let open = |set| async move {
            if pg {
                TestDb::postgres(set).await.expect("postgres")
            } else {
                TestDb::sqlite(set).await
            }
        };
        let inv_db = open(inventory::migrations()).await;
        let pay_db = open(payments::migrations()).await;
        let ord_db = open(orders::migrations()).await;
        let cart_db = open(cart::migrations()).await;
        let backend = if remote {
            "sqlite + peers over HTTP"
        } else {
            inv_db.backend
        };
        let clock: Arc<dyn kernel::Clock> = Arc::new(SystemClock);
        let relays = [
            Relay::new("inventory", inv_db.db.clone(), bus.clone()),
            Relay::new("payments", pay_db.db.clone(), bus.clone()),
            Relay::new("orders", ord_db.db.clone(), bus.clone()),
        ];
        let inventory = Inventory {
            db: inv_db.db.clone(),
            clock: clock.clone(),
            relay: Some(relays[0].clone()),
            hold_ttl: Duration::from_secs(900),
            skus: Arc::new(inventory::FixedSkus::new(["HOT", "A", "B"])),
        };
        let faults = payments::Faults::new();
        let provider =
            Arc::new(payments::TestProvider::new(pay_db.db.clone()).with_faults(faults.clone()));
        let payments = payments::Payments::new(pay_db.db.clone(), provider, clock.clone())
            .with_relay(relays[1].clone());
        let prices = FakePrices::eur([("HOT", 1990), ("A", 1000), ("B", 2500)]);
        // the PostgreSQL half keeps its carts in Redis, as production does
        let store: Arc<dyn cart::CartStore> = match testkit::redis_url().filter(|_| pg) {
            Some(url) => Arc::new(
                cart::RedisCartStore::connect(
                    &url,
                    &format!("comptoir-test-orders:{}", Uuid::new_v4().simple()),
                    clock.clone(),
                )
                .await
                .expect("redis"),
            ),
            None => Arc::new(cart::SqlCartStore::new(cart_db.db.clone(), clock.clone())),
        };
        let cart_backend = if pg && testkit::redis_url().is_some() {
            "redis"
        } else {
            "sql"
        };
        let carts = Arc::new(cart::Carts::new(
            store,
            Arc::new(prices),
            clock.clone(),
            Default::default(),
        ));
        let carts_here = carts.clone();
        let (stock, pay, cart_api): (Arc<dyn StockApi>, Arc<dyn PaymentsApi>, Arc<dyn CartsApi>) =
            if remote {
                let url = serve_contracts(&inventory, &payments, &carts).await;
                let key = InternalKey::new(CONTRACT_SECRET);
                let peer = |name| {
                    contracts::Peer::new(name, "orders", &url, key.clone(), Default::default())
                        .unwrap()
                };
                (
                    Arc::new(StockClient(peer("inventory"))),
                    Arc::new(PaymentsClient(peer("payments"))),
                    Arc::new(CartsClient(peer("cart"))),
                )
            } else {
                (
                    Arc::new(inventory.clone()),
                    Arc::new(payments.clone()),
                    carts.clone(),
                )
            };
        let orders = Orders {
            db: ord_db.db.clone(),
            inventory: stock,
            payments: pay,
            carts: cart_api,
            clock,
            relay: Some(relays[2].clone()),
            settings: OrderSettings {
                saga_lease: lease,
                ..Default::default()
            },
        };
        orders::consumers::subscribe(&orders, &bus).await.unwrap();
        for r in &relays {
            r.spawn();
        }
        inventory::demo::seed_locations(&inventory).await.unwrap();
        let api = orders::http::router(orders::http::OrdersState {
            orders: orders.clone(),
            idempotency: Idempotency::new(ord_db.db.clone()),
        })
        .merge(cart::http::router(cart::http::CartState::new(
            carts,
            cart_db.db.clone(),
        )));
        H {
            app: TestApp::new(api),
            orders,
            inventory,
            payments,
            carts: carts_here,
            dbs: vec![inv_db, pay_db, ord_db, cart_db],
            backend,
            cart_backend,
            faults,
        }
    }

    fn books(&self) -> orders::invariants::Books<'_> {
        orders::invariants::Books {
            inventory: &self.inventory,
            payments: &self.payments,
        }
    }

    async fn cleanup(self) {
        for d in self.dbs {
            d.cleanup().await;
        }
    }

    /// An anonymous request.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        self.call_as(None, method, path, body, headers).await
    }

    /// A request as `who` (`role[:store]`, subject `<who>-user`; `None`: anonymous).
    async fn call_as(
        &self,
        who: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        let who = who.map(|w| principal::parse(w).with_subject(&format!("{w}-user")));
        let mut c = self
            .app
            .request(method.parse().unwrap(), path)
            .as_opt(who.as_ref())
            .headers(headers);
        if let Some(v) = body {
            c = c.json(&v);
        }
        let r = c.await;
        (r.status, r.body, r.headers)
    }

    async fn stock(&self, location: &str, sku: &str, units: i64) {
        self.inventory
            .record(location, sku, MovementKind::Receipt, units, "test", "test")
            .await
            .unwrap();
    }

    /// A guest cart with these lines.
    async fn cart(&self, lines: &[(&str, i64)]) -> String {
        let (s, v, _) = self.call("POST", "/api/carts", Some(json!({})), &[]).await;
        assert!(s.is_success(), "{s} {v}");
        let id = v["id"].as_str().unwrap().to_string();
        for (sku, q) in lines {
            let (s, v, _) = self
                .call(
                    "POST",
                    &format!("/api/carts/{id}/lines"),
                    Some(json!({"sku": sku, "quantity": q})),
                    &[],
                )
                .await;
            assert!(s.is_success(), "{s} {v}");
        }
        id
    }

    async fn checkout(&self, cart: &str, card: &str, key: &str) -> (StatusCode, Value) {
        let body = json!({
            "cart_id": cart,
            "email": "client@example.org",
            "fulfilment": {"type": "collect", "store": "rennes"},
            "payment": {"type": "test_card", "number": card},
        });
        let (s, v, _) = self
            .call(
                "POST",
                "/api/checkout",
                Some(body),
                &[("idempotency-key", key)],
            )
            .await;
        (s, v)
    }

    async fn settle(&self) -> orders::invariants::Report {
        // the relays publish, the consumers catch up, nothing is left open
        testkit::eventually(
            "events published and sagas settled",
            Duration::from_secs(20),
            || async {
                let r = orders::invariants::check(&self.orders, &self.books(), true)
                    .await
                    .unwrap();
                if r.ok() { Some(r) } else { None }
            },
        )
        .await
    }
}

const OK_CARD: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const CAPTURE_FAILS: &str = "4000000000000341";

async fn available(h: &H, sku: &str) -> (i64, i64) {
    let l = h.inventory.level("rennes", sku).await.unwrap().unwrap();
    (l.on_hand, l.held)
}

#[path = "suite/carts.rs"]
mod carts;
#[path = "suite/checkout.rs"]
mod checkout;
#[path = "suite/machine.rs"]
mod machine;
#[path = "suite/metrics.rs"]
mod metrics;
#[path = "suite/recovery.rs"]
mod recovery;
