//! Wiring of the commerce core: inventory, carts, payments and orders (with the checkout saga),
//! each started on its own when its target runs here, the event bus and its relays, and the
//! background workers (hold sweeper, saga recovery, cart purge). A service that another one
//! calls is handed over in process when both run here, or as its contract's HTTP client
//! ([`Peers`]) when it runs elsewhere: this is the only place that picks.

use crate::StartError;
use contracts::catalog::PriceLookup;
use futures_util::future::BoxFuture;
use kernel::{Clock, SystemClock};
use platform::bus::{EventBus, InProcessBus, Relay};
use platform::config::Settings;
use platform::db::{Db, DbTarget};
use std::sync::Arc;
use std::time::Duration;

/// The commerce services of this process (those whose target runs here), for the binary and
/// the tests.
#[derive(Clone, Default)]
pub struct Commerce {
    pub inventory: Option<inventory::Inventory>,
    pub payments: Option<payments::Payments>,
    pub carts: Option<Arc<cart::Carts>>,
    pub orders: Option<orders::Orders>,
    pub cart_db: Option<Db>,
}

/// How this process reaches the services that run elsewhere.
pub struct Peers {
    key: platform::caller::InternalKey,
    settings: contracts::PeerSettings,
    urls: platform::config::PeersSettings,
    /// The name signed into calls (this process's first target).
    caller: &'static str,
}

impl Peers {
    pub fn new(s: &Settings, key: platform::caller::InternalKey, caller: &'static str) -> Peers {
        Peers {
            key,
            settings: contracts::PeerSettings {
                timeout: Duration::from_millis(s.peers.timeout_ms),
                attempts: s.peers.attempts,
                ..Default::default()
            },
            urls: s.peers.clone(),
            caller,
        }
    }

    /// The client of `service` at its `peers.<service>_url`.
    pub fn peer(&self, service: crate::Target) -> Result<contracts::Peer, StartError> {
        let (setting, url) = self
            .urls
            .url_of(service.name())
            .ok_or_else(|| StartError::Runtime(format!("{} is not a service", service.name())))?;
        contracts::Peer::new(
            service.name(),
            self.caller,
            url,
            self.key.clone(),
            self.settings.clone(),
        )
        .map_err(|m| StartError::Config(platform::config::ConfigError::new(setting, m)))
    }
}

fn db_target(
    s: &Settings,
    service: &str,
    url: &platform::config::DatabaseUrl,
    schema: &str,
) -> DbTarget {
    if url.is_empty() {
        DbTarget::SqliteFile {
            path: s.data.dir.join(format!("{service}.db")),
            synchronous: s.data.sqlite_synchronous,
        }
    } else {
        DbTarget::Postgres {
            url: url.expose().to_string(),
            schema: schema.to_string(),
        }
    }
}

pub fn inventory_db_target(s: &Settings) -> DbTarget {
    db_target(
        s,
        inventory::SERVICE,
        &s.inventory.database_url,
        &s.inventory.database_schema,
    )
}
pub fn orders_db_target(s: &Settings) -> DbTarget {
    db_target(
        s,
        orders::SERVICE,
        &s.orders.database_url,
        &s.orders.database_schema,
    )
}
pub fn payments_db_target(s: &Settings) -> DbTarget {
    db_target(
        s,
        payments::SERVICE,
        &s.payments.database_url,
        &s.payments.database_schema,
    )
}
pub fn cart_db_target(s: &Settings) -> DbTarget {
    db_target(
        s,
        cart::SERVICE,
        &s.cart.database_url,
        &s.cart.database_schema,
    )
}

/// The bus of this process.
pub async fn bus(s: &Settings) -> Result<Arc<dyn EventBus>, StartError> {
    match s.bus.transport.as_str() {
        "rabbitmq" => {
            let b =
                platform::rabbit::RabbitBus::connect(s.bus.rabbitmq_url.expose(), &s.bus.prefix)
                    .await
                    .map_err(|e| StartError::Runtime(format!("RabbitMQ: {e}")))?;
            Ok(Arc::new(b))
        }
        _ => Ok(Arc::new(InProcessBus::new())),
    }
}

pub use catalog::contract::CatalogPrices;

/// The payment provider of the settings.
pub fn provider(s: &Settings, db: &Db) -> Result<Arc<dyn payments::Provider>, StartError> {
    match s.payments.provider.as_str() {
        "stripe" => {
            let p = payments::StripeProvider::new(&payments::StripeConfig {
                base_url: s.payments.stripe_api_base.clone(),
                secret_key: s.payments.stripe_secret_key.clone(),
                timeout: Duration::from_secs(20),
            })
            .map_err(StartError::Runtime)?;
            Ok(Arc::new(p))
        }
        _ => Ok(Arc::new(
            payments::TestProvider::new(db.clone())
                .with_latency(Duration::from_millis(s.payments.test_latency_ms)),
        )),
    }
}

