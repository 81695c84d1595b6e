//! The commerce core end to end, in process, on SQLite and (when configured) PostgreSQL:
//! checkout saga, flash sale (L3), duplicate lines (L4), declines and failed captures,
//! idempotent retries (D2), flow skipping (B6), recovery of abandoned sagas, lost provider
//! responses (F8), refunds and the events they publish, the invariant checker (D1) after each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use contracts::carts::{CartsApi, CartsClient};
use contracts::inventory::{StockApi, StockClient};
use contracts::payments::{PaymentsApi, PaymentsClient};
use futures_util::future::BoxFuture;
use inventory::{Inventory, MovementKind};
use kernel::SystemClock;
use orders::{OrderSettings, Orders};
use platform::auth::{InternalKey, accept_internal_identity};
use platform::authz::{Principal, PrincipalKind, Role};
use platform::bus::{EventBus, InProcessBus, Relay};
use platform::idempotency::Idempotency;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use testkit::TestDb;
use tower::ServiceExt;
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
            platform::auth::internal_calls_only(key.clone(), req, next)
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

struct Prices(HashMap<String, i64>);

impl cart::PriceBook for Prices {
    fn prices<'a>(
        &'a self,
        skus: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, cart::PriceInfo>, String>> {
        Box::pin(async move {
            Ok(skus
                .iter()
                .filter_map(|s| {
                    self.0.get(s).map(|p| {
                        (
                            s.clone(),
                            cart::PriceInfo {
                                sku: s.clone(),
                                name: format!("Article {s}"),
                                unit_price: *p,
                                currency: "EUR".into(),
                                active: true,
                            },
                        )
                    })
                })
                .collect())
        })
    }
}

/// Turns `x-test-as: role[:store]` into the signed identity header, as a gateway would.
async fn as_gateway(
    key: InternalKey,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(v) = req.headers_mut().remove("x-test-as") {
        let s = v.to_str().unwrap_or("").to_string();
        let mut parts = s.split(':');
        let role = Role::parse(parts.next().unwrap_or("")).expect("role");
        let store = parts.next().map(String::from);
        let p = Principal {
            subject: format!("{s}-user"),
            kind: PrincipalKind::User,
            role,
            store,
            organiser: None,
            scopes: vec![],
            session: None,
        };
        let h = key.sign(
            "127.0.0.1".parse().unwrap(),
            Some(&p),
            chrono::Utc::now().timestamp(),
        );
        req.headers_mut().insert(platform::auth::IDENTITY_HEADER, h);
    }
    next.run(req).await
}

struct H {
    router: Router,
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
        let prices: HashMap<String, i64> = [("HOT", 1990), ("A", 1000), ("B", 2500)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
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
            Arc::new(Prices(prices)),
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
        let key = InternalKey::new(b"orders-suite-secret-orders-suite");
        let k2 = key.clone();
        let api = orders::http::router(orders::http::OrdersState {
            orders: orders.clone(),
            idempotency: Idempotency::new(ord_db.db.clone()),
        })
        .merge(cart::http::router(cart::http::CartState::new(
            carts,
            cart_db.db.clone(),
        )))
        .layer(axum::middleware::from_fn(move |req, next| {
            accept_internal_identity(Some(key.clone()), req, next)
        }))
        .layer(axum::middleware::from_fn(move |req, next| {
            as_gateway(k2.clone(), req, next)
        }));
        H {
            router: api,
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

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, v, headers)
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

#[tokio::test]
async fn a_checkout_holds_authorises_confirms_commits_and_captures() {
    for h in H::all().await {
        h.stock("rennes", "A", 10).await;
        let cart = h.cart(&[("A", 2), ("B", 1)]).await;
        h.stock("rennes", "B", 1).await;
        let (s, order) = h.checkout(&cart, OK_CARD, "k-1").await;
        assert_eq!(s, StatusCode::CREATED, "{}: {order}", h.backend);
        assert_eq!(order["status"], "paid");
        assert_eq!(order["total"], 2 * 1000 + 2500);
        assert_eq!(order["location"], "rennes");
        assert_eq!(available(&h, "A").await, (8, 0), "sold, nothing left held");
        assert_eq!(available(&h, "B").await, (0, 0));
        let id = order["id"].as_str().unwrap().to_string();
        // the saga's steps, in order, for head office
        let (s, saga, _) = h
            .call(
                "GET",
                &format!("/api/orders/{id}/saga"),
                None,
                &[("x-test-as", "head_office")],
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let steps: Vec<&str> = saga["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["step"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                "start",
                "hold_stock",
                "authorize_payment",
                "confirm_order",
                "commit_stock",
                "capture_payment"
            ]
        );
        assert_eq!(saga["state"], "completed");
        // the cart is gone; the events reached the mail sink once each
        let (s, _, _) = h
            .call("GET", &format!("/api/carts/{cart}"), None, &[])
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 1);
        assert_eq!(r.psp_captured, 4500);
        let kinds: Vec<String> = orders::store::notifications(&h.orders.db, 50)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.kind)
            .collect();
        assert!(kinds.contains(&"order_received".to_string()), "{kinds:?}");
        assert!(
            kinds.contains(&"order_confirmation".to_string()),
            "{kinds:?}"
        );
        // staff of another store do not see a Rennes order; Rennes's manager does
        let (s, _, _) = h
            .call(
                "GET",
                &format!("/api/orders/{id}"),
                None,
                &[("x-test-as", "store_manager:brest")],
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v, _) = h
            .call(
                "GET",
                &format!("/api/orders/{id}"),
                None,
                &[("x-test-as", "store_manager:rennes")],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["history"].as_array().unwrap().len(), 3, "{v}");
        h.cleanup().await;
    }
}

