//! The RabbitMQ transport of the event bus.
//!
//! Topology, for a `prefix` (default `comptoir`):
//! - `{prefix}.events`: durable topic exchange; an event is published with its topic as the
//!   routing key.
//! - `{prefix}.dlx`: durable direct exchange receiving what consumers give up on.
//! - per consumer group: the durable queue `{prefix}.{group}`, bound to the group's patterns,
//!   dead-lettering to `{prefix}.dlx` with the routing key `{prefix}.{group}.dlq`, and the durable
//!   queue `{prefix}.{group}.dlq` bound to it. A group's queue exists from its first
//!   subscription on: events published before that are not kept for it.
//!
//! Publishing uses persistent messages and publisher confirms: `publish` answers `Ok` only when
//! the broker has confirmed every event of the batch. Consumers ack manually with a prefetch
//! window and run their handler on one event at a time, in order; a failing handler gets the
//! event once more (it goes back to the queue), then it is dead-lettered. An undecodable message
//! is dead-lettered at once. Delivery is at least once: after a lost connection, unacknowledged
//! events come again (with the redelivered flag), so handlers use
//! [`crate::bus::first_delivery`].
//!
//! A half-open TCP connection is noticed through AMQP heartbeats (the broker proposes 60 s; add
//! `?heartbeat=10` to the URL for faster detection).
//!
//! A supervisor task watches the connection. When it drops, `publish` fails fast with
//! [`BusError::Unavailable`] while the supervisor reconnects with backoff (at most 5 s),
//! declares the topology again and re-subscribes every registered group.

mod wire;
use wire::{decode, properties};

use crate::bus::{BusError, Event, EventBus, Handler};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

/// Unacknowledged deliveries a consumer holds at once (per group and process). Its handler
/// runs them one at a time, in order.
pub const PREFETCH: u16 = 32;
/// The longest wait for the broker to confirm a batch.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection attempt (TCP, AMQP handshake, topology) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the supervisor looks at the connection when nothing woke it.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

const HEADER_SOURCE: &str = "comptoir-source";
const HEADER_CREATED_AT: &str = "comptoir-created-at";
const HEADER_TOPIC: &str = "comptoir-topic";

fn unavailable(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("rabbitmq: {what}: {e}"))
}

/// The setting of the broker's URL, named in TLS errors.
const URL_SETTING: &str = "bus.rabbitmq_url";

/// Opens a connection: `amqps://` with rustls (Mozilla's roots + `tls.ca_file`, the server's
/// name checked), `amqp://` in clear. The TLS support is compiled in (lapin's
/// `rustls-webpki-roots-certs` feature): without it lapin opens an `amqps://` URL in clear text.
async fn open(
    url: &str,
    props: ConnectionProperties,
    tls: &crate::tls::TlsClient,
) -> Result<Connection, BusError> {
    use lapin::Connect;
    let runtime = lapin::runtime::default_runtime().map_err(|e| unavailable("runtime", e))?;
    url.connect_with_config(props, tls.amqp_config(), runtime)
        .await
        .map_err(|e| {
            if url.starts_with("amqps://") && crate::tls::is_tls_failure(&e) {
                BusError::Unavailable(format!(
                    "rabbitmq: {}",
                    crate::tls::refused(URL_SETTING, crate::tls::chain(&e))
                ))
            } else {
                unavailable("connect", crate::tls::chain(&e))
            }
        })
}

fn short(s: &str, what: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(s).map_err(|_| unavailable(what, format!("`{s}` is too long")))
}

/// A name part (`prefix`, `group`): lowercase letters, digits, `_`, `-` and `.`.
fn check_name(kind: &str, s: &str) -> Result<(), BusError> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || b == b'.'
        });
    if ok {
        Ok(())
    } else {
        Err(BusError::Unavailable(format!(
            "rabbitmq: invalid {kind} `{s}` (1 to 100 of a-z 0-9 _ - .)"
        )))
    }
}

/// Aborts the task when dropped, unless detached.
struct TaskGuard(Option<tokio::task::JoinHandle<()>>);

