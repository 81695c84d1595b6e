//! The `comptoir` binary's wiring: which services run in this process, on which backend, and
//! how they are reached. This is the only place that decides; services never ask.

pub mod commerce;
pub mod docs;
pub mod targets;

use targets::caller_name;
pub use targets::{GROUPS, Target, check_topology, parse_targets, peer_url};

use axum::Router;
use catalog::http::CatalogState;
use kernel::SystemClock;
use platform::authn::{
    Authenticator, Directory, Edge, EdgeLimits, ExternalProvider, RemoteDirectory,
};
use platform::cache::ResponseCache;
use platform::caller::{InternalKey, TrustedProxies, accept_internal_identity};
use platform::config::{ConfigError, Settings};
use platform::db::{Db, DbTarget};
use platform::http::health::Check;
use platform::http::{EdgeOptions, with_common_layers};
use platform::idempotency::Idempotency;
use platform::ratelimit::{Limiter, Quota};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

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

/// Where the identity service's data lives, from the settings.
pub fn identity_db_target(s: &Settings) -> DbTarget {
    if s.identity.database_url.is_empty() {
        DbTarget::SqliteFile {
            path: s.data.dir.join(format!("{}.db", identity::SERVICE)),
            synchronous: s.data.sqlite_synchronous,
        }
    } else {
        DbTarget::Postgres {
            url: s.identity.database_url.expose().to_string(),
            schema: s.identity.database_schema.clone(),
        }
    }
}

/// The identity service over its database.
pub fn identity_service(s: &Settings, db: Db, limiter: Limiter) -> identity::service::Identity {
    let issuer = s.auth.issuer_or(&s.server.bind);
    let hashes = match s.auth.max_concurrent_hashes {
        0 => std::thread::available_parallelism()
            .map(|n| (n.get() / 2).max(1))
            .unwrap_or(1),
        n => n,
    };
    identity::service::Identity {
        db,
        passwords: identity::password::Passwords::new(
            hashes,
            Duration::from_secs(s.auth.hash_queue_seconds),
        ),
        signer: Arc::new(identity::keys::Signer::new(
            &issuer,
            &s.auth.audience,
            Duration::from_secs(s.auth.access_token_seconds),
        )),
        limiter,
        clock: Arc::new(SystemClock),
        policy: Arc::new(identity::service::Policy {
            refresh_ttl: Duration::from_secs(s.auth.refresh_token_days * 86_400),
            reset_ttl: Duration::from_secs(s.auth.password_reset_minutes * 60),
            failures_before_delay: s.auth.signin_failures_before_delay,
            first_delay: Duration::from_secs(s.auth.signin_first_delay_seconds),
            max_failures_per_pair: s.auth.signin_max_failures_per_account_and_ip,
            max_failures_per_ip: s.auth.signin_max_failures_per_ip,
            max_failures_per_account: s.auth.signin_max_failures_per_account,
            failure_window: Duration::from_secs(s.auth.signin_failure_window_seconds),
            public_url: if s.auth.public_url.is_empty() {
                issuer
            } else {
                s.auth.public_url.clone()
            },
        }),
    }
}

/// The external OpenID Connect provider of the settings, if any.
pub fn external_provider(s: &Settings) -> Result<Option<ExternalProvider>, ConfigError> {
    let a = &s.auth;
    if a.oidc_issuer.is_empty() {
        return Ok(None);
    }
    Ok(Some(ExternalProvider {
        issuer: a.oidc_issuer.trim_end_matches('/').to_string(),
        audience: a.oidc_audience.clone(),
        jwks_url: a.oidc_jwks_url.clone(),
        algorithms: ExternalProvider::parse_algorithms(&a.oidc_algorithms)
            .map_err(|m| ConfigError::new("auth.oidc_algorithms", m))?,
        role_claim: a.oidc_role_claim.clone(),
        role_map: ExternalProvider::parse_role_map(&a.oidc_role_map)
            .map_err(|m| ConfigError::new("auth.oidc_role_map", m))?,
        store_claim: a.oidc_store_claim.clone(),
        organiser_claim: a.oidc_organiser_claim.clone(),
        min_refresh: Duration::from_secs(a.oidc_jwks_min_refresh_seconds.max(1)),
    }))
}

