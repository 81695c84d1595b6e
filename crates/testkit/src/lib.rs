//! The harness every suite shares: databases for every backend and the loop over them, the
//! strict-mode rule, requests to a router as a principal, principals per role, a fake price book.
//!
//! - SQLite: always, a fresh file per test.
//! - PostgreSQL: when `COMPTOIR_TEST_POSTGRES_URL` is set, a fresh schema per test (dropped at
//!   the end). Without the variable the PostgreSQL half is skipped with a printed reason, except
//!   under `COMPTOIR_TEST_STRICT=1` (CI), where a missing or unreachable database fails the test.
//! - [`each_backend`] runs a test body on each, and removes each database afterwards, also when
//!   the body fails.
//! - [`http::TestApp`]: a service's router called in process, as the gateway calls it (the
//!   principal in the signed identity header); [`http::Res`] the answer; [`http::serve`] the
//!   router on a port of its own.
//! - [`principal`]: customer, clerk, store manager, head office... as the edge builds them.
//! - [`prices::FakePrices`]: the catalogue's prices as carts and checkouts see them.
//! - [`metrics::Recorder`]: what a test records, apart from the other tests of its binary;
//!   [`metrics::value_in`] reads a `/metrics` text.

pub mod contract;
pub mod http;
pub mod metrics;
pub mod prices;
pub mod principal;
pub mod proxy;

pub use http::{Res, TestApp};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use platform::config::SqliteSync;
use platform::db::{Db, DbTarget, MigrationSet};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

pub const POSTGRES_ENV: &str = "COMPTOIR_TEST_POSTGRES_URL";
pub const STRICT_ENV: &str = "COMPTOIR_TEST_STRICT";

pub fn strict() -> bool {
    std::env::var(STRICT_ENV).is_ok_and(|v| v == "1" || v == "true")
}

/// The PostgreSQL URL for tests, or `None` (with the reason printed) when it is not configured.
/// Panics in strict mode when it is missing.
pub fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                !strict(),
                "{STRICT_ENV}=1 but {POSTGRES_ENV} is not set: the PostgreSQL tests cannot run"
            );
            eprintln!("skipping the PostgreSQL half: {POSTGRES_ENV} is not set");
            None
        }
    }
}

/// A database made for one test.
pub struct TestDb {
    pub db: Db,
    pub target: DbTarget,
    pub backend: &'static str,
    dir: Option<PathBuf>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A fresh SQLite file, migrated.
    pub async fn sqlite(set: MigrationSet) -> TestDb {
        let dir = std::env::temp_dir().join(format!("comptoir-test-{}", uuid::Uuid::new_v4()));
        let target = DbTarget::SqliteFile {
            path: dir.join("test.db"),
            synchronous: SqliteSync::Normal,
        };
        let db = Db::connect(&target, 4).await.expect("open SQLite");
        db.migrate(&set).await.expect("migrate SQLite");
        TestDb {
            db,
            target,
            backend: "sqlite",
            dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh PostgreSQL schema, migrated; `None` when PostgreSQL is not configured.
    /// Another fresh database of the same backend as this one (a second run to compare with).
    pub async fn twin(&self, set: MigrationSet) -> TestDb {
        match self.backend {
            "postgres" => TestDb::postgres(set)
                .await
                .expect("PostgreSQL, as for the first database"),
            _ => TestDb::sqlite(set).await,
        }
    }

    pub async fn postgres(set: MigrationSet) -> Option<TestDb> {
        let url = postgres_url()?;
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let target = DbTarget::Postgres {
            url: url.clone(),
            schema: schema.clone(),
        };
        let db = Db::connect(&target, 4)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL cannot be used: {e}"));
        db.migrate(&set).await.expect("migrate PostgreSQL");
        Some(TestDb {
            db,
            target,
            backend: "postgres",
            dir: None,
            pg: Some((url, schema)),
        })
    }

    /// SQLite always, PostgreSQL when configured.
    pub async fn all(set: MigrationSet) -> Vec<TestDb> {
        let mut v = vec![TestDb::sqlite(set).await];
        if let Some(pg) = TestDb::postgres(set).await {
            v.push(pg);
        }
        v
    }

    /// Removes the file or the schema.
    pub async fn cleanup(self) {
        self.db.close().await;
        if let Some(d) = self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Some((url, schema)) = self.pg {
            let target = DbTarget::Postgres {
                url,
                schema: "public".into(),
            };
            if let Ok(Db::Pg(p)) = Db::connect(&target, 1).await {
                // the schema name is generated above from a UUID: safe to interpolate
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                )))
                .execute(&p)
                .await;
                p.close().await;
            }
        }
    }
}