impl TaskGuard {
    fn spawn(f: impl std::future::Future<Output = ()> + Send + 'static) -> TaskGuard {
        TaskGuard(Some(tokio::spawn(f)))
    }
    fn is_finished(&self) -> bool {
        self.0.as_ref().is_none_or(|h| h.is_finished())
    }
    fn abort(&self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
    /// Lets the task run to its end.
    fn detach(mut self) {
        self.0 = None;
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.abort();
    }
}

#[derive(Clone)]
struct Group {
    name: String,
    patterns: Vec<String>,
    handler: Handler,
    /// A queue of this process only (server-named, exclusive, gone with the connection),
    /// consumed without acknowledgements: see [`EventBus::subscribe_broadcast`].
    broadcast: bool,
}

/// One established connection with what runs on it.
struct Live {
    conn: Arc<Connection>,
    publisher: Channel,
    consumers: Vec<TaskGuard>,
}

impl Live {
    fn healthy(&self) -> bool {
        self.conn.status().connected()
            && self.publisher.status().connected()
            && self.consumers.iter().all(|c| !c.is_finished())
    }
}

struct State {
    live: Option<Live>,
    groups: Vec<Group>,
}

struct Shared {
    tls: crate::tls::TlsClient,
    url: String,
    prefix: String,
    /// What `publish` and `dead_letters` use, without waiting for the state lock (which the
    /// supervisor holds while it reconnects).
    current: std::sync::RwLock<Option<(Arc<Connection>, Channel)>>,
    state: Mutex<State>,
    /// Wakes the supervisor (a consumer ended, a publish failed).
    wake: Arc<Notify>,
}

/// The RabbitMQ [`EventBus`]. Dropping it stops its supervisor and consumers and closes the
/// connection.
pub struct RabbitBus {
    shared: Arc<Shared>,
    supervisor: TaskGuard,
}

impl RabbitBus {
    /// Connects to `url` (`amqp://user:password@host:5672/%2f`) and declares the exchanges of
    /// `prefix`. Fails with [`BusError::Unavailable`] when the broker cannot be reached now;
    /// after that, lost connections are re-established in the background.
    ///
    /// `amqps://` is TLS (verified against the process's trust store, [`crate::tls::current`])
    /// or no connection.
    pub async fn connect(url: &str, prefix: &str) -> Result<RabbitBus, BusError> {
        RabbitBus::connect_with(url, prefix, &crate::tls::current()).await
    }

    /// [`RabbitBus::connect`] with the trust store given.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        tls: &crate::tls::TlsClient,
    ) -> Result<RabbitBus, BusError> {
        check_name("prefix", prefix)?;
        let shared = Arc::new(Shared {
            tls: tls.clone(),
            url: url.to_string(),
            prefix: prefix.to_string(),
            current: std::sync::RwLock::new(None),
            state: Mutex::new(State {
                live: None,
                groups: Vec::new(),
            }),
            wake: Arc::new(Notify::new()),
        });
        let live = shared.establish(&[]).await?;
        describe_metrics();
        shared.set_current(Some(&live));
        shared.state.lock().await.live = Some(live);
        let supervisor = TaskGuard::spawn(supervise(shared.clone()));
        tracing::info!(prefix, "event bus: connected to RabbitMQ");
        Ok(RabbitBus { shared, supervisor })
    }

    /// The exchange events are published to.
    pub fn exchange(&self) -> String {
        format!("{}.events", self.shared.prefix)
    }

    /// The queue of a consumer group.
    pub fn queue(&self, group: &str) -> String {
        format!("{}.{group}", self.shared.prefix)
    }

    /// The dead-letter queue of a consumer group.
    pub fn dead_letter_queue(&self, group: &str) -> String {
        format!("{}.{group}.dlq", self.shared.prefix)
    }

    /// Whether the connection is up now (for readiness).
    pub fn is_connected(&self) -> bool {
        self.shared
            .current()
            .is_some_and(|(c, p)| c.status().connected() && p.status().connected())
    }

