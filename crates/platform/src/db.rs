//! One code path for SQLite and PostgreSQL: typed sqlx pools behind one enum, and one SQL text
//! (with `$1..$n` placeholders, which both drivers accept) run on either. The one place that picks
//! a backend is [`Db::connect`]; everything else matches on nothing.

use crate::config::SqliteSync;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A service's database.
#[derive(Clone, Debug)]
pub enum Db {
    Pg(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// Runs the same expression once per backend: the body is type-checked for each.
#[macro_export]
macro_rules! db_run {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Pg($p) => $body,
            $crate::db::Db::Sqlite($p) => $body,
        }
    };
}

/// Same, on a transaction.
#[macro_export]
macro_rules! tx_run {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::db::Tx::Pg(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// One connection of either backend, borrowed from a transaction or a pool connection, so that
/// the same store function serves reads in and out of a transaction.
pub enum Conn<'a> {
    Pg(&'a mut sqlx::PgConnection),
    Sqlite(&'a mut sqlx::SqliteConnection),
}

/// Runs the same body on the connection of either backend; inside, `c` is `&mut PgConnection`
/// or `&mut SqliteConnection` (write `&mut *c` for each query).
#[macro_export]
macro_rules! conn_run {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Pg($c) => $body,
            $crate::db::Conn::Sqlite($c) => $body,
        }
    };
}

/// A connection held from the pool.
pub enum PoolConn {
    Pg(sqlx::pool::PoolConnection<sqlx::Postgres>),
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
}

impl PoolConn {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            PoolConn::Pg(c) => Conn::Pg(c),
            PoolConn::Sqlite(c) => Conn::Sqlite(c),
        }
    }
}

/// A write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, so that two writers queue
/// on the lock instead of failing when a read transaction tries to upgrade.
pub enum Tx {
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Tx {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Pg(t) => Conn::Pg(t),
            Tx::Sqlite(t) => Conn::Sqlite(t),
        }
    }
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Pg(t) => t.commit().await,
            Tx::Sqlite(t) => t.commit().await,
        }
    }
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Pg(t) => t.rollback().await,
            Tx::Sqlite(t) => t.rollback().await,
        }
    }
}

/// Where a service's data lives.
#[derive(Clone, Debug)]
pub enum DbTarget {
    /// A SQLite file (created if missing).
    SqliteFile {
        path: PathBuf,
        synchronous: SqliteSync,
    },
    /// A PostgreSQL database; the service's tables live in `schema`.
    Postgres { url: String, schema: String },
}

