//! Settings: embedded defaults → optional file → `COMPTOIR_SECTION__KEY` environment variables,
//! with `*_FILE` variables read from a path. Every error names the setting it is about.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The commented default file, embedded in the binary.
pub const DEFAULT_TOML: &str = include_str!("../../../config/comptoir.toml");

const ENV_PREFIX: &str = "COMPTOIR_";

mod validate;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub tls: TlsSettings,
    pub log: LogSettings,
    pub data: DataSettings,
    pub catalog: CatalogSettings,
    pub identity: IdentitySettings,
    pub inventory: InventorySettings,
    pub orders: OrdersSettings,
    pub payments: PaymentsSettings,
    pub cart: CartSettings,
    pub bus: BusSettings,
    pub gateway: GatewaySettings,
    pub peers: PeersSettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub demo: DemoSettings,
    pub web: WebSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    /// Addresses and CIDR blocks, comma-separated, whose `X-Forwarded-For` names the client.
    pub trusted_proxies: String,
    pub request_timeout_seconds: u64,
    pub shutdown_grace_seconds: u64,
    pub max_body_bytes: usize,
    /// PEM certificate chain: with `tls_key_file`, this process serves HTTPS.
    pub tls_cert_file: String,
    pub tls_key_file: String,
    /// How often the two files are checked for a renewed certificate.
    pub tls_reload_seconds: u64,
}

/// TLS to the backing services (see [`crate::tls`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// A PEM bundle of private CAs trusted on top of Mozilla's roots (empty: none).
    pub ca_file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    Full,
    Normal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    pub dir: PathBuf,
    pub sqlite_synchronous: SqliteSync,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    pub database_url: DatabaseUrl,
    pub database_schema: String,
    pub max_connections: u32,
    pub cache_ttl_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    pub database_url: DatabaseUrl,
    pub database_schema: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventorySettings {
    pub database_url: DatabaseUrl,
    pub database_schema: String,
    pub max_connections: u32,
    pub hold_sweep_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersSettings {
    pub database_url: DatabaseUrl,
    pub database_schema: String,
    pub max_connections: u32,
    pub hold_minutes: u64,
    pub saga_lease_seconds: u64,
    pub recovery_interval_ms: u64,
    pub shipping_location: String,
    pub shipping_fee_minor: i64,
    pub free_shipping_from_minor: i64,
    pub orphan_refund_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsSettings {
    pub database_url: DatabaseUrl,
    pub database_schema: String,
    pub max_connections: u32,
    pub provider: String,
    pub test_latency_ms: u64,
    pub stripe_api_base: String,
    pub stripe_secret_key: Secret,
    pub stripe_webhook_secret: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartSettings {
    pub backend: String,
    pub redis_url: DatabaseUrl,
    pub database_url: DatabaseUrl,
    pub database_schema: String,
    pub max_connections: u32,
    pub guest_days: u64,
    pub customer_days: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusSettings {
    pub transport: String,
    pub rabbitmq_url: DatabaseUrl,
    pub prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Origins whose pages may call the API from a browser, with credentials: comma-separated
    /// `http(s)://host[:port]` (read by `platform::http::cors::Cors::parse`).
    pub cors_origins: String,
    pub upstream_timeout_seconds: u64,
    /// `prefix=seconds` pairs, comma-separated: routes with their own timeout.
    pub route_timeouts: String,
    /// `least_connections` or `round_robin` (both follow the instances' weights).
    pub balance: String,
    pub health_interval_seconds: u64,
    pub health_timeout_ms: u64,
    pub unhealthy_after: u32,
    pub healthy_after: u32,
    pub breaker_failures: u32,
    pub breaker_open_seconds: u64,
    /// Retries allowed, as a percentage of the requests (plus a few per second).
    pub retry_budget_percent: u32,
    /// Answers kept by the edge cache (0: no cache).
    pub cache_entries: usize,
}

impl GatewaySettings {
    /// `route_timeouts` read: (prefix, timeout) pairs.
    pub fn route_timeouts(&self) -> Result<Vec<(String, std::time::Duration)>, String> {
        self.route_timeouts
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|pair| {
                let (p, t) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("`{pair}` is not `prefix=seconds`"))?;
                let secs: u64 = t
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s| (1..=3600).contains(s))
                    .ok_or_else(|| format!("`{pair}`: seconds must be 1 to 3600"))?;
                let p = p.trim();
                if !p.starts_with('/') || p.len() > 200 {
                    return Err(format!("`{pair}`: the prefix must start with /"));
                }
                Ok((
                    p.trim_end_matches('/').to_string(),
                    std::time::Duration::from_secs(secs),
                ))
            })
            .collect()
    }
}

/// Where each service runs when it is not in this process (`http://host:port`): the gateway
/// routes to these, and services call their peers' contracts there.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersSettings {
    pub catalog_url: String,
    pub identity_url: String,
    pub inventory_url: String,
    pub cart_url: String,
    pub orders_url: String,
    pub payments_url: String,
    /// The storefront and back office (`--target web`) when they run in another process: the
    /// gateway forwards the pages there.
    pub web_url: String,
    /// Per attempt of a call to a peer's contract.
    pub timeout_ms: u64,
    /// Attempts of an idempotent call whose outcome is not known (1 = no retry).
    pub attempts: u32,
}