    /// Stops reconnecting and consuming and closes the connection (graceful shutdown); later
    /// publishes fail with [`BusError::Unavailable`].
    pub async fn close(&self) {
        self.supervisor.abort();
        let live = {
            let mut st = self.shared.state.lock().await;
            self.shared.set_current(None);
            st.live.take()
        };
        if let Some(live) = live {
            drop(live.consumers);
            if live.conn.status().connected() {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    live.conn.close(200, "shutting down".into()),
                )
                .await;
            }
        }
    }

    /// How many messages wait in the dead-letter queue of `group` (for operators and tests).
    pub async fn dead_letters(&self, group: &str) -> Result<u32, BusError> {
        check_name("group", group)?;
        let (conn, _) = self
            .shared
            .current()
            .ok_or_else(|| unavailable("dead letters", "not connected"))?;
        let queue = short(&self.dead_letter_queue(group), "queue name")?;
        let work = async {
            let ch = conn
                .create_channel()
                .await
                .map_err(|e| unavailable("channel", e))?;
            let r = ch
                .queue_declare(
                    queue,
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| unavailable("dead-letter queue", e));
            if ch.status().connected() {
                let _ = ch.close(200, "OK".into()).await;
            }
            r.map(|q| q.message_count())
        };
        tokio::time::timeout(CONFIRM_TIMEOUT, work)
            .await
            .map_err(|_| unavailable("dead letters", "timed out"))?
    }
}

impl Shared {
    fn current(&self) -> Option<(Arc<Connection>, Channel)> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_current(&self, live: Option<&Live>) {
        let v = live.map(|l| (l.conn.clone(), l.publisher.clone()));
        match self.current.write() {
            Ok(mut g) => *g = v,
            Err(p) => *p.into_inner() = v,
        }
    }

