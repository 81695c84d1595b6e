//! The event bus: services tell each other what happened, never asking.
//!
//! - A service writes its events to its own `outbox` table **in the transaction of the change**
//!   ([`enqueue`]); a [`Relay`] publishes them afterwards and marks them published. A crash
//!   between the commit and the publish only delays an event: the relay finds it again.
//! - Delivery is at least once. A consumer records the ids it has processed in its own
//!   `processed_events` table, in the transaction of its effect ([`first_delivery`]), so a
//!   redelivery has no second effect.
//! - Two transports behind [`EventBus`]: [`InProcessBus`] (embedded default: handlers run before
//!   the relay marks the row published) and RabbitMQ ([`crate::rabbit::RabbitBus`]).
//!
//! Topics are dotted names (`order.paid`); subscriptions take AMQP topic patterns (`order.*`,
//! `#`), matched the same way by both transports.

use crate::conn_run;
use crate::db::{Conn, Db};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, RwLock};
use uuid::Uuid;

/// Topics published by Comptoir's services.
pub mod topic {
    pub const ORDER_PLACED: &str = "order.placed";
    pub const ORDER_PAID: &str = "order.paid";
    pub const ORDER_CANCELLED: &str = "order.cancelled";
    pub const ORDER_FULFILLED: &str = "order.fulfilled";
    pub const PAYMENT_REFUNDED: &str = "payment.refunded";
    pub const STOCK_LOW: &str = "stock.low";
    pub const STOCK_CHANGED: &str = "stock.changed";
    pub const PRODUCT_CHANGED: &str = "product.changed";
    pub const PASSWORD_RESET_REQUESTED: &str = "identity.password_reset_requested";
}

/// One event, as stored in an outbox and carried by a transport.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// UUIDv7: unique, and ordered by creation within one outbox.
    pub id: Uuid,
    pub topic: String,
    /// The service that wrote it.
    pub source: String,
    /// JSON body.
    pub payload: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl Event {
    pub fn new(source: &str, topic: &str, payload: &serde_json::Value, now_ms: i64) -> Event {
        Event {
            id: Uuid::now_v7(),
            topic: topic.to_string(),
            source: source.to_string(),
            payload: payload.to_string(),
            created_at: now_ms,
        }
    }

    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.payload)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the transport is unavailable: {0}")]
    Unavailable(String),
    #[error("a handler failed: {0}")]
    Handler(String),
}

/// What a handler returns: an error makes the transport deliver the event again later (and,
/// on RabbitMQ, dead-letter it after repeated failures).
pub type HandlerResult = Result<(), String>;

/// A consumer's handler.
pub type Handler = Arc<dyn Fn(Event) -> BoxFuture<'static, HandlerResult> + Send + Sync>;

/// Wraps an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = HandlerResult> + Send + 'static,
{
    Arc::new(move |e| Box::pin(f(e)))
}

/// A transport.
pub trait EventBus: Send + Sync {
    /// Hands the events over. `Ok` means the transport has taken responsibility for them
    /// (in process: every matching handler succeeded; RabbitMQ: the broker confirmed them).
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<(), BusError>>;

    /// Registers the consumer `group` (one per consuming service) for topic patterns. Each event
    /// reaches each group once (at least once), whichever instance of the group takes it.
    fn subscribe<'a>(
        &'a self,
        group: &'a str,
        patterns: &'a [&'a str],
        handler: Handler,
    ) -> BoxFuture<'a, Result<(), BusError>>;

    /// Every event of the patterns reaches this process, whatever other instances of it do (a
    /// cache to invalidate, not work to share): on RabbitMQ a queue of its own that disappears
    /// with the process; in process, a group of its own. Handled at most once, never
    /// redelivered: for effects that a lost event only delays (a TTL covers it).
    fn subscribe_broadcast<'a>(
        &'a self,
        name: &'a str,
        patterns: &'a [&'a str],
        handler: Handler,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let group = format!("{name}-{}", uuid::Uuid::new_v4().simple());
            self.subscribe(&group, patterns, handler).await
        })
    }

    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;

    /// Whether the transport is reachable now (readiness). In process: always.
    fn is_connected(&self) -> bool {
        true
    }

    /// Stops consuming (graceful shutdown, before the databases close): a delivery not yet
    /// handled goes back to the broker instead of failing against a closed pool.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// AMQP topic matching: words separated by `.`, `*` matches one word, `#` zero or more.
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    fn go(p: &[&str], t: &[&str]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((&"#", rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((&w, rest)) => match t.split_first() {
                Some((&tw, trest)) => (w == "*" || w == tw) && go(rest, trest),
                None => false,
            },
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    go(&p, &t)
}

// ---- in process --------------------------------------------------------------------------------

struct Subscription {
    group: String,
    patterns: Vec<String>,
    handler: Handler,
}

/// The embedded transport: `publish` runs every matching handler and succeeds only when all
/// did, so the relay marks an event published only after its effects are committed.
#[derive(Default, Clone)]
pub struct InProcessBus {
    subs: Arc<RwLock<Vec<Subscription>>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }
}

impl EventBus for InProcessBus {
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let subs = self.subs.read().await;
            for e in events {
                for s in subs.iter() {
                    if s.patterns.iter().any(|p| topic_matches(p, &e.topic)) {
                        (s.handler)(e.clone())
                            .await
                            .map_err(|m| BusError::Handler(format!("{}: {m}", s.group)))?;
                    }
                }
            }
            Ok(())
        })
    }

    fn subscribe<'a>(
        &'a self,
        group: &'a str,
        patterns: &'a [&'a str],
        handler: Handler,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            self.subs.write().await.push(Subscription {
                group: group.to_string(),
                patterns: patterns.iter().map(|p| p.to_string()).collect(),
                handler,
            });
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "in-process"
    }
}

