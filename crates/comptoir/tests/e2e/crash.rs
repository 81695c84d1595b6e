//! F1 and F2 of RELIABILITY.md on the real binary: the process aborts (like `kill -9`) at each
//! step of the checkout saga and between an outbox commit and its publication; after a restart
//! every saga ends completed or compensated, nothing is charged twice, no paid order is lost,
//! every event reaches the mail sink once, and the invariant checker (D1) finds nothing.
//!
//! Two set-ups: the embedded default (SQLite, in-process bus), and — when the variables are
//! set — the production shape: commerce databases on PostgreSQL, carts in Redis, events
//! through RabbitMQ.

use super::{Server, comptoir, http, sign_in, temp_dir};
use comptoir::Target;
use platform::config::Settings;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const OK_CARD: &str = "4242424242424242";
const CAPTURE_FAILS: &str = "4000000000000341";

/// Where the services keep their data, as environment variables for the binary.
#[derive(Clone)]
struct Setup {
    env: Vec<(String, String)>,
}

impl Setup {
    fn embedded() -> Setup {
        Setup { env: vec![] }
    }

    /// PostgreSQL (fresh schemas), Redis and RabbitMQ (fresh prefixes), when all are configured.
    fn production() -> Option<Setup> {
        let pg = testkit::postgres_url()?;
        let redis = testkit::redis_url()?;
        let amqp = testkit::rabbitmq_url()?;
        let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let mut env = vec![
            (
                "COMPTOIR_BUS__TRANSPORT".to_string(),
                "rabbitmq".to_string(),
            ),
            ("COMPTOIR_BUS__RABBITMQ_URL".into(), amqp),
            ("COMPTOIR_BUS__PREFIX".into(), format!("f1{tag}")),
            ("COMPTOIR_CART__BACKEND".into(), "redis".into()),
            ("COMPTOIR_CART__REDIS_URL".into(), redis),
        ];
        for s in ["INVENTORY", "ORDERS", "PAYMENTS", "CART"] {
            env.push((format!("COMPTOIR_{s}__DATABASE_URL"), pg.clone()));
            env.push((
                format!("COMPTOIR_{s}__DATABASE_SCHEMA"),
                format!("f1_{tag}_{}", s.to_lowercase()),
            ));
        }
        Some(Setup { env })
    }

    fn serve(&self, dir: &Path, failpoint: Option<&str>) -> std::process::Command {
        let mut c = self.command(dir);
        c.arg("serve");
        if let Some(p) = failpoint {
            c.env(platform::fail::ENV, p);
        }
        c
    }

    fn command(&self, dir: &Path) -> std::process::Command {
        let mut c = comptoir(dir);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.env("COMPTOIR_DATA__DIR", dir)
            .env("COMPTOIR_ORDERS__SAGA_LEASE_SECONDS", "1")
            .env("COMPTOIR_ORDERS__RECOVERY_INTERVAL_MS", "200")
            .env("COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE", "0");
        c
    }

    fn settings(&self, dir: &Path) -> Settings {
        let mut vars: std::collections::BTreeMap<String, String> =
            self.env.iter().cloned().collect();
        vars.insert("COMPTOIR_DATA__DIR".into(), dir.display().to_string());
        vars.insert("COMPTOIR_DEMO__SEED".into(), "false".into());
        let mut s = Settings::load(platform::config::Sources {
            file: None,
            env: vars,
        })
        .expect("settings");
        s.server.bind = "127.0.0.1:0".into();
        s
    }
}

async fn post(base: &str, path: &str, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut rb = http().post(format!("{base}{path}")).json(&body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    match rb.send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null))
        }
        // the process died under the request
        Err(_) => (0, Value::Null),
    }
}

async fn cart(base: &str, sku: &str) -> String {
    let (s, v) = post(base, "/api/carts", json!({}), &[]).await;
    assert_eq!(s, 201, "create cart: {v}");
    let id = v["id"].as_str().expect("cart id").to_string();
    let (s, v) = post(
        base,
        &format!("/api/carts/{id}/lines"),
        json!({"sku": sku, "quantity": 1}),
        &[],
    )
    .await;
    assert!(s == 200 || s == 201, "add line: {s} {v}");
    id
}

fn checkout_body(cart: &str, card: &str) -> Value {
    json!({
        "cart_id": cart,
        "email": "crash@example.org",
        "fulfilment": {"type": "collect", "store": "rennes"},
        "payment": {"type": "test_card", "number": card},
    })
}