    /// Connects, declares the exchanges, opens the confirming publisher channel and starts a
    /// consumer for each group.
    async fn establish(&self, groups: &[Group]) -> Result<Live, BusError> {
        let work = async {
            let props = ConnectionProperties::default()
                .with_connection_name(format!("comptoir ({})", self.prefix).into());
            let conn = Arc::new(open(&self.url, props, &self.tls).await?);
            let publisher = conn
                .create_channel()
                .await
                .map_err(|e| unavailable("channel", e))?;
            let durable = ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            };
            publisher
                .exchange_declare(
                    short(&format!("{}.events", self.prefix), "exchange")?,
                    ExchangeKind::Topic,
                    durable,
                    FieldTable::default(),
                )
                .await
                .map_err(|e| unavailable("declare exchange", e))?;
            publisher
                .exchange_declare(
                    short(&format!("{}.dlx", self.prefix), "exchange")?,
                    ExchangeKind::Direct,
                    durable,
                    FieldTable::default(),
                )
                .await
                .map_err(|e| unavailable("declare dead-letter exchange", e))?;
            publisher
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| unavailable("enable publisher confirms", e))?;
            let mut consumers = Vec::with_capacity(groups.len());
            for g in groups {
                consumers.push(self.start_group(&conn, g).await?);
            }
            Ok(Live {
                conn,
                publisher,
                consumers,
            })
        };
        tokio::time::timeout(CONNECT_TIMEOUT, work)
            .await
            .map_err(|_| unavailable("connect", "timed out"))?
    }

    /// Declares the group's queues and bindings and starts its consumer.
    async fn start_group(&self, conn: &Connection, g: &Group) -> Result<TaskGuard, BusError> {
        if g.broadcast {
            return self.start_broadcast(conn, g).await;
        }
        let p = &self.prefix;
        let queue = format!("{p}.{}", g.name);
        let dlq = format!("{queue}.dlq");
        let err = |what: &'static str| move |e: lapin::Error| unavailable(what, e);
        let ch = conn.create_channel().await.map_err(err("channel"))?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        ch.queue_declare(short(&dlq, "queue name")?, durable, FieldTable::default())
            .await
            .map_err(err("declare dead-letter queue"))?;
        ch.queue_bind(
            short(&dlq, "queue name")?,
            short(&format!("{p}.dlx"), "exchange")?,
            short(&dlq, "routing key")?,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(err("bind dead-letter queue"))?;
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(format!("{p}.dlx").into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(dlq.clone().into()),
        );
        ch.queue_declare(short(&queue, "queue name")?, durable, args)
            .await
            .map_err(err("declare queue"))?;
        self.bind(&ch, &queue, &g.patterns).await?;
        ch.basic_qos(PREFETCH, BasicQosOptions { global: false })
            .await
            .map_err(err("prefetch"))?;
        let consumer = ch
            .basic_consume(
                short(&queue, "queue name")?,
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(err("consume"))?;
        let group = g.name.clone();
        let handler = g.handler.clone();
        let wake = self.wake.clone();
        Ok(TaskGuard::spawn(async move {
            // The channel lives as long as its consumer.
            let _channel = ch;
            let mut consumer = consumer;
            let mut failures: std::collections::HashMap<Uuid, u32> = Default::default();
            while let Some(d) = consumer.next().await {
                match d {
                    // One at a time: a group sees its events in publication order (but for
                    // redeliveries); the prefetch window keeps the next ones at hand.
                    Ok(delivery) => handle(delivery, &group, &handler, &mut failures).await,
                    Err(e) => {
                        tracing::warn!(group = %group, error = %e, "event bus: consumer stopped");
                        break;
                    }
                }
            }
            wake.notify_one();
        }))
    }
}

impl Shared {
    /// Binds `queue` to the events exchange for each of `patterns`.
    async fn bind(&self, ch: &Channel, queue: &str, patterns: &[String]) -> Result<(), BusError> {
        let exchange = format!("{}.events", self.prefix);
        for pattern in patterns {
            ch.queue_bind(
                short(queue, "queue name")?,
                short(&exchange, "exchange")?,
                short(pattern, "pattern")?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| unavailable("bind queue", e))?;
        }
        Ok(())
    }

    /// A broadcast group: its own exclusive, auto-deleted queue, bound to the patterns.
    async fn start_broadcast(&self, conn: &Connection, g: &Group) -> Result<TaskGuard, BusError> {
        let err = |what: &'static str| move |e: lapin::Error| unavailable(what, e);
        let ch = conn.create_channel().await.map_err(err("channel"))?;
        let opts = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let q = ch
            .queue_declare("".into(), opts, FieldTable::default())
            .await
            .map_err(err("declare broadcast queue"))?;
        let queue = q.name().to_string();
        self.bind(&ch, &queue, &g.patterns).await?;
        let consumer = ch
            .basic_consume(
                short(&queue, "queue name")?,
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(err("consume"))?;
        let name = g.name.clone();
        let handler = g.handler.clone();
        let wake = self.wake.clone();
        Ok(TaskGuard::spawn(async move {
            let _channel = ch;
            let mut consumer = consumer;
            while let Some(d) = consumer.next().await {
                match d {
                    Ok(delivery) => match decode(&delivery) {
                        Ok(e) => {
                            if let Err(m) = handler(e).await {
                                tracing::warn!(group = %name, error = %m, "broadcast handler failed");
                            }
                        }
                        Err(e) => tracing::warn!(group = %name, error = %e, "undecodable event"),
                    },
                    Err(e) => {
                        tracing::warn!(group = %name, error = %e, "event bus: broadcast consumer stopped");
                        break;
                    }
                }
            }
            wake.notify_one();
        }))
    }
}

/// Keeps the connection up: on a wake-up or every second, checks it; when it is gone,
/// reconnects with backoff and re-subscribes every group.
async fn supervise(shared: Arc<Shared>) {
    loop {
        let _ = tokio::time::timeout(CHECK_INTERVAL, shared.wake.notified()).await;
        {
            let mut st = shared.state.lock().await;
            if st.live.as_ref().is_some_and(Live::healthy) {
                continue;
            }
            shared.set_current(None);
            if let Some(old) = st.live.take() {
                // A handler still running finishes; its ack then fails and the broker
                // redelivers the event on the new connection.
                old.consumers.into_iter().for_each(TaskGuard::detach);
                if old.conn.status().connected() {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        old.conn.close(200, "reconnecting".into()),
                    )
                    .await;
                }
            }
        }
        tracing::warn!(prefix = %shared.prefix, "event bus: lost the RabbitMQ connection; reconnecting");
        metrics::counter!("comptoir_bus_disconnects_total").increment(1);
        let mut backoff = Duration::from_millis(100);
        loop {
            {
                let mut st = shared.state.lock().await;
                match shared.establish(&st.groups).await {
                    Ok(live) => {
                        shared.set_current(Some(&live));
                        st.live = Some(live);
                        tracing::info!(prefix = %shared.prefix, groups = st.groups.len(),
                            "event bus: reconnected to RabbitMQ");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(prefix = %shared.prefix, error = %e,
                            "event bus: cannot reconnect yet");
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// How many times this consumer tries an event before dead-lettering it.
pub const MAX_ATTEMPTS: u32 = 5;

/// Runs the handler for one delivery: ack on success; on failure, requeue (after a short pause
/// that grows with each failure) until the event failed [`MAX_ATTEMPTS`] times here, then
/// dead-letter it. Attempts are counted by this consumer, not from the `redelivered` flag: a
/// delivery that comes back because another consumer died (a crash, a restart) has not failed.
async fn handle(
    delivery: lapin::message::Delivery,
    group: &str,
    handler: &Handler,
    failures: &mut std::collections::HashMap<Uuid, u32>,
) {
    let event = match decode(&delivery) {
        Ok(e) => e,
        Err(why) => {
            tracing::warn!(group = %group, reason = %why, "event bus: undecodable message dead-lettered");
            metrics::counter!("comptoir_events_dead_lettered_total", "group" => group.to_string())
                .increment(1);
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            return;
        }
    };
    let id = event.id;
    let topic = event.topic.clone();
    let outcome = match std::panic::AssertUnwindSafe(handler(event))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(_) => Err("the handler panicked".to_string()),
    };
    let acked = match outcome {
        Ok(()) => {
            failures.remove(&id);
            metrics::counter!("comptoir_events_consumed_total", "group" => group.to_string())
                .increment(1);
            delivery.ack(BasicAckOptions::default()).await
        }
        Err(e) if failures.get(&id).copied().unwrap_or(0) + 1 >= MAX_ATTEMPTS => {
            failures.remove(&id);
            tracing::error!(group = %group, event = %id, topic = %topic, error = %e,
                "event bus: handler failed {MAX_ATTEMPTS} times; event dead-lettered");
            metrics::counter!("comptoir_events_dead_lettered_total", "group" => group.to_string())
                .increment(1);
            delivery.reject(BasicRejectOptions { requeue: false }).await
        }
        Err(e) => {
            let n = failures.entry(id).or_insert(0);
            *n += 1;
            if failures.len() > 10_000 {
                failures.clear();
            }
            tracing::warn!(group = %group, event = %id, topic = %topic, error = %e,
                "event bus: handler failed; event requeued");
            tokio::time::sleep(Duration::from_millis(
                50 * u64::from(failures.get(&id).copied().unwrap_or(1)),
            ))
            .await;
            delivery
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await
        }
    };
    if let Err(e) = acked {
        // The channel is gone: the broker requeues the delivery, it comes back later.
        tracing::debug!(group = %group, event = %id, error = %e, "event bus: cannot settle a delivery");
    }
}

impl EventBus for RabbitBus {
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            let Some((_, channel)) = self.shared.current() else {
                return Err(unavailable("publish", "not connected"));
            };
            let exchange = short(&format!("{}.events", self.shared.prefix), "exchange")?;
            let work = async {
                let mut confirms = Vec::with_capacity(events.len());
                for e in events {
                    let confirm = channel
                        .basic_publish(
                            exchange.clone(),
                            short(&e.topic, "topic")?,
                            BasicPublishOptions::default(),
                            e.payload.as_bytes(),
                            properties(e),
                        )
                        .await
                        .map_err(|e| unavailable("publish", e))?;
                    confirms.push(confirm);
                }
                for c in confirms {
                    let confirmation = c.await.map_err(|e| unavailable("confirm", e))?;
                    if !confirmation.is_ack() {
                        return Err(unavailable("confirm", "the broker refused an event (nack)"));
                    }
                }
                Ok(())
            };
            let r = match tokio::time::timeout(CONFIRM_TIMEOUT, work).await {
                Ok(r) => r,
                Err(_) => Err(unavailable("confirm", "timed out")),
            };
            if r.is_err() {
                self.shared.wake.notify_one();
            }
            r
        })
    }

    fn subscribe<'a>(
        &'a self,
        group: &'a str,
        patterns: &'a [&'a str],
        handler: Handler,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.register(group, patterns, handler, false))
    }

    fn subscribe_broadcast<'a>(
        &'a self,
        name: &'a str,
        patterns: &'a [&'a str],
        handler: Handler,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.register(name, patterns, handler, true))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(RabbitBus::close(self))
    }

    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    fn is_connected(&self) -> bool {
        RabbitBus::is_connected(self)
    }
}