impl PeersSettings {
    /// The URL setting of a service (by target name) and its value.
    pub fn url_of(&self, service: &str) -> Option<(&'static str, &str)> {
        Some(match service {
            "catalog" => ("peers.catalog_url", &self.catalog_url),
            "identity" => ("peers.identity_url", &self.identity_url),
            "inventory" => ("peers.inventory_url", &self.inventory_url),
            "cart" => ("peers.cart_url", &self.cart_url),
            "orders" => ("peers.orders_url", &self.orders_url),
            "payments" => ("peers.payments_url", &self.payments_url),
            "web" => ("peers.web_url", &self.web_url),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub issuer: String,
    pub audience: String,
    pub public_url: String,
    pub access_token_seconds: u64,
    pub refresh_token_days: u64,
    pub password_reset_minutes: u64,
    pub revocation_seconds: u64,
    pub internal_secret: Secret,
    pub max_concurrent_hashes: usize,
    pub hash_queue_seconds: u64,
    pub signin_failures_before_delay: u32,
    pub signin_first_delay_seconds: u64,
    pub signin_max_failures_per_account_and_ip: u32,
    pub signin_max_failures_per_ip: u32,
    pub signin_max_failures_per_account: u32,
    pub signin_failure_window_seconds: u64,
    pub oidc_issuer: String,
    pub oidc_audience: String,
    pub oidc_jwks_url: String,
    pub oidc_algorithms: String,
    pub oidc_role_claim: String,
    pub oidc_role_map: String,
    pub oidc_store_claim: String,
    pub oidc_organiser_claim: String,
    pub oidc_jwks_min_refresh_seconds: u64,
}

impl AuthSettings {
    /// Our issuer: `auth.issuer`, or `http://<server.bind>`.
    pub fn issuer_or(&self, bind: &str) -> String {
        if self.issuer.is_empty() {
            format!("http://{bind}")
        } else {
            self.issuer.trim_end_matches('/').to_string()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub redis_url: DatabaseUrl,
    pub per_ip_per_minute: u32,
    pub per_account_per_minute: u32,
    pub per_key_per_minute: u32,
    pub per_key_per_hour: u32,
    /// `prefix=limit/unit` pairs, comma-separated: routes with their own quota per consumer.
    pub routes: String,
}

impl RateLimitSettings {
    /// `routes` read: each prefix with its quotas (`/api/checkout=20/min, /api/checkout=100/h`
    /// gives the prefix two), in the order written.
    pub fn routes(&self) -> Result<Vec<(String, Vec<crate::ratelimit::Quota>)>, String> {
        use crate::ratelimit::Quota;
        let mut out: Vec<(String, Vec<Quota>)> = Vec::new();
        for pair in self
            .routes
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (p, q) = pair.split_once('=').ok_or_else(|| {
                format!("`{pair}` is not `prefix=limit/unit`, e.g. /api/checkout=20/min")
            })?;
            let (n, unit) = q
                .split_once('/')
                .ok_or_else(|| format!("`{pair}`: the quota is limit/unit, e.g. 20/min"))?;
            let limit: u32 = n
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| format!("`{pair}`: the limit must be 1 to 1000000"))?;
            let secs = match unit.trim() {
                "s" | "sec" | "second" => 1,
                "min" | "minute" => 60,
                "h" | "hour" => 3600,
                "d" | "day" => 86_400,
                _ => return Err(format!("`{pair}`: the unit is s, min, h or day")),
            };
            let p = p.trim();
            if !p.starts_with('/') || p.len() > 200 || p.contains(char::is_whitespace) {
                return Err(format!(
                    "`{pair}`: the prefix must start with / (no spaces)"
                ));
            }
            let p = p.trim_end_matches('/');
            if p.is_empty() {
                return Err(format!(
                    "`{pair}`: give a route; the per_* settings are the quota of every route"
                ));
            }
            let quota = Quota {
                limit,
                period: std::time::Duration::from_secs(secs),
            };
            match out.iter_mut().find(|(prefix, _)| prefix == p) {
                Some((_, qs)) if qs.iter().any(|q| q.period == quota.period) => {
                    return Err(format!("`{p}` has two quotas per {}", unit.trim()));
                }
                Some((_, qs)) => qs.push(quota),
                None => out.push((p.to_string(), vec![quota])),
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    pub enabled: bool,
    pub catalogue_seconds: u64,
    pub cookie_secret: Secret,
    pub per_ip_per_minute: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    pub seed: bool,
}

/// A secret value: never printed, never logged.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"********\""
        })
    }
}
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "********" })
    }
}

