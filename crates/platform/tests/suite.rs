//! Platform integration tests: the RabbitMQ transport of the event bus against the real broker
//! (`COMPTOIR_TEST_RABBITMQ_URL`), the outbox relay through it, and a broker outage simulated by
//! a TCP proxy that the test cuts and restores (the shared broker itself keeps running).
//!
//! Every test uses its own exchange/queue prefix and deletes its topology at the end.
//!
//! - `compression`: the common layers' gzip, brotli and zstd answers, decoded back.
//! - `tls`: TLS to PostgreSQL, Redis, RabbitMQ and outbound HTTPS against the machine's servers
//!   with TLS turned on (`.ci/tls-services`).
//! - `edge`: the consumer plans at the edge (`RateLimit-*` headers, routes with their own quota,
//!   two gateways sharing the counts through Redis, the client behind trusted proxies).
//! - `metrics`: `comptoir_dependency_up` per readiness check, the outbox backlog gauge.

use platform::bus::{self, BusError, Event, EventBus, Relay, handler};
use platform::config::SqliteSync;
use platform::db::{Db, DbTarget};
use platform::rabbit::RabbitBus;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(30);

#[path = "suite/compression.rs"]
mod compression;

fn unique_prefix() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

fn event(topic: &str, n: usize) -> Event {
    Event::new(
        "tests",
        topic,
        &serde_json::json!({ "n": n, "text": "crêpe ✓" }),
        chrono::Utc::now().timestamp_millis(),
    )
}

/// What a consumer group received, in order of arrival (duplicates included).
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Event>>>);