fn describe_metrics() {
    metrics::describe_counter!(
        "comptoir_events_consumed_total",
        "Events a consumer group handled and acknowledged"
    );
    metrics::describe_counter!(
        "comptoir_events_dead_lettered_total",
        "Events moved to a group's dead-letter queue (failed 5 times, or undecodable)"
    );
    metrics::describe_counter!(
        "comptoir_bus_disconnects_total",
        "Times the RabbitMQ connection was lost (and re-established in the background)"
    );
    metrics::counter!("comptoir_bus_disconnects_total").increment(0);
}

/// Deletes the queues of `groups` (with their dead-letter queues) and the two exchanges of
/// `prefix`: for tests and for retiring a deployment. Buses using them must be dropped first,
/// or they declare them again.
pub async fn delete_topology(url: &str, prefix: &str, groups: &[&str]) -> Result<(), BusError> {
    delete_topology_with(url, prefix, groups, &crate::tls::current()).await
}

/// [`delete_topology`] with the trust store given.
pub async fn delete_topology_with(
    url: &str,
    prefix: &str,
    groups: &[&str],
    tls: &crate::tls::TlsClient,
) -> Result<(), BusError> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let conn = open(url, ConnectionProperties::default(), tls).await?;
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| unavailable("channel", e))?;
    for g in groups {
        for q in [format!("{prefix}.{g}"), format!("{prefix}.{g}.dlq")] {
            ch.queue_delete(q.into(), QueueDeleteOptions::default())
                .await
                .map_err(|e| unavailable("queue.delete", e))?;
        }
    }
    for x in [format!("{prefix}.events"), format!("{prefix}.dlx")] {
        ch.exchange_delete(x.into(), ExchangeDeleteOptions::default())
            .await
            .map_err(|e| unavailable("exchange.delete", e))?;
    }
    let _ = conn.close(200, "OK".into()).await;
    Ok(())
}

