//! The inventory service through its real HTTP router (in process), on SQLite always and on
//! PostgreSQL when `COMPTOIR_TEST_POSTGRES_URL` is set: public availability, movements and
//! transfers under the role and location rules, bad quantities (B4), idempotent retries (D2),
//! scoped listings and low-stock filters, the ledger check (and that it can fail), and the
//! events written to the outbox.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use inventory::http::{InventoryState, router};
use inventory::service::StockLevel;
use inventory::{FixedSkus, HoldLine, Inventory, MovementKind};
use kernel::SystemClock;
use platform::auth::{InternalKey, accept_internal_identity};
use platform::authz::{Principal, PrincipalKind, Role};
use platform::idempotency::Idempotency;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use testkit::TestDb;
use tower::ServiceExt;
use uuid::Uuid;

/// What the catalogue of these tests knows (`ZZ`: a SKU that exists but was never received).
const KNOWN_SKUS: [&str; 4] = ["A", "B", "C", "ZZ"];
const HQ: &str = "head_office";
const RENNES: &str = "store_manager:rennes";
const CLERK: &str = "clerk:rennes";

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

struct Res {
    status: StatusCode,
    body: Value,
    headers: HeaderMap,
}

impl Res {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

struct H {
    router: Router,
    inv: Inventory,
    db: TestDb,
}

impl H {
    async fn all() -> Vec<H> {
        let mut out = Vec::new();
        for db in TestDb::all(inventory::migrations()).await {
            out.push(H::new(db).await);
        }
        out
    }

    async fn new(db: TestDb) -> H {
        let inv = Inventory {
            db: db.db.clone(),
            clock: Arc::new(SystemClock),
            relay: None,
            hold_ttl: Duration::from_secs(900),
            skus: Arc::new(FixedSkus::new(KNOWN_SKUS)),
        };
        inventory::demo::seed_locations(&inv).await.unwrap();
        let key = InternalKey::new(b"inventory-suite-secret-inventory");
        let k2 = key.clone();
        let router = router(InventoryState {
            inventory: inv.clone(),
            idempotency: Idempotency::new(db.db.clone()),
        })
        .layer(axum::middleware::from_fn(move |req, next| {
            accept_internal_identity(Some(key.clone()), req, next)
        }))
        .layer(axum::middleware::from_fn(move |req, next| {
            as_gateway(k2.clone(), req, next)
        }));
        H { router, inv, db }
    }

    fn backend(&self) -> &'static str {
        self.db.backend
    }

    async fn cleanup(self) {
        self.db.cleanup().await;
    }

    /// A request with a raw body (sent as JSON when given).
    async fn raw(
        &self,
        method: &str,
        path: &str,
        who: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Res {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(w) = who {
            b = b.header("x-test-as", w);
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(s) => b
                .header("content-type", "application/json")
                .body(Body::from(s.to_string()))
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
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Res {
            status,
            body,
            headers,
        }
    }

    async fn get(&self, path: &str, who: Option<&str>) -> Res {
        self.raw("GET", path, who, None, &[]).await
    }

    async fn post(&self, path: &str, who: Option<&str>, body: Value) -> Res {
        self.raw("POST", path, who, Some(&body.to_string()), &[])
            .await
    }

    async fn movement(
        &self,
        who: Option<&str>,
        location: &str,
        sku: &str,
        kind: &str,
        quantity: i64,
    ) -> Res {
        self.post(
            "/api/inventory/movements",
            who,
            json!({"location": location, "sku": sku, "kind": kind, "quantity": quantity,
                "reason": "test"}),
        )
        .await
    }

    async fn transfer(&self, who: Option<&str>, from: &str, to: &str, sku: &str, q: i64) -> Res {
        self.post(
            "/api/inventory/transfers",
            who,
            json!({"from": from, "to": to, "sku": sku, "quantity": q, "reason": "rebalance"}),
        )
        .await
    }

    /// Stock received directly through the service (the set-up of a test).
    async fn stock(&self, location: &str, sku: &str, units: i64) {
        self.inv
            .record(
                location,
                sku,
                MovementKind::Receipt,
                units,
                "set-up",
                "test",
            )
            .await
            .unwrap();
    }

    async fn level(&self, location: &str, sku: &str) -> Option<(i64, i64)> {
        self.inv
            .level(location, sku)
            .await
            .unwrap()
            .map(|l: StockLevel| (l.on_hand, l.held))
    }

    async fn ledger_rows(&self) -> i64 {
        platform::db_run!(&self.db.db, |p| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM movements"
        )
        .fetch_one(p)
        .await)
        .unwrap()
    }

    /// The ledger rows of one SKU as (location, kind, on_hand_delta), oldest first.
    async fn ledger_of(&self, sku: &str) -> Vec<(String, String, i64)> {
        platform::db_run!(&self.db.db, |p| sqlx::query_as::<_, (String, String, i64)>(
            "SELECT location, kind, on_hand_delta FROM movements WHERE sku = $1 \
             ORDER BY created_at, id"
        )
        .bind(sku)
        .fetch_all(p)
        .await)
        .unwrap()
    }

    /// Payloads of the outbox rows of a topic, oldest first.
    async fn outbox(&self, topic: &str) -> Vec<Value> {
        let rows: Vec<String> = platform::db_run!(&self.db.db, |p| sqlx::query_scalar(
            "SELECT payload FROM outbox WHERE topic = $1 ORDER BY created_at, id"
        )
        .bind(topic)
        .fetch_all(p)
        .await)
        .unwrap();
        rows.iter()
            .map(|s| serde_json::from_str(s).unwrap())
            .collect()
    }

    async fn outbox_rows(&self) -> i64 {
        platform::db_run!(&self.db.db, |p| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM outbox"
        )
        .fetch_one(p)
        .await)
        .unwrap()
    }