/// What the commerce services of this process need from the rest of the wiring.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub bus: Arc<dyn EventBus>,
    /// The catalogue's database when it runs in this process.
    pub catalog_db: Option<Db>,
    pub peers: &'a Peers,
    pub report: &'a mut crate::StartReport,
    pub databases: &'a mut Vec<Db>,
    /// Readiness checks of what a service needs besides its database (the carts' Redis).
    pub checks: &'a mut Vec<platform::http::health::Check>,
}

impl Context<'_> {
    async fn open(
        &mut self,
        service: &str,
        target: DbTarget,
        set: platform::db::MigrationSet,
        max: u32,
    ) -> Result<Db, StartError> {
        let setting = format!("{service}.database_url");
        let db = crate::open_service_db(&target, set, max, &setting).await?;
        self.report
            .databases
            .push((service.to_string(), target.describe()));
        self.databases.push(db.clone());
        Ok(db)
    }

    /// Prices and SKUs: the catalogue in this process, or its client.
    fn catalogue(&self) -> Result<Arc<CatalogSide>, StartError> {
        Ok(Arc::new(match &self.catalog_db {
            Some(db) => CatalogSide::Local(CatalogPrices(db.clone())),
            None => CatalogSide::Remote(contracts::catalog::CatalogClient(
                self.peers.peer(crate::Target::Catalog)?,
            )),
        }))
    }
}

/// The catalogue as carts and inventory see it.
pub enum CatalogSide {
    Local(CatalogPrices),
    Remote(contracts::catalog::CatalogClient),
}

impl PriceLookup for CatalogSide {
    fn lookup<'a>(
        &'a self,
        skus: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<cart::PriceInfo>, String>> {
        match self {
            CatalogSide::Local(c) => c.lookup(skus),
            CatalogSide::Remote(c) => c.lookup(skus),
        }
    }
}

pub async fn start_inventory(cx: &mut Context<'_>) -> Result<inventory::Inventory, StartError> {
    let s = cx.settings;
    let db = cx
        .open(
            inventory::SERVICE,
            inventory_db_target(s),
            inventory::migrations(),
            s.inventory.max_connections,
        )
        .await?;
    let relay = Relay::new(inventory::SERVICE, db.clone(), cx.bus.clone());
    let inventory = inventory::Inventory {
        db,
        clock: Arc::new(SystemClock),
        relay: Some(relay.clone()),
        hold_ttl: Duration::from_secs(s.orders.hold_minutes * 60),
        skus: cx.catalogue()?,
    };
    report_unknown_skus(&inventory).await;
    inventory::describe_metrics();
    relay.spawn();
    inventory.spawn_sweeper(Duration::from_secs(s.inventory.hold_sweep_seconds));
    Ok(inventory)
}

pub async fn start_payments(cx: &mut Context<'_>) -> Result<payments::Payments, StartError> {
    let s = cx.settings;
    let db = cx
        .open(
            payments::SERVICE,
            payments_db_target(s),
            payments::migrations(),
            s.payments.max_connections,
        )
        .await?;
    let relay = Relay::new(payments::SERVICE, db.clone(), cx.bus.clone());
    let provider = provider(s, &db)?;
    payments::describe_metrics(provider.name());
    let p = payments::Payments::new(db.clone(), provider, Arc::new(SystemClock))
        .with_relay(relay.clone());
    relay.spawn();
    Ok(p)
}

pub async fn start_cart(cx: &mut Context<'_>) -> Result<(Arc<cart::Carts>, Db), StartError> {
    let s = cx.settings;
    let db = cx
        .open(
            cart::SERVICE,
            cart_db_target(s),
            cart::migrations(),
            s.cart.max_connections,
        )
        .await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn cart::CartStore> = match s.cart.backend.as_str() {
        "redis" => {
            let r = cart::RedisCartStore::connect(
                s.cart.redis_url.expose(),
                "comptoir:cart",
                clock.clone(),
            )
            .await
            .map_err(|e| StartError::Runtime(format!("cart Redis: {e}")))?;
            let ping = r.clone();
            cx.checks.push(platform::http::health::Check::new(
                "redis",
                "cart_redis",
                move || {
                    let r = ping.clone();
                    Box::pin(async move { r.ping().await })
                },
            ));
            Arc::new(r)
        }
        _ => Arc::new(cart::SqlCartStore::new(db.clone(), clock.clone())),
    };
    cart::describe_metrics();
    let prices: Arc<dyn cart::PriceBook> = cx.catalogue()?;
    let carts = Arc::new(cart::Carts::new(
        store,
        prices,
        clock,
        cart::CartSettings {
            guest_ttl: Duration::from_secs(s.cart.guest_days * 86_400),
            customer_ttl: Duration::from_secs(s.cart.customer_days * 86_400),
            ..Default::default()
        },
    ));
    spawn_cart_purge(carts.clone());
    Ok((carts, db))
}