impl DbTarget {
    /// A human-readable location, password masked.
    pub fn describe(&self) -> String {
        match self {
            DbTarget::SqliteFile { path, .. } => format!("sqlite:{}", path.display()),
            DbTarget::Postgres { url, schema } => format!(
                "{} (schema {schema})",
                crate::config::DatabaseUrl::new(url.clone()).masked()
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    /// TLS with the server failed (its certificate did not verify, or it does not speak TLS):
    /// the message names the setting of the URL.
    #[error("cannot open the database {target}: {message}")]
    Tls { target: String, message: String },
    #[error("migrations failed on {target}: {source}")]
    Migrate {
        target: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("{0}")]
    Other(String),
}

impl Db {
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Pg(_) => "postgres",
            Db::Sqlite(_) => "sqlite",
        }
    }

    /// Opens the pool. For PostgreSQL, creates the schema if missing and pins `search_path` to it
    /// on every connection, so the service's SQL never names its schema. TLS as the URL's
    /// `sslmode` says, with the process's trust store ([`crate::tls::current`]).
    pub async fn connect(target: &DbTarget, max_connections: u32) -> Result<Db, DbError> {
        Db::connect_as(
            target,
            max_connections,
            "the database URL",
            &crate::tls::current(),
        )
        .await
    }

    /// [`Db::connect`], with the trust store given and `setting` (the URL's setting, e.g.
    /// `catalog.database_url`) named in errors.
    ///
    /// PostgreSQL's `sslmode` is libpq's: `disable`, `prefer` (sqlx's default: TLS when the
    /// server offers it, unverified, else clear), `require` (TLS or no connection; the
    /// certificate is not verified, unless the URL names an `sslrootcert`, as in libpq), `verify-ca`
    /// (and the certificate is signed by a trusted CA) and `verify-full` (and names the host).
    /// The trusted CAs are Mozilla's roots, plus the URL's `sslrootcert` or else `tls.ca_file`.
    pub async fn connect_as(
        target: &DbTarget,
        max_connections: u32,
        setting: &str,
        tls: &crate::tls::TlsClient,
    ) -> Result<Db, DbError> {
        let describe = target.describe();
        let err = |source: sqlx::Error| {
            // a certificate refused in the handshake comes as an I/O error
            let tls_failed = matches!(source, sqlx::Error::Tls(_))
                || (matches!(source, sqlx::Error::Io(_)) && crate::tls::is_tls_failure(&source));
            if tls_failed {
                DbError::Tls {
                    target: describe.clone(),
                    message: crate::tls::refused(setting, crate::tls::chain(&source)),
                }
            } else {
                DbError::Connect {
                    target: describe.clone(),
                    source,
                }
            }
        };
        match target {
            DbTarget::SqliteFile { path, synchronous } => {
                if let Some(dir) = path.parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        DbError::Other(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(match synchronous {
                        SqliteSync::Full => SqliteSynchronous::Full,
                        SqliteSync::Normal => SqliteSynchronous::Normal,
                    })
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .map_err(err)?;
                Ok(Db::Sqlite(pool))
            }
            DbTarget::Postgres { url, schema } => {
                if !crate::config::is_identifier(schema) {
                    return Err(DbError::Other(format!("invalid schema name `{schema}`")));
                }
                let mut base = PgConnectOptions::from_str(url).map_err(err)?;
                let own_root = url.contains("sslrootcert=");
                if own_root && matches!(base.get_ssl_mode(), PgSslMode::Require) {
                    // libpq: `require` with a root certificate verifies the chain
                    base = base.ssl_mode(PgSslMode::VerifyCa);
                }
                if !own_root && let Some(ca) = tls.ca_file() {
                    base = base.ssl_root_cert(ca);
                }
                // Create the schema with a one-off connection; then every pooled connection
                // starts with search_path = schema.
                {
                    use sqlx::ConnectOptions;
                    let mut conn = base.clone().connect().await.map_err(err)?;
                    // The name was checked against [a-z_][a-z0-9_]* above: safe to interpolate.
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
                    )))
                    .execute(&mut conn)
                    .await
                    .map_err(err)?;
                }
                let opts = base
                    .options([("search_path", schema.as_str())])
                    .application_name("comptoir");
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(opts)
                    .await
                    .map_err(err)?;
                Ok(Db::Pg(pool))
            }
        }
    }

    /// Takes a connection from the pool (for reads).
    pub async fn acquire(&self) -> Result<PoolConn, sqlx::Error> {
        Ok(match self {
            Db::Pg(p) => PoolConn::Pg(p.acquire().await?),
            Db::Sqlite(p) => PoolConn::Sqlite(p.acquire().await?),
        })
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Pg(p) => Tx::Pg(p.begin().await?),
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Applies the pending migrations of the service.
    pub async fn migrate(&self, set: &MigrationSet) -> Result<(), DbError> {
        let target = self.backend().to_string();
        let e = |source| DbError::Migrate {
            target: target.clone(),
            source,
        };
        match self {
            Db::Pg(p) => set.postgres.run(p).await.map_err(e),
            Db::Sqlite(p) => set.sqlite.run(p).await.map_err(e),
        }
    }

    /// Versions that the binary knows but the database has not applied yet.
    pub async fn pending_migrations(&self, set: &MigrationSet) -> Result<Vec<i64>, sqlx::Error> {
        let known: Vec<i64> = match self {
            Db::Pg(_) => set.postgres.iter().map(|m| m.version).collect(),
            Db::Sqlite(_) => set.sqlite.iter().map(|m| m.version).collect(),
        };
        let exists: bool = match self {
            Db::Pg(p) => {
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables \
                 WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations')",
                )
                .fetch_one(p)
                .await?
            }
            Db::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master \
                 WHERE type = 'table' AND name = '_sqlx_migrations')",
                )
                .fetch_one(p)
                .await?
            }
        };
        if !exists {
            return Ok(known);
        }
        let applied: Vec<i64> = db_run!(self, |p| sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE"
        )
        .fetch_all(p)
        .await)?;
        Ok(known.into_iter().filter(|v| !applied.contains(v)).collect())
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        db_run!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// True once [`Db::close`] ran: background workers stop then.
    pub fn is_closed(&self) -> bool {
        match self {
            Db::Pg(p) => p.is_closed(),
            Db::Sqlite(p) => p.is_closed(),
        }
    }

    pub async fn close(&self) {
        db_run!(self, |p| p.close().await)
    }
}

/// The two migration directories of a service, embedded at build time.
#[derive(Clone, Copy)]
pub struct MigrationSet {
    pub postgres: &'static Migrator,
    pub sqlite: &'static Migrator,
}

/// True when an error is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// A bind value of a query assembled at run time (filters, sorts, cursors).
#[derive(Debug, Clone)]
pub enum Param {
    I64(i64),
    Text(String),
    Uuid(uuid::Uuid),
    Bool(bool),
}

/// A query assembled from static SQL fragments and bound values, for either backend. Fragments
/// are `&'static str` only, so no value can ever reach the SQL text.
#[derive(Debug, Default, Clone)]
pub struct SqlBuilder {
    sql: String,
    params: Vec<Param>,
}

impl SqlBuilder {
    pub fn new(init: &'static str) -> Self {
        SqlBuilder {
            sql: init.to_string(),
            params: Vec::new(),
        }
    }
    pub fn push(&mut self, fragment: &'static str) -> &mut Self {
        self.sql.push_str(fragment);
        self
    }
    /// Appends `$n` and binds the value to it.
    pub fn bind(&mut self, p: Param) -> &mut Self {
        self.params.push(p);
        self.sql.push('$');
        self.sql.push_str(&self.params.len().to_string());
        self
    }
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Runs the query and maps each row with `T: FromRow` on either backend.
    pub async fn fetch_all<T>(&self, db: &Db) -> Result<Vec<T>, sqlx::Error>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + Send
            + Unpin,
    {
        let sql = sqlx::AssertSqlSafe(self.sql.clone());
        match db {
            Db::Pg(p) => {
                let mut q = sqlx::query_as::<_, T>(sql);
                for param in &self.params {
                    q = match param {
                        Param::I64(v) => q.bind(*v),
                        Param::Text(v) => q.bind(v.clone()),
                        Param::Uuid(v) => q.bind(*v),
                        Param::Bool(v) => q.bind(*v),
                    };
                }
                q.fetch_all(p).await
            }
            Db::Sqlite(p) => {
                let mut q = sqlx::query_as::<_, T>(sql);
                for param in &self.params {
                    q = match param {
                        Param::I64(v) => q.bind(*v),
                        Param::Text(v) => q.bind(v.clone()),
                        Param::Uuid(v) => q.bind(*v),
                        Param::Bool(v) => q.bind(*v),
                    };
                }
                q.fetch_all(p).await
            }
        }
    }
}
