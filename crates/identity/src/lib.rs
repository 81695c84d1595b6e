//! The identity service: accounts and roles, sessions with rotating refresh tokens, our token
//! issuer (JWKS, discovery, key rotation), API keys, password resets, staff management.
//!
//! - `domain`: the rules (e-mails, names, codes, the sign-in throttling), no IO
//! - `app`: the use cases (sign-in, sign-up, refresh, reset, staff, API keys), with their own
//!   errors
//! - `store`: SQL, one text for SQLite and PostgreSQL
//! - `http`: routes, their access policy, OpenAPI, the wire types, and the one mapping of the
//!   use cases' errors to problem documents
//! - `password`: the password policy and argon2id hashing, bounded
//! - `keys`: Ed25519 signing keys and access tokens
//! - `demo`: one account per role for the Breizhsport demo

pub mod app;
pub mod demo;
pub mod domain;
pub mod http;
pub mod keys;
pub mod password;
pub mod store;

/// The use cases under their former name (the wiring and the web still say `service`).
pub use app as service;
pub use app::describe_metrics;

/// The wire types under their former path, until the web and the wiring import them from
/// `http::wire`.
pub mod model {
    pub use crate::http::wire::*;
}

use jsonwebtoken::jwk::JwkSet;
use platform::ApiError;
use platform::authn::{DirFuture, Directory};
use platform::authz::Principal;
use platform::db::MigrationSet;
use sqlx::migrate::Migrator;

static PG_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The identity schema, for both backends.
pub fn migrations() -> MigrationSet {
    MigrationSet {
        postgres: &PG_MIGRATIONS,
        sqlite: &SQLITE_MIGRATIONS,
    }
}

/// Name of the service: its target, its SQLite file and its PostgreSQL schema.
pub const SERVICE: &str = "identity";

/// The edge's directory when identity runs in the same process: straight to the database.
pub struct LocalDirectory(pub app::Identity);

impl Directory for LocalDirectory {
    fn signing_keys(&self) -> DirFuture<'_, JwkSet> {
        Box::pin(async move {
            let now = self.0.clock.now().timestamp_millis();
            let rows = store::published_keys(&self.0.db, now)
                .await
                .map_err(|e| e.to_string())?;
            let v = serde_json::to_value(keys::jwks(&rows)).map_err(|e| e.to_string())?;
            serde_json::from_value(v).map_err(|e| e.to_string())
        })
    }
    fn api_key<'a>(&'a self, presented: &'a str) -> DirFuture<'a, Option<Principal>> {
        Box::pin(async move {
            self.0
                .verify_api_key(presented)
                .await
                .map_err(|e| ApiError::from(e).detail)
        })
    }
    fn session_active<'a>(&'a self, session: &'a str) -> DirFuture<'a, bool> {
        Box::pin(async move {
            self.0
                .session_active(session)
                .await
                .map_err(|e| ApiError::from(e).detail)
        })
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