/// The rate limits of the settings.
pub fn edge_limits(s: &Settings) -> Result<EdgeLimits, ConfigError> {
    let r = &s.rate_limit;
    let nz = |q: Quota| if q.limit == 0 { None } else { Some(q) };
    Ok(EdgeLimits {
        per_ip: nz(Quota::per_minute(r.per_ip_per_minute))
            .into_iter()
            .collect(),
        per_account: nz(Quota::per_minute(r.per_account_per_minute))
            .into_iter()
            .collect(),
        per_key: [
            nz(Quota::per_minute(r.per_key_per_minute)),
            nz(Quota::per_hour(r.per_key_per_hour)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        routes: r
            .routes()
            .map_err(|m| ConfigError::new("rate_limit.routes", m))?,
    })
}

/// The proxies whose `X-Forwarded-For` names the client (`server.trusted_proxies`).
pub fn trusted_proxies(s: &Settings) -> Result<TrustedProxies, ConfigError> {
    TrustedProxies::parse(&s.server.trusted_proxies)
        .map_err(|m| ConfigError::new("server.trusted_proxies", m))
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

/// Things worth telling the person who started the process.
#[derive(Debug, Default)]
pub struct StartReport {
    pub databases: Vec<(String, String)>,
    pub seeded: Option<catalog::demo::Seeded>,
    /// Demo accounts created at this start, with their one-time passwords.
    pub demo_accounts: Option<Vec<identity::demo::DemoAccount>>,
    /// Stock rows created by the demo at this start.
    pub seeded_stock: Option<usize>,
    pub targets: Vec<&'static str>,
    /// The storefront and back office are served by this process.
    pub web: bool,
}

/// A ready-to-serve application.
pub struct App {
    pub router: Router,
    /// The identity service, when it runs in this process (tests read its outbox).
    pub identity: Option<identity::service::Identity>,
    /// The edge's authenticator, when the gateway runs in this process.
    pub authenticator: Option<Arc<Authenticator>>,
    pub report: StartReport,
    /// The commerce services that run in this process (tests check invariants on them).
    pub commerce: commerce::Commerce,
    /// The event bus of this process (closed before the databases at shutdown).
    pub bus: Arc<dyn platform::bus::EventBus>,
    pub databases: Vec<Db>,
    pub idempotency: Vec<Idempotency>,
}

/// Opens a service's database: SQLite is migrated here; PostgreSQL must have been migrated with
/// `comptoir migrate` (start-up refuses an out-of-date schema rather than guessing).
/// `setting` (e.g. `catalog.database_url`) is named when the server's certificate is refused.
pub async fn open_service_db(
    target: &DbTarget,
    set: platform::db::MigrationSet,
    max_connections: u32,
    setting: &str,
) -> Result<Db, StartError> {
    let db = Db::connect_as(target, max_connections, setting, &platform::tls::current())
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
    let bus = commerce::bus(settings).await?;
    let mut relays = Vec::new();
    let mut catalog_db = None;

    if targets.contains(&Target::Catalog) {
        let target = catalog_db_target(settings);
        let db = open_service_db(
            &target,
            catalog::migrations(),
            settings.catalog.max_connections,
            "catalog.database_url",
        )
        .await?;
        report
            .databases
            .push((catalog::SERVICE.to_string(), target.describe()));
        if settings.demo.seed && matches!(db, Db::Sqlite(_)) {
            report.seeded = catalog::demo::seed(&db)
                .await
                .map_err(|e| StartError::Runtime(format!("demo data: {e}")))?;
        }
        let idem = Idempotency::new(db.clone());
        idempotency.push(idem.clone());
        let state = CatalogState {
            db: db.clone(),
            cache: Arc::new(ResponseCache::new(Duration::from_secs(
                settings.catalog.cache_ttl_seconds,
            ))),
            idempotency: idem,
            clock: Arc::new(SystemClock),
        };
        checks.push(Check::database("catalog_db", db.clone()));
        relays.push(platform::bus::Relay::new(
            catalog::SERVICE,
            db.clone(),
            bus.clone(),
        ));
        catalog_db = Some(db.clone());
        databases.push(db);
        api = api.merge(catalog::http::router(state));
    }

    let internal = if settings.auth.internal_secret.is_empty() {
        InternalKey::random()
    } else {
        InternalKey::new(settings.auth.internal_secret.expose().as_bytes())
    };
    let limiter = if settings.rate_limit.redis_url.is_empty() {
        Limiter::in_process()
    } else {
        Limiter::redis(settings.rate_limit.redis_url.expose())
            .await
            .map_err(StartError::Runtime)?
    };

    let mut identity_service_here = None;
    if targets.contains(&Target::Identity) {
        let target = identity_db_target(settings);
        let db = open_service_db(
            &target,
            identity::migrations(),
            settings.identity.max_connections,
            "identity.database_url",
        )
        .await?;
        report
            .databases
            .push((identity::SERVICE.to_string(), target.describe()));
        let id = identity_service(settings, db.clone(), limiter.clone());
        id.signer
            .load(&db, chrono::Utc::now().timestamp_millis())
            .await
            .map_err(|e| StartError::Runtime(format!("signing key: {e}")))?;
        if settings.demo.seed && matches!(db, Db::Sqlite(_)) {
            report.demo_accounts = identity::demo::seed(&id)
                .await
                .map_err(|e| StartError::Runtime(format!("demo accounts: {e}")))?;
        }
        let idem = Idempotency::new(db.clone());
        idempotency.push(idem);
        identity::describe_metrics();
        checks.push(Check::database("identity_db", db.clone()));
        relays.push(platform::bus::Relay::new(
            identity::SERVICE,
            db.clone(),
            bus.clone(),
        ));
        databases.push(db);
        api = api.merge(identity::http::router(identity::http::IdentityState {
            identity: id.clone(),
        }));
        identity_service_here = Some(id);
    }

    // the commerce services: each where its target runs, the others through their clients
    let peers = commerce::Peers::new(settings, internal.clone(), caller_name(targets));
    let mut here = commerce::Commerce::default();
    let mut internal_api = Router::new();
    if let Some(id) = &identity_service_here {
        internal_api = internal_api.merge(identity::http::internal_router(id.clone()));
    }
    if let Some(db) = &catalog_db {
        internal_api = internal_api.merge(catalog::contract::internal_router(db.clone()));
    }
    {
        let mut cx = commerce::Context {
            settings,
            bus: bus.clone(),
            catalog_db: catalog_db.clone(),
            peers: &peers,
            report: &mut report,
            databases: &mut databases,
            checks: &mut checks,
        };
        if targets.contains(&Target::Inventory) {
            here.inventory = Some(commerce::start_inventory(&mut cx).await?);
        }
        if targets.contains(&Target::Payments) {
            here.payments = Some(commerce::start_payments(&mut cx).await?);
        }
        if targets.contains(&Target::Cart) {
            let (c, db) = commerce::start_cart(&mut cx).await?;
            here.carts = Some(c);
            here.cart_db = Some(db);
        }
        if targets.contains(&Target::Orders) {
            here.orders = Some(commerce::start_orders(&mut cx, &here).await?);
        }
    }
    if let Some(inv) = &here.inventory {
        if settings.demo.seed
            && matches!(inv.db, Db::Sqlite(_))
            && let Some(cdb) = &catalog_db
        {
            report.seeded_stock = Some(commerce::seed_demo(inv, cdb).await?);
        }
        checks.push(Check::database("inventory_db", inv.db.clone()));
        let idem = Idempotency::new(inv.db.clone());
        idempotency.push(idem.clone());
        api = api.merge(inventory::http::router(inventory::http::InventoryState {
            inventory: inv.clone(),
            idempotency: idem,
        }));
        internal_api = internal_api.merge(inventory::contract::internal_router(inv.clone()));
    }
    if let Some(p) = &here.payments {
        checks.push(Check::database("payments_db", p.db().clone()));
        api = api.merge(payments::http::router(payments::http::PaymentsState {
            payments: p.clone(),
            stripe_webhook_secrets: Arc::new(
                [settings.payments.stripe_webhook_secret.clone()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
        }));
        internal_api = internal_api.merge(payments::contract::internal_router(p.clone()));
    }
    if let (Some(c), Some(db)) = (&here.carts, &here.cart_db) {
        checks.push(Check::database("cart_db", db.clone()));
        idempotency.push(Idempotency::new(db.clone()));
        api = api.merge(cart::http::router(cart::http::CartState::new(
            c.clone(),
            db.clone(),
        )));
        internal_api = internal_api.merge(cart::contract::internal_router(c.clone()));
    }
    if let Some(o) = &here.orders {
        checks.push(Check::database("orders_db", o.db.clone()));
        let idem = Idempotency::new(o.db.clone());
        idempotency.push(idem.clone());
        api = api.merge(orders::http::router(orders::http::OrdersState {
            orders: o.clone(),
            idempotency: idem,
        }));
        internal_api = internal_api.merge(orders::contract::internal_router(o.clone()));
    }
    let commerce_here = here;
    for r in &relays {
        r.spawn();
    }
    // the bus and the limiter's Redis are reported, not required: the outbox keeps the events
    // while the broker is away, and limits fall back to this process's counters
    if bus.name() == "rabbitmq" {
        let b = bus.clone();
        checks.push(
            Check::new("rabbitmq", "rabbitmq", move || {
                let up = b.is_connected();
                Box::pin(async move {
                    if up {
                        Ok(())
                    } else {
                        Err("not connected (reconnecting)".to_string())
                    }
                })
            })
            .optional(),
        );
    }
    if limiter.is_shared() {
        let l = limiter.clone();
        checks.push(
            Check::new("redis", "rate_limit_redis", move || {
                let l = l.clone();
                Box::pin(async move { l.ping().await })
            })
            .optional(),
        );
    }

    // services of this process trust only the edge: in-process, or signed by a gateway
    let key = internal.clone();
    api = api.layer(axum::middleware::from_fn(move |req, next| {
        accept_internal_identity(Some(key.clone()), req, next)
    }));
    // the web pages call the services through this router, in process
    let services = api.clone();
    // other processes call the contracts here, signed with the internal secret
    let key = internal.clone();
    api = api.merge(
        internal_api.layer(axum::middleware::from_fn(move |req, next| {
            platform::caller::internal_calls_only(key.clone(), req, next)
        })),
    );

    let mut authenticator = None;
    let mut router = api;
    let web_here = settings.web.enabled && targets.contains(&Target::Web);
    // the edge and the web verify tokens the same way: with identity here, or at its URL
    let auth = if targets.contains(&Target::Gateway) || web_here {
        let directory: Arc<dyn Directory> = match &identity_service_here {
            Some(id) => Arc::new(identity::LocalDirectory(id.clone())),
            None => Arc::new(RemoteDirectory::new(
                &settings.peers.identity_url,
                internal.clone(),
                caller_name(targets),
            )),
        };
        let auth = Arc::new(Authenticator::new(
            &settings.auth.issuer_or(&settings.server.bind),
            &settings.auth.audience,
            directory,
            external_provider(settings)?,
            Duration::from_secs(settings.auth.revocation_seconds),
        ));
        authenticator = Some(auth.clone());
        platform::authn::describe_metrics();
        Some(auth)
    } else {
        None
    };
    let mut cors = None;
    if targets.contains(&Target::Gateway)
        && let Some(auth) = &auth
    {
        let g = &settings.gateway;
        let balance = gateway::Balance::parse(&g.balance).ok_or_else(|| {
            ConfigError::new("gateway.balance", "least_connections or round_robin")
        })?;
        let rules = gateway::HealthRules {
            unhealthy_after: g.unhealthy_after,
            healthy_after: g.healthy_after,
            breaker_failures: g.breaker_failures,
            breaker_open: Duration::from_secs(g.breaker_open_seconds),
        };
        let mut services = Vec::new();
        let mut upstreams = Vec::new();
        for t in Target::SERVICES.iter().filter(|t| !targets.contains(t)) {
            let (setting, url) = settings
                .peers
                .url_of(t.name())
                .ok_or_else(|| StartError::Runtime(format!("{} has no URL setting", t.name())))?;
            let service = Arc::new(
                gateway::Service::parse(t.name(), setting, url, balance, rules)
                    .map_err(|e| ConfigError::new(e.setting, e.message))?,
            );
            for (prefix, label) in t.routes() {
                upstreams.push(gateway::Upstream {
                    prefix,
                    route_label: label,
                    service: service.clone(),
                });
            }
            services.push(service);
        }
        // the pages of a web process: outside the edge (they read their own session cookies),
        // with the client's Host (their forms are checked against Origin)
        let mut pages = Vec::new();
        if !targets.contains(&Target::Web)
            && settings.web.enabled
            && !settings.peers.web_url.trim().is_empty()
        {
            let mut web = gateway::Service::parse(
                "web",
                "peers.web_url",
                &settings.peers.web_url,
                balance,
                rules,
            )
            .map_err(|e| ConfigError::new(e.setting, e.message))?;
            web.keep_host = true;
            let web = Arc::new(web);
            for (prefix, label) in Target::Web.routes() {
                pages.push(gateway::Upstream {
                    prefix,
                    route_label: label,
                    service: web.clone(),
                });
            }
            services.push(web);
        }
        let client = gateway::client();
        let timing = gateway::health::CheckTiming {
            interval: Duration::from_secs(g.health_interval_seconds),
            timeout: Duration::from_millis(g.health_timeout_ms),
        };
        for s in &services {
            checks.push(gateway::readiness(s.clone(), client.clone(), timing));
        }
        // the first round before the first request: DNS names resolved, dead instances known
        for s in &services {
            gateway::health::check_service(s, &client, timing).await;
        }
        gateway::describe_metrics(&services, g.cache_entries > 0);
        gateway::health::spawn(services, client.clone(), timing);
        let forwarder = Arc::new(gateway::Forwarder {
            client,
            identity: Some(internal.clone()),
            budget: gateway::RetryBudget::new(f64::from(g.retry_budget_percent) / 100.0, 5.0),
            timeouts: g
                .route_timeouts()
                .map_err(|m| ConfigError::new("gateway.route_timeouts", m))?,
            default_timeout: Duration::from_secs(g.upstream_timeout_seconds.max(1)),
            max_body: settings.server.max_body_bytes,
        });
        // public answers to anonymous reads, dropped by writes through here and by the
        // events of writes made elsewhere
        let cache = (g.cache_entries > 0)
            .then(|| Arc::new(gateway::EdgeCache::new(g.cache_entries, 1 << 20)));
        if let Some(c) = &cache {
            let c = c.clone();
            bus.subscribe_broadcast(
                "gateway-cache",
                &[
                    platform::bus::topic::PRODUCT_CHANGED,
                    platform::bus::topic::STOCK_CHANGED,
                ],
                platform::bus::handler(move |e| {
                    let c = c.clone();
                    async move {
                        // stock is in the catalogue's reads (availability) and inventory's
                        c.invalidate("catalog");
                        if e.topic == platform::bus::topic::STOCK_CHANGED {
                            c.invalidate("inventory");
                        }
                        Ok(())
                    }
                }),
            )
            .await
            .map_err(|e| StartError::Runtime(format!("the edge cache's events: {e}")))?;
        }
        router = router.merge(gateway::router(
            forwarder.clone(),
            &upstreams,
            cache.clone(),
        ));
        let edge = Arc::new(Edge {
            auth: auth.clone(),
            limiter: limiter.clone(),
            limits: edge_limits(settings)?,
            proxies: trusted_proxies(settings)?,
        });
        // CORS outside the edge (in the common layer): preflights are answered before any
        // authentication or limit, and every answer has its headers, errors included
        cors = Some(Arc::new(
            platform::http::cors::Cors::parse(&g.cors_origins)
                .map_err(|m| ConfigError::new("gateway.cors_origins", m))?,
        ));
        router = router
            .merge(health_router(checks))
            .merge(docs::router(targets, !web_here && pages.is_empty()))
            .layer(axum::middleware::from_fn(move |req, next| {
                platform::authn::edge_layer(edge.clone(), req, next)
            }));
        if !pages.is_empty() {
            router = router.merge(gateway::router(forwarder, &pages, cache));
        }
    } else {
        router = router
            .merge(health_router(checks))
            .merge(docs::router(targets, !web_here));
    }
    if web_here && let Some(auth) = auth {
        let state = web_state(
            settings,
            targets,
            services,
            auth,
            &commerce_here,
            catalog_db.as_ref(),
            &peers,
            &limiter,
            &internal,
        )?;
        // outside the edge: the pages read their own session cookies (and refresh them)
        router = router.merge(web::router(state));
        report.web = true;
    }

    let router = with_common_layers(
        router,
        &EdgeOptions {
            request_timeout: Duration::from_secs(settings.server.request_timeout_seconds),
            max_body_bytes: settings.server.max_body_bytes,
            cors,
        },
    );
    Ok(App {
        router,
        identity: identity_service_here,
        authenticator,
        report,
        commerce: commerce_here,
        bus,
        databases,
        idempotency,
    })
}

/// How often the readiness checks run in the background for `comptoir_dependency_up`.
const DEPENDENCY_REFRESH: Duration = Duration::from_secs(15);

/// `/livez`, `/readyz`, `/metrics`; the checks also run every 15 s for their gauges.
fn health_router(checks: Vec<Check>) -> Router {
    platform::http::health::spawn_refresh(checks.clone(), DEPENDENCY_REFRESH);
    platform::http::health::router(checks)
}

/// The web pages' state: the services of this process (called in process) and of the others
/// (over HTTP), the session verifier, a cookie key.
#[allow(clippy::too_many_arguments)]
fn web_state(
    settings: &Settings,
    targets: &BTreeSet<Target>,
    services: Router,
    auth: Arc<Authenticator>,
    c: &commerce::Commerce,
    catalog_db: Option<&Db>,
    peers: &commerce::Peers,
    limiter: &Limiter,
    internal: &InternalKey,
) -> Result<web::WebState, StartError> {
    use contracts::inventory::{StockApi, StockClient};
    use contracts::orders::{OrdersApi, OrdersClient};
    use contracts::payments::{PaymentsApi, PaymentsClient};
    let w = &settings.web;
    let key = if w.cookie_secret.is_empty() {
        web_cookie_key(&settings.data.dir)?
    } else {
        use sha2::Digest;
        web::session::CookieKey::new(
            sha2::Sha256::digest(w.cookie_secret.expose().as_bytes()).into(),
        )
    };
    // the API: the services of this process in process, the others at their URLs
    let mut remote = Vec::new();
    for t in Target::SERVICES.iter().filter(|t| !targets.contains(t)) {
        let urls = contracts::rpc::instance_urls(peer_url(settings, *t).unwrap_or_default())
            .map_err(|m| ConfigError::new(format!("peers.{}_url", t.name()), m))?;
        for (prefix, _) in t.routes() {
            remote.push((*prefix, urls.clone()));
        }
    }
    let api = if remote.is_empty() {
        web::api::Api::new(services)
    } else {
        web::api::Api::remote(
            web::api::Remote::new(
                remote,
                internal.clone(),
                Duration::from_secs(settings.server.request_timeout_seconds),
                Some(services),
            )
            .map_err(StartError::Runtime)?,
        )
    };
    let stock: Arc<dyn StockApi> = match &c.inventory {
        Some(i) => Arc::new(i.clone()),
        None => Arc::new(StockClient(peers.peer(Target::Inventory)?)),
    };
    let orders: Arc<dyn OrdersApi> = match &c.orders {
        Some(o) => Arc::new(o.clone()),
        None => Arc::new(OrdersClient(peers.peer(Target::Orders)?)),
    };
    let payments: Arc<dyn PaymentsApi> = match &c.payments {
        Some(p) => Arc::new(p.clone()),
        None => Arc::new(PaymentsClient(peers.peer(Target::Payments)?)),
    };
    let source = match catalog_db {
        Some(db) => web::catalogue::Source::Local(db.clone()),
        None => web::catalogue::Source::Remote(peers.peer(Target::Catalog)?),
    };
    Ok(web::WebState::new(web::Inner {
        api,
        auth,
        catalogue: Arc::new(web::catalogue::Catalogue::new(
            source,
            Some(stock.clone()),
            Duration::from_secs(w.catalogue_seconds),
        )),
        stock,
        orders,
        payments,
        shipping: web::Shipping {
            location: settings.orders.shipping_location.clone(),
            fee: settings.orders.shipping_fee_minor,
            free_from: settings.orders.free_shipping_from_minor,
        },
        key,
        limiter: limiter.clone(),
        per_ip: if w.per_ip_per_minute == 0 {
            vec![]
        } else {
            vec![Quota::per_minute(w.per_ip_per_minute)]
        },
        proxies: trusted_proxies(settings)?,
        refresh_secs: settings.auth.refresh_token_days * 86_400,
        test_payments: settings.payments.provider == "test",
        assets: web::assets::Assets::default(),
    }))
}

/// The key of the guest-orders cookie, kept in `data.dir` so it survives restarts.
fn web_cookie_key(dir: &std::path::Path) -> Result<web::session::CookieKey, StartError> {
    let path = dir.join("web-cookie.key");
    let fail = |e: std::io::Error| StartError::Runtime(format!("{}: {e}", path.display()));
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(bytes) = hex::decode(text.trim())
        && let Ok(arr) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(web::session::CookieKey::new(arr));
    }
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| StartError::Runtime(format!("random: {e}")))?;
    std::fs::create_dir_all(dir).map_err(fail)?;
    let tmp = dir.join("web-cookie.key.tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(fail)?;
        f.write_all(hex::encode(b).as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(web::session::CookieKey::new(b))
}

/// Applies the migrations of the services among `targets`.
pub async fn migrate(
    settings: &Settings,
    targets: &BTreeSet<Target>,
) -> Result<Vec<String>, StartError> {
    let mut done = Vec::new();
    if targets.contains(&Target::Catalog) {
        let target = catalog_db_target(settings);
        let tls = platform::tls::current();
        let db = Db::connect_as(&target, 2, "catalog.database_url", &tls)
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        db.migrate(&catalog::migrations())
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        done.push(format!("catalog: {} is up to date", target.describe()));
        db.close().await;
    }
    if targets.contains(&Target::Identity) {
        let target = identity_db_target(settings);
        let tls = platform::tls::current();
        let db = Db::connect_as(&target, 2, "identity.database_url", &tls)
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        db.migrate(&identity::migrations())
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        done.push(format!("identity: {} is up to date", target.describe()));
        db.close().await;
    }
    let sets = [
        (
            Target::Inventory,
            commerce::inventory_db_target(settings),
            inventory::migrations(),
        ),
        (
            Target::Orders,
            commerce::orders_db_target(settings),
            orders::migrations(),
        ),
        (
            Target::Payments,
            commerce::payments_db_target(settings),
            payments::migrations(),
        ),
        (
            Target::Cart,
            commerce::cart_db_target(settings),
            cart::migrations(),
        ),
    ];
    for (t, target, set) in sets {
        if !targets.contains(&t) {
            continue;
        }
        let setting = format!("{}.database_url", t.name());
        let db = Db::connect_as(&target, 2, &setting, &platform::tls::current())
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        db.migrate(&set)
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        done.push(format!("{}: {} is up to date", t.name(), target.describe()));
        db.close().await;
    }
    Ok(done)
}
