//! The rules every setting must keep, checked once at load: each error names its setting.

use super::{AuthSettings, ConfigError, Settings, is_identifier};

impl Settings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_commerce()?;
        self.validate_gateway()?;
        let w = &self.web;
        if !w.cookie_secret.is_empty() && w.cookie_secret.expose().len() < 32 {
            return Err(ConfigError::new(
                "web.cookie_secret",
                "must be at least 32 characters (or empty to generate one in data.dir)",
            ));
        }
        if w.catalogue_seconds > 3600 {
            return Err(ConfigError::new(
                "web.catalogue_seconds",
                "at most 3600: the storefront would show stale products for too long",
            ));
        }
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "server.bind",
                format!(
                    "`{}` is not an address like 127.0.0.1:8080",
                    self.server.bind
                ),
            ));
        }
        if !self.tls.ca_file.is_empty() {
            crate::tls::read_ca_file(std::path::Path::new(&self.tls.ca_file))
                .map_err(|m| ConfigError::new(crate::tls::CA_FILE_SETTING, m))?;
        }
        let (cert, key) = (&self.server.tls_cert_file, &self.server.tls_key_file);
        if cert.is_empty() != key.is_empty() {
            return Err(ConfigError::new(
                if cert.is_empty() {
                    "server.tls_cert_file"
                } else {
                    "server.tls_key_file"
                },
                "give both the certificate chain and its key, or neither",
            ));
        }
        if !(1..=3600).contains(&self.server.tls_reload_seconds) {
            return Err(ConfigError::new(
                "server.tls_reload_seconds",
                "must be 1 to 3600",
            ));
        }
        crate::caller::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|m| ConfigError::new("server.trusted_proxies", m))?;
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::new(
                "server.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if self.server.request_timeout_seconds == 0 {
            return Err(ConfigError::new(
                "server.request_timeout_seconds",
                "must be at least 1",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::new(
                "log.level",
                format!("`{}` is not a valid filter", self.log.level),
            ));
        }
        let url = self.catalog.database_url.expose();
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(ConfigError::new(
                "catalog.database_url",
                "must be empty (SQLite in data.dir) or a postgres:// URL",
            ));
        }
        if !is_identifier(&self.catalog.database_schema) {
            return Err(ConfigError::new(
                "catalog.database_schema",
                "must be a lowercase SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)",
            ));
        }
        if self.catalog.max_connections == 0 {
            return Err(ConfigError::new(
                "catalog.max_connections",
                "must be at least 1",
            ));
        }
        let url = self.identity.database_url.expose();
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(ConfigError::new(
                "identity.database_url",
                "must be empty (SQLite in data.dir) or a postgres:// URL",
            ));
        }
        if !is_identifier(&self.identity.database_schema) {
            return Err(ConfigError::new(
                "identity.database_schema",
                "must be a lowercase SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)",
            ));
        }
        if self.identity.max_connections == 0 {
            return Err(ConfigError::new(
                "identity.max_connections",
                "must be at least 1",
            ));
        }
        let p = &self.peers;
        for service in [
            "catalog",
            "identity",
            "inventory",
            "cart",
            "orders",
            "payments",
        ] {
            if let Some((setting, url)) = p.url_of(service)
                && !url.is_empty()
                && !url.starts_with("http://")
            {
                return Err(ConfigError::new(
                    setting,
                    "must be an http://host:port URL (service-to-service traffic stays on the \
                     installation's network; terminate TLS in front of it)",
                ));
            }
        }
        if !(50..=60_000).contains(&p.timeout_ms) {
            return Err(ConfigError::new(
                "peers.timeout_ms",
                "must be between 50 and 60000",
            ));
        }
        if !(1..=10).contains(&p.attempts) {
            return Err(ConfigError::new(
                "peers.attempts",
                "must be between 1 and 10",
            ));
        }
        let a = &self.auth;
        if !(60..=900).contains(&a.access_token_seconds) {
            return Err(ConfigError::new(
                "auth.access_token_seconds",
                "must be between 60 and 900 (access tokens live at most 15 minutes)",
            ));
        }
        if !(1..=365).contains(&a.refresh_token_days) {
            return Err(ConfigError::new(
                "auth.refresh_token_days",
                "must be between 1 and 365",
            ));
        }
        if !(5..=1440).contains(&a.password_reset_minutes) {
            return Err(ConfigError::new(
                "auth.password_reset_minutes",
                "must be between 5 and 1440",
            ));
        }
        if !(1..=5).contains(&a.revocation_seconds) {
            return Err(ConfigError::new(
                "auth.revocation_seconds",
                "must be between 1 and 5 (a revoked key must stop working within seconds)",
            ));
        }
        let secret = a.internal_secret.expose();
        if !secret.is_empty() && secret.len() < 32 {
            return Err(ConfigError::new(
                "auth.internal_secret",
                "must be at least 32 characters (generate one with `openssl rand -hex 32`)",
            ));
        }
        validate_signin_throttling(a)?;
        for (name, v) in [
            ("auth.issuer", &a.issuer),
            ("auth.public_url", &a.public_url),
        ] {
            if !(v.is_empty() || v.starts_with("http://") || v.starts_with("https://")) {
                return Err(ConfigError::new(name, "must be an http:// or https:// URL"));
            }
        }
        if !a.oidc_issuer.is_empty() {
            if a.oidc_audience.is_empty() {
                return Err(ConfigError::new(
                    "auth.oidc_audience",
                    "needed when auth.oidc_issuer is set (the client id tokens are issued for)",
                ));
            }
            if a.oidc_jwks_url.is_empty()
                && !(a.oidc_issuer.starts_with("http://") || a.oidc_issuer.starts_with("https://"))
            {
                return Err(ConfigError::new(
                    "auth.oidc_jwks_url",
                    "set it to the http(s):// URL of the provider's JWKS (the issuer is not an \
                     http(s):// URL, so its discovery document cannot be fetched)",
                ));
            }
            if !(a.oidc_jwks_url.is_empty()
                || a.oidc_jwks_url.starts_with("http://")
                || a.oidc_jwks_url.starts_with("https://"))
            {
                return Err(ConfigError::new(
                    "auth.oidc_jwks_url",
                    "must be an http:// or https:// URL",
                ));
            }
            crate::authn::ExternalProvider::parse_algorithms(&a.oidc_algorithms)
                .map_err(|m| ConfigError::new("auth.oidc_algorithms", m))?;
            let map = crate::authn::ExternalProvider::parse_role_map(&a.oidc_role_map)
                .map_err(|m| ConfigError::new("auth.oidc_role_map", m))?;
            if map.is_empty() {
                return Err(ConfigError::new(
                    "auth.oidc_role_map",
                    "map at least one provider role, e.g. `shop-admin=head_office`",
                ));
            }
        }
        let r = &self.rate_limit;
        let url = r.redis_url.expose();
        if !(url.is_empty() || url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(ConfigError::new(
                "rate_limit.redis_url",
                "must be empty (in-process limits) or a redis:// URL",
            ));
        }
        // the limiter counts in milliseconds: a quota faster than one request a millisecond
        // would be cut to that without a word
        for (setting, limit, per) in [
            ("rate_limit.per_ip_per_minute", r.per_ip_per_minute, 60u64),
            (
                "rate_limit.per_account_per_minute",
                r.per_account_per_minute,
                60,
            ),
            ("rate_limit.per_key_per_minute", r.per_key_per_minute, 60),
            ("rate_limit.per_key_per_hour", r.per_key_per_hour, 3600),
        ] {
            if u64::from(limit) > per * 1000 {
                return Err(ConfigError::new(
                    setting,
                    format!(
                        "at most {} (1000 a second, the limiter's resolution); 0 turns it off",
                        per * 1000
                    ),
                ));
            }
        }
        for (prefix, quotas) in r
            .routes()
            .map_err(|m| ConfigError::new("rate_limit.routes", m))?
        {
            if let Some(q) = quotas
                .iter()
                .find(|q| u128::from(q.limit) > q.period.as_millis())
            {
                return Err(ConfigError::new(
                    "rate_limit.routes",
                    format!(
                        "`{prefix}`: {} in {} s is faster than 1000 a second, the limiter's resolution",
                        q.limit,
                        q.period.as_secs()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_gateway(&self) -> Result<(), ConfigError> {
        let g = &self.gateway;
        crate::http::cors::Cors::parse(&g.cors_origins)
            .map_err(|m| ConfigError::new("gateway.cors_origins", m))?;
        if !matches!(g.balance.as_str(), "least_connections" | "round_robin") {
            return Err(ConfigError::new(
                "gateway.balance",
                format!("`{}`: least_connections or round_robin", g.balance),
            ));
        }
        g.route_timeouts()
            .map_err(|m| ConfigError::new("gateway.route_timeouts", m))?;
        let rules = [
            (
                "gateway.upstream_timeout_seconds",
                g.upstream_timeout_seconds,
                1,
                3600,
            ),
            (
                "gateway.health_interval_seconds",
                g.health_interval_seconds,
                1,
                3600,
            ),
            ("gateway.health_timeout_ms", g.health_timeout_ms, 50, 60_000),
            (
                "gateway.unhealthy_after",
                u64::from(g.unhealthy_after),
                1,
                100,
            ),
            ("gateway.healthy_after", u64::from(g.healthy_after), 1, 100),
            (
                "gateway.breaker_failures",
                u64::from(g.breaker_failures),
                1,
                1000,
            ),
            (
                "gateway.breaker_open_seconds",
                g.breaker_open_seconds,
                1,
                3600,
            ),
            (
                "gateway.retry_budget_percent",
                u64::from(g.retry_budget_percent),
                0,
                100,
            ),
        ];
        for (setting, v, lo, hi) in rules {
            if !(lo..=hi).contains(&v) {
                return Err(ConfigError::new(setting, format!("must be {lo} to {hi}")));
            }
        }
        Ok(())
    }

    fn validate_commerce(&self) -> Result<(), ConfigError> {
        let dbs = [
            (
                "inventory",
                &self.inventory.database_url,
                &self.inventory.database_schema,
                self.inventory.max_connections,
            ),
            (
                "orders",
                &self.orders.database_url,
                &self.orders.database_schema,
                self.orders.max_connections,
            ),
            (
                "payments",
                &self.payments.database_url,
                &self.payments.database_schema,
                self.payments.max_connections,
            ),
            (
                "cart",
                &self.cart.database_url,
                &self.cart.database_schema,
                self.cart.max_connections,
            ),
        ];
        for (name, url, schema, max) in dbs {
            let u = url.expose();
            if !u.is_empty() && !u.starts_with("postgres://") && !u.starts_with("postgresql://") {
                return Err(ConfigError::new(
                    format!("{name}.database_url"),
                    "must be empty (SQLite in data.dir) or a postgres:// URL",
                ));
            }
            if !is_identifier(schema) {
                return Err(ConfigError::new(
                    format!("{name}.database_schema"),
                    "must be a lowercase SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)",
                ));
            }
            if max == 0 {
                return Err(ConfigError::new(
                    format!("{name}.max_connections"),
                    "must be at least 1",
                ));
            }
        }
        if self.inventory.hold_sweep_seconds == 0 {
            return Err(ConfigError::new(
                "inventory.hold_sweep_seconds",
                "must be at least 1",
            ));
        }
        let o = &self.orders;
        if !(1..=24 * 60).contains(&o.hold_minutes) {
            return Err(ConfigError::new("orders.hold_minutes", "must be 1 to 1440"));
        }
        if o.saga_lease_seconds == 0 || o.recovery_interval_ms < 50 {
            return Err(ConfigError::new(
                "orders.saga_lease_seconds",
                "the lease must be at least 1 s and the recovery interval at least 50 ms",
            ));
        }
        if o.shipping_fee_minor < 0 || o.free_shipping_from_minor < 0 {
            return Err(ConfigError::new(
                "orders.shipping_fee_minor",
                "amounts cannot be negative",
            ));
        }
        let p = &self.payments;
        if p.test_latency_ms > 30_000 {
            return Err(ConfigError::new(
                "payments.test_latency_ms",
                "at most 30000",
            ));
        }
        match p.provider.as_str() {
            "test" => {}
            "stripe" => {
                if !(p.stripe_api_base.starts_with("https://")
                    || p.stripe_api_base.starts_with("http://"))
                {
                    return Err(ConfigError::new(
                        "payments.stripe_api_base",
                        "provider = stripe needs the API base URL (https://api.stripe.com, or an \
                         http:// egress proxy that adds TLS)",
                    ));
                }
                if p.stripe_secret_key.is_empty() || p.stripe_webhook_secret.is_empty() {
                    return Err(ConfigError::new(
                        "payments.stripe_secret_key",
                        "provider = stripe needs stripe_secret_key and stripe_webhook_secret \
                         (use the *_FILE variables)",
                    ));
                }
            }
            other => {
                return Err(ConfigError::new(
                    "payments.provider",
                    format!("`{other}` is not a provider; use test or stripe"),
                ));
            }
        }
        match self.cart.backend.as_str() {
            "sql" => {}
            "redis" if !self.cart.redis_url.is_empty() => {}
            "redis" => {
                return Err(ConfigError::new(
                    "cart.redis_url",
                    "cart.backend = redis needs a redis:// URL",
                ));
            }
            other => {
                return Err(ConfigError::new(
                    "cart.backend",
                    format!("`{other}`: use sql or redis"),
                ));
            }
        }
        if self.cart.guest_days == 0 || self.cart.customer_days == 0 {
            return Err(ConfigError::new(
                "cart.guest_days",
                "carts live at least one day",
            ));
        }
        for (setting, url) in [
            ("cart.redis_url", self.cart.redis_url.expose()),
            ("rate_limit.redis_url", self.rate_limit.redis_url.expose()),
        ] {
            if url.starts_with("rediss://") && url.contains('#') {
                return Err(ConfigError::new(
                    setting,
                    "a rediss:// URL takes no #fragment (#insecure would turn certificate \
                     checks off); trust a private CA with tls.ca_file",
                ));
            }
        }
        if !(self.bus.rabbitmq_url.is_empty()
            || self.bus.rabbitmq_url.expose().starts_with("amqp://")
            || self.bus.rabbitmq_url.expose().starts_with("amqps://"))
        {
            return Err(ConfigError::new(
                "bus.rabbitmq_url",
                "must be an amqp:// or amqps:// (TLS) URL",
            ));
        }
        match self.bus.transport.as_str() {
            "in-process" => {}
            "rabbitmq" if !self.bus.rabbitmq_url.is_empty() => {}
            "rabbitmq" => {
                return Err(ConfigError::new(
                    "bus.rabbitmq_url",
                    "bus.transport = rabbitmq needs an amqp:// URL",
                ));
            }
            other => {
                return Err(ConfigError::new(
                    "bus.transport",
                    format!("`{other}`: use in-process or rabbitmq"),
                ));
            }
        }
        if !is_identifier(&self.bus.prefix.replace('-', "_")) {
            return Err(ConfigError::new("bus.prefix", "a short lowercase name"));
        }
        Ok(())
    }
}

/// Sign-in throttling: the numbers must keep the two promises of `[auth]` in the default
/// configuration: one address alone cannot lock an account (it reaches at most a fifth of the
/// account's ceiling in a window), and no account takes more than 100 failures in a window
/// (NIST SP 800-63B).
fn validate_signin_throttling(a: &AuthSettings) -> Result<(), ConfigError> {
    let pair = a.signin_max_failures_per_account_and_ip;
    if !(1..=20).contains(&pair) {
        return Err(ConfigError::new(
            "auth.signin_max_failures_per_account_and_ip",
            "must be between 1 and 20",
        ));
    }
    if a.signin_failures_before_delay > pair {
        return Err(ConfigError::new(
            "auth.signin_failures_before_delay",
            "must be at most auth.signin_max_failures_per_account_and_ip",
        ));
    }
    if !(1..=60).contains(&a.signin_first_delay_seconds) {
        return Err(ConfigError::new(
            "auth.signin_first_delay_seconds",
            "must be between 1 and 60",
        ));
    }
    if !(1..=10_000).contains(&a.signin_max_failures_per_ip) {
        return Err(ConfigError::new(
            "auth.signin_max_failures_per_ip",
            "must be between 1 and 10000",
        ));
    }
    let acct = a.signin_max_failures_per_account;
    if acct > 100 || acct < 5 * pair {
        return Err(ConfigError::new(
            "auth.signin_max_failures_per_account",
            format!(
                "must be between 5 x auth.signin_max_failures_per_account_and_ip ({}) and 100: \
                 lower, one address could lock the account; higher, guessing is not capped",
                5 * pair
            ),
        ));
    }
    if !(60..=86_400).contains(&a.signin_failure_window_seconds) {
        return Err(ConfigError::new(
            "auth.signin_failure_window_seconds",
            "must be between 60 and 86400",
        ));
    }
    Ok(())
}
