//! The catalogue service: products with variants, categories as a tree, brands, typed
//! attributes, prices with VAT, pictures, publication.
//!
//! The four rooms of a service crate:
//! - `domain`: types and rules (limits, text, slug, SKU, barcode, price, VAT and attribute
//!   checks, the search text), no IO
//! - `app`: use cases (validation + the writes of one transaction); errors are [`app::Error`]
//! - `store`: SQL, one text for SQLite and PostgreSQL
//! - `http`: routes, OpenAPI, the idempotent write flow, the wire types (`http::wire`) and the
//!   one mapping of [`app::Error`] to problem documents
//!
//! Beside them:
//! - `contract`: this service's side of [`contracts::catalog`] (prices and known SKUs for
//!   carts and inventory), in process and as `/internal/catalog/...` routes
//! - `demo`: the Breizhsport demo catalogue
//! - `service` and `model`: the former paths of `app` and `http::wire`, kept for the web, the
//!   wiring and the tests

pub mod app;
pub mod contract;
pub mod demo;
pub mod domain;
pub mod http;
pub mod store;

/// The use cases under their former name (`catalog::service::list_spec`).
pub use app as service;

/// The wire types under their former path (`catalog::model::Product`, …).
pub mod model {
    pub use crate::http::wire::*;
}

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