/// Runs `body` on a fresh, migrated SQLite database, then (when configured) on a fresh
/// PostgreSQL schema; each is removed once its run ends, passed or failed.
///
/// ```text
/// testkit::each_backend(catalog::migrations(), |t| Box::pin(async move {
///     let h = H::new(t);
///     ...
/// })).await;
/// ```
pub async fn each_backend<F>(set: MigrationSet, mut body: F)
where
    F: for<'a> FnMut(&'a TestDb) -> BoxFuture<'a, ()>,
{
    let t = TestDb::sqlite(set).await;
    eprintln!("backend: {}", t.backend);
    let run = catching(body(&t)).await;
    t.cleanup().await;
    run.resume();
    if let Some(t) = TestDb::postgres(set).await {
        eprintln!("backend: {}", t.backend);
        let run = catching(body(&t)).await;
        t.cleanup().await;
        run.resume();
    }
}

/// How a test body ended: [`Outcome::resume`] goes on with its panic after the clean-up.
#[must_use = "resume the outcome, or a failed test passes"]
pub struct Outcome(std::thread::Result<()>);

impl Outcome {
    pub fn resume(self) {
        if let Err(panic) = self.0 {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Awaits `body`, holding a panic until the caller has cleaned up.
pub async fn catching(body: impl std::future::Future<Output = ()>) -> Outcome {
    Outcome(AssertUnwindSafe(body).catch_unwind().await)
}

/// Polls `f` until it returns `Some`, or panics after `deadline`: never sleep to wait.
pub async fn eventually<T, F, Fut>(what: &str, deadline: std::time::Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub const REDIS_ENV: &str = "COMPTOIR_TEST_REDIS_URL";

/// The Redis URL for tests, or `None` (with the reason printed) when it is not configured.
/// Panics in strict mode when it is missing.
pub fn redis_url() -> Option<String> {
    match std::env::var(REDIS_ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                !strict(),
                "{STRICT_ENV}=1 but {REDIS_ENV} is not set: the shared rate-limit tests cannot run"
            );
            eprintln!("skipping the Redis half: {REDIS_ENV} is not set");
            None
        }
    }
}

pub const RABBITMQ_ENV: &str = "COMPTOIR_TEST_RABBITMQ_URL";

/// The RabbitMQ URL for tests (`amqp://guest:guest@127.0.0.1:5672/%2f`), or `None` (with the
/// reason printed) when it is not configured. Panics in strict mode when it is missing.
pub fn rabbitmq_url() -> Option<String> {
    match std::env::var(RABBITMQ_ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                !strict(),
                "{STRICT_ENV}=1 but {RABBITMQ_ENV} is not set: the RabbitMQ tests cannot run"
            );
            eprintln!("skipping the RabbitMQ tests: {RABBITMQ_ENV} is not set");
            None
        }
    }
}

/// Asserts that a service's two migration sets stay in step: the same file names, the same
/// versions, and in each migration the same tables and columns (types differ legitimately).
/// `manifest_dir` is the crate's `env!("CARGO_MANIFEST_DIR")`.
pub fn assert_migrations_in_step(manifest_dir: &str, set: MigrationSet) {
    let list = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(format!("{manifest_dir}/migrations/{dir}"))
            .expect("migrations dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let pg = list("postgres");
    assert!(!pg.is_empty(), "no migrations in {manifest_dir}");
    assert_eq!(pg, list("sqlite"), "migration files differ");
    let versions = |m: &sqlx::migrate::Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
    assert_eq!(
        versions(set.postgres),
        versions(set.sqlite),
        "versions differ"
    );
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
                && !line.starts_with("UNIQUE")
                && !line.starts_with("CHECK")
            {
                let col = line.split_whitespace().next().unwrap_or("");
                out.push(format!("{table}.{col}"));
            }
        }
        out
    }
    for (pg, lite) in set.postgres.iter().zip(set.sqlite.iter()) {
        assert_eq!(
            columns(pg.sql.as_str()),
            columns(lite.sql.as_str()),
            "migration {} defines different columns",
            pg.version
        );
    }
}

/// The tricky search queries of issue 11 (SQL meta-characters, accents, hyphens, apostrophes,
/// digits with units, mixed case, punctuation only), on which the API and the shop must agree.
pub const TRICKY_SEARCH_QUERIES: [&str; 10] = [
    "' OR 1=1 --",
    "chaussure rôle",
    "CHAUSSURE",
    "t-shirt",
    "l'été",
    "d’ici",
    "42",
    "VeStE ImPeRmÉaBlE",
    "' --",
    "!!!",
];