/// A database URL: printed with its password masked.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(s: impl Into<String>) -> Self {
        DatabaseUrl(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `postgres://user:pw@host/db` → `postgres://user:********@host/db`.
    pub fn masked(&self) -> String {
        let s = &self.0;
        let Some(scheme_end) = s.find("://") else {
            return s.clone();
        };
        let rest = &s[scheme_end + 3..];
        let Some(at) = rest.find('@') else {
            // no userinfo; still hide a password given as a query parameter
            return mask_query_password(s);
        };
        let userinfo = &rest[..at];
        let masked_userinfo = match userinfo.find(':') {
            Some(c) => format!("{}:********", &userinfo[..c]),
            None => userinfo.to_string(),
        };
        mask_query_password(&format!(
            "{}://{}{}",
            &s[..scheme_end],
            masked_userinfo,
            &rest[at..]
        ))
    }
}

fn mask_query_password(s: &str) -> String {
    match s.find("password=") {
        Some(i) => {
            let end = s[i..].find('&').map(|e| i + e).unwrap_or(s.len());
            format!("{}password=********{}", &s[..i], &s[end..])
        }
        None => s.to_string(),
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.masked())
    }
}
impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

/// A configuration problem, naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {setting}: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// Where the settings come from; tests pass their own environment instead of the process's.
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    pub env: BTreeMap<String, String>,
}

impl Sources<'_> {
    pub fn from_process_env(file: Option<&Path>) -> Sources<'_> {
        Sources {
            file,
            env: std::env::vars().collect(),
        }
    }
}

impl Settings {
    /// The embedded defaults alone.
    pub fn defaults() -> Settings {
        #[allow(clippy::expect_used)]
        Settings::load(Sources {
            file: None,
            env: BTreeMap::new(),
        })
        .expect("the embedded default configuration is valid")
    }