/// Orders and its saga, over the services of this process or their clients.
pub async fn start_orders(
    cx: &mut Context<'_>,
    here: &Commerce,
) -> Result<orders::Orders, StartError> {
    use contracts::carts::{CartsApi, CartsClient};
    use contracts::inventory::{StockApi, StockClient};
    use contracts::payments::{PaymentsApi, PaymentsClient};
    let s = cx.settings;
    let db = cx
        .open(
            orders::SERVICE,
            orders_db_target(s),
            orders::migrations(),
            s.orders.max_connections,
        )
        .await?;
    let stock: Arc<dyn StockApi> = match &here.inventory {
        Some(i) => Arc::new(i.clone()),
        None => Arc::new(StockClient(cx.peers.peer(crate::Target::Inventory)?)),
    };
    let pay: Arc<dyn PaymentsApi> = match &here.payments {
        Some(p) => Arc::new(p.clone()),
        None => Arc::new(PaymentsClient(cx.peers.peer(crate::Target::Payments)?)),
    };
    let carts: Arc<dyn CartsApi> = match &here.carts {
        Some(c) => c.clone(),
        None => Arc::new(CartsClient(cx.peers.peer(crate::Target::Cart)?)),
    };
    let relay = Relay::new(orders::SERVICE, db.clone(), cx.bus.clone());
    let orders = orders::Orders {
        db,
        inventory: stock,
        payments: pay,
        carts,
        clock: Arc::new(SystemClock),
        relay: Some(relay.clone()),
        settings: orders::OrderSettings {
            hold_ttl: Duration::from_secs(s.orders.hold_minutes * 60),
            saga_lease: Duration::from_secs(s.orders.saga_lease_seconds),
            shipping_location: s.orders.shipping_location.clone(),
            // the shop's currency: carts are created in euros
            delivery: orders::domain::rules::DeliveryRate {
                fee: kernel::Money::new(s.orders.shipping_fee_minor, kernel::Currency::EUR),
                free_from: kernel::Money::new(
                    s.orders.free_shipping_from_minor,
                    kernel::Currency::EUR,
                ),
            },
            orphan_after: Duration::from_secs(s.orders.orphan_refund_seconds),
        },
    };
    orders::consumers::subscribe(&orders, &cx.bus)
        .await
        .map_err(|e| StartError::Runtime(format!("event bus: {e}")))?;
    orders::describe_metrics();
    relay.spawn();
    orders.spawn_recovery(Duration::from_millis(s.orders.recovery_interval_ms));
    Ok(orders)
}

/// Stock recorded for SKUs the catalogue does not know (before I10 was enforced) is reported
/// once at start-up, never deleted: the operator decides.
async fn report_unknown_skus(inv: &inventory::Inventory) {
    match inv.unknown_skus().await {
        Ok(u) if u.is_empty() => {}
        Ok(u) => tracing::warn!(
            count = u.len(),
            skus = ?u.iter().take(20).collect::<Vec<_>>(),
            "stock exists for SKUs the catalogue does not know; see GET /api/inventory/check"
        ),
        Err(e) => tracing::warn!(error = %e, "could not compare stock SKUs with the catalogue"),
    }
}

/// Hourly: expired carts (SQL backend; Redis expires them itself).
fn spawn_cart_purge(carts: Arc<cart::Carts>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if let Err(e) = carts.purge_expired().await {
                tracing::warn!(error = %e, "cart purge");
            }
        }
    });
}

/// Demo locations and opening stock (first start on SQLite).
pub async fn seed_demo(inv: &inventory::Inventory, catalog_db: &Db) -> Result<usize, StartError> {
    let err = |e: inventory::InvError| StartError::Runtime(format!("demo stock: {e}"));
    inventory::demo::seed_locations(inv).await.map_err(err)?;
    let skus = catalog::store::all_skus(catalog_db)
        .await
        .map_err(|e| StartError::Runtime(format!("demo stock: {e}")))?;
    inventory::demo::seed_stock(inv, &skus).await.map_err(err)
}