#[tokio::test]
async fn flash_sale_sells_exactly_the_stock_l3() {
    for h in H::all().await {
        h.stock("rennes", "HOT", 50).await;
        let mut carts = Vec::new();
        for _ in 0..200 {
            carts.push(h.cart(&[("HOT", 1)]).await);
        }
        let h = Arc::new(h);
        let barrier = Arc::new(tokio::sync::Barrier::new(200));
        let mut tasks = Vec::new();
        for (i, c) in carts.into_iter().enumerate() {
            let h = h.clone();
            let b = barrier.clone();
            tasks.push(tokio::spawn(async move {
                b.wait().await;
                h.checkout(&c, OK_CARD, &format!("flash-{i}")).await
            }));
        }
        let mut created = 0;
        let mut sold_out = 0;
        for t in tasks {
            let (s, v) = t.await.unwrap();
            match s {
                StatusCode::CREATED => created += 1,
                StatusCode::CONFLICT => {
                    assert_eq!(v["code"], "out_of_stock", "{v}");
                    sold_out += 1;
                }
                other => panic!("{}: unexpected {other}: {v}", h.backend),
            }
        }
        assert_eq!((created, sold_out), (50, 150), "{}", h.backend);
        assert_eq!(available(&h, "HOT").await, (0, 0));
        assert_eq!(h.inventory.sold("rennes", "HOT").await.unwrap(), 50);
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 50);
        match Arc::try_unwrap(h) {
            Ok(h) => h.cleanup().await,
            Err(_) => panic!("harness still shared"),
        }
    }
}

#[tokio::test]
async fn duplicate_lines_of_one_sku_are_summed_before_the_check_l4() {
    for h in H::all().await {
        h.stock("rennes", "A", 30).await;
        let inv = h.inventory.clone();
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let inv = inv.clone();
            tasks.push(tokio::spawn(async move {
                let id = Uuid::now_v7();
                let lines = [
                    inventory::HoldLine {
                        sku: "A".into(),
                        quantity: 1,
                    },
                    inventory::HoldLine {
                        sku: "A".into(),
                        quantity: 1,
                    },
                ];
                match inv.hold(id, "rennes", &lines, None).await {
                    Ok(_) => {
                        inv.commit(id).await.unwrap();
                        2
                    }
                    Err(inventory::InvError::OutOfStock(_)) => 0,
                    Err(e) => panic!("{e}"),
                }
            }));
        }
        let mut sold = 0;
        for t in tasks {
            sold += t.await.unwrap();
        }
        assert_eq!(sold, 30, "{}: exactly the stock, in pairs", h.backend);
        assert_eq!(available(&h, "A").await, (0, 0));
        assert!(h.inventory.check().await.unwrap().is_empty());
        h.cleanup().await;
    }
}

