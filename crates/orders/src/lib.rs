//! The orders service: orders and their state machine, the checkout saga that creates them
//! (it orchestrates inventory and payments), the recovery worker, the consumers of the events
//! other services publish, and the invariant checker. Its own database (`orders.db` or the
//! PostgreSQL schema `orders`).
//!
//! The four rooms every service crate has:
//! - `domain`: orders, statuses and transitions, the checkout plan and its rules, the saga's
//!   states and outcomes (no IO)
//! - `app`: the use cases (a checkout priced into a plan; fulfil, complete, cancel, refund),
//!   failing with `thiserror` enums
//! - `store`: SQL
//! - `http`: `/api/checkout` and `/api/orders`: routes, wire types, OpenAPI, the idempotency
//!   flow, and the one mapping of the app's errors to problem documents
//!
//! And the machinery of this service:
//! - `saga`: the checkout saga (`saga::recovery`: its recovery worker)
//! - `consumers`: `payment.refunded` → order amounts; the notifications mail sink
//! - `invariants`: the D1 checker (I1, I3–I7) any test can call
//! - `telemetry`: the business metrics (orders, revenue, saga steps) and the saga gauges
//! - `contract`: this service's side of [`contracts::orders`] (for the web), in process and as
//!   `/internal/orders/...` routes

pub mod app;
pub mod consumers;
pub mod contract;
pub mod domain;
pub mod http;
pub mod invariants;
pub mod saga;
pub mod store;
pub mod telemetry;

pub use telemetry::describe as describe_metrics;

use contracts::carts::CartsApi;
use contracts::inventory::StockApi;
use contracts::payments::PaymentsApi;
use kernel::Clock;
use platform::bus::Relay;
use platform::db::{Db, MigrationSet};
use sqlx::migrate::Migrator;
use std::sync::Arc;
use std::time::Duration;

static PG_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

pub fn migrations() -> MigrationSet {
    MigrationSet {
        postgres: &PG_MIGRATIONS,
        sqlite: &SQLITE_MIGRATIONS,
    }
}

pub const SERVICE: &str = "orders";

#[derive(Debug, Clone)]
pub struct OrderSettings {
    /// How long checkout holds stock.
    pub hold_ttl: Duration,
    /// A saga not advanced for this long is taken over by the recovery worker.
    pub saga_lease: Duration,
    /// Where home deliveries ship from.
    pub shipping_location: String,
    /// Flat home delivery fee under the free-delivery threshold, in the shop's currency.
    pub delivery: domain::rules::DeliveryRate,
    /// Captured money with no paid order is refunded once this old (I4's T_orphan).
    pub orphan_after: Duration,
}

impl Default for OrderSettings {
    fn default() -> Self {
        OrderSettings {
            hold_ttl: Duration::from_secs(15 * 60),
            saga_lease: Duration::from_secs(10),
            shipping_location: "logistique".into(),
            delivery: domain::rules::DeliveryRate {
                fee: kernel::Money::new(490, kernel::Currency::EUR),
                free_from: kernel::Money::new(5000, kernel::Currency::EUR),
            },
            orphan_after: Duration::from_secs(15 * 60),
        }
    }
}

/// The orders service and the services its saga calls, through their contracts (in process or
/// over HTTP: the wiring decides).
#[derive(Clone)]
pub struct Orders {
    pub db: Db,
    pub inventory: Arc<dyn StockApi>,
    pub payments: Arc<dyn PaymentsApi>,
    pub carts: Arc<dyn CartsApi>,
    pub clock: Arc<dyn Clock>,
    pub relay: Option<Relay>,
    pub settings: OrderSettings,
}

impl Orders {
    /// The clock's time, in the milliseconds every row keeps.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Until when a saga moved at `now` is this process's (its lease).
    pub(crate) fn lease_until(&self, now: i64) -> i64 {
        now + self.settings.saga_lease.as_millis() as i64
    }

    pub fn wake(&self) {
        if let Some(r) = &self.relay {
            r.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    /// The two migration sets stay in step: files, versions, tables and columns.
    #[test]
    fn migration_sets_are_in_step() {
        testkit::assert_migrations_in_step(env!("CARGO_MANIFEST_DIR"), super::migrations());
    }
}