    pub fn load(sources: Sources<'_>) -> Result<Settings, ConfigError> {
        let defaults: toml::Table = DEFAULT_TOML
            .parse()
            .map_err(|e| ConfigError::new("<embedded defaults>", format!("{e}")))?;
        let mut merged = defaults.clone();

        if let Some(path) = sources.file {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::new(format!("--config {name}"), e.to_string()))?;
            let file: toml::Table = text
                .parse()
                .map_err(|e| ConfigError::new(format!("--config {name}"), format!("{e}")))?;
            merge(&mut merged, file, "", &defaults)?;
        }

        for (var, value) in &sources.env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            // reserved for the test suites and the config file path
            if rest.starts_with("TEST_") || rest == "CONFIG" || rest == "FAILPOINTS" {
                continue;
            }
            let Some((section, key)) = rest.split_once("__") else {
                return Err(ConfigError::new(
                    var,
                    "expected COMPTOIR_<SECTION>__<KEY>, e.g. COMPTOIR_SERVER__BIND",
                ));
            };
            let section = section.to_ascii_lowercase();
            let mut key = key.to_ascii_lowercase();
            let mut value = value.clone();
            let known = |k: &str| {
                defaults
                    .get(&section)
                    .and_then(|s| s.as_table())
                    .and_then(|t| t.get(k))
                    .is_some()
            };
            if !known(&key)
                && let Some(base) = key.strip_suffix("_file")
                && known(base)
            {
                let base = base.to_string();
                value = std::fs::read_to_string(&value)
                    .map_err(|e| ConfigError::new(var, format!("cannot read {value}: {e}")))?
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                key = base;
            }
            let Some(default) = defaults
                .get(&section)
                .and_then(|s| s.as_table())
                .and_then(|t| t.get(&key))
            else {
                return Err(ConfigError::new(
                    var,
                    format!("unknown setting `{section}.{key}` (see `comptoir config`)"),
                ));
            };
            let typed = coerce(&value, default)
                .map_err(|m| ConfigError::new(format!("{var} ({section}.{key})"), m))?;
            if let Some(t) = merged.get_mut(&section).and_then(|s| s.as_table_mut()) {
                t.insert(key, typed);
            }
        }

        let value = toml::Value::Table(merged);
        let settings: Settings = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::new(path, e.into_inner().to_string())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// A SQL identifier we are willing to interpolate into DDL (schema names).
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn merge(
    into: &mut toml::Table,
    from: toml::Table,
    prefix: &str,
    defaults: &toml::Table,
) -> Result<(), ConfigError> {
    for (k, v) in from {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let Some(def) = defaults.get(&k) else {
            return Err(ConfigError::new(
                path,
                "unknown setting (see `comptoir config`)",
            ));
        };
        match (into.get_mut(&k), v, def) {
            (Some(toml::Value::Table(dst)), toml::Value::Table(src), toml::Value::Table(d)) => {
                let d = d.clone();
                merge(dst, src, &path, &d)?;
            }
            (_, v, _) => {
                into.insert(k, v);
            }
        }
    }
    Ok(())
}

/// Environment values are strings; give them the type of the default they replace.
fn coerce(value: &str, default: &toml::Value) -> Result<toml::Value, String> {
    Ok(match default {
        toml::Value::String(_) => toml::Value::String(value.to_string()),
        toml::Value::Integer(_) => toml::Value::Integer(
            value
                .trim()
                .parse()
                .map_err(|_| format!("expected an integer, got `{value}`"))?,
        ),
        toml::Value::Boolean(_) => match value.trim() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err(format!("expected true or false, got `{value}`")),
        },
        toml::Value::Float(_) => toml::Value::Float(
            value
                .trim()
                .parse()
                .map_err(|_| format!("expected a number, got `{value}`"))?,
        ),
        _ => return Err("this setting cannot be set from the environment".into()),
    })
}

#[cfg(test)]
mod tests;
