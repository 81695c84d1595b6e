//! `comptoir`: one binary, many targets. `comptoir` alone serves everything on the embedded
//! default (SQLite files, demo data); `comptoir serve --target catalog` serves one service.

use clap::{Parser, Subcommand};
use comptoir::{StartError, Target, parse_targets};
use platform::config::{ConfigError, LogFormat, Settings, Sources};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

// Pages and JSON are built in many short-lived buffers of a few KB; glibc's allocator spent a
// tenth of a catalogue page's CPU consolidating them (perf, bench/web.sh). See ADR 0004.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "comptoir", version, about = "Comptoir: open-source commerce platform", long_about = None)]
struct Cli {
    /// Configuration file (TOML), layered over the embedded defaults.
    #[arg(long, global = true, env = "COMPTOIR_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format: text or json (overrides log.format).
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Data directory of the embedded SQLite files (overrides data.dir).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve HTTP (the default command).
    Serve {
        /// What to run here: `all` (default), a target, or a comma-separated list.
        #[arg(long, default_value = "all")]
        target: String,
        /// Address to listen on (overrides server.bind).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Apply the database migrations of the targets' services, then exit.
    Migrate {
        #[arg(long, default_value = "all")]
        target: String,
    },
    /// Load the Breizhsport demo catalogue into an empty database, then exit.
    DemoData,
    /// List the targets this binary can run.
    ListTargets,
    /// Print the effective configuration (secrets masked), then exit.
    Config,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match load_settings(&cli) {
        Ok(s) => s,
        Err(e) => return config_failure(&e),
    };
    match &cli.command {
        Some(Command::ListTargets) => {
            println!("all: every target below, in one process (the default)");
            println!("commerce: inventory, cart, orders and payments");
            for t in Target::ALL {
                println!("{}: {}", t.name(), t.describe());
                println!("    {}", t.needs_text());
            }
            return ExitCode::SUCCESS;
        }
        Some(Command::Config) => {
            print!("{}", settings.to_masked_toml());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    platform::telemetry::init_logs(&settings.log.level, settings.log.format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            None => serve(settings, "all", None).await,
            Some(Command::Serve { target, bind }) => serve(settings, &target, bind).await,
            Some(Command::Migrate { target }) => {
                let targets = parse_targets(&target)?;
                for line in comptoir::migrate(&settings, &targets).await? {
                    println!("{line}");
                }
                Ok(())
            }
            Some(Command::DemoData) => demo_data(settings).await,
            Some(Command::ListTargets | Command::Config) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(StartError::Config(e)) => config_failure(&e),
        Err(StartError::Runtime(m)) => {
            eprintln!("error: {m}");
            ExitCode::FAILURE
        }
    }
}

fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn load_settings(cli: &Cli) -> Result<Settings, ConfigError> {
    let mut s = Settings::load(Sources::from_process_env(cli.config.as_deref()))?;
    if let Some(f) = &cli.log_format {
        s.log.format = match f.as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => {
                return Err(ConfigError::new(
                    "--log-format",
                    format!("`{other}` is not text or json"),
                ));
            }
        };
    }
    if let Some(d) = &cli.data_dir {
        s.data.dir = d.clone();
    }
    if let Some(Command::Serve { bind: Some(b), .. }) = &cli.command {
        if b.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "--bind",
                format!("`{b}` is not an address like 127.0.0.1:8080"),
            ));
        }
        s.server.bind = b.clone();
    }
    // One trust store for every TLS connection of the process (PostgreSQL, Redis, RabbitMQ,
    // outbound HTTPS): Mozilla's roots + tls.ca_file.
    platform::tls::install(platform::tls::TlsClient::from_settings(&s.tls)?);
    Ok(s)
}

/// The demo accounts, once: their passwords are stored only hashed.
fn print_demo_accounts(accounts: &[identity::demo::DemoAccount]) {
    println!(
        "  demo accounts (passwords shown once, stored hashed; sign in with POST /api/identity/sessions):"
    );
    for a in accounts {
        println!(
            "    {:<14} {:<18} {:<44} {}",
            a.role, a.scope, a.email, a.secret
        );
    }
}