    /// Head office's ledger check says every counter matches the ledger.
    async fn assert_consistent(&self) {
        let r = self.get("/api/inventory/check", Some(HQ)).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", self.backend(), r.body);
        assert_eq!(
            r.body["consistent"],
            json!(true),
            "{}: {}",
            self.backend(),
            r.body
        );
        assert_eq!(r.body["mismatches"], json!([]), "{}", self.backend());
    }
}

/// (location, sku) → field, from a list of levels.
fn by_location(list: &Value, field: &str) -> BTreeMap<(String, String), i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                (
                    l["location"].as_str().unwrap().to_string(),
                    l["sku"].as_str().unwrap().to_string(),
                ),
                l[field].as_i64().unwrap(),
            )
        })
        .collect()
}

fn line(sku: &str, quantity: i64) -> HoldLine {
    HoldLine {
        sku: sku.into(),
        quantity,
    }
}

#[tokio::test]
async fn locations_and_availability_are_public() {
    for h in H::all().await {
        let be = h.backend();
        let r = h.get("/api/inventory/locations", None).await;
        assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
        let locs = r.body.as_array().unwrap();
        assert_eq!(
            locs.len(),
            7,
            "{be}: head office, logistics centre, 5 stores"
        );
        let find = |code: &str| {
            locs.iter()
                .find(|l| l["code"] == code)
                .unwrap_or_else(|| panic!("{be}: {code} listed"))
        };
        assert_eq!(find("rennes")["click_and_collect"], json!(true));
        assert_eq!(find("rennes")["kind"], json!("store"));
        assert_eq!(find("logistique")["ships"], json!(true));
        assert_eq!(find("siege")["kind"], json!("head_office"));

        h.stock("rennes", "A", 5).await;
        h.stock("brest", "A", 2).await;
        h.stock("logistique", "B", 30).await;
        h.stock("logistique", "C", 9).await;
        // a checkout holds 2 at Rennes: the storefront shows what is left to sell
        h.inv
            .hold(Uuid::now_v7(), "rennes", &[line("A", 2)], None)
            .await
            .unwrap();

        let r = h.get("/api/inventory/availability?skus=A,B", None).await;
        assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
        let got = by_location(&r.body, "available");
        let want: BTreeMap<_, _> = [
            (("brest", "A"), 2),
            (("logistique", "B"), 30),
            (("rennes", "A"), 3),
        ]
        .into_iter()
        .map(|((l, s), q)| ((l.to_string(), s.to_string()), q))
        .collect();
        assert_eq!(
            got, want,
            "{be}: available per location, only the asked SKUs"
        );
        assert!(
            r.body.as_array().unwrap()[0].get("on_hand").is_none(),
            "{be}: the public view shows what is available, not the counters"
        );

        let r = h.get("/api/inventory/availability?skus=NOPE", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, json!([]), "{be}: an unknown SKU has no stock");
        let r = h.get("/api/inventory/availability", None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{be}: skus is required");
        assert_eq!(r.code(), "invalid_query");

        h.assert_consistent().await;
        h.cleanup().await;
    }
}

#[tokio::test]
async fn movements_follow_roles_and_locations() {
    for h in H::all().await {
        let be = h.backend();
        let r = h.movement(Some(RENNES), "rennes", "A", "receipt", 10).await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert_eq!(r.body["location"], "rennes");
        assert_eq!(r.body["sku"], "A");
        assert_eq!(r.body["on_hand"], 10);
        assert_eq!(r.body["held"], 0);
        assert_eq!(r.body["available"], 10);

        let r = h
            .movement(Some(RENNES), "rennes", "A", "adjustment", -3)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert_eq!(r.body["on_hand"], 7);
        let r = h
            .movement(Some(RENNES), "rennes", "A", "adjustment", 2)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert_eq!(r.body["on_hand"], 9);
        assert_eq!(r.body["available"], 9);
        assert_eq!(h.level("rennes", "A").await, Some((9, 0)));
        assert_eq!(h.ledger_rows().await, 3);

        // the actor and the kinds are in the ledger
        let r = h
            .get(
                "/api/inventory/movements?location=rennes&sku=A",
                Some(RENNES),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let kinds: Vec<(&str, i64, &str)> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["kind"].as_str().unwrap(),
                    m["on_hand_delta"].as_i64().unwrap(),
                    m["actor"].as_str().unwrap(),
                )
            })
            .collect();
        let actor = "store_manager:rennes-user";
        assert_eq!(
            kinds,
            vec![
                ("adjustment", 2, actor),
                ("adjustment", -3, actor),
                ("receipt", 10, actor)
            ],
            "{be}: newest first"
        );

        // another store: as if it did not exist, and nothing changes there
        for (kind, q) in [("receipt", 5), ("adjustment", -1), ("adjustment", 1)] {
            let r = h.movement(Some(RENNES), "brest", "A", kind, q).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {kind} {}", r.body);
            assert_eq!(r.code(), "not_found");
        }
        assert_eq!(h.level("brest", "A").await, None, "{be}");

        // a clerk reads stock but does not change it
        let r = h.movement(Some(CLERK), "rennes", "A", "receipt", 5).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}: {}", r.body);
        assert_eq!(r.code(), "forbidden");
        // a customer neither
        let r = h
            .movement(Some("customer"), "rennes", "A", "receipt", 5)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}: {}", r.body);
        // nobody signed in
        let r = h.movement(None, "rennes", "A", "receipt", 5).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{be}: {}", r.body);
        assert_eq!(r.code(), "unauthenticated");
        assert_eq!(h.level("rennes", "A").await, Some((9, 0)), "{be}");
        assert_eq!(
            h.ledger_rows().await,
            3,
            "{be}: refused calls write nothing"
        );

        // head office acts for any location, but not for one that does not exist
        let r = h.movement(Some(HQ), "brest", "A", "receipt", 4).await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert_eq!(h.level("brest", "A").await, Some((4, 0)));
        let r = h.movement(Some(HQ), "nowhere", "A", "receipt", 4).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {}", r.body);
        assert_eq!(r.code(), "not_found");
        // warehouse staff act for the logistics centre only
        let r = h
            .movement(
                Some("warehouse:logistique"),
                "logistique",
                "A",
                "receipt",
                8,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        let r = h
            .movement(Some("warehouse:logistique"), "rennes", "A", "receipt", 8)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {}", r.body);
        assert_eq!(h.ledger_rows().await, 5, "{be}");

        h.assert_consistent().await;
        h.cleanup().await;
    }
}

