//! The inventory service: locations, stock per (location, SKU) as on hand / held / available,
//! the movement ledger every change goes through, checkout holds with an expiry, low-stock
//! alerts. Its own database (`inventory.db` or the PostgreSQL schema `inventory`).
//!
//! The four rooms of a service crate:
//! - `domain`: types and rules (quantities, hold lines summed per SKU, locations, what may be
//!   recorded, low stock, the ledger check's comparison); no IO
//! - `store`: every SQL statement, one text for SQLite and PostgreSQL, rows mapped to `domain`
//! - `app`: the use cases on [`Inventory`] (locations, holds and the sweeper, movements and
//!   transfers, thresholds, levels, the ledger check): transactions, guarded updates, events
//!   through the outbox; errors are [`InvError`]
//! - `http`: routes under `/api/inventory`, their policy, OpenAPI description (of the domain
//!   types too) and the mapping of [`InvError`] to problems
//!
//! Beside them:
//! - `skus`: the catalogue's SKUs, through the [`SkuCatalog`] contract (I10)
//! - `contract`: this service's side of [`contracts::inventory`]: [`Inventory`] as a
//!   [`contracts::inventory::StockApi`], and the `/internal/inventory/...` routes
//! - `demo`: the Breizhsport locations and opening stock
//! - `service`: the former path of `app` and `domain`, kept for the wiring

pub mod app;
pub mod contract;
pub mod demo;
pub mod domain;
pub mod http;
pub mod skus;
pub mod store;

/// The use cases and their types under their former path (`inventory::service::…`), kept so
/// that the wiring and the tests of other crates need not change: everything of [`app`] and
/// of [`domain`].
pub mod service {
    pub use crate::app::*;
    pub use crate::domain::*;
}

pub use app::{InvError, Inventory, LowCrossings, describe_metrics};
pub use domain::{HoldLine, Location, MovementKind, Shortage, StockLevel};
pub use skus::{FixedSkus, SkuCatalog};

use platform::db::MigrationSet;
use sqlx::migrate::Migrator;

static PG_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

pub fn migrations() -> MigrationSet {
    MigrationSet {
        postgres: &PG_MIGRATIONS,
        sqlite: &SQLITE_MIGRATIONS,
    }
}

/// Name of the service: its SQLite file, its PostgreSQL schema, the `source` of its events.
pub const SERVICE: &str = "inventory";

#[cfg(test)]
mod tests {
    /// The two migration sets stay in step: files, versions, tables and columns.
    #[test]
    fn migration_sets_are_in_step() {
        testkit::assert_migrations_in_step(env!("CARGO_MANIFEST_DIR"), super::migrations());
    }
}
