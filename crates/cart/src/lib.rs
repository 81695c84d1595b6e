//! The cart service: guest and customer carts.
//!
//! - `model`: the cart, its lines and rules (quantities 1 to 99, at most 50 lines, one currency),
//!   the API types
//! - `store`: the [`CartStore`] trait and [`SqlCartStore`] (the service's SQLite or PostgreSQL
//!   database, embedded default)
//! - `redis_store`: [`RedisCartStore`] (production: JSON per cart with a TTL, Lua compare-and-set)
//! - `keyed`: `Idempotency-Key`s of cart writes, kept by the store so that an answer is written
//!   with its change
//! - `service`: [`Carts`], the use cases (create, add, change, remove, merge at sign-in, reprice
//!   at checkout), and the [`PriceBook`] it asks for current prices
//! - `http`: routes under `/api/carts`, policy, OpenAPI
//! - `contract`: this service's side of [`contracts::carts`]: [`Carts`] as a
//!   [`contracts::carts::CartsApi`], and the `/internal/carts/...` routes that serve it

pub mod contract;
pub mod http;
pub mod keyed;
pub mod model;
pub mod redis_store;
pub mod service;
pub mod store;

pub use model::{Cart, CartView, Line, PriceChange, PriceInfo};
pub use redis_store::RedisCartStore;
pub use service::{CartError, CartSettings, Carts, PriceBook};
pub use store::{CartStore, Commit, SqlCartStore, StoreError};

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