// ---- outbox ------------------------------------------------------------------------------------

/// Writes an event to the service's outbox, inside the caller's transaction.
pub async fn enqueue(conn: Conn<'_>, event: &Event) -> Result<(), sqlx::Error> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO outbox (id, topic, payload, created_at, published_at) \
         VALUES ($1, $2, $3, $4, NULL)"
    )
    .bind(event.id)
    .bind(&event.topic)
    .bind(&event.payload)
    .bind(event.created_at)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// Records that `consumer` has processed `event_id`, inside the transaction of its effect.
/// `false` means it was processed before: skip the effect.
pub async fn first_delivery(
    conn: Conn<'_>,
    consumer: &str,
    event_id: Uuid,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (consumer, event_id) DO NOTHING"
    )
    .bind(consumer)
    .bind(event_id)
    .bind(now_ms)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected() == 1))
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: Uuid,
    topic: String,
    payload: String,
    created_at: i64,
}

/// How long published events stay in an outbox.
pub const OUTBOX_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a consumer remembers the events it processed: longer than any redelivery.
pub const PROCESSED_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Forgets processed event ids older than [`PROCESSED_RETENTION`].
pub async fn prune_processed(db: &Db) -> Result<u64, sqlx::Error> {
    let before = now_ms() - PROCESSED_RETENTION.as_millis() as i64;
    crate::db_run!(db, |p| sqlx::query(
        "DELETE FROM processed_events WHERE processed_at < $1"
    )
    .bind(before)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
}

/// Publishes one service's outbox. One relay per database in a process; on PostgreSQL several
/// processes may each run one (rows are claimed with `FOR UPDATE SKIP LOCKED`).
#[derive(Clone)]
pub struct Relay {
    inner: Arc<RelayInner>,
}

struct RelayInner {
    source: String,
    db: Db,
    bus: Arc<dyn EventBus>,
    wake: Notify,
    batch: i64,
    idle: Duration,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Relay {
    pub fn new(source: &str, db: Db, bus: Arc<dyn EventBus>) -> Relay {
        describe_metrics();
        // at 0 from the start, so that rates and alerts see the series before the first event
        metrics::counter!("comptoir_events_published_total", "source" => source.to_string())
            .increment(0);
        metrics::counter!("comptoir_outbox_publish_failures_total", "source" => source.to_string())
            .increment(0);
        Relay {
            inner: Arc::new(RelayInner {
                source: source.to_string(),
                db,
                bus,
                wake: Notify::new(),
                batch: 100,
                idle: Duration::from_millis(250),
            }),
        }
    }

    /// Asks the relay to look now (call after committing events); cheap, never blocks.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Runs until the task is dropped: publishes pending events, sleeps until woken or for
    /// the idle interval, backs off (up to 5 s) while the transport is down.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            let mut last_prune = std::time::Instant::now();
            let mut last_backlog: Option<std::time::Instant> = None;
            loop {
                if last_backlog.is_none_or(|t| t.elapsed() >= BACKLOG_EVERY) {
                    last_backlog = Some(std::time::Instant::now());
                    if let Err(e) = me.refresh_backlog().await {
                        if me.inner.db.is_closed() {
                            return;
                        }
                        tracing::warn!(source = %me.inner.source, error = %e, "outbox backlog");
                    }
                }
                // published events are kept a week (for inspection and replays), then dropped
                if last_prune.elapsed() >= Duration::from_secs(3600) {
                    last_prune = std::time::Instant::now();
                    if let Err(e) = me.prune(OUTBOX_RETENTION).await {
                        tracing::warn!(source = %me.inner.source, error = %e, "outbox prune");
                    }
                }
                match me.publish_pending().await {
                    Ok(n) if n as i64 >= me.inner.batch => continue,
                    Ok(_) => {
                        backoff = Duration::from_millis(100);
                        let _ = tokio::time::timeout(me.inner.idle, me.inner.wake.notified()).await;
                    }
                    Err(_) if me.inner.db.is_closed() => return,
                    Err(e) => {
                        tracing::warn!(source = %me.inner.source, error = %e,
                            "outbox relay: cannot publish yet; will retry");
                        metrics::counter!("comptoir_outbox_publish_failures_total",
                            "source" => me.inner.source.clone())
                        .increment(1);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })
    }

    /// One pass: publishes up to a batch of pending events, oldest first. Returns how many.
    pub async fn publish_pending(&self) -> Result<usize, BusError> {
        let i = &self.inner;
        let err = |e: sqlx::Error| BusError::Unavailable(format!("outbox: {e}"));
        let source = i.source.clone();
        let to_events = |rows: Vec<OutboxRow>| -> Vec<Event> {
            rows.into_iter()
                .map(|r| Event {
                    id: r.id,
                    topic: r.topic,
                    source: source.clone(),
                    payload: r.payload,
                    created_at: r.created_at,
                })
                .collect()
        };
        let n = match &i.db {
            Db::Pg(p) => {
                // one round trip when idle instead of a transaction of three
                let any: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)",
                )
                .fetch_one(p)
                .await
                .map_err(err)?;
                if !any {
                    return Ok(0);
                }
                let mut tx = p.begin().await.map_err(err)?;
                let rows: Vec<OutboxRow> = sqlx::query_as(
                    "SELECT id, topic, payload, created_at FROM outbox WHERE published_at IS NULL \
                     ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
                )
                .bind(i.batch)
                .fetch_all(&mut *tx)
                .await
                .map_err(err)?;
                if rows.is_empty() {
                    return Ok(0);
                }
                let events = to_events(rows);
                crate::fail::point(&format!("outbox.before_publish.{source}"));
                i.bus.publish(&events).await?;
                let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
                sqlx::query("UPDATE outbox SET published_at = $1 WHERE id = ANY($2)")
                    .bind(now_ms())
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                tx.commit().await.map_err(err)?;
                events.len()
            }
            Db::Sqlite(p) => {
                // One relay per SQLite file: no claim needed, and no write lock is held while
                // the transport works.
                let rows: Vec<OutboxRow> = sqlx::query_as(
                    "SELECT id, topic, payload, created_at FROM outbox WHERE published_at IS NULL \
                     ORDER BY created_at, id LIMIT $1",
                )
                .bind(i.batch)
                .fetch_all(p)
                .await
                .map_err(err)?;
                if rows.is_empty() {
                    return Ok(0);
                }
                let events = to_events(rows);
                crate::fail::point(&format!("outbox.before_publish.{source}"));
                i.bus.publish(&events).await?;
                let now = now_ms();
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
                for e in &events {
                    sqlx::query("UPDATE outbox SET published_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(e.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                }
                tx.commit().await.map_err(err)?;
                events.len()
            }
        };
        metrics::counter!("comptoir_events_published_total", "source" => source)
            .increment(n as u64);
        Ok(n)
    }

    /// Sets `comptoir_outbox_backlog{source}` to the events written but not published yet, and
    /// returns it. One indexed count (`outbox_pending`); the relay runs it every 15 s.
    pub async fn refresh_backlog(&self) -> Result<i64, sqlx::Error> {
        let n = pending_count(&self.inner.db).await?;
        metrics::gauge!("comptoir_outbox_backlog", "source" => self.inner.source.clone())
            .set(n as f64);
        Ok(n)
    }

    /// Deletes events published more than `keep` ago.
    pub async fn prune(&self, keep: Duration) -> Result<u64, sqlx::Error> {
        let before = now_ms() - keep.as_millis() as i64;
        crate::db_run!(&self.inner.db, |p| sqlx::query(
            "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at <= $1"
        )
        .bind(before)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
    }
}

/// How often a relay refreshes its backlog gauge.
const BACKLOG_EVERY: Duration = Duration::from_secs(15);

fn describe_metrics() {
    metrics::describe_counter!(
        "comptoir_events_published_total",
        "Events handed to the bus by an outbox relay, by source service"
    );
    metrics::describe_counter!(
        "comptoir_outbox_publish_failures_total",
        "Outbox relay passes that could not publish (the transport was down), by source"
    );
    metrics::describe_gauge!(
        "comptoir_outbox_backlog",
        "Events written to a service's outbox and not published yet, by source (refreshed every 15 s)"
    );
}

/// Events not yet published (for health and tests).
pub async fn pending_count(db: &Db) -> Result<i64, sqlx::Error> {
    crate::db_run!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"
    )
    .fetch_one(p)
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_match_like_amqp() {
        assert!(topic_matches("order.paid", "order.paid"));
        assert!(topic_matches("order.*", "order.paid"));
        assert!(!topic_matches("order.*", "order.paid.late"));
        assert!(topic_matches("order.#", "order.paid.late"));
        assert!(topic_matches("order.#", "order"));
        assert!(topic_matches("#", "stock.low"));
        assert!(!topic_matches("stock.*", "order.paid"));
        assert!(topic_matches("*.paid", "order.paid"));
    }
}
