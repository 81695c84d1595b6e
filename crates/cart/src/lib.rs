//! The cart service: guest and customer carts.
//!
//! - `model`: the cart, its lines and rules (quantities 1 to 99, at most 50 lines, one currency),
//!   the API types
//! - `store`: the [`CartStore`] trait and [`SqlCartStore`] (the service's SQLite or PostgreSQL
//!   database, embedded default)
//! - `redis_store`: [`RedisCartStore`] (production: JSON per cart with a TTL, Lua compare-and-set)
//! - `service`: [`Carts`], the use cases (create, add, change, remove, merge at sign-in, reprice
//!   at checkout), and the [`PriceBook`] it asks for current prices
//! - `http`: routes under `/api/carts`, policy, OpenAPI

pub mod http;
pub mod model;
pub mod redis_store;
pub mod service;
pub mod store;

pub use model::{Cart, CartView, Line, PriceChange, PriceInfo};
pub use redis_store::RedisCartStore;
pub use service::{CartError, CartSettings, Carts, PriceBook};
pub use store::{CartStore, SqlCartStore, StoreError};

use platform::db::MigrationSet;
use sqlx::migrate::Migrator;

static PG_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The cart service's schema, for both backends (carts for the SQL backend, idempotency keys and
/// the outbox whatever the backend).
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
    /// The two migration sets must stay in step: same versions, same names.
    #[test]
    fn migration_sets_are_in_step() {
        let list = |dir: &str| {
            let mut v: Vec<String> =
                std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                    .expect("migrations dir")
                    .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .collect();
            v.sort();
            v
        };
        let pg = list("postgres");
        assert!(!pg.is_empty());
        assert_eq!(pg, list("sqlite"));
        let versions =
            |m: &sqlx::migrate::Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(
            versions(&super::PG_MIGRATIONS),
            versions(&super::SQLITE_MIGRATIONS)
        );
    }

    /// Same tables and columns on both backends (types differ legitimately).
    #[test]
    fn migration_sets_define_the_same_columns() {
        fn columns(sql: &str) -> Vec<String> {
            let mut out = Vec::new();
            let mut table = String::new();
            for line in sql.lines().map(str::trim) {
                if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
                    table = rest.trim_end_matches(" (").to_string();
                } else if line.starts_with(')') {
                    table.clear();
                } else if !table.is_empty()
                    && !line.is_empty()
                    && !line.starts_with("--")
                    && !line.starts_with("PRIMARY KEY")
                {
                    let col = line.split_whitespace().next().unwrap_or("");
                    out.push(format!("{table}.{col}"));
                }
            }
            out
        }
        for (pg, lite) in super::PG_MIGRATIONS
            .iter()
            .zip(super::SQLITE_MIGRATIONS.iter())
        {
            assert_eq!(
                columns(pg.sql.as_str()),
                columns(lite.sql.as_str()),
                "migration {}",
                pg.version
            );
        }
    }
}