async fn demo_data(settings: Settings) -> Result<(), StartError> {
    let id_target = comptoir::identity_db_target(&settings);
    let id_db = platform::db::Db::connect(&id_target, 2)
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    id_db
        .migrate(&identity::migrations())
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    let id = comptoir::identity_service(
        &settings,
        id_db.clone(),
        platform::ratelimit::Limiter::in_process(),
    );
    match identity::demo::seed(&id)
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))?
    {
        Some(accounts) => {
            println!("Seeded demo accounts into {}.", id_target.describe());
            print_demo_accounts(&accounts);
        }
        None => println!(
            "{} already holds accounts: none seeded.",
            id_target.describe()
        ),
    }
    id_db.close().await;

    let target = comptoir::catalog_db_target(&settings);
    let db = platform::db::Db::connect(&target, 2)
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    db.migrate(&catalog::migrations())
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    match catalog::demo::seed(&db)
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))?
    {
        Some(s) => println!(
            "Seeded Breizhsport into {}: {} products, {} SKUs, {} categories, {} brands.",
            target.describe(),
            s.products,
            s.variants,
            s.categories,
            s.brands
        ),
        None => println!(
            "{} already holds products: nothing seeded.",
            target.describe()
        ),
    }
    // locations and opening stock for the catalogue's SKUs (skipped when any stock exists)
    let inv_target = comptoir::commerce::inventory_db_target(&settings);
    let inv_db = platform::db::Db::connect(&inv_target, 2)
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    inv_db
        .migrate(&inventory::migrations())
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    let inv = inventory::Inventory {
        db: inv_db.clone(),
        clock: std::sync::Arc::new(kernel::SystemClock),
        relay: None,
        hold_ttl: Duration::from_secs(settings.orders.hold_minutes * 60),
        skus: std::sync::Arc::new(comptoir::commerce::CatalogPrices(db.clone())),
    };
    let err = |e: inventory::InvError| StartError::Runtime(format!("demo stock: {e}"));
    inventory::demo::seed_locations(&inv).await.map_err(err)?;
    let skus = catalog::store::all_skus(&db)
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    let n = inventory::demo::seed_stock(&inv, &skus)
        .await
        .map_err(err)?;
    println!(
        "Seeded 7 locations and {n} opening receipts into {}.",
        inv_target.describe()
    );
    inv_db.close().await;
    db.close().await;
    Ok(())
}

async fn serve(settings: Settings, target: &str, _bind: Option<String>) -> Result<(), StartError> {
    let targets = parse_targets(target)?;
    comptoir::check_topology(&settings, &targets)?;
    let app = comptoir::build(&settings, &targets).await?;
    let listener = tokio::net::TcpListener::bind(&settings.server.bind)
        .await
        .map_err(|e| {
            StartError::Runtime(format!("cannot listen on {}: {e}", settings.server.bind))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    // HTTPS when given a certificate: loaded now, so that a bad pair stops the start
    let (tls, plain) = if settings.server.tls_cert_file.is_empty() {
        (None, Some(listener))
    } else {
        let files = platform::http::tls::TlsFiles {
            cert: settings.server.tls_cert_file.clone().into(),
            key: settings.server.tls_key_file.clone().into(),
        };
        let reload = Duration::from_secs(settings.server.tls_reload_seconds);
        let l = platform::http::tls::TlsListener::new(listener, files, reload)
            .map_err(|e| ConfigError::new("server.tls_cert_file", e))?;
        (Some(l), None)
    };

    // What a person starting Comptoir needs to know, on stdout (logs go to stderr).
    println!(
        "Comptoir {} ({})",
        env!("CARGO_PKG_VERSION"),
        app.report.targets.join(", ")
    );
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("  listening on  {scheme}://{addr}");
    if app.report.web {
        println!("  shop          {scheme}://{addr}/fr/  (English: /en/, back office: /fr/admin)");
    }
    println!("  API docs      {scheme}://{addr}/api/docs/");
    for (service, location) in &app.report.databases {
        println!("  data          {service}: {location}");
    }
    if let Some(s) = app.report.seeded {
        println!(
            "  demo data     Breizhsport seeded: {} products, {} SKUs, {} categories, {} brands",
            s.products, s.variants, s.categories, s.brands
        );
    }
    if let Some(n) = app.report.seeded_stock.filter(|n| *n > 0) {
        println!(
            "  demo stock    7 locations (head office, 5 stores, logistics centre), {n} opening receipts"
        );
    }
    if let Some(accounts) = &app.report.demo_accounts {
        print_demo_accounts(accounts);
    }
    tracing::info!(%addr, targets = ?app.report.targets, "serving");

    // prune old idempotency keys now and then
    for idem in app.idempotency.clone() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(e) = idem.prune().await {
                    tracing::warn!(error = %e, "pruning idempotency keys failed");
                }
            }
        });
    }

    let grace = Duration::from_secs(settings.server.shutdown_grace_seconds);
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let stop = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = tx.send(true);
    };
    let service = app
        .router
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = match (tls, plain) {
        (Some(listener), _) => tokio::spawn(async move {
            // tap_io: the client's address reaches ConnectInfo through axum's TapIo
            use axum::serve::ListenerExt;
            axum::serve(listener.tap_io(|_| {}), service)
                .with_graceful_shutdown(stop)
                .await
        }),
        (None, Some(listener)) => tokio::spawn(async move {
            axum::serve(listener, service)
                .with_graceful_shutdown(stop)
                .await
        }),
        (None, None) => return Err(StartError::Runtime("no listener".into())),
    };
    // once the signal came, in-flight requests get `grace` to finish
    let finished = async {
        let _ = rx.wait_for(|v| *v).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server => {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(StartError::Runtime(format!("server error: {e}"))),
                Err(e) => return Err(StartError::Runtime(format!("server task: {e}"))),
            }
        }
        _ = finished => {
            tracing::warn!("in-flight requests did not finish within the grace period");
        }
    }
    // consumers first: an event being handled goes back to the broker, not to a closed pool
    app.bus.close().await;
    for db in &app.databases {
        db.close().await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