impl Inbox {
    fn handler(&self) -> bus::Handler {
        let me = self.clone();
        handler(move |e: Event| {
            let me = me.clone();
            async move {
                me.lock().push(e);
                Ok(())
            }
        })
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
    fn all(&self) -> Vec<Event> {
        self.lock().clone()
    }
    fn distinct(&self) -> HashSet<Uuid> {
        self.lock().iter().map(|e| e.id).collect()
    }
    async fn wait_for(&self, what: &str, n: usize) {
        let me = self.clone();
        testkit::eventually(what, DEADLINE, move || {
            let me = me.clone();
            async move { (me.distinct().len() >= n).then_some(()) }
        })
        .await;
    }
}

async fn delete_topology(url: &str, prefix: &str, groups: &[&str]) {
    platform::rabbit::delete_topology(url, prefix, groups)
        .await
        .expect("delete the test topology");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_group_gets_every_matching_event_once() {
    let Some(url) = testkit::rabbitmq_url() else {
        return;
    };
    let prefix = unique_prefix();
    let bus = RabbitBus::connect(&url, &prefix)
        .await
        .expect("connect to RabbitMQ");
    assert_eq!(bus.name(), "rabbitmq");
    assert!(bus.is_connected());
    // A second process of the same service: the group's events are shared, not duplicated.
    let bus2 = RabbitBus::connect(&url, &prefix).await.expect("connect");

    let (orders, audit, stock) = (Inbox::default(), Inbox::default(), Inbox::default());
    bus.subscribe("orders", &["order.*"], orders.handler())
        .await
        .expect("subscribe orders");
    bus.subscribe("audit", &["#"], audit.handler())
        .await
        .expect("subscribe audit");
    bus2.subscribe("audit", &["#"], audit.handler())
        .await
        .expect("subscribe audit in a second process");
    bus.subscribe("stock", &["stock.*", "product.changed"], stock.handler())
        .await
        .expect("subscribe stock");
    // One consumer: events arrive in publication order.
    let ordered = Inbox::default();
    bus.subscribe("ordered", &["#"], ordered.handler())
        .await
        .expect("subscribe ordered");

    let events = vec![
        event("order.placed", 1),
        event("order.paid", 2),
        event("stock.low", 3),
        event("payment.refunded", 4),
        event("order.paid.late", 5),
        event("product.changed", 6),
    ];
    bus.publish(&events).await.expect("the broker confirms");

    audit
        .wait_for("audit to get every event", events.len())
        .await;
    orders.wait_for("orders to get order.*", 2).await;
    stock.wait_for("stock to get its topics", 2).await;
    ordered
        .wait_for("ordered to get every event", events.len())
        .await;
    assert_eq!(ordered.all(), events, "in publication order");

    // Every event reached `audit` exactly once across its two consumers, rebuilt unchanged.
    let mut got = audit.all();
    got.sort_by_key(|e| e.id);
    let mut want = events.clone();
    want.sort_by_key(|e| e.id);
    assert_eq!(got, want);
    let topics = |inbox: &Inbox| {
        let mut t: Vec<String> = inbox.all().into_iter().map(|e| e.topic).collect();
        t.sort();
        t
    };
    assert_eq!(topics(&orders), ["order.paid", "order.placed"]);
    assert_eq!(topics(&stock), ["product.changed", "stock.low"]);
    assert_eq!(bus.dead_letters("audit").await.expect("dlq count"), 0);

    // Graceful shutdown: closed, nothing more is accepted.
    bus.close().await;
    assert!(!bus.is_connected());
    assert!(matches!(
        bus.publish(&[event("order.paid", 7)]).await,
        Err(BusError::Unavailable(_))
    ));
    drop(bus);
    drop(bus2);
    delete_topology(&url, &prefix, &["orders", "audit", "stock", "ordered"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_gets_redeliveries_then_the_event_is_dead_lettered() {
    let Some(url) = testkit::rabbitmq_url() else {
        return;
    };
    let prefix = unique_prefix();
    let bus = RabbitBus::connect(&url, &prefix)
        .await
        .expect("connect to RabbitMQ");

    // Fails the first attempt of each event, succeeds on the redelivery.
    let flaky_attempts: Arc<Mutex<HashMap<Uuid, u32>>> = Arc::default();
    let flaky_done = Inbox::default();
    {
        let (attempts, done) = (flaky_attempts.clone(), flaky_done.clone());
        bus.subscribe(
            "flaky",
            &["order.paid"],
            handler(move |e: Event| {
                let (attempts, done) = (attempts.clone(), done.clone());
                async move {
                    let n = {
                        let mut a = attempts.lock().map_err(|e| e.to_string())?;
                        let n = a.entry(e.id).or_insert(0);
                        *n += 1;
                        *n
                    };
                    if n == 1 {
                        return Err("database is busy".into());
                    }
                    done.lock().push(e);
                    Ok(())
                }
            }),
        )
        .await
        .expect("subscribe flaky");
    }
    // Always fails.
    let broken_attempts = Inbox::default();
    {
        let attempts = broken_attempts.clone();
        bus.subscribe(
            "broken",
            &["order.paid"],
            handler(move |e: Event| {
                let attempts = attempts.clone();
                async move {
                    attempts.lock().push(e);
                    Err("cannot handle this".into())
                }
            }),
        )
        .await
        .expect("subscribe broken");
    }
    // Never called: its only message cannot be decoded.
    let junk_calls = Inbox::default();
    bus.subscribe("junk", &["junk.*"], junk_calls.handler())
        .await
        .expect("subscribe junk");

    let paid = event("order.paid", 1);
    bus.publish(std::slice::from_ref(&paid))
        .await
        .expect("publish");

    // flaky: handled on the redelivery, nothing dead-lettered.
    flaky_done.wait_for("the redelivery to succeed", 1).await;
    assert_eq!(flaky_done.all(), vec![paid.clone()]);
    assert_eq!(
        flaky_attempts.lock().expect("lock").get(&paid.id).copied(),
        Some(2)
    );

    // broken: MAX_ATTEMPTS attempts, then the dead-letter queue.
    let dlq = testkit::eventually("the event to be dead-lettered", DEADLINE, || async {
        match bus.dead_letters("broken").await {
            Ok(n) if n >= 1 => Some(n),
            _ => None,
        }
    })
    .await;
    assert_eq!(dlq, 1);
    assert_eq!(
        broken_attempts.all().len(),
        platform::rabbit::MAX_ATTEMPTS as usize
    );
    assert!(broken_attempts.all().iter().all(|e| e == &paid));
    assert_eq!(bus.dead_letters("flaky").await.expect("count"), 0);

    // An undecodable message (no event id, no headers) goes straight to the dead-letter queue.
    {
        let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
            .await
            .expect("raw connection");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        let confirm = ch
            .basic_publish(
                format!("{prefix}.events").into(),
                "junk.raw".into(),
                lapin::options::BasicPublishOptions::default(),
                b"not an event",
                lapin::BasicProperties::default(),
            )
            .await
            .expect("publish raw")
            .await
            .expect("confirm");
        assert!(confirm.is_ack());
        let _ = conn.close(200, "OK".into()).await;
    }
    let junk = testkit::eventually("the junk to be dead-lettered", DEADLINE, || async {
        match bus.dead_letters("junk").await {
            Ok(n) if n >= 1 => Some(n),
            _ => None,
        }
    })
    .await;
    assert_eq!(junk, 1);
    assert!(junk_calls.all().is_empty(), "the handler never sees junk");

    // An unknown group has no dead-letter queue: an error, not a zero.
    assert!(bus.dead_letters("nobody").await.is_err());

    drop(bus);
    delete_topology(&url, &prefix, &["flaky", "broken", "junk"]).await;
}

/// A fresh database with an `outbox` table, made by hand (the platform has no migrations of its
/// own): a SQLite file always, a PostgreSQL schema when configured.
struct OutboxDb {
    db: Db,
    cleanup: Box<dyn FnOnce() -> futures_util::future::BoxFuture<'static, ()> + Send>,
}

async fn outbox_dbs() -> Vec<OutboxDb> {
    let mut v = Vec::new();
    let dir = std::env::temp_dir().join(format!("comptoir-bus-{}", Uuid::new_v4()));
    let db = Db::connect(
        &DbTarget::SqliteFile {
            path: dir.join("outbox.db"),
            synchronous: SqliteSync::Normal,
        },
        2,
    )
    .await
    .expect("open SQLite");
    if let Db::Sqlite(p) = &db {
        sqlx::query(
            "CREATE TABLE outbox (id BLOB PRIMARY KEY, topic TEXT NOT NULL, payload TEXT NOT NULL, \
             created_at INTEGER NOT NULL, published_at INTEGER)",
        )
        .execute(p)
        .await
        .expect("create outbox");
    }
    let d = db.clone();
    v.push(OutboxDb {
        db,
        cleanup: Box::new(move || {
            Box::pin(async move {
                d.close().await;
                let _ = std::fs::remove_dir_all(dir);
            })
        }),
    });
    if let Some(url) = testkit::postgres_url() {
        let schema = format!("t_{}", Uuid::new_v4().simple());
        let db = Db::connect(
            &DbTarget::Postgres {
                url: url.clone(),
                schema: schema.clone(),
            },
            2,
        )
        .await
        .expect("open PostgreSQL");
        if let Db::Pg(p) = &db {
            sqlx::query(
                "CREATE TABLE outbox (id UUID PRIMARY KEY, topic TEXT NOT NULL, \
                 payload TEXT NOT NULL, created_at BIGINT NOT NULL, published_at BIGINT)",
            )
            .execute(p)
            .await
            .expect("create outbox");
        }
        let d = db.clone();
        v.push(OutboxDb {
            db,
            cleanup: Box::new(move || {
                Box::pin(async move {
                    // the schema name is generated above from a UUID: safe to interpolate
                    if let Db::Pg(p) = &d {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                        )))
                        .execute(p)
                        .await;
                    }
                    d.close().await;
                })
            }),
        });
    }
    v
}

async fn write_events(db: &Db, topic: &str, from: usize, n: usize) -> Vec<Event> {
    let mut tx = db.begin().await.expect("begin");
    let mut written = Vec::with_capacity(n);
    for i in from..from + n {
        let e = event(topic, i);
        bus::enqueue(tx.conn(), &e).await.expect("enqueue");
        written.push(e);
    }
    tx.commit().await.expect("commit");
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_relay_delivers_every_event_through_rabbitmq() {
    let Some(url) = testkit::rabbitmq_url() else {
        return;
    };
    for odb in outbox_dbs().await {
        let prefix = unique_prefix();
        let bus = Arc::new(RabbitBus::connect(&url, &prefix).await.expect("connect"));
        let inbox = Inbox::default();
        bus.subscribe("shipping", &["order.#"], inbox.handler())
            .await
            .expect("subscribe");

        // More than one relay batch (100).
        let written = write_events(&odb.db, "order.paid", 0, 250).await;
        assert_eq!(bus::pending_count(&odb.db).await.expect("count"), 250);
        let relay = Relay::new("orders", odb.db.clone(), bus.clone());
        let mut published = 0;
        loop {
            let n = relay.publish_pending().await.expect("publish");
            if n == 0 {
                break;
            }
            published += n;
        }
        assert_eq!(published, 250);
        assert_eq!(bus::pending_count(&odb.db).await.expect("count"), 0);

        inbox.wait_for("every outbox event to arrive", 250).await;
        let want: HashSet<Uuid> = written.iter().map(|e| e.id).collect();
        assert_eq!(inbox.distinct(), want, "{}", odb.db.backend());
        assert_eq!(inbox.all().len(), 250, "no duplicate without a failure");
        assert!(inbox.all().iter().all(|e| e.source == "orders"));

        drop(relay);
        drop(bus);
        delete_topology(&url, &prefix, &["shipping"]).await;
        (odb.cleanup)().await;
    }
}

// ---- broker outage through a TCP proxy ---------------------------------------------------------

use testkit::proxy::{Proxy, split_url};

#[test]
fn proxy_urls_keep_credentials_and_vhost() {
    let p: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
    assert_eq!(
        split_url("amqp://guest:guest@127.0.0.1:5672/%2f", p),
        (
            "127.0.0.1:5672".to_string(),
            "amqp://guest:guest@127.0.0.1:4000/%2f".to_string()
        )
    );
    assert_eq!(
        split_url("amqp://localhost", p),
        (
            "localhost:5672".to_string(),
            "amqp://127.0.0.1:4000".to_string()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_loses_nothing_and_the_bus_recovers_by_itself() {
    // The bus's log lines are shown when this test fails.
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let Some(url) = testkit::rabbitmq_url() else {
        return;
    };
    let prefix = unique_prefix();
    let proxy = Proxy::start(split_url(&url, "127.0.0.1:1".parse().expect("addr")).0).await;
    let (_, proxied) = split_url(&url, proxy.addr);
    let bus = Arc::new(
        RabbitBus::connect(&proxied, &prefix)
            .await
            .expect("connect through the proxy"),
    );
    let inbox = Inbox::default();
    bus.subscribe("shipping", &["order.*"], inbox.handler())
        .await
        .expect("subscribe");
    let mut odbs = outbox_dbs().await;
    let odb = odbs.remove(0);
    let relay = Relay::new("orders", odb.db.clone(), bus.clone());

    // Before: everything flows.
    let mut written = write_events(&odb.db, "order.placed", 0, 20).await;
    assert_eq!(relay.publish_pending().await.expect("publish"), 20);
    inbox.wait_for("the first events", 20).await;

    // The broker goes away.
    proxy.cut();
    written.extend(write_events(&odb.db, "order.paid", 20, 30).await);
    testkit::eventually("the bus to notice the outage", DEADLINE, || async {
        (!bus.is_connected()).then_some(())
    })
    .await;
    // Publishing fails fast while the broker is away, and the relay keeps its rows.
    let start = Instant::now();
    let failed = relay.publish_pending().await;
    assert!(
        matches!(failed, Err(BusError::Unavailable(_))),
        "publish must fail while the broker is away: {failed:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(2), "fails fast");
    assert!(matches!(
        bus.publish(&[event("order.paid", 99)]).await,
        Err(BusError::Unavailable(_))
    ));
    assert_eq!(bus::pending_count(&odb.db).await.expect("count"), 30);
    assert!(bus.dead_letters("shipping").await.is_err());
    // Events written during the outage, still waiting.
    written.extend(write_events(&odb.db, "order.cancelled", 50, 10).await);

    // The broker comes back: the bus reconnects and re-subscribes on its own; the backlog
    // drains (the relay retries like its background loop would).
    proxy.restore();
    testkit::eventually("the backlog to drain", DEADLINE, || async {
        match relay.publish_pending().await {
            Ok(_) => (bus::pending_count(&odb.db).await.ok()? == 0).then_some(()),
            Err(_) => None,
        }
    })
    .await;
    assert!(bus.is_connected());
    inbox
        .wait_for("every event, including the backlog", written.len())
        .await;
    let want: HashSet<Uuid> = written.iter().map(|e| e.id).collect();
    // Duplicates are possible around an outage (at least once); no event is lost.
    assert_eq!(inbox.distinct(), want);

    // A second outage while idle: the consumer comes back too.
    proxy.cut();
    testkit::eventually("the bus to notice the second outage", DEADLINE, || async {
        (!bus.is_connected()).then_some(())
    })
    .await;
    proxy.restore();
    let later = write_events(&odb.db, "order.fulfilled", 60, 5).await;
    testkit::eventually("the relay to publish after recovery", DEADLINE, || async {
        match relay.publish_pending().await {
            Ok(_) => (bus::pending_count(&odb.db).await.ok()? == 0).then_some(()),
            Err(_) => None,
        }
    })
    .await;
    inbox
        .wait_for(
            "the events after the second outage",
            written.len() + later.len(),
        )
        .await;
    assert_eq!(bus.dead_letters("shipping").await.expect("count"), 0);

    drop(relay);
    drop(bus);
    drop(proxy);
    delete_topology(&url, &prefix, &["shipping"]).await;
    (odb.cleanup)().await;
    for o in odbs {
        (o.cleanup)().await;
    }
}

/// The in-process transport: an event is marked published only once every matching handler
/// succeeded; a failing handler leaves it for the next pass. Published events are pruned after
/// the retention, never the pending ones.
#[tokio::test]
async fn in_process_relay_publishes_after_the_handlers_and_prunes_old_events() {
    for odb in outbox_dbs().await {
        let bus = Arc::new(bus::InProcessBus::new());
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let seen = Inbox::default();
        {
            let (fail, seen) = (fail.clone(), seen.clone());
            bus.subscribe(
                "sink",
                &["order.*"],
                handler(move |e: Event| {
                    let (fail, seen) = (fail.clone(), seen.clone());
                    async move {
                        if fail.load(std::sync::atomic::Ordering::SeqCst) {
                            return Err("not yet".into());
                        }
                        seen.lock().push(e);
                        Ok(())
                    }
                }),
            )
            .await
            .expect("subscribe");
        }
        let written = write_events(&odb.db, "order.paid", 0, 3).await;
        let relay = Relay::new("test", odb.db.clone(), bus.clone());
        assert!(
            relay.publish_pending().await.is_err(),
            "a failing handler fails the pass"
        );
        assert_eq!(bus::pending_count(&odb.db).await.expect("count"), 3);
        fail.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(relay.publish_pending().await.expect("publish"), 3);
        assert_eq!(bus::pending_count(&odb.db).await.expect("count"), 0);
        assert_eq!(seen.distinct(), written.iter().map(|e| e.id).collect());
        // nothing is old enough yet; with no retention at all, the published ones go
        assert_eq!(
            relay.prune(Duration::from_secs(3600)).await.expect("prune"),
            0
        );
        write_events(&odb.db, "order.paid", 3, 1).await;
        assert_eq!(relay.prune(Duration::ZERO).await.expect("prune"), 3);
        assert_eq!(
            bus::pending_count(&odb.db).await.expect("count"),
            1,
            "pending kept"
        );
        (odb.cleanup)().await;
    }
}

#[path = "suite/edge.rs"]
mod edge;

#[path = "suite/metrics.rs"]
mod metrics;

#[path = "suite/tls.rs"]
mod tls;
