//! The cart service: guest and customer carts.
//!
//! The four rooms of a service crate:
//! - `domain`: the cart, its lines and rules (quantities 1 to 99, at most 50 lines, one
//!   currency, what a SKU and a price may be, who sees a cart); no IO
//! - `app`: [`Carts`], the use cases (create, add, change, remove, merge at sign-in, reprice
//!   at checkout), and the [`PriceBook`] it asks for current prices; errors are [`CartError`]
//! - `store`: the [`CartStore`] trait and [`SqlCartStore`] (the service's SQLite or PostgreSQL
//!   database, embedded default)
//! - `redis_store`: [`RedisCartStore`] (production: JSON per cart with a TTL, Lua compare-and-set)
//! - `keyed`: `Idempotency-Key`s of cart writes, kept by the store so that an answer is written
//!   with its change
//! - `http`: routes under `/api/carts`, policy, OpenAPI, the wire types (`http::wire`) and the
//!   one mapping of [`CartError`] (and [`StoreError`]) to problem documents
//!
//! Beside them:
//! - `contract`: this service's side of [`contracts::carts`]: [`Carts`] as a
//!   [`contracts::carts::CartsApi`], and the `/internal/carts/...` routes that serve it
//! - `service` and `model`: the former paths of `app` and of `domain` + `http::wire`, kept for
//!   the wiring and the tests

pub mod app;
pub mod contract;
pub mod domain;
pub mod http;
pub mod keyed;
pub mod redis_store;
pub mod store;

/// The use cases under their former name.
pub use app as service;

/// The cart's types under their former path (`cart::model::MAX_LINES`, `CartView`, …): the
/// domain's and the wire's.
pub mod model {
    pub use crate::domain::*;
    pub use crate::http::wire::*;
}

pub use app::{CartError, CartSettings, Carts, PriceBook, describe_metrics};
pub use domain::{Cart, Line, PriceChange, PriceInfo};
pub use http::wire::CartView;
pub use redis_store::RedisCartStore;
pub use store::{CartStore, Commit, Purged, SqlCartStore, StoreError};

use platform::db::MigrationSet;
use sqlx::migrate::Migrator;

static PG_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The cart service's schema, for both backends (carts and the keys of their writes for the SQL
/// backend, the outbox whatever the backend).
pub fn migrations() -> MigrationSet {
    MigrationSet {
        postgres: &PG_MIGRATIONS,
        sqlite: &SQLITE_MIGRATIONS,
    }
}

/// Name of the service: its target, its SQLite file (`cart.db`) and its PostgreSQL schema.
pub const SERVICE: &str = "cart";
#[cfg(test)]
mod tests {
    /// The two migration sets stay in step: files, versions, tables and columns.
    #[test]
    fn migration_sets_are_in_step() {
        testkit::assert_migrations_in_step(env!("CARGO_MANIFEST_DIR"), super::migrations());
    }
}
