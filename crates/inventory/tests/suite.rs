//! The inventory service through its real HTTP router (in process), on SQLite always and on
//! PostgreSQL when `COMPTOIR_TEST_POSTGRES_URL` is set: public availability, movements and
//! transfers under the role and location rules, bad quantities (B4), idempotent retries (D2),
//! scoped listings and low-stock filters, the ledger check (and that it can fail), and the
//! events written to the outbox, and the stock contract in process and over HTTP. Requests go
//! through `testkit::TestApp`, as a principal signed the way the edge signs (`H::raw`'s
//! `role[:store]` shorthand); the scenarios are in `movements`, `transfers`, `reports`, `events`,
//! `contract` and `metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use inventory::http::{InventoryState, router};
use inventory::service::StockLevel;
use inventory::{FixedSkus, HoldLine, Inventory, MovementKind};
use kernel::SystemClock;
use platform::idempotency::Idempotency;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use testkit::principal::{self, PrincipalExt};
use testkit::{Res, TestApp, TestDb};
use uuid::Uuid;

/// What the catalogue of these tests knows (`ZZ`: a SKU that exists but was never received).
const KNOWN_SKUS: [&str; 4] = ["A", "B", "C", "ZZ"];
const HQ: &str = "head_office";
const RENNES: &str = "store_manager:rennes";
const CLERK: &str = "clerk:rennes";

struct H {
    app: TestApp,
    inv: Inventory,
    db: platform::db::Db,
    backend: &'static str,
}

impl H {
    async fn new(db: &TestDb) -> H {
        let inv = Inventory {
            db: db.db.clone(),
            clock: Arc::new(SystemClock),
            relay: None,
            hold_ttl: Duration::from_secs(900),
            skus: Arc::new(FixedSkus::new(KNOWN_SKUS)),
        };
        inventory::demo::seed_locations(&inv).await.unwrap();
        let app = TestApp::new(router(InventoryState {
            inventory: inv.clone(),
            idempotency: Idempotency::new(db.db.clone()),
        }));
        H {
            app,
            inv,
            db: db.db.clone(),
            backend: db.backend,
        }
    }

    fn backend(&self) -> &'static str {
        self.backend
    }

    /// A request as `who` (`role[:store]`, subject `<who>-user`; `None`: anonymous) with a raw
    /// body (sent as JSON when given).
    async fn raw(
        &self,
        method: &str,
        path: &str,
        who: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Res {
        let who = who.map(|w| principal::parse(w).with_subject(&format!("{w}-user")));
        let mut c = self
            .app
            .request(method.parse().unwrap(), path)
            .as_opt(who.as_ref())
            .headers(headers);
        if let Some(b) = body {
            c = c.header("content-type", "application/json").body(b);
        }
        c.await
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
        platform::db_run!(&self.db, |p| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM movements"
        )
        .fetch_one(p)
        .await)
        .unwrap()
    }

    /// The ledger rows of one SKU as (location, kind, on_hand_delta), oldest first.
    async fn ledger_of(&self, sku: &str) -> Vec<(String, String, i64)> {
        platform::db_run!(&self.db, |p| sqlx::query_as::<_, (String, String, i64)>(
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
        let rows: Vec<String> = platform::db_run!(&self.db, |p| sqlx::query_scalar(
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
        platform::db_run!(&self.db, |p| sqlx::query_scalar::<_, i64>(
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

#[path = "suite/contract.rs"]
mod contract;
#[path = "suite/events.rs"]
mod events;
#[path = "suite/metrics.rs"]
mod metrics;
#[path = "suite/movements.rs"]
mod movements;
#[path = "suite/reports.rs"]
mod reports;
#[path = "suite/transfers.rs"]
mod transfers;