#[tokio::test]
async fn a_declined_card_takes_nothing_and_a_failed_capture_is_undone() {
    for h in H::all().await {
        h.stock("rennes", "A", 5).await;
        let cart = h.cart(&[("A", 2)]).await;
        let (s, v) = h.checkout(&cart, DECLINED, "d-1").await;
        assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
        assert_eq!(v["code"], "payment_declined");
        assert_eq!(available(&h, "A").await, (5, 0), "hold released");
        // the cart survives a declined payment; a failed capture is compensated
        let (s, v) = h.checkout(&cart, CAPTURE_FAILS, "d-2").await;
        assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
        assert_eq!(v["code"], "payment_failed");
        assert_eq!(
            available(&h, "A").await,
            (5, 0),
            "stock put back after the sale"
        );
        let cancelled = orders::store::list_orders(
            &h.orders.db,
            &orders::store::OrderFilter {
                status: Some("cancelled".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(cancelled.len(), 1, "the confirmed order was cancelled");
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 0);
        assert_eq!(r.psp_captured, 0);
        // then a good card works on the same cart
        let (s, v) = h.checkout(&cart, OK_CARD, "d-3").await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(available(&h, "A").await, (3, 0));
        h.settle().await;
        h.cleanup().await;
    }
}

#[tokio::test]
async fn retrying_a_checkout_never_orders_or_charges_twice_d2() {
    for h in H::all().await {
        h.stock("rennes", "A", 100).await;
        let cart = h.cart(&[("A", 1)]).await;
        let (s1, v1) = h.checkout(&cart, OK_CARD, "same").await;
        assert_eq!(s1, StatusCode::CREATED);
        // a retry with the same key and body: the same answer, marked as a replay
        let body = json!({
            "cart_id": cart, "email": "client@example.org",
            "fulfilment": {"type": "collect", "store": "rennes"},
            "payment": {"type": "test_card", "number": OK_CARD},
        });
        let (s2, v2, hdr) = h
            .call(
                "POST",
                "/api/checkout",
                Some(body.clone()),
                &[("idempotency-key", "same")],
            )
            .await;
        assert_eq!((s2, &v2), (s1, &v1));
        assert_eq!(hdr.get("idempotent-replayed").unwrap(), "true");
        // the same key with another body
        let mut other = body.clone();
        other["email"] = json!("autre@example.org");
        let (s, v, _) = h
            .call(
                "POST",
                "/api/checkout",
                Some(other),
                &[("idempotency-key", "same")],
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["code"], "idempotency_key_reused");
        // no key at all
        let (s, v, _) = h
            .call("POST", "/api/checkout", Some(body.clone()), &[])
            .await;
        assert_eq!(s, StatusCode::PRECONDITION_REQUIRED);
        assert_eq!(v["code"], "idempotency_key_required");
        // a client-sent total is refused, not used
        let mut priced = body.clone();
        priced["total"] = json!(1);
        let (s, _, _) = h
            .call(
                "POST",
                "/api/checkout",
                Some(priced),
                &[("idempotency-key", "priced")],
            )
            .await;
        assert!(s.is_client_error(), "{s}");
        // 10 parallel requests with one new key: one checkout runs
        let cart2 = h.cart(&[("A", 1)]).await;
        let h = Arc::new(h);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let h = h.clone();
            let c = cart2.clone();
            tasks.push(tokio::spawn(async move {
                h.checkout(&c, OK_CARD, "parallel").await
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        for t in tasks {
            let (s, v) = t.await.unwrap();
            match s {
                StatusCode::CREATED => {
                    ids.insert(v["id"].as_str().unwrap().to_string());
                }
                StatusCode::CONFLICT => assert_eq!(v["code"], "idempotency_in_progress", "{v}"),
                other => panic!("unexpected {other} {v}"),
            }
        }
        assert_eq!(ids.len(), 1, "one order for one key");
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 2);
        assert_eq!(available(&h, "A").await, (98, 0));
        match Arc::try_unwrap(h) {
            Ok(h) => h.cleanup().await,
            Err(_) => panic!("harness still shared"),
        }
    }
}

#[tokio::test]
async fn the_order_machine_refuses_skipped_steps_and_refunds_add_up_b6() {
    for h in H::all().await {
        h.stock("rennes", "B", 3).await;
        let cart = h.cart(&[("B", 2)]).await;
        let (_, order) = h.checkout(&cart, OK_CARD, "b6").await;
        let id = order["id"].as_str().unwrap().to_string();
        let post = |path: &'static str, body: Value, key: &'static str| {
            let h = &h;
            let id = id.clone();
            async move {
                h.call(
                    "POST",
                    &format!("/api/orders/{id}/{path}"),
                    Some(body),
                    &[
                        ("x-test-as", "store_manager:rennes"),
                        ("idempotency-key", key),
                    ],
                )
                .await
            }
        };
        // complete before fulfil
        let (s, v, _) = post("complete", json!({}), "c1").await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["code"], "invalid_transition");
        // a Brest manager cannot act on a Rennes order
        let (s, _, _) = h
            .call(
                "POST",
                &format!("/api/orders/{id}/fulfil"),
                Some(json!({})),
                &[("x-test-as", "store_manager:brest")],
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // refunds: too much, then part, replay, then the rest
        let (s, v, _) = post("refunds", json!({"amount": 999_999}), "r0").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        // a refused request frees its key: the same retry is refused again, not "in progress"
        let (s, v, _) = post("refunds", json!({"amount": 999_999}), "r0").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let (s, v, _) = post("refunds", json!({"amount": 1000}), "r1").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "partially_refunded");
        assert_eq!(v["refunded"], 1000);
        let (s, v, hdr) = post("refunds", json!({"amount": 1000}), "r1").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(hdr.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(v["refunded"], 1000, "a replay refunds nothing more");
        let (s, v, _) = post("refunds", json!({"amount": 4000}), "r2").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "refunded");
        // a refunded order cannot be fulfilled
        let (s, _, _) = post("fulfil", json!({}), "f1").await;
        assert_eq!(s, StatusCode::CONFLICT);
        let r = h.settle().await;
        assert_eq!((r.psp_captured, r.psp_refunded), (5000, 5000));
        h.cleanup().await;
    }
}

#[tokio::test]
async fn fulfil_complete_and_cancel_follow_the_machine() {
    for h in H::all().await {
        h.stock("rennes", "A", 4).await;
        let c1 = h.cart(&[("A", 1)]).await;
        let (_, o1) = h.checkout(&c1, OK_CARD, "f-1").await;
        let c2 = h.cart(&[("A", 2)]).await;
        let (_, o2) = h.checkout(&c2, OK_CARD, "f-2").await;
        let act = |id: Value, what: &'static str, key: &'static str| {
            let h = &h;
            async move {
                h.call(
                    "POST",
                    &format!("/api/orders/{}/{what}", id.as_str().unwrap()),
                    Some(json!({})),
                    &[
                        ("x-test-as", "store_manager:rennes"),
                        ("idempotency-key", key),
                    ],
                )
                .await
            }
        };
        let (s, v, _) = act(o1["id"].clone(), "fulfil", "a").await;
        assert_eq!(
            (s, v["status"].clone()),
            (StatusCode::OK, json!("fulfilled"))
        );
        let (s, v, _) = act(o1["id"].clone(), "complete", "b").await;
        assert_eq!(
            (s, v["status"].clone()),
            (StatusCode::OK, json!("completed"))
        );
        let (s, _, _) = act(o1["id"].clone(), "cancel", "c").await;
        assert_eq!(
            s,
            StatusCode::CONFLICT,
            "a collected order is not cancelled"
        );
        // cancelling a paid order refunds it and puts the stock back
        let (s, v, _) = act(o2["id"].clone(), "cancel", "d").await;
        assert_eq!(
            (s, v["status"].clone()),
            (StatusCode::OK, json!("cancelled")),
            "{v}"
        );
        assert_eq!(available(&h, "A").await, (3, 0));
        let (s, v, _) = act(o2["id"].clone(), "cancel", "d").await;
        assert_eq!(
            (s, v["status"].clone()),
            (StatusCode::OK, json!("cancelled")),
            "replay"
        );
        let r = h.settle().await;
        assert_eq!(r.psp_captured - r.psp_refunded, 1000);
        h.cleanup().await;
    }
}

#[tokio::test]
async fn the_recovery_worker_finishes_an_abandoned_saga() {
    for pg in [false, true] {
        if pg && testkit::postgres_url().is_none() {
            continue;
        }
        let h = H::with_bus(
            pg,
            Arc::new(InProcessBus::new()),
            Duration::from_millis(200),
        )
        .await;
        h.stock("rennes", "A", 5).await;
        let cart = h.cart(&[("A", 1)]).await;
        // a process started the saga, held the stock, then died
        let c = h.carts.get(cart.parse().unwrap(), None).await.unwrap();
        let plan = orders::domain::Plan {
            cart_id: c.id,
            customer: None,
            email: "x@example.org".into(),
            fulfilment: orders::domain::Fulfilment::Collect {
                store: "rennes".into(),
            },
            location: "rennes".into(),
            currency: "EUR".into(),
            lines: vec![orders::domain::OrderLine {
                sku: "A".into(),
                name: "A".into(),
                quantity: 1,
                unit_price: 1000,
                line_total: 1000,
            }],
            subtotal: 1000,
            shipping: 0,
            total: 1000,
            payment: payments::PaymentMethod::TestCard {
                number: OK_CARD.into(),
            },
        };
        let orders::saga::Start::New(id) = h
            .orders
            .start_checkout("test", "abandoned", "hash", &plan)
            .await
            .unwrap()
        else {
            panic!("new saga expected")
        };
        h.inventory
            .hold(
                id,
                "rennes",
                &[inventory::HoldLine {
                    sku: "A".into(),
                    quantity: 1,
                }],
                None,
            )
            .await
            .unwrap();
        assert_eq!(available(&h, "A").await, (5, 1));
        // the worker takes it over once the lease runs out
        testkit::eventually("the saga is recovered", Duration::from_secs(10), || async {
            h.orders.recover_once().await.unwrap();
            let s = orders::store::checkout(&h.orders.db, id)
                .await
                .unwrap()
                .unwrap();
            (s.state == "completed").then_some(())
        })
        .await;
        assert_eq!(available(&h, "A").await, (4, 0));
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 1);
        h.cleanup().await;
    }
}

#[tokio::test]
async fn a_lost_capture_response_is_retried_without_a_second_capture_f8() {
    for h in H::all().await {
        h.stock("rennes", "A", 5).await;
        h.faults.lose_capture_responses(2);
        let cart = h.cart(&[("A", 1)]).await;
        let (s, v) = h.checkout(&cart, OK_CARD, "lost").await;
        // the first answer may be "not finished yet": the client retries with its key
        let (s, v) = if s == StatusCode::SERVICE_UNAVAILABLE {
            testkit::eventually("the checkout finishes", Duration::from_secs(15), || async {
                h.orders.recover_once().await.unwrap();
                let (s, v) = h.checkout(&cart, OK_CARD, "lost").await;
                (s == StatusCode::CREATED).then_some((s, v))
            })
            .await
        } else {
            (s, v)
        };
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let r = h.settle().await;
        assert_eq!(r.psp_captured, 1000, "{}: captured once", h.backend);
        h.cleanup().await;
    }
}

#[tokio::test]
async fn stock_low_fires_once_and_holds_expire() {
    for h in H::all().await {
        h.stock("rennes", "A", 4).await;
        h.inventory.set_threshold("rennes", "A", 2).await.unwrap();
        let cart = h.cart(&[("A", 2)]).await;
        let (s, _) = h.checkout(&cart, OK_CARD, "low-1").await;
        assert_eq!(s, StatusCode::CREATED);
        let cart = h.cart(&[("A", 1)]).await;
        let (s, _) = h.checkout(&cart, OK_CARD, "low-2").await;
        assert_eq!(s, StatusCode::CREATED);
        h.settle().await;
        let alerts = orders::store::notifications(&h.orders.db, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.kind == "stock_alert")
            .count();
        assert_eq!(
            alerts, 1,
            "one alert when it crossed the threshold, not one per sale"
        );
        // an expired hold is released by the sweeper, and lazily by a buyer who needs it
        let id = Uuid::now_v7();
        h.inventory
            .hold(
                id,
                "rennes",
                &[inventory::HoldLine {
                    sku: "A".into(),
                    quantity: 1,
                }],
                Some(Duration::ZERO),
            )
            .await
            .unwrap();
        assert_eq!(available(&h, "A").await, (1, 1));
        let other = Uuid::now_v7();
        h.inventory
            .hold(
                other,
                "rennes",
                &[inventory::HoldLine {
                    sku: "A".into(),
                    quantity: 1,
                }],
                None,
            )
            .await
            .expect("the expired hold was reclaimed for this buyer");
        assert_eq!(
            h.inventory.hold_state(id).await.unwrap().as_deref(),
            Some("expired")
        );
        h.inventory.release(other).await.unwrap();
        let id = Uuid::now_v7();
        h.inventory
            .hold(
                id,
                "rennes",
                &[inventory::HoldLine {
                    sku: "A".into(),
                    quantity: 1,
                }],
                Some(Duration::ZERO),
            )
            .await
            .unwrap();
        assert_eq!(h.inventory.sweep().await.unwrap(), 1);
        assert_eq!(available(&h, "A").await, (1, 0));
        assert!(h.inventory.check().await.unwrap().is_empty());
        h.cleanup().await;
    }
}

/// F3: the broker goes away during checkouts. Checkouts go on (events wait in the outboxes),
/// the backlog drains once it is back, every event has exactly one effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkouts_continue_through_a_broker_outage_f3() {
    let Some(url) = testkit::rabbitmq_url() else {
        return;
    };
    for pg in [false, true] {
        if pg && testkit::postgres_url().is_none() {
            continue;
        }
        let prefix = format!("f3{}", &Uuid::new_v4().simple().to_string()[..10]);
        let (upstream, _) = testkit::proxy::split_url(&url, "127.0.0.1:1".parse().unwrap());
        let proxy = testkit::proxy::Proxy::start(upstream).await;
        let (_, through) = testkit::proxy::split_url(&url, proxy.addr);
        let bus = Arc::new(
            platform::rabbit::RabbitBus::connect(&through, &prefix)
                .await
                .expect("RabbitMQ through the proxy"),
        );
        let h = H::with_bus(pg, bus.clone(), Duration::from_secs(10)).await;
        h.stock("rennes", "A", 50).await;
        h.settle().await;
        proxy.cut();
        let mut acknowledged = 0;
        for i in 0..10 {
            let cart = h.cart(&[("A", 1)]).await;
            let (s, v) = h.checkout(&cart, OK_CARD, &format!("outage-{i}")).await;
            assert_eq!(s, StatusCode::CREATED, "checkout during the outage: {v}");
            acknowledged += 1;
        }
        let waiting = platform::bus::pending_count(&h.orders.db).await.unwrap();
        assert!(
            waiting >= 10,
            "events wait in the outbox while the broker is away ({waiting})"
        );
        proxy.restore();
        let r = h.settle().await;
        assert_eq!(r.paid_orders, acknowledged);
        let notes = orders::store::notifications(&h.orders.db, 1000)
            .await
            .unwrap();
        let placed = notes.iter().filter(|n| n.kind == "order_received").count();
        let paid = notes
            .iter()
            .filter(|n| n.kind == "order_confirmation")
            .count();
        assert_eq!((placed, paid), (10, 10), "each event once ({})", h.backend);
        h.cleanup().await;
        drop(bus);
        drop(proxy);
        let _ = platform::rabbit::delete_topology(
            &url,
            &prefix,
            &[
                orders::consumers::REFUNDS_GROUP,
                orders::consumers::NOTIFICATIONS_GROUP,
            ],
        )
        .await;
    }
}

/// D3: reconciliation finds a capture without an order, a paid order without a capture and an
/// amount mismatch in one run; the orphan capture is refunded automatically.
#[tokio::test]
async fn reconciliation_finds_and_refunds_what_does_not_add_up_d3() {
    for mut h in H::all().await {
        h.orders.settings.orphan_after = Duration::ZERO;
        h.stock("rennes", "A", 10).await;
        let cart = h.cart(&[("A", 1)]).await;
        let (s, order) = h.checkout(&cart, OK_CARD, "d3").await;
        assert_eq!(s, StatusCode::CREATED);
        h.settle().await;
        // 1. money captured with no order behind it (a checkout that never got that far)
        let orphan = Uuid::now_v7();
        let req = payments::AuthorizeRequest {
            payment_id: orphan,
            order_ref: "lost".into(),
            amount: 777,
            currency: kernel::Currency::EUR,
            method: payments::PaymentMethod::TestCard {
                number: OK_CARD.into(),
            },
            customer_email: None,
        };
        h.payments.authorize(&req).await.unwrap();
        h.payments.capture(orphan).await.unwrap();
        let r = orders::invariants::check(&h.orders, &h.books(), false)
            .await
            .unwrap();
        assert!(
            r.violations
                .iter()
                .any(|v| v.starts_with("I4") && v.contains(&orphan.to_string())),
            "{:?}",
            r.violations
        );
        assert_eq!(h.orders.refund_orphans().await.unwrap(), 1);
        assert_eq!(h.orders.refund_orphans().await.unwrap(), 0, "refunded once");
        let r = h.settle().await;
        assert_eq!(r.psp_refunded, 777);
        // 2. an amount mismatch between the order and its payment
        let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
        platform::db_run!(&h.orders.db, |p| sqlx::query(
            "UPDATE orders SET total = total + 1 WHERE id = $1"
        )
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
        .unwrap();
        let r = orders::invariants::check(&h.orders, &h.books(), false)
            .await
            .unwrap();
        assert!(
            r.violations.iter().any(|v| v.starts_with("I3 order")),
            "{:?}",
            r.violations
        );
        // 3. a paid order with no capture at all
        platform::db_run!(&h.orders.db, |p| sqlx::query(
            "UPDATE orders SET total = total - 1 WHERE id = $1"
        )
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
        .unwrap();
        platform::db_run!(h.payments.db(), |p| sqlx::query(
            "UPDATE payments SET captured = 0, status = 'authorized' WHERE id = $1"
        )
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
        .unwrap();
        let r = orders::invariants::check(&h.orders, &h.books(), false)
            .await
            .unwrap();
        assert!(
            r.violations.iter().any(|v| v.starts_with("I3")),
            "a paid order without its capture: {:?}",
            r.violations
        );
        h.cleanup().await;
    }
}

/// A card that asks the shopper to confirm (3-D Secure): the saga waits in
/// `awaiting_authorization`, the recovery worker polls the provider, and the checkout ends paid
/// once confirmed, or compensated (stock released, nothing charged) when the shopper fails it.
#[tokio::test]
async fn a_payment_that_needs_the_shoppers_confirmation_is_polled_to_its_end() {
    const NEEDS_ACTION: &str = "4000002500003155";
    for pg in [false, true] {
        if pg && testkit::postgres_url().is_none() {
            continue;
        }
        let h = H::with_bus(
            pg,
            Arc::new(InProcessBus::new()),
            Duration::from_millis(100),
        )
        .await;
        h.stock("rennes", "A", 5).await;
        for (approved, key) in [(true, "3ds-ok"), (false, "3ds-failed")] {
            let cart = h.cart(&[("A", 1)]).await;
            let (s, v) = h.checkout(&cart, NEEDS_ACTION, key).await;
            assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "not finished yet: {v}");
            let sagas = orders::store::checkouts_in(&h.orders.db, &["awaiting_authorization"], 10)
                .await
                .unwrap();
            assert_eq!(sagas.len(), 1, "{}", h.backend);
            let id = sagas[0].id;
            assert_eq!(available(&h, "A").await.1, 1, "the stock is held meanwhile");
            // while the shopper has not answered, a retry is told to come back
            let (s, _) = h.checkout(&cart, NEEDS_ACTION, key).await;
            assert_eq!(s, StatusCode::CONFLICT);
            assert!(
                payments::TestProvider::complete_action(h.payments.db(), id, approved)
                    .await
                    .unwrap()
            );
            let state = testkit::eventually("the saga ends", Duration::from_secs(15), || async {
                h.orders.recover_once().await.unwrap();
                let s = orders::store::checkout(&h.orders.db, id)
                    .await
                    .unwrap()
                    .unwrap();
                matches!(s.state.as_str(), "completed" | "compensated").then_some(s.state)
            })
            .await;
            let (s, v) = h.checkout(&cart, NEEDS_ACTION, key).await;
            if approved {
                assert_eq!(state, "completed");
                assert_eq!(
                    (s, v["status"].clone()),
                    (StatusCode::CREATED, json!("paid"))
                );
            } else {
                assert_eq!(state, "compensated");
                assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
                assert_eq!(v["code"], "payment_declined");
            }
        }
        assert_eq!(
            available(&h, "A").await,
            (4, 0),
            "one sold, the other released"
        );
        // a shopper who never answers: once the hold would have expired the saga gives up,
        // cancels the payment at the provider and releases the stock
        let mut h = h;
        h.orders.settings.hold_ttl = Duration::ZERO;
        let cart = h.cart(&[("A", 1)]).await;
        let (s, _) = h.checkout(&cart, NEEDS_ACTION, "3ds-silent").await;
        assert!(
            s == StatusCode::SERVICE_UNAVAILABLE || s == StatusCode::PAYMENT_REQUIRED,
            "{s}"
        );
        let (s, v) = testkit::eventually(
            "the silent checkout ends",
            Duration::from_secs(15),
            || async {
                h.orders.recover_once().await.unwrap();
                let (s, v) = h.checkout(&cart, NEEDS_ACTION, "3ds-silent").await;
                (s == StatusCode::PAYMENT_REQUIRED).then_some((s, v))
            },
        )
        .await;
        assert_eq!(
            (s, v["code"].clone()),
            (StatusCode::PAYMENT_REQUIRED, json!("payment_timeout"))
        );
        assert_eq!(available(&h, "A").await, (4, 0), "released");
        let r = h.settle().await;
        assert_eq!((r.paid_orders, r.psp_captured), (1, 1000));
        h.cleanup().await;
    }
}

/// I9: one cart, 20 concurrent checkouts with 20 different keys (a double click, two tabs, a
/// retry after a timeout): exactly one order and one charge; the 19 others get a clear 409
/// naming the checkout that holds the cart, and the stock is taken once. A signed-in
/// customer's cart likewise. SQLite; PostgreSQL with carts in Redis.
#[tokio::test]
async fn one_cart_pays_once_whatever_the_keys_i9() {
    for h in H::all().await {
        let be = format!("{}+{} carts", h.backend, h.cart_backend);
        h.stock("rennes", "A", 100).await;
        for customer in [false, true] {
            let who = "customer";
            let auth: Vec<(&str, &str)> = if customer {
                vec![("x-test-as", who)]
            } else {
                vec![]
            };
            let (s, v, _) = h.call("POST", "/api/carts", Some(json!({})), &auth).await;
            assert!(s.is_success(), "{be}: {s} {v}");
            let cart = v["id"].as_str().unwrap().to_string();
            let (s, v, _) = h
                .call(
                    "POST",
                    &format!("/api/carts/{cart}/lines"),
                    Some(json!({"sku": "A", "quantity": 2})),
                    &auth,
                )
                .await;
            assert!(s.is_success(), "{be}: {s} {v}");
            let before = available(&h, "A").await;
            let body = json!({
                "cart_id": cart,
                "email": "client@example.org",
                "fulfilment": {"type": "collect", "store": "rennes"},
                "payment": {"type": "test_card", "number": OK_CARD},
            });
            let tries = (0..20).map(|i| {
                let h = &h;
                let body = body.clone();
                let auth = auth.clone();
                async move {
                    let key = format!("click-{customer}-{i}");
                    let mut headers = auth;
                    headers.push(("idempotency-key", key.as_str()));
                    let (s, v, _) = h.call("POST", "/api/checkout", Some(body), &headers).await;
                    (s, v)
                }
            });
            let answers = futures_util::future::join_all(tries).await;
            let created: Vec<&Value> = answers
                .iter()
                .filter(|(s, _)| *s == StatusCode::CREATED)
                .map(|(_, v)| v)
                .collect();
            assert_eq!(created.len(), 1, "{be} customer={customer}: {answers:?}");
            let order = created[0]["id"].as_str().unwrap();
            for (s, v) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
                assert_eq!(*s, StatusCode::CONFLICT, "{be}: {v}");
                let code = v["code"].as_str().unwrap_or("");
                assert!(
                    code == "cart_checkout_in_progress" || code == "cart_checked_out",
                    "{be}: {v}"
                );
                assert!(
                    v["detail"].as_str().unwrap_or("").contains(order),
                    "{be}: the refusal names the checkout that holds the cart: {v}"
                );
            }
            assert_eq!(
                available(&h, "A").await,
                (before.0 - 2, 0),
                "{be}: the stock is taken once"
            );
            // a customer's cart is named only to that customer: another account gets the 404
            // a stranger gets for the cart itself
            if customer {
                let (s, v, _) = h
                    .call(
                        "POST",
                        "/api/checkout",
                        Some(body.clone()),
                        &[
                            ("x-test-as", "customer:other"),
                            ("idempotency-key", "stranger"),
                        ],
                    )
                    .await;
                assert_eq!(s, StatusCode::NOT_FOUND, "{be}: {v}");
                assert!(!v.to_string().contains(order), "{be}: {v}");
            }
            // and later, with yet another key, still no second order
            let mut headers = auth.clone();
            headers.push(("idempotency-key", "late"));
            let (s, v, _) = h
                .call("POST", "/api/checkout", Some(body.clone()), &headers)
                .await;
            assert!(
                s == StatusCode::CONFLICT || s == StatusCode::NOT_FOUND,
                "{be}: {s} {v}"
            );
        }
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 2, "{be}: one paid order per cart: {r:?}");
        assert_eq!(
            r.psp_captured, 4000,
            "{be}: one charge per cart (2 × 2 × 1000): {r:?}"
        );
        h.cleanup().await;
    }
}

/// A declined card releases the cart: the shopper retries with another card (and another key)
/// and pays; the earlier attempt does not block it.
#[tokio::test]
async fn a_declined_checkout_frees_its_cart_for_a_retry_i9() {
    for h in H::all().await {
        h.stock("rennes", "A", 10).await;
        let cart = h.cart(&[("A", 1)]).await;
        let (s, v) = h.checkout(&cart, DECLINED, "try-1").await;
        assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{}: {v}", h.backend);
        assert_eq!(v["type"], "urn:comptoir:problem:payment_declined", "{v}");
        assert_eq!(v["code"], "payment_declined");
        let (s, v) = h.checkout(&cart, OK_CARD, "try-2").await;
        assert_eq!(s, StatusCode::CREATED, "{}: {v}", h.backend);
        h.settle().await;
        h.cleanup().await;
    }
}

/// The same key with another cart is another request: 422, and no second checkout (guests
/// and customers alike).
#[tokio::test]
async fn a_key_reused_with_another_cart_is_refused() {
    for h in H::all().await {
        h.stock("rennes", "A", 10).await;
        let c1 = h.cart(&[("A", 1)]).await;
        let c2 = h.cart(&[("A", 1)]).await;
        let (s, v) = h.checkout(&c1, OK_CARD, "K").await;
        assert_eq!(s, StatusCode::CREATED, "{}: {v}", h.backend);
        let (s, v) = h.checkout(&c2, OK_CARD, "K").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {v}", h.backend);
        assert_eq!(v["code"], "idempotency_key_reused");
        assert_eq!(available(&h, "A").await, (9, 0), "{}", h.backend);
        // the first request again is a replay
        let (s, _) = h.checkout(&c1, OK_CARD, "K").await;
        assert_eq!(s, StatusCode::CREATED);
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 1);
        h.cleanup().await;
    }
}