#[tokio::test]
async fn an_adjustment_below_what_is_available_is_refused() {
    for h in H::all().await {
        let be = h.backend();
        h.stock("rennes", "A", 5).await;
        h.inv
            .hold(Uuid::now_v7(), "rennes", &[line("A", 2)], None)
            .await
            .unwrap();
        let ledger = h.ledger_rows().await;
        let events = h.outbox_rows().await;

        // 3 are available (2 are held for a checkout): taking 4 would sell held units
        let r = h
            .movement(Some(RENNES), "rennes", "A", "adjustment", -4)
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{be}: {}", r.body);
        assert_eq!(r.code(), "out_of_stock");
        let errors = r.body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{be}: {}", r.body);
        assert_eq!(errors[0]["field"], "A", "{be}: the SKU is named");
        assert_eq!(errors[0]["code"], "out_of_stock");
        assert_eq!(h.level("rennes", "A").await, Some((5, 2)), "{be}");
        assert_eq!(h.ledger_rows().await, ledger, "{be}");
        assert_eq!(
            h.outbox_rows().await,
            events,
            "{be}: no event for a refusal"
        );

        // a SKU never received has nothing to take
        let r = h
            .movement(Some(RENNES), "rennes", "ZZ", "adjustment", -1)
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{be}: {}", r.body);
        assert_eq!(r.body["errors"][0]["field"], "ZZ");
        assert_eq!(h.level("rennes", "ZZ").await, None);

        // exactly what is available is fine
        let r = h
            .movement(Some(RENNES), "rennes", "A", "adjustment", -3)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert_eq!(r.body["on_hand"], 2);
        assert_eq!(r.body["held"], 2);
        assert_eq!(r.body["available"], 0);

        h.assert_consistent().await;
        h.cleanup().await;
    }
}

