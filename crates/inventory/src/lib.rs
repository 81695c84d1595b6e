//! The inventory service: locations, stock per (location, SKU) as on hand / held / available,
//! the movement ledger every change goes through, checkout holds with an expiry, low-stock
//! alerts. Its own database (`inventory.db` or the PostgreSQL schema `inventory`).
//!
//! - `service`: the rules (guarded updates, ledger, holds, sweeper, ledger check)
//! - `http`: routes under `/api/inventory`, their policy and OpenAPI description
//! - `skus`: the catalogue's SKUs, through the [`SkuCatalog`] contract (I10)
//! - `contract`: this service's side of [`contracts::inventory`]: [`Inventory`] as a
//!   [`contracts::inventory::StockApi`], and the `/internal/inventory/...` routes
//! - `demo`: the Breizhsport locations and opening stock

pub mod contract;
pub mod demo;
pub mod http;
pub mod service;
pub mod skus;

pub use service::{HoldLine, InvError, Inventory, Location, MovementKind, Shortage};
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

    #[test]
    fn lines_of_one_sku_are_summed_before_the_check() {
        use crate::service::{HoldLine, sum_lines};
        let l = |s: &str, q| HoldLine {
            sku: s.into(),
            quantity: q,
        };
        let m = sum_lines(&[l("B", 2), l("A", 1), l("B", 3)]).expect("valid");
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            vec![("A".into(), 1), ("B".into(), 5)]
        );
        for bad in [0, -1, i64::MAX, 1_000_001] {
            assert!(sum_lines(&[l("A", bad)]).is_err(), "{bad}");
        }
        assert!(
            sum_lines(&[l("A", 600_000), l("A", 600_000)]).is_err(),
            "sum over the cap"
        );
        assert!(sum_lines(&[]).is_err());
    }
}
