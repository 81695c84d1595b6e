//! The settings' unit tests: layers, `*_FILE` secrets, validation naming the setting.
use super::*;

fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load(Sources {
        file: None,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

#[test]
fn defaults_are_valid() {
    let s = load(&[]).expect("defaults");
    assert_eq!(s.server.bind, "127.0.0.1:8080");
    assert!(s.catalog.database_url.is_empty());
}

#[test]
fn env_overrides_with_types() {
    let s = load(&[
        ("COMPTOIR_SERVER__BIND", "127.0.0.1:9999"),
        ("COMPTOIR_CATALOG__MAX_CONNECTIONS", "4"),
        ("COMPTOIR_DEMO__SEED", "false"),
        ("COMPTOIR_TEST_POSTGRES_URL", "ignored"),
        ("HOME", "ignored"),
    ])
    .expect("load");
    assert_eq!(s.server.bind, "127.0.0.1:9999");
    assert_eq!(s.catalog.max_connections, 4);
    assert!(!s.demo.seed);
}

#[test]
fn errors_name_the_setting() {
    let e = load(&[("COMPTOIR_CATALOG__MAX_CONNECTIONS", "many")]).expect_err("bad int");
    assert!(
        e.setting.contains("COMPTOIR_CATALOG__MAX_CONNECTIONS"),
        "{e}"
    );
    let e = load(&[("COMPTOIR_CATALOG__NOPE", "1")]).expect_err("unknown");
    assert!(e.message.contains("catalog.nope"), "{e}");
    let e = load(&[("COMPTOIR_SERVER__BIND", "here")]).expect_err("bad bind");
    assert_eq!(e.setting, "server.bind");
    let e = load(&[("COMPTOIR_LOG__FORMAT", "xml")]).expect_err("bad enum");
    assert_eq!(e.setting, "log.format", "{e}");
}

#[test]
fn signin_throttling_numbers_are_checked_and_named() {
    let s = load(&[]).expect("defaults");
    assert_eq!(s.auth.signin_failures_before_delay, 3);
    assert_eq!(s.auth.signin_max_failures_per_account_and_ip, 10);
    assert_eq!(s.auth.signin_max_failures_per_account, 100);
    for (env, value, setting) in [
        (
            "COMPTOIR_AUTH__SIGNIN_MAX_FAILURES_PER_ACCOUNT",
            "101",
            "auth.signin_max_failures_per_account",
        ),
        // one address could reach the account's ceiling
        (
            "COMPTOIR_AUTH__SIGNIN_MAX_FAILURES_PER_ACCOUNT",
            "10",
            "auth.signin_max_failures_per_account",
        ),
        (
            "COMPTOIR_AUTH__SIGNIN_MAX_FAILURES_PER_ACCOUNT_AND_IP",
            "0",
            "auth.signin_max_failures_per_account_and_ip",
        ),
        (
            "COMPTOIR_AUTH__SIGNIN_FAILURES_BEFORE_DELAY",
            "11",
            "auth.signin_failures_before_delay",
        ),
        (
            "COMPTOIR_AUTH__SIGNIN_FIRST_DELAY_SECONDS",
            "0",
            "auth.signin_first_delay_seconds",
        ),
        (
            "COMPTOIR_AUTH__SIGNIN_MAX_FAILURES_PER_IP",
            "0",
            "auth.signin_max_failures_per_ip",
        ),
        (
            "COMPTOIR_AUTH__SIGNIN_FAILURE_WINDOW_SECONDS",
            "1",
            "auth.signin_failure_window_seconds",
        ),
    ] {
        let e = load(&[(env, value)]).expect_err(env);
        assert_eq!(e.setting, setting, "{env}={value}: {e}");
    }
}

#[test]
fn route_quotas_and_trusted_proxies_are_checked_and_named() {
    let s = load(&[
        (
            "COMPTOIR_RATE_LIMIT__ROUTES",
            "/api/checkout/=20/min, /api/catalog=600/min, /api/checkout=200/h",
        ),
        ("COMPTOIR_SERVER__TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
    ])
    .expect("load");
    let routes = s.rate_limit.routes().expect("routes");
    let q = crate::ratelimit::Quota::per_minute;
    assert_eq!(
        routes,
        vec![
            (
                "/api/checkout".to_string(),
                vec![q(20), crate::ratelimit::Quota::per_hour(200)]
            ),
            ("/api/catalog".to_string(), vec![q(600)]),
        ]
    );
    for (env, value, setting) in [
        (
            "COMPTOIR_RATE_LIMIT__ROUTES",
            "/api/checkout",
            "rate_limit.routes",
        ),
        (
            "COMPTOIR_RATE_LIMIT__ROUTES",
            "/api/checkout=20",
            "rate_limit.routes",
        ),
        (
            "COMPTOIR_RATE_LIMIT__ROUTES",
            "/api/checkout=0/min",
            "rate_limit.routes",
        ),
        (
            "COMPTOIR_RATE_LIMIT__ROUTES",
            "/api/checkout=20/week",
            "rate_limit.routes",
        ),
        // faster than the limiter counts (one a millisecond): refused, not silently cut
        (
            "COMPTOIR_RATE_LIMIT__ROUTES",
            "/api/catalog=2000/s",
            "rate_limit.routes",
        ),
        (
            "COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE",
            "60001",
            "rate_limit.per_ip_per_minute",
        ),
        (
            "COMPTOIR_RATE_LIMIT__PER_KEY_PER_HOUR",
            "3600001",
            "rate_limit.per_key_per_hour",
        ),
        (
            "COMPTOIR_RATE_LIMIT__ROUTES",
            "api/checkout=20/min",
            "rate_limit.routes",
        ),
        (
            "COMPTOIR_RATE_LIMIT__ROUTES",
            "/=20/min",
            "rate_limit.routes",
        ),
        (
            "COMPTOIR_RATE_LIMIT__ROUTES",
            "/api/x=1/min, /api/x/=2/min",
            "rate_limit.routes",
        ),
        (
            "COMPTOIR_SERVER__TRUSTED_PROXIES",
            "10.0.0.0/33",
            "server.trusted_proxies",
        ),
        (
            "COMPTOIR_SERVER__TRUSTED_PROXIES",
            "10.0.0.1/8",
            "server.trusted_proxies",
        ),
        (
            "COMPTOIR_SERVER__TRUSTED_PROXIES",
            "proxy.internal",
            "server.trusted_proxies",
        ),
    ] {
        let e = load(&[(env, value)]).expect_err(value);
        assert_eq!(e.setting, setting, "{env}={value}: {e}");
    }
}

#[test]
fn secrets_from_files_and_masked() {
    let dir = std::env::temp_dir().join(format!("comptoir-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("token");
    std::fs::write(&f, "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t\n").expect("write");
    let s = load(&[
        (
            "COMPTOIR_AUTH__INTERNAL_SECRET_FILE",
            f.to_str().expect("utf8"),
        ),
        (
            "COMPTOIR_CATALOG__DATABASE_URL",
            "postgres://app:hunter2@db:5432/comptoir",
        ),
    ])
    .expect("load");
    assert_eq!(
        s.auth.internal_secret.expose(),
        "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"
    );
    let printed = s.to_masked_toml();
    assert!(!printed.contains("s3cr3t"), "{printed}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("postgres://app:********@db:5432/comptoir"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn file_layer_rejects_unknown_keys() {
    let dir = std::env::temp_dir().join(format!("comptoir-cfg2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("c.toml");
    std::fs::write(&f, "[server]\nbnd = \"x\"\n").expect("write");
    let e = Settings::load(Sources {
        file: Some(&f),
        env: BTreeMap::new(),
    })
    .expect_err("unknown key");
    assert_eq!(e.setting, "server.bnd");
    std::fs::write(&f, "[catalog]\ncache_ttl_seconds = 0\n").expect("write");
    let s = Settings::load(Sources {
        file: Some(&f),
        env: BTreeMap::new(),
    })
    .expect("load");
    assert_eq!(s.catalog.cache_ttl_seconds, 0);
    std::fs::remove_dir_all(&dir).ok();
}
