//! What can run in a process ([`Target`]), what each target needs from the others, and the
//! check of the settings against a choice of targets before anything is opened.

use platform::config::{ConfigError, Settings};
use std::collections::BTreeSet;

/// A part of Comptoir that can run in a process of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Catalog,
    Identity,
    Inventory,
    Cart,
    Orders,
    Payments,
    Web,
    Gateway,
}

/// Names that stand for several targets.
pub const GROUPS: &[(&str, &[Target])] = &[
    ("all", Target::ALL),
    (
        "commerce",
        &[
            Target::Inventory,
            Target::Cart,
            Target::Orders,
            Target::Payments,
        ],
    ),
];

impl Target {
    pub const ALL: &'static [Target] = &[
        Target::Catalog,
        Target::Identity,
        Target::Inventory,
        Target::Cart,
        Target::Orders,
        Target::Payments,
        Target::Web,
        Target::Gateway,
    ];

    /// The services: every target but the edge and the pages.
    pub const SERVICES: &'static [Target] = &[
        Target::Catalog,
        Target::Identity,
        Target::Inventory,
        Target::Cart,
        Target::Orders,
        Target::Payments,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Target::Catalog => "catalog",
            Target::Identity => "identity",
            Target::Inventory => "inventory",
            Target::Cart => "cart",
            Target::Orders => "orders",
            Target::Payments => "payments",
            Target::Web => "web",
            Target::Gateway => "gateway",
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Target::Catalog => {
                "products, variants, categories, brands and pictures under /api/catalog; prices \
                 and SKUs for carts and inventory (database: catalog)"
            }
            Target::Identity => {
                "accounts, roles, sessions, API keys, our token issuer (/.well-known) under \
                 /api/identity (database: identity)"
            }
            Target::Inventory => {
                "stock per location, movements, transfers under /api/inventory; holds for \
                 checkout (database: inventory)"
            }
            Target::Cart => "guest and customer carts under /api/carts (database: cart, or Redis)",
            Target::Orders => {
                "checkout (the saga) and orders under /api/checkout and /api/orders, the \
                 recovery worker (database: orders)"
            }
            Target::Payments => {
                "payments through the provider, /api/payments and the Stripe webhook \
                 (database: payments)"
            }
            Target::Web => {
                "the storefront (/fr, /en) and the back office (/{lang}/admin), acting through \
                 the services' API as the visitor"
            }
            Target::Gateway => {
                "the entry point: authenticates every request, applies rate limits, forwards \
                 /api/<service> to services in other processes (peers.*_url), serves the \
                 OpenAPI document and the API docs"
            }
        }
    }

    /// The services this one calls, in this process or at their `peers.*_url`.
    pub fn needs(&self) -> &'static [Target] {
        match self {
            Target::Inventory | Target::Cart => &[Target::Catalog],
            Target::Orders => &[Target::Inventory, Target::Payments, Target::Cart],
            Target::Gateway => Target::SERVICES,
            Target::Web => Target::SERVICES,
            Target::Catalog | Target::Identity | Target::Payments => &[],
        }
    }

    /// The public path prefixes this service answers (and their metric labels), which the
    /// gateway forwards to it when it runs elsewhere.
    pub fn routes(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Target::Catalog => &[("/api/catalog", "/api/catalog/*")],
            Target::Identity => &[
                ("/api/identity", "/api/identity/*"),
                ("/.well-known", "/.well-known/*"),
            ],
            Target::Inventory => &[("/api/inventory", "/api/inventory/*")],
            Target::Cart => &[("/api/carts", "/api/carts/*")],
            Target::Orders => &[
                ("/api/checkout", "/api/checkout"),
                ("/api/orders", "/api/orders/*"),
            ],
            Target::Payments => &[("/api/payments", "/api/payments/*")],
            // the pages, which the gateway forwards to `peers.web_url` when web runs apart
            Target::Web => &[
                ("/", "/"),
                ("/account", "/account/*"),
                ("/fr", "/fr/*"),
                ("/en", "/en/*"),
                ("/static", "/static/*"),
                ("/manifest.webmanifest", "/manifest.webmanifest"),
            ],
            Target::Gateway => &[],
        }
    }

    /// What `list-targets` prints after the description.
    pub fn needs_text(&self) -> String {
        match self {
            t if t.needs().is_empty() => "needs: nothing else".into(),
            t => format!(
                "needs: {} (in this process, or at {})",
                t.needs()
                    .iter()
                    .map(|n| n.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                t.needs()
                    .iter()
                    .map(|n| format!("peers.{}_url", n.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Parses `--target`: `all`, `commerce`, one name, or a comma-separated list.
pub fn parse_targets(s: &str) -> Result<BTreeSet<Target>, ConfigError> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((_, group)) = GROUPS.iter().find(|(g, _)| *g == part) {
            out.extend(group.iter().copied());
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
                        "unknown target `{part}`; known: all, commerce, {}",
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

/// The name this process signs into its calls to peers: its first service target.
pub(crate) fn caller_name(targets: &BTreeSet<Target>) -> &'static str {
    targets
        .iter()
        .find(|t| Target::SERVICES.contains(t))
        .map(|t| t.name())
        .unwrap_or("gateway")
}

/// Whether every part runs in this process (then no internal secret is needed).
pub(crate) fn all_local(targets: &BTreeSet<Target>) -> bool {
    Target::ALL.iter().all(|t| targets.contains(t))
}

/// The URL of a service that runs in another process, or the setting to set.
pub fn peer_url(s: &Settings, t: Target) -> Option<&str> {
    s.peers
        .url_of(t.name())
        .map(|(_, u)| u)
        .filter(|u| !u.is_empty())
}

fn missing_peer(t: Target, peer: Target) -> ConfigError {
    let setting = format!("peers.{}_url", peer.name());
    let env = format!("COMPTOIR_{}", setting.to_uppercase().replace('.', "__"));
    ConfigError::new(
        setting,
        format!(
            "the {} target calls {} and it does not run in this process: set its address \
             ({env}=http://host:port) or add it to --target",
            t.name(),
            peer.name(),
        ),
    )
}

/// Checks the settings against the targets before anything is opened.
pub fn check_topology(s: &Settings, targets: &BTreeSet<Target>) -> Result<(), ConfigError> {
    for t in targets {
        for peer in t.needs() {
            if targets.contains(peer) {
                continue;
            }
            match peer_url(s, *peer) {
                None => return Err(missing_peer(*t, *peer)),
                Some(u) => {
                    contracts::rpc::instance_urls(u)
                        .map_err(|m| ConfigError::new(format!("peers.{}_url", peer.name()), m))?;
                }
            }
        }
    }
    // orders consumes what payments publishes (payment.refunded): across processes, only a
    // broker carries it
    let orders_here = targets.contains(&Target::Orders);
    if orders_here != targets.contains(&Target::Payments) && s.bus.transport != "rabbitmq" {
        return Err(ConfigError::new(
            "bus.transport",
            "orders and payments run in different processes, and the in-process bus cannot carry \
             payments' events to orders: set bus.transport = \"rabbitmq\" in both",
        ));
    }
    if !all_local(targets) {
        if s.auth.internal_secret.is_empty() {
            return Err(ConfigError::new(
                "auth.internal_secret",
                "services run in separate processes, so the gateway and the services need a \
                 shared secret (COMPTOIR_AUTH__INTERNAL_SECRET_FILE, at least 32 characters)",
            ));
        }
        let has_gateway = targets.contains(&Target::Gateway);
        let has_identity = targets.contains(&Target::Identity);
        if s.auth.issuer.is_empty() && (has_gateway || has_identity) {
            return Err(ConfigError::new(
                "auth.issuer",
                "services run in separate processes, so the token issuer must be the same \
                 public URL everywhere (e.g. https://shop.example)",
            ));
        }
    }
    Ok(())
}
