//! The catalogue service: products with variants, categories as a tree, brands, typed
//! attributes, prices with VAT, pictures, publication.
//!
//! - `domain`: types and rules, no IO
//! - `model`: what the API sends and receives
//! - `service`: use cases (validation + the writes of one transaction)
//! - `store`: SQL, one text for SQLite and PostgreSQL
//! - `http`: routes, OpenAPI, the idempotent write flow
//! - `contract`: this service's side of [`contracts::catalog`] (prices and known SKUs for
//!   carts and inventory), in process and as `/internal/catalog/...` routes
//! - `demo`: the Breizhsport demo catalogue

pub mod contract;
pub mod demo;
pub mod domain;
pub mod http;
pub mod model;
pub mod service;
pub mod store;

use platform::db::MigrationSet;
use sqlx::migrate::Migrator;

static PG_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The catalogue's schema, for both backends.
pub fn migrations() -> MigrationSet {
    MigrationSet {
        postgres: &PG_MIGRATIONS,
        sqlite: &SQLITE_MIGRATIONS,
    }
}

/// Name of the service: its target, its SQLite file (`catalog.db`) and its PostgreSQL schema.
pub const SERVICE: &str = "catalog";

#[cfg(test)]
mod tests {
    /// The two migration sets stay in step: files, versions, tables and columns.
    #[test]
    fn migration_sets_are_in_step() {
        testkit::assert_migrations_in_step(env!("CARGO_MANIFEST_DIR"), super::migrations());
    }
}
