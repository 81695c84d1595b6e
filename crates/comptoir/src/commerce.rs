//! Wiring of the commerce core: inventory, carts, payments and orders (with the checkout saga),
//! the event bus and its relays, and the background workers (hold sweeper, saga recovery,
//! cart purge, idempotency pruning).

use crate::StartError;
use futures_util::future::BoxFuture;
use kernel::{Clock, SystemClock};
use platform::bus::{EventBus, InProcessBus, Relay};
use platform::config::Settings;
use platform::db::{Db, DbTarget};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The commerce services of this process, for the binary and the tests.
#[derive(Clone)]
pub struct Commerce {
    pub inventory: inventory::Inventory,
    pub payments: payments::Payments,
    pub carts: Arc<cart::Carts>,
    pub orders: orders::Orders,
    pub cart_db: Db,
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

/// Prices from the catalogue's database, in this process.
pub struct CatalogPrices(pub Db);

impl cart::PriceBook for CatalogPrices {
    fn prices<'a>(
        &'a self,
        skus: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, cart::PriceInfo>, String>> {
        Box::pin(async move {
            let rows = catalog::store::prices_by_sku(&self.0, skus)
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    let mut name = r.name_fr;
                    for extra in [r.size, r.colour].into_iter().flatten() {
                        name.push_str(" — ");
                        name.push_str(&extra);
                    }
                    (
                        r.sku.clone(),
                        cart::PriceInfo {
                            sku: r.sku,
                            name,
                            unit_price: r.price_minor,
                            currency: r.currency,
                            active: r.sellable,
                        },
                    )
                })
                .collect())
        })
    }
}

impl inventory::SkuCatalog for CatalogPrices {
    fn known<'a>(
        &'a self,
        skus: &'a [String],
    ) -> BoxFuture<'a, Result<std::collections::HashSet<String>, String>> {
        Box::pin(async move {
            let mut known = std::collections::HashSet::new();
            for chunk in skus.chunks(200) {
                let rows = catalog::store::prices_by_sku(&self.0, chunk)
                    .await
                    .map_err(|e| e.to_string())?;
                known.extend(rows.into_iter().map(|r| r.sku));
            }
            Ok(known)
        })
    }
}

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

/// Opens the four databases, builds the services, starts their relays and workers, subscribes
/// the consumers. `catalog_db` is the catalogue's database when it runs in this process.
pub async fn start(
    s: &Settings,
    bus: Arc<dyn EventBus>,
    catalog_db: Option<Db>,
    report: &mut crate::StartReport,
    databases: &mut Vec<Db>,
) -> Result<Commerce, StartError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let open = |t: DbTarget, set, n| async move {
        let db = crate::open_service_db(&t, set, n).await?;
        Ok::<_, StartError>((db, t.describe()))
    };
    let (inv_db, d) = open(
        inventory_db_target(s),
        inventory::migrations(),
        s.inventory.max_connections,
    )
    .await?;
    report.databases.push((inventory::SERVICE.into(), d));
    let (pay_db, d) = open(
        payments_db_target(s),
        payments::migrations(),
        s.payments.max_connections,
    )
    .await?;
    report.databases.push((payments::SERVICE.into(), d));
    let (ord_db, d) = open(
        orders_db_target(s),
        orders::migrations(),
        s.orders.max_connections,
    )
    .await?;
    report.databases.push((orders::SERVICE.into(), d));
    let (cart_db, d) = open(
        cart_db_target(s),
        cart::migrations(),
        s.cart.max_connections,
    )
    .await?;
    report.databases.push((cart::SERVICE.into(), d));
    databases.extend([
        inv_db.clone(),
        pay_db.clone(),
        ord_db.clone(),
        cart_db.clone(),
    ]);

    let inv_relay = Relay::new(inventory::SERVICE, inv_db.clone(), bus.clone());
    let pay_relay = Relay::new(payments::SERVICE, pay_db.clone(), bus.clone());
    let ord_relay = Relay::new(orders::SERVICE, ord_db.clone(), bus.clone());

    let catalogue = match catalog_db {
        Some(db) => Arc::new(CatalogPrices(db)),
        None => {
            return Err(StartError::Runtime(
                "the commerce target needs the catalogue in the same process for prices".into(),
            ));
        }
    };
    let inventory = inventory::Inventory {
        db: inv_db,
        clock: clock.clone(),
        relay: Some(inv_relay.clone()),
        hold_ttl: Duration::from_secs(s.orders.hold_minutes * 60),
        skus: catalogue.clone(),
    };
    report_unknown_skus(&inventory).await;
    let payments = payments::Payments::new(pay_db.clone(), provider(s, &pay_db)?, clock.clone())
        .with_relay(pay_relay.clone());
    let prices: Arc<dyn cart::PriceBook> = catalogue;
    let store: Arc<dyn cart::CartStore> = match s.cart.backend.as_str() {
        "redis" => Arc::new(
            cart::RedisCartStore::connect(
                s.cart.redis_url.expose(),
                "comptoir:cart",
                clock.clone(),
            )
            .await
            .map_err(|e| StartError::Runtime(format!("cart Redis: {e}")))?,
        ),
        _ => Arc::new(cart::SqlCartStore::new(cart_db.clone(), clock.clone())),
    };
    let carts = Arc::new(cart::Carts::new(
        store,
        prices,
        clock.clone(),
        cart::CartSettings {
            guest_ttl: Duration::from_secs(s.cart.guest_days * 86_400),
            customer_ttl: Duration::from_secs(s.cart.customer_days * 86_400),
            ..Default::default()
        },
    ));
    let orders = orders::Orders {
        db: ord_db,
        inventory: inventory.clone(),
        payments: payments.clone(),
        carts: carts.clone(),
        clock,
        relay: Some(ord_relay.clone()),
        settings: orders::OrderSettings {
            hold_ttl: Duration::from_secs(s.orders.hold_minutes * 60),
            saga_lease: Duration::from_secs(s.orders.saga_lease_seconds),
            shipping_location: s.orders.shipping_location.clone(),
            shipping_fee: s.orders.shipping_fee_minor,
            free_shipping_from: s.orders.free_shipping_from_minor,
            orphan_after: Duration::from_secs(s.orders.orphan_refund_seconds),
        },
    };
    orders::consumers::subscribe(&orders, &bus)
        .await
        .map_err(|e| StartError::Runtime(format!("event bus: {e}")))?;
    for r in [&inv_relay, &pay_relay, &ord_relay] {
        r.spawn();
    }
    inventory.spawn_sweeper(Duration::from_secs(s.inventory.hold_sweep_seconds));
    orders.spawn_recovery(Duration::from_millis(s.orders.recovery_interval_ms));
    spawn_cart_purge(carts.clone());
    Ok(Commerce {
        inventory,
        payments,
        carts,
        orders,
        cart_db,
    })
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
pub async fn seed_demo(c: &Commerce, catalog_db: &Db) -> Result<usize, StartError> {
    let err = |e: inventory::InvError| StartError::Runtime(format!("demo stock: {e}"));
    inventory::demo::seed_locations(&c.inventory)
        .await
        .map_err(err)?;
    let skus = catalog::store::all_skus(catalog_db)
        .await
        .map_err(|e| StartError::Runtime(format!("demo stock: {e}")))?;
    inventory::demo::seed_stock(&c.inventory, &skus)
        .await
        .map_err(err)
}