impl RabbitBus {
    async fn register(
        &self,
        group: &str,
        patterns: &[&str],
        handler: Handler,
        broadcast: bool,
    ) -> Result<(), BusError> {
        check_name("group", group)?;
        for p in patterns {
            short(p, "pattern")?;
        }
        for name in [
            "comptoir_events_consumed_total",
            "comptoir_events_dead_lettered_total",
        ] {
            metrics::counter!(name, "group" => group.to_string()).increment(0);
        }
        let g = Group {
            name: group.to_string(),
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            handler,
            broadcast,
        };
        let mut st = self.shared.state.lock().await;
        if let Some(live) = st.live.as_mut() {
            let started =
                tokio::time::timeout(CONNECT_TIMEOUT, self.shared.start_group(&live.conn, &g))
                    .await
                    .unwrap_or_else(|_| Err(unavailable("subscribe", "timed out")));
            match started {
                Ok(task) => live.consumers.push(task),
                // The broker refused (e.g. a queue declared with other arguments): not
                // registered.
                Err(e) if live.conn.status().connected() => return Err(e),
                // The connection dropped meanwhile: the supervisor subscribes on reconnect.
                Err(e) => {
                    tracing::warn!(group, error = %e,
                            "event bus: subscription deferred until RabbitMQ is back");
                    self.shared.wake.notify_one();
                }
            }
        }
        st.groups.push(g);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("group", "inventory").is_ok());
        assert!(check_name("group", "t-1.orders_2").is_ok());
        assert!(check_name("group", "").is_err());
        assert!(check_name("group", "Orders").is_err());
        assert!(check_name("group", "a b").is_err());
        assert!(check_name("group", &"a".repeat(101)).is_err());
    }

    #[test]
    fn properties_carry_the_event() {
        let e = Event::new(
            "orders",
            "order.paid",
            &serde_json::json!({"n": 1}),
            1_700_000_000_123,
        );
        let p = properties(&e);
        assert_eq!(p.delivery_mode(), &Some(2));
        assert_eq!(
            p.message_id().as_ref().map(|m| m.as_str().to_string()),
            Some(e.id.to_string())
        );
        let mut d = lapin::message::Delivery::mock(
            1,
            "x".into(),
            "order.paid".into(),
            false,
            e.payload.clone().into_bytes(),
        );
        d.properties = p;
        assert_eq!(decode(&d), Ok(e));
    }

    #[test]
    fn a_message_without_id_is_not_decoded() {
        let d = lapin::message::Delivery::mock(1, "x".into(), "order.paid".into(), false, vec![]);
        assert!(decode(&d).is_err());
    }
}
