//! The `comptoir` binary's wiring: which services run in this process, on which backend, and
//! how they are reached. This is the only place that decides; services never ask.

pub mod docs;

use axum::Router;
use catalog::http::CatalogState;
use kernel::SystemClock;
use platform::auth::BackOfficeAuth;
use platform::cache::ResponseCache;
use platform::config::{ConfigError, Settings};
use platform::db::{Db, DbTarget};
use platform::http::health::Check;
use platform::http::{EdgeOptions, with_common_layers};
use platform::idempotency::Idempotency;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// A part of Comptoir that can run in a process of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Catalog,
    Gateway,
}

impl Target {
    pub const ALL: &'static [Target] = &[Target::Catalog, Target::Gateway];

    pub fn name(&self) -> &'static str {
        match self {
            Target::Catalog => "catalog",
            Target::Gateway => "gateway",
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Target::Catalog => {
                "products, variants, categories, brands and pictures under /api/catalog (database: catalog)"
            }
            Target::Gateway => {
                "the entry point: forwards /api/<service> to services in other processes \
                 (gateway.*_url), serves the OpenAPI document and the API docs"
            }
        }
    }
}

/// Parses `--target`: `all`, one name, or a comma-separated list.
pub fn parse_targets(s: &str) -> Result<BTreeSet<Target>, ConfigError> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "all" {
            out.extend(Target::ALL.iter().copied());
            continue;
        }
        let t = Target::ALL
            .iter()
            .find(|t| t.name() == part)
            .copied()
            .ok_or_else(|| {
                ConfigError::new(
                    "--target",
                    format!(
                        "unknown target `{part}`; known: all, {}",
                        Target::ALL
                            .iter()
                            .map(|t| t.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        out.insert(t);
    }
    if out.is_empty() {
        return Err(ConfigError::new("--target", "no target given"));
    }
    Ok(out)
}

/// Where the catalogue's data lives, from the settings.
pub fn catalog_db_target(s: &Settings) -> DbTarget {
    if s.catalog.database_url.is_empty() {
        DbTarget::SqliteFile {
            path: s.data.dir.join(format!("{}.db", catalog::SERVICE)),
            synchronous: s.data.sqlite_synchronous,
        }
    } else {
        DbTarget::Postgres {
            url: s.catalog.database_url.expose().to_string(),
            schema: s.catalog.database_schema.clone(),
        }
    }
}

/// What a start-up failed on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong: exit code 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something at run time (a database that does not answer): exit code 1.
    #[error("{0}")]
    Runtime(String),
}

/// Checks the settings against the targets before anything is opened.
pub fn check_topology(s: &Settings, targets: &BTreeSet<Target>) -> Result<(), ConfigError> {
    let has_catalog = targets.contains(&Target::Catalog);
    let has_gateway = targets.contains(&Target::Gateway);
    if has_gateway && !has_catalog && s.gateway.catalog_url.is_empty() {
        return Err(ConfigError::new(
            "gateway.catalog_url",
            "the gateway runs without the catalogue in this process, so it needs the catalogue's \
             URL (COMPTOIR_GATEWAY__CATALOG_URL=http://host:port)",
        ));
    }
    if has_gateway && has_catalog && !s.gateway.catalog_url.is_empty() {
        return Err(ConfigError::new(
            "gateway.catalog_url",
            "the catalogue runs in this process; leave gateway.catalog_url empty or drop the \
             catalog target",
        ));
    }
    if has_gateway && !has_catalog {
        gateway::Upstream::parse(
            "catalog",
            "/api/catalog",
            "/api/catalog/*",
            "gateway.catalog_url",
            &s.gateway.catalog_url,
        )
        .map_err(|e| ConfigError::new(e.setting, e.message))?;
    }
    Ok(())
}

/// Things worth telling the person who started the process.
#[derive(Debug, Default)]
pub struct StartReport {
    pub databases: Vec<(String, String)>,
    pub seeded: Option<catalog::demo::Seeded>,
    pub new_back_office_token: Option<String>,
    pub targets: Vec<&'static str>,
}

/// A ready-to-serve application.
pub struct App {
    pub router: Router,
    pub report: StartReport,
    pub databases: Vec<Db>,
    pub idempotency: Vec<Idempotency>,
}

/// Opens a service's database: SQLite is migrated here; PostgreSQL must have been migrated with
/// `comptoir migrate` (start-up refuses an out-of-date schema rather than guessing).
pub async fn open_service_db(
    target: &DbTarget,
    set: platform::db::MigrationSet,
    max_connections: u32,
) -> Result<Db, StartError> {
    let db = Db::connect(target, max_connections)
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    match db {
        Db::Sqlite(_) => db
            .migrate(&set)
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?,
        Db::Pg(_) => {
            let pending = db
                .pending_migrations(&set)
                .await
                .map_err(|e| StartError::Runtime(e.to_string()))?;
            if !pending.is_empty() {
                return Err(StartError::Runtime(format!(
                    "{} has {} migration(s) to apply ({pending:?}): run `comptoir migrate` first",
                    target.describe(),
                    pending.len()
                )));
            }
        }
    }
    Ok(db)
}

/// Builds the application for these targets.
pub async fn build(settings: &Settings, targets: &BTreeSet<Target>) -> Result<App, StartError> {
    check_topology(settings, targets)?;
    platform::telemetry::init_metrics();
    let mut report = StartReport {
        targets: targets.iter().map(|t| t.name()).collect(),
        ..Default::default()
    };
    let mut checks: Vec<Check> = Vec::new();
    let mut api = Router::new();
    let mut databases = Vec::new();
    let mut idempotency = Vec::new();

    if targets.contains(&Target::Catalog) {
        let target = catalog_db_target(settings);
        let db = open_service_db(
            &target,
            catalog::migrations(),
            settings.catalog.max_connections,
        )
        .await?;
        report
            .databases
            .push((catalog::SERVICE.to_string(), target.describe()));
        if settings.demo.seed && matches!(db, Db::Sqlite(_)) {
            report.seeded = catalog::demo::seed(&db)
                .await
                .map_err(|e| StartError::Runtime(format!("demo data: {}", e.detail)))?;
        }
        let auth = Arc::new(BackOfficeAuth::new());
        if !settings.auth.back_office_token.is_empty() {
            auth.allow_token(settings.auth.back_office_token.expose());
        }
        report.new_back_office_token = catalog::ensure_back_office_token(&db)
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        for h in catalog::store::back_office_token_hashes(&db)
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?
        {
            auth.allow_hash_hex(&h);
        }
        let idem = Idempotency::new(db.clone());
        idempotency.push(idem.clone());
        let state = CatalogState {
            db: db.clone(),
            cache: Arc::new(ResponseCache::new(Duration::from_secs(
                settings.catalog.cache_ttl_seconds,
            ))),
            auth,
            idempotency: idem,
            clock: Arc::new(SystemClock),
        };
        checks.push(Check::database("catalog_db", db.clone()));
        databases.push(db);
        api = api.merge(catalog::http::router(state));
    }

    if targets.contains(&Target::Gateway) && !targets.contains(&Target::Catalog) {
        let proxy = gateway::Proxy::new(Duration::from_secs(
            settings.gateway.upstream_timeout_seconds.max(1),
        ));
        let upstream = gateway::Upstream::parse(
            "catalog",
            "/api/catalog",
            "/api/catalog/*",
            "gateway.catalog_url",
            &settings.gateway.catalog_url,
        )
        .map_err(|e| ConfigError::new(e.setting, e.message))?;
        checks.push(upstream.readiness(&proxy));
        api = api.merge(gateway::router(&proxy, &[upstream]));
    }

    let router = api
        .merge(platform::http::health::router(checks))
        .merge(docs::router(targets));
    let router = with_common_layers(
        router,
        &EdgeOptions {
            request_timeout: Duration::from_secs(settings.server.request_timeout_seconds),
            max_body_bytes: settings.server.max_body_bytes,
        },
    );
    Ok(App {
        router,
        report,
        databases,
        idempotency,
    })
}

/// Applies the migrations of the services among `targets`.
pub async fn migrate(
    settings: &Settings,
    targets: &BTreeSet<Target>,
) -> Result<Vec<String>, StartError> {
    let mut done = Vec::new();
    if targets.contains(&Target::Catalog) {
        let target = catalog_db_target(settings);
        let db = Db::connect(&target, 2)
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        db.migrate(&catalog::migrations())
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        done.push(format!("catalog: {} is up to date", target.describe()));
        db.close().await;
    }
    Ok(done)
}