/// Waits for the child to exit (it aborts at the fail point).
fn wait_exit(server: &mut Server) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(s)) = server.child.try_wait() {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the fail point did not stop the process"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn run(setup: Setup) {
    let dir = temp_dir("crash");
    if !setup.env.is_empty() {
        let st = setup
            .command(&dir)
            .args(["migrate", "--target", "all"])
            .status()
            .expect("migrate");
        assert!(st.success(), "migrate");
    }
    // first start: demo data (catalogue, accounts); stock for one SKU at Rennes
    let first = Server::start(setup.serve(&dir, None));
    let password = first
        .head_office_password()
        .expect("head office password printed");
    let token = sign_in(&first.base, &password).await;
    let products: Value = http()
        .get(format!("{}/api/catalog/products?limit=1", first.base))
        .send()
        .await
        .expect("products")
        .json()
        .await
        .expect("json");
    let slug = products["items"][0]["slug"]
        .as_str()
        .expect("a product")
        .to_string();
    let sku = super::first_sku(&first.base, &slug).await;
    let auth = format!("Bearer {token}");
    let req = http()
        .put(format!("{}/api/inventory/locations/rennes", first.base))
        .header("authorization", &auth)
        .json(&json!({"name": "Rennes", "kind": "store", "click_and_collect": true}))
        .send()
        .await
        .expect("location");
    assert_eq!(req.status().as_u16(), 200, "location");
    let (s, v) = post(
        &first.base,
        "/api/inventory/movements",
        json!({"location": "rennes", "sku": sku, "kind": "receipt", "quantity": 100, "reason": "F1"}),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(s, 201, "receipt: {v}");
    first.stop();

    // the outbox point first: no order event is pending yet, so the relay reaches it only
    // once this checkout has committed one
    let points = [
        ("outbox.before_publish.orders", OK_CARD, "completed"),
        ("saga.after_hold", OK_CARD, "completed"),
        ("saga.after_authorize", OK_CARD, "completed"),
        ("saga.after_confirm", OK_CARD, "completed"),
        ("saga.after_commit", OK_CARD, "completed"),
        ("saga.after_capture", OK_CARD, "completed"),
        ("saga.mid_compensation", CAPTURE_FAILS, "compensated"),
    ];
    let mut paid = 0;
    for (i, (point, card, expected)) in points.iter().enumerate() {
        let mut s = Server::start(setup.serve(&dir, Some(point)));
        let c = cart(&s.base, &sku).await;
        let key = format!("crash-{i}");
        let (status, _) = post(
            &s.base,
            "/api/checkout",
            checkout_body(&c, card),
            &[("idempotency-key", &key)],
        )
        .await;
        assert_eq!(
            status, 0,
            "{point}: the process should have died under the request"
        );
        let exit = wait_exit(&mut s);
        assert!(!exit.success(), "{point}: aborted");
        drop(s);
        // restart: the recovery worker finishes the saga; the client's retry gets the outcome
        let s = Server::start(setup.serve(&dir, None));
        let (st, v) = testkit::eventually(
            &format!("{point}: the retry gets the final answer"),
            Duration::from_secs(60),
            || {
                let base = s.base.clone();
                let c = c.clone();
                let key = key.clone();
                async move {
                    let (st, v) = post(
                        &base,
                        "/api/checkout",
                        checkout_body(&c, card),
                        &[("idempotency-key", &key)],
                    )
                    .await;
                    (st != 409 && st != 503 && st != 0).then_some((st, v))
                }
            },
        )
        .await;
        match *expected {
            "completed" => {
                assert_eq!(st, 201, "{point}: {v}");
                assert_eq!(v["status"], "paid", "{point}");
                paid += 1;
            }
            _ => assert_eq!(
                (st, v["code"].clone()),
                (402, json!("payment_failed")),
                "{point}: {v}"
            ),
        }
        s.stop();
    }

    // the invariant checker, on the same databases, once everything settled
    let settings = setup.settings(&dir);
    let targets: BTreeSet<Target> = Target::ALL.iter().copied().collect();
    let app = comptoir::build(&settings, &targets).await.expect("build");
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
    let report = testkit::eventually("D1 finds nothing", Duration::from_secs(30), || async {
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
    assert_eq!(
        report.paid_orders, paid,
        "every acknowledged order exists, once"
    );
    assert_eq!(report.open_sagas, 0);
    assert!(report.psp_captured >= 1);
    drop((o, inventory, payments));

    // the broker keeps durable queues: remove this run's
    let var = |k: &str| {
        setup
            .env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    if let (Some(url), Some(prefix)) = (
        var("COMPTOIR_BUS__RABBITMQ_URL"),
        var("COMPTOIR_BUS__PREFIX"),
    ) {
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
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_saga_step_the_checkout_recovers_embedded() {
    run(Setup::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_saga_step_the_checkout_recovers_on_postgres_redis_rabbitmq() {
    match Setup::production() {
        Some(s) => run(s).await,
        None => eprintln!("skipping: PostgreSQL, Redis and RabbitMQ test URLs are not all set"),
    }
}