#[tokio::test]
async fn bad_quantities_and_bodies_are_refused_and_change_nothing() {
    for h in H::all().await {
        let be = h.backend();
        h.stock("rennes", "A", 5).await;
        let ledger = h.ledger_rows().await;
        let events = h.outbox_rows().await;
        let body = |kind: &str, q: &str| {
            format!(
                r#"{{"location":"rennes","sku":"A","kind":"{kind}","quantity":{q},"reason":"x"}}"#
            )
        };
        let long_sku = "S".repeat(65);
        let cases: Vec<(String, StatusCode, &str)> = vec![
            (
                body("receipt", "0"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("receipt", "-1"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("adjustment", "0"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            // 2^31: fits an i64, but past the largest quantity of one movement
            (
                body("receipt", "2147483648"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("adjustment", "-2147483648"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("receipt", "1000001"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            // i64::MIN: its absolute value does not exist
            (
                body("adjustment", "-9223372036854775808"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            // 2^63 and beyond: not an i64 at all
            (
                body("receipt", "9223372036854775808"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                body("adjustment", "-9223372036854775809"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                body("receipt", "1e3"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                body("receipt", "1.5"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                body("receipt", r#""5""#),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                body("receipt", "null"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            // kinds that only checkouts and transfers write
            (
                body("sale", "1"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("transfer_in", "1"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("teleport", "1"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            // unknown fields are refused, not ignored
            (
                r#"{"location":"rennes","sku":"A","kind":"receipt","quantity":1,"reason":"x","on_hand":99}"#
                    .to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                r#"{"location":"rennes","sku":"A","kind":"receipt","reason":"x"}"#.to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                r#"{"location":"rennes","sku":"A","kind":"receipt","quantity":1,"reason":"  "}"#
                    .to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_reason",
            ),
            (
                format!(
                    r#"{{"location":"rennes","sku":"{long_sku}","kind":"receipt","quantity":1,"reason":"x"}}"#
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                r#"{"location":"rennes","sku":"","kind":"receipt","quantity":1,"reason":"x"}"#
                    .to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                r#"{"location":"rennes","sku":"A","#.to_string(),
                StatusCode::BAD_REQUEST,
                "malformed_json",
            ),
        ];
        for (b, status, code) in &cases {
            let r = h
                .raw(
                    "POST",
                    "/api/inventory/movements",
                    Some(RENNES),
                    Some(b),
                    &[],
                )
                .await;
            assert_eq!(r.status, *status, "{be}: {b} → {}", r.body);
            assert_eq!(r.code(), *code, "{be}: {b} → {}", r.body);
        }
        // the field at fault is named
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(&body("receipt", r#""5""#)),
                &[],
            )
            .await;
        assert_eq!(r.body["errors"][0]["field"], "quantity", "{be}: {}", r.body);
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(
                    r#"{"location":"rennes","sku":"A","kind":"receipt","quantity":1,"reason":"x","on_hand":99}"#,
                ),
                &[],
            )
            .await;
        assert_eq!(r.body["errors"][0]["code"], "unknown_field", "{be}");
        // not JSON at all
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                None,
                &[("content-type", "text/plain")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{be}");

        // transfers check their quantities the same way
        for (q, status, code) in [
            (
                "0",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                "-1",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                "2147483648",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                "9223372036854775808",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (r#""1""#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ] {
            let b = format!(
                r#"{{"from":"rennes","to":"brest","sku":"A","quantity":{q},"reason":"x"}}"#
            );
            let r = h
                .raw("POST", "/api/inventory/transfers", Some(HQ), Some(&b), &[])
                .await;
            assert_eq!(r.status, status, "{be}: transfer {q} → {}", r.body);
            assert_eq!(r.code(), code, "{be}: transfer {q} → {}", r.body);
        }
        let r = h
            .raw(
                "POST",
                "/api/inventory/transfers",
                Some(HQ),
                Some(r#"{"from":"rennes","to":"brest","sku":"A","quantity":1,"reason":"x","x":1}"#),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{be}");
        assert_eq!(r.body["errors"][0]["code"], "unknown_field", "{be}");

        // thresholds too
        for t in ["-1", "1000001", "9223372036854775808", r#""3""#] {
            let r = h
                .raw(
                    "PUT",
                    "/api/inventory/stock/rennes/A/threshold",
                    Some(RENNES),
                    Some(&format!(r#"{{"threshold":{t}}}"#)),
                    &[],
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{be}: threshold {t} → {}",
                r.body
            );
        }

        assert_eq!(h.level("rennes", "A").await, Some((5, 0)), "{be}");
        assert_eq!(h.level("brest", "A").await, None, "{be}");
        assert_eq!(h.ledger_rows().await, ledger, "{be}: nothing in the ledger");
        assert_eq!(h.outbox_rows().await, events, "{be}: no event");
        let levels = h.inv.levels(None, None, false, 1000).await.unwrap();
        assert_eq!(levels.len(), 1, "{be}: no stock row was created");
        assert_eq!(levels[0].low_threshold, 0, "{be}: no threshold was set");
        h.assert_consistent().await;
        h.cleanup().await;
    }
}

#[tokio::test]
async fn idempotency_key_on_movements_records_once() {
    for h in H::all().await {
        let be = h.backend();
        let body = r#"{"location":"rennes","sku":"A","kind":"receipt","quantity":4,"reason":"delivery 17"}"#;
        let key = [("idempotency-key", "delivery-17")];
        let first = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(body),
                &key,
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{be}: {}", first.body);
        assert!(first.headers.get("idempotent-replayed").is_none());
        assert_eq!(first.body["on_hand"], 4);

        let again = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(body),
                &key,
            )
            .await;
        assert_eq!(again.status, StatusCode::CREATED, "{be}: {}", again.body);
        assert_eq!(again.body, first.body, "{be}: the same answer");
        assert_eq!(
            again
                .headers
                .get("idempotent-replayed")
                .and_then(|v| v.to_str().ok()),
            Some("true"),
            "{be}"
        );
        assert_eq!(h.level("rennes", "A").await, Some((4, 0)), "{be}");
        assert_eq!(h.ledger_of("A").await.len(), 1, "{be}: one movement");
        assert_eq!(h.outbox("stock.changed").await.len(), 1, "{be}: one event");

        // the same key with another body is a client bug: refused, nothing recorded
        let other = r#"{"location":"rennes","sku":"A","kind":"receipt","quantity":40,"reason":"delivery 17"}"#;
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(other),
                &key,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{be}: {}",
            r.body
        );
        assert_eq!(r.code(), "idempotency_key_reused");
        assert_eq!(h.level("rennes", "A").await, Some((4, 0)), "{be}");
        assert_eq!(h.ledger_of("A").await.len(), 1, "{be}");

        // another caller's key of the same name is theirs
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(HQ),
                Some(body),
                &key,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert!(r.headers.get("idempotent-replayed").is_none(), "{be}");
        assert_eq!(r.body["on_hand"], 8);

        // a refused request does not use its key up: the retry after a fix runs
        let take = r#"{"location":"rennes","sku":"A","kind":"adjustment","quantity":-10,"reason":"breakage"}"#;
        let k2 = [("idempotency-key", "breakage-1")];
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(take),
                &k2,
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{be}: {}", r.body);
        h.stock("rennes", "A", 2).await;
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(take),
                &k2,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert!(r.headers.get("idempotent-replayed").is_none(), "{be}");
        assert_eq!(r.body["on_hand"], 0);

        // a malformed key is refused before anything runs
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(body),
                &[("idempotency-key", "has space")],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{be}: {}", r.body);
        assert_eq!(r.code(), "invalid_idempotency_key");
        assert_eq!(h.level("rennes", "A").await, Some((0, 0)), "{be}");

        h.assert_consistent().await;
        h.cleanup().await;
    }
}

#[tokio::test]
async fn transfers_move_units_between_locations() {
    for h in H::all().await {
        let be = h.backend();
        h.stock("rennes", "A", 10).await;
        let r = h.transfer(Some(RENNES), "rennes", "brest", "A", 4).await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert_eq!(
            r.body,
            json!({"from": "rennes", "to": "brest", "sku": "A", "quantity": 4})
        );
        assert_eq!(h.level("rennes", "A").await, Some((6, 0)), "{be}");
        assert_eq!(h.level("brest", "A").await, Some((4, 0)), "{be}");
        let ledger = h.ledger_of("A").await;
        let s = |l: &str, k: &str, d: i64| (l.to_string(), k.to_string(), d);
        let moved: BTreeSet<_> = ledger[1..].iter().cloned().collect();
        let want: BTreeSet<_> = [
            s("rennes", "transfer_out", -4),
            s("brest", "transfer_in", 4),
        ]
        .into_iter()
        .collect();
        assert_eq!(moved, want, "{be}: two ledger rows");
        assert_eq!(ledger.len(), 3, "{be}");

        // from a location the caller may not act for: 404, nothing moves
        h.stock("brest", "A", 6).await;
        let r = h.transfer(Some(RENNES), "brest", "rennes", "A", 1).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {}", r.body);
        assert_eq!(r.code(), "not_found");
        // more than available: 409, the SKU named, nothing moves
        let r = h.transfer(Some(RENNES), "rennes", "brest", "A", 7).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{be}: {}", r.body);
        assert_eq!(r.code(), "out_of_stock");
        assert_eq!(r.body["errors"][0]["field"], "A");
        // units held for a checkout cannot leave
        h.inv
            .hold(Uuid::now_v7(), "rennes", &[line("A", 5)], None)
            .await
            .unwrap();
        let r = h.transfer(Some(RENNES), "rennes", "brest", "A", 2).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{be}: {}", r.body);
        // to nowhere, to itself
        let r = h.transfer(Some(RENNES), "rennes", "nowhere", "A", 1).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {}", r.body);
        let r = h.transfer(Some(RENNES), "rennes", "rennes", "A", 1).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{be}: {}",
            r.body
        );
        assert_eq!(r.code(), "invalid_stock_change");
        // a clerk may not, nobody signed in may not
        let r = h.transfer(Some(CLERK), "rennes", "brest", "A", 1).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}: {}", r.body);
        let r = h.transfer(None, "rennes", "brest", "A", 1).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{be}: {}", r.body);
        assert_eq!(h.level("rennes", "A").await, Some((6, 5)), "{be}");
        assert_eq!(h.level("brest", "A").await, Some((10, 0)), "{be}");
        assert_eq!(
            h.ledger_of("A").await.len(),
            5,
            "{be}: receipt, 2 transfer, receipt, hold"
        );

        // head office moves between any two; a retried transfer moves once
        let b = r#"{"from":"brest","to":"logistique","sku":"A","quantity":3,"reason":"return"}"#;
        let k = [("idempotency-key", "t-1")];
        let first = h
            .raw("POST", "/api/inventory/transfers", Some(HQ), Some(b), &k)
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{be}: {}", first.body);
        let again = h
            .raw("POST", "/api/inventory/transfers", Some(HQ), Some(b), &k)
            .await;
        assert_eq!(again.status, StatusCode::CREATED, "{be}");
        assert_eq!(again.body, first.body);
        assert_eq!(
            again.headers.get("idempotent-replayed").unwrap(),
            "true",
            "{be}"
        );
        assert_eq!(h.level("brest", "A").await, Some((7, 0)), "{be}");
        assert_eq!(h.level("logistique", "A").await, Some((3, 0)), "{be}");
        assert_eq!(h.ledger_of("A").await.len(), 7, "{be}");

        h.assert_consistent().await;
        h.cleanup().await;
    }
}

#[tokio::test]
async fn listings_are_scoped_and_filter_low_stock() {
    for h in H::all().await {
        let be = h.backend();
        h.stock("rennes", "A", 10).await;
        h.stock("rennes", "B", 3).await;
        h.stock("brest", "A", 2).await;
        h.stock("logistique", "C", 50).await;

        let locations = |r: &Res| -> Vec<String> {
            r.body
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["location"].as_str().unwrap().to_string())
                .collect()
        };
        for who in [RENNES, CLERK] {
            let r = h.get("/api/inventory/stock", Some(who)).await;
            assert_eq!(r.status, StatusCode::OK, "{be}: {who} {}", r.body);
            assert_eq!(locations(&r), ["rennes", "rennes"], "{be}: {who}");
            let r = h
                .get("/api/inventory/stock?location=rennes", Some(who))
                .await;
            assert_eq!(locations(&r), ["rennes", "rennes"], "{be}: {who}");
            let r = h
                .get("/api/inventory/stock?location=brest", Some(who))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {who} {}", r.body);
            assert_eq!(r.code(), "not_found");
            let r = h.get("/api/inventory/movements", Some(who)).await;
            assert_eq!(r.status, StatusCode::OK, "{be}: {who} {}", r.body);
            assert_eq!(locations(&r), ["rennes", "rennes"], "{be}: {who}");
            let r = h
                .get("/api/inventory/movements?location=brest", Some(who))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {who} {}", r.body);
        }
        let r = h.get("/api/inventory/stock", Some(HQ)).await;
        assert_eq!(r.status, StatusCode::OK);
        let all = by_location(&r.body, "on_hand");
        assert_eq!(all.len(), 4, "{be}: head office sees every location");
        assert_eq!(all[&("brest".to_string(), "A".to_string())], 2);
        let r = h.get("/api/inventory/stock?location=brest", Some(HQ)).await;
        assert_eq!(locations(&r), ["brest"], "{be}");
        let r = h.get("/api/inventory/stock?sku=A", Some(HQ)).await;
        assert_eq!(locations(&r), ["brest", "rennes"], "{be}");
        let r = h.get("/api/inventory/movements", Some(HQ)).await;
        assert_eq!(r.body.as_array().unwrap().len(), 4, "{be}");
        let r = h.get("/api/inventory/stock", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{be}");
        let r = h.get("/api/inventory/stock", Some("customer")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}");
        let r = h.get("/api/inventory/movements", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{be}");
        let r = h.get("/api/inventory/stock?low=maybe", Some(HQ)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{be}");
        assert_eq!(r.code(), "invalid_query");

        // no thresholds yet: nothing is low
        let r = h.get("/api/inventory/stock?low=true", Some(HQ)).await;
        assert_eq!(r.body, json!([]), "{be}");

        let threshold =
            |loc: &str, sku: &str| format!("/api/inventory/stock/{loc}/{sku}/threshold");
        let put = |path: String, who: &'static str, t: i64| {
            let h = &h;
            async move {
                h.raw(
                    "PUT",
                    &path,
                    Some(who),
                    Some(&json!({ "threshold": t }).to_string()),
                    &[],
                )
                .await
            }
        };
        let r = put(threshold("rennes", "A"), RENNES, 5).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{be}: {}", r.body);
        let r = put(threshold("brest", "A"), RENNES, 5).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: another store's");
        let r = put(threshold("rennes", "A"), CLERK, 5).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}: a clerk's");
        let r = put(threshold("nowhere", "A"), HQ, 5).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}");
        let r = put(threshold("brest", "A"), HQ, 2).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{be}");

        // Rennes A: 10 > 5, not low; Brest A: 2 <= 2, low
        let r = h.get("/api/inventory/stock?low=true", Some(HQ)).await;
        assert_eq!(
            by_location(&r.body, "available")
                .into_keys()
                .collect::<Vec<_>>(),
            [("brest".to_string(), "A".to_string())],
            "{be}: at the threshold is low: {}",
            r.body
        );
        let r = h.get("/api/inventory/stock?low=true", Some(RENNES)).await;
        assert_eq!(r.body, json!([]), "{be}: Rennes has nothing low yet");

        // Rennes sells down to its threshold
        let r = h
            .movement(Some(RENNES), "rennes", "A", "adjustment", -5)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert_eq!(r.body["low"], true, "{be}: {}", r.body);
        let r = h.get("/api/inventory/stock?low=true", Some(RENNES)).await;
        assert_eq!(locations(&r), ["rennes"], "{be}: {}", r.body);
        assert_eq!(r.body[0]["sku"], "A");
        assert_eq!(r.body[0]["available"], 5);
        assert_eq!(r.body[0]["low_threshold"], 5);
        assert_eq!(r.body[0]["low"], true);
        let r = h.get("/api/inventory/stock?low=true", Some(HQ)).await;
        assert_eq!(r.body.as_array().unwrap().len(), 2, "{be}: {}", r.body);

        // a checkout's hold makes stock low too: what is left to sell counts
        put(threshold("rennes", "B"), RENNES, 1).await;
        h.inv
            .hold(Uuid::now_v7(), "rennes", &[line("B", 2)], None)
            .await
            .unwrap();
        let r = h.get("/api/inventory/stock?low=true", Some(RENNES)).await;
        assert_eq!(
            by_location(&r.body, "available"),
            [
                (("rennes".to_string(), "A".to_string()), 5),
                (("rennes".to_string(), "B".to_string()), 1)
            ]
            .into_iter()
            .collect(),
            "{be}: {}",
            r.body
        );

        // stock back above the threshold: no longer low
        let r = h.movement(Some(RENNES), "rennes", "A", "receipt", 1).await;
        assert_eq!(r.body["low"], false, "{be}: {}", r.body);
        let r = h.get("/api/inventory/stock?low=true&sku=A", Some(HQ)).await;
        assert_eq!(locations(&r), ["brest"], "{be}: {}", r.body);

        h.assert_consistent().await;
        h.cleanup().await;
    }
}

#[tokio::test]
async fn the_check_holds_and_catches_a_corrupted_counter() {
    for h in H::all().await {
        let be = h.backend();
        // a bit of everything
        h.stock("rennes", "A", 10).await;
        h.stock("logistique", "B", 20).await;
        h.movement(Some(RENNES), "rennes", "A", "adjustment", -1)
            .await;
        h.transfer(Some(HQ), "logistique", "rennes", "B", 5).await;
        let sold = Uuid::now_v7();
        h.inv
            .hold(sold, "rennes", &[line("A", 2), line("B", 1)], None)
            .await
            .unwrap();
        h.inv.commit(sold).await.unwrap();
        let given_back = Uuid::now_v7();
        h.inv
            .hold(given_back, "rennes", &[line("A", 1)], None)
            .await
            .unwrap();
        h.inv.release(given_back).await.unwrap();
        let returned = Uuid::now_v7();
        h.inv
            .hold(returned, "logistique", &[line("B", 3)], None)
            .await
            .unwrap();
        h.inv.commit(returned).await.unwrap();
        h.inv.restock(returned, "test").await.unwrap();
        h.inv
            .hold(Uuid::now_v7(), "rennes", &[line("A", 3)], None)
            .await
            .unwrap();
        assert_eq!(h.level("rennes", "A").await, Some((7, 3)), "{be}");
        h.assert_consistent().await;

        // the check is head office's
        for who in [RENNES, CLERK, "warehouse:logistique"] {
            let r = h.get("/api/inventory/check", Some(who)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}: {who} {}", r.body);
            assert_eq!(r.code(), "forbidden");
        }
        let r = h.get("/api/inventory/check", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{be}");

        // a counter changed behind the ledger's back is found
        platform::db_run!(&h.db.db, |p| sqlx::query(
            "UPDATE stock SET on_hand = on_hand + 1 WHERE location = $1 AND sku = $2"
        )
        .bind("rennes")
        .bind("A")
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .unwrap();
        let r = h.get("/api/inventory/check", Some(HQ)).await;
        assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
        assert_eq!(r.body["consistent"], false, "{be}: {}", r.body);
        assert_eq!(
            r.body["mismatches"],
            json!([{"location": "rennes", "sku": "A", "what": "on_hand vs ledger",
                "counter": 8, "expected": 7}]),
            "{be}"
        );

        // and a held counter that disagrees with the active holds
        platform::db_run!(&h.db.db, |p| sqlx::query(
            "UPDATE stock SET on_hand = on_hand - 1, held = held - 1 \
             WHERE location = $1 AND sku = $2"
        )
        .bind("rennes")
        .bind("A")
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .unwrap();
        let r = h.get("/api/inventory/check", Some(HQ)).await;
        let whats: Vec<&str> = r.body["mismatches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["what"].as_str().unwrap())
            .collect();
        assert_eq!(
            whats,
            ["held vs ledger", "held vs active holds"],
            "{be}: {}",
            r.body
        );
        assert_eq!(r.body["consistent"], false);
        h.cleanup().await;
    }
}

#[tokio::test]
async fn stock_events_are_written_with_the_change() {
    for h in H::all().await {
        let be = h.backend();
        let r = h.movement(Some(RENNES), "rennes", "A", "receipt", 10).await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        let changed = h.outbox("stock.changed").await;
        assert_eq!(changed.len(), 1, "{be}");
        assert_eq!(
            changed[0],
            json!({"location": "rennes", "sku": "A", "on_hand": 10, "held": 0, "available": 10}),
            "{be}"
        );
        assert!(h.outbox("stock.low").await.is_empty(), "{be}");

        let r = h
            .raw(
                "PUT",
                "/api/inventory/stock/rennes/A/threshold",
                Some(RENNES),
                Some(r#"{"threshold":3}"#),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{be}");

        // 10 → 5: above the threshold, no alert
        h.movement(Some(RENNES), "rennes", "A", "adjustment", -5)
            .await;
        assert!(h.outbox("stock.low").await.is_empty(), "{be}");
        // 5 → 3: at the threshold, one alert
        h.movement(Some(RENNES), "rennes", "A", "adjustment", -2)
            .await;
        let low = h.outbox("stock.low").await;
        assert_eq!(
            low,
            [json!({"location": "rennes", "sku": "A", "available": 3, "threshold": 3})],
            "{be}"
        );
        // further down: still the one alert
        h.movement(Some(RENNES), "rennes", "A", "adjustment", -1)
            .await;
        h.transfer(Some(RENNES), "rennes", "brest", "A", 1).await;
        h.movement(Some(RENNES), "rennes", "A", "receipt", 1).await;
        assert_eq!(h.level("rennes", "A").await, Some((2, 0)), "{be}");
        assert_eq!(h.outbox("stock.low").await.len(), 1, "{be}: one alert only");
        // every change of on_hand is announced (the transfer once per location)
        assert_eq!(h.outbox("stock.changed").await.len(), 7, "{be}");

        // back above the threshold re-arms the alert; falling again alerts again
        h.movement(Some(RENNES), "rennes", "A", "receipt", 10).await;
        assert_eq!(h.outbox("stock.low").await.len(), 1, "{be}");
        h.movement(Some(RENNES), "rennes", "A", "adjustment", -9)
            .await;
        let low = h.outbox("stock.low").await;
        assert_eq!(low.len(), 2, "{be}");
        assert_eq!(low[1]["available"], 3);

        // a sale down to the threshold alerts too
        h.stock("logistique", "B", 5).await;
        h.inv.set_threshold("logistique", "B", 2).await.unwrap();
        let hold = Uuid::now_v7();
        h.inv
            .hold(hold, "logistique", &[line("B", 3)], None)
            .await
            .unwrap();
        h.inv.commit(hold).await.unwrap();
        let low = h.outbox("stock.low").await;
        assert_eq!(low.len(), 3, "{be}");
        assert_eq!(
            low[2],
            json!({"location": "logistique", "sku": "B", "available": 2, "threshold": 2})
        );

        h.assert_consistent().await;
        h.cleanup().await;
    }
}

/// I10: movements, thresholds and transfers refuse a SKU the catalogue does not know, a blank
/// one and a padded one (nothing is trimmed into a real SKU), and write nothing; the public
/// availability never shows them.
#[tokio::test]
async fn only_skus_of_the_catalogue_get_stock_i10() {
    for h in H::all().await {
        let be = h.backend();
        h.stock("rennes", "A", 5).await;
        let ledger = h.ledger_rows().await;
        let events = h.outbox_rows().await;
        let cases: [(&str, &str); 7] = [
            ("NOPE", "unknown_sku"),
            (" ", "validation_failed"),
            ("", "validation_failed"),
            ("A ", "validation_failed"),
            (" A", "validation_failed"),
            ("a", "validation_failed"),
            ("<b>A</b>", "validation_failed"),
        ];
        for (sku, code) in cases {
            let r = h.movement(Some(HQ), "rennes", sku, "receipt", 3).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{be} {sku:?}: {}",
                r.body
            );
            assert_eq!(r.code(), code, "{be} {sku:?}: {}", r.body);
            assert_eq!(r.body["errors"][0]["field"], "sku", "{be} {sku:?}");

            let r = h.transfer(Some(HQ), "rennes", "brest", sku, 1).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{be} {sku:?}: {}",
                r.body
            );
            assert_eq!(r.code(), code, "{be} {sku:?}: {}", r.body);
        }
        // thresholds: the SKU is in the path (percent-encoded where it must be)
        for (sku, code) in [
            ("NOPE", "unknown_sku"),
            ("%20", "validation_failed"),
            ("A%20", "validation_failed"),
            ("%3Cb%3E", "validation_failed"),
        ] {
            let r = h
                .raw(
                    "PUT",
                    &format!("/api/inventory/stock/rennes/{sku}/threshold"),
                    Some(HQ),
                    Some(r#"{"threshold": 2}"#),
                    &[],
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{be} {sku}: {}",
                r.body
            );
            assert_eq!(r.code(), code, "{be} {sku}: {}", r.body);
        }
        assert_eq!(h.ledger_rows().await, ledger, "{be}: nothing in the ledger");
        assert_eq!(h.outbox_rows().await, events, "{be}: no event");
        for sku in ["NOPE", " ", "A ", "<b>A</b>"] {
            assert_eq!(
                h.level("rennes", sku).await,
                None,
                "{be} {sku:?}: no stock row"
            );
        }
        let r = h.get("/api/inventory/availability?skus=NOPE", None).await;
        assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
        assert_eq!(
            r.body,
            json!([]),
            "{be}: nothing published for an unknown SKU"
        );
        // a real SKU still works
        let r = h.movement(Some(HQ), "rennes", "B", "receipt", 3).await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        h.cleanup().await;
    }
}

/// Stock left for unknown SKUs by earlier versions is reported by the check, never deleted.
#[tokio::test]
async fn stock_of_unknown_skus_is_reported_not_deleted() {
    for h in H::all().await {
        let be = h.backend();
        h.stock("rennes", "A", 5).await;
        platform::db_run!(&h.inv.db, |p| sqlx::query(
            "INSERT INTO stock (location, sku, on_hand, held, low_threshold, updated_at) \
             VALUES ('rennes', 'OLD-1', 0, 0, 0, 0)"
        )
        .execute(p)
        .await
        .map(|_| ()))
        .unwrap();
        let r = h.get("/api/inventory/check", Some(HQ)).await;
        assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
        assert_eq!(r.body["unknown_skus"], json!(["OLD-1"]), "{be}: {}", r.body);
        assert_eq!(
            h.level("rennes", "OLD-1").await,
            Some((0, 0)),
            "{be}: still there"
        );
        h.cleanup().await;
    }
}
