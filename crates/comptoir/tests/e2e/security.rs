//! Authorisation harnesses over the whole application (RELIABILITY.md S1, S2, S3) and the
//! shared rate limiter (Redis, two instances). In process, on SQLite, with the demo accounts.

use comptoir::{App, Target};
use platform::authz::Access;
use platform::config::Settings;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

pub(crate) struct Running {
    pub(crate) base: String,
    app_identity: identity::service::Identity,
    accounts: Vec<identity::demo::DemoAccount>,
}

pub(crate) async fn start(dir: &Path, redis: Option<&str>) -> Running {
    start_with(dir, redis, |_| {}).await
}

/// [`start`], with settings of the test's own.
pub(crate) async fn start_with(
    dir: &Path,
    redis: Option<&str>,
    tweak: impl FnOnce(&mut Settings),
) -> Running {
    let mut s = Settings::defaults();
    s.data.dir = dir.to_path_buf();
    s.server.bind = "127.0.0.1:0".into();
    if let Some(url) = redis {
        s.rate_limit.redis_url = platform::config::DatabaseUrl::new(url);
    }
    tweak(&mut s);
    let targets: BTreeSet<Target> = Target::ALL.iter().copied().collect();
    let app: App = comptoir::build(&s, &targets).await.expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = app.router;
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .ok()
    });
    Running {
        base,
        app_identity: app.identity.expect("identity here"),
        accounts: app.report.demo_accounts.unwrap_or_default(),
    }
}

pub(crate) fn secret_of(r: &Running, email_or_role: &str) -> String {
    r.accounts
        .iter()
        .find(|a| a.email == email_or_role || a.role == email_or_role)
        .map(|a| a.secret.clone())
        .expect("demo account")
}

pub(crate) async fn token(base: &str, email: &str, password: &str) -> String {
    let r: Value = platform::tls::current()
        .reqwest_builder()
        .build()
        .expect("an HTTP client")
        .post(format!("{base}/api/identity/sessions"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("json");
    r["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string()
}

use comptoir::docs::policy;

pub(crate) use comptoir::docs::shape;

/// The declared access of a documented operation.
fn access_of(policy: &platform::authz::RoutePolicy, method: &str, path: &str) -> Option<Access> {
    policy
        .declared()
        .into_iter()
        .find(|(m, p, _)| m.as_str() == method && shape(p) == shape(path))
        .map(|(_, _, a)| a)
}

pub(crate) fn temp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("comptoir-sec-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// Every operation of the OpenAPI document, as (method, path pattern).
pub(crate) fn operations() -> Vec<(String, String)> {
    let doc = serde_json::to_value(comptoir::docs::openapi()).expect("json");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("item") {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// S3: the spec and the policy list the same routes; every protected operation refuses the
/// anonymous (401), a customer and a till key (403) unless they hold the permission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_declared_and_refuses_who_lacks_the_permission() {
    let dir = temp("s3");
    let r = start(&dir, None).await;
    let policy = policy();
    let ops = operations();
    let system = ["/livez", "/readyz", "/metrics"];
    // the spec and the policy agree, both ways
    for (m, p) in &ops {
        if system.contains(&p.as_str()) {
            continue;
        }
        assert!(
            access_of(&policy, m, p).is_some(),
            "{m} {p} has no declared access"
        );
    }
    for (m, p, _) in policy.declared() {
        if p.starts_with("/internal/") {
            continue;
        }
        assert!(
            ops.iter()
                .any(|(om, op)| om == m.as_str() && shape(op) == shape(p)),
            "{m} {p} is declared but not documented"
        );
    }
    let customer = token(
        &r.base,
        "client@example.org",
        &secret_of(&r, "client@example.org"),
    )
    .await;
    let key = secret_of(&r, "integrator");
    let key_scopes = ["pos:sell", "inventory:read", "orders:read"];
    let c = platform::tls::current()
        .reqwest_builder()
        .build()
        .expect("an HTTP client");
    let mut checked = 0;
    for (m, p) in &ops {
        let method: axum::http::Method = m.parse().expect("method");
        match access_of(&policy, m, p) {
            None | Some(Access::Public) => continue,
            Some(_) => {}
        }
        let url = format!(
            "{}{}",
            r.base,
            p.replace("{id}", &uuid::Uuid::new_v4().to_string())
                .replace("{key}", "some-product")
                .replace("{variant_id}", &uuid::Uuid::new_v4().to_string())
                .replace("{code}", "rennes")
                .replace("{location}", "rennes")
                .replace("{sku}", "SKU-1")
        );
        let send = |auth: Option<(&'static str, String)>| {
            let mut rb = c.request(method.clone(), &url).json(&json!({}));
            if let Some((h, v)) = auth {
                rb = rb.header(h, v);
            }
            rb.send()
        };
        let anon = send(None).await.expect("send").status().as_u16();
        assert_eq!(anon, 401, "anonymous {m} {p}");
        let needed = match access_of(&policy, m, p) {
            Some(Access::Permission(x)) => x,
            _ => {
                checked += 1;
                continue;
            }
        };
        let cust = send(Some(("authorization", format!("Bearer {customer}"))))
            .await
            .expect("send")
            .status()
            .as_u16();
        if needed != platform::authz::perm::ACCOUNT {
            assert_eq!(cust, 403, "customer {m} {p}");
        }
        let k = send(Some(("x-api-key", key.clone())))
            .await
            .expect("send")
            .status()
            .as_u16();
        if !key_scopes.contains(&needed) {
            assert_eq!(k, 403, "till key {m} {p}");
        }
        checked += 1;
    }
    let protected = policy
        .declared()
        .iter()
        .filter(|(_, _, a)| *a != Access::Public)
        .count();
    assert_eq!(
        checked, protected,
        "every protected operation was exercised"
    );
    assert!(checked >= 19);
    let _ = std::fs::remove_dir_all(dir);
}

/// S1 and S2: staff of store B get 404 on every id-bearing operation for store A's objects, and
/// no response ever carries a hash or a private key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_b_never_reaches_store_a_and_no_secret_leaks() {
    let dir = temp("s1");
    let r = start(&dir, None).await;
    let c = platform::tls::current()
        .reqwest_builder()
        .build()
        .expect("an HTTP client");
    let ho = token(
        &r.base,
        "direction@breizhsport.example",
        &secret_of(&r, "direction@breizhsport.example"),
    )
    .await;
    let brest = token(
        &r.base,
        "gerant.brest@breizhsport.example",
        &secret_of(&r, "gerant.brest@breizhsport.example"),
    )
    .await;
    // store A's objects: the Rennes clerk, the Rennes till key
    let users: Value = c
        .get(format!("{}/api/identity/users?store=rennes", r.base))
        .bearer_auth(&ho)
        .send()
        .await
        .expect("users")
        .json()
        .await
        .expect("json");
    let rennes_user = users["items"][0]["id"].as_str().expect("id").to_string();
    let keys: Value = c
        .get(format!("{}/api/identity/api-keys", r.base))
        .bearer_auth(&ho)
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json");
    let rennes_key = keys["items"][0]["id"].as_str().expect("id").to_string();
    let objects = [
        ("/api/identity/users/{id}", &rennes_user),
        ("/api/identity/api-keys/{id}", &rennes_key),
    ];
    let mut covered = 0;
    for (m, p) in operations() {
        if !p.contains("{id}") || !p.starts_with("/api/identity/") {
            continue;
        }
        let (_, id) = objects
            .iter()
            .find(|(op, _)| *op == p)
            .unwrap_or_else(|| panic!("no object for {p}"));
        let url = format!("{}{}", r.base, p.replace("{id}", id));
        let method: reqwest::Method = m.parse().expect("method");
        let res = c
            .request(method, &url)
            .bearer_auth(&brest)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status().as_u16(), 404, "{m} {p} as Brest's manager");
        covered += 1;
    }
    assert!(covered >= 4, "{covered}");
    // the objects are untouched
    let key: Value = c
        .get(format!("{}/api/identity/api-keys/{rennes_key}", r.base))
        .bearer_auth(&ho)
        .send()
        .await
        .expect("key")
        .json()
        .await
        .expect("json");
    assert!(key["revoked_at"].is_null());
    // S2: crawl what head office can list
    for p in [
        "/api/identity/users?limit=200",
        "/api/identity/api-keys",
        "/api/identity/me",
        "/.well-known/jwks.json",
    ] {
        let text = c
            .get(format!("{}{p}", r.base))
            .bearer_auth(&ho)
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("text");
        for forbidden in [
            "password",
            "argon2",
            "secret_sha256",
            "private_pkcs8",
            "token_hash",
            "\"d\":",
        ] {
            assert!(!text.contains(forbidden), "{p} contains {forbidden}");
        }
    }
    assert!(
        identity::store::count_users(&r.app_identity.db)
            .await
            .expect("count")
            > 10
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Per-key limits are shared through Redis: two instances together allow the quota once, and
/// their `RateLimit-*` headers count down one counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_per_key_limit_through_redis() {
    let Some(url) = testkit::redis_url() else {
        return;
    };
    let dir = temp("redis");
    let a = start(&dir, Some(&url)).await;
    let b = start(&dir, Some(&url)).await;
    assert!(
        b.accounts.is_empty(),
        "the second instance reuses the first one's data"
    );
    let key = secret_of(&a, "integrator");
    let c = platform::tls::current()
        .reqwest_builder()
        .build()
        .expect("an HTTP client");
    let (mut ok, mut limited, mut retry) = (0u64, 0, None);
    let num = |res: &reqwest::Response, name: &str| -> u64 {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} on a {}", res.status()))
    };
    for i in 0..160 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let res = c
            .get(format!("{base}/api/catalog/brands"))
            .header("x-api-key", &key)
            .send()
            .await
            .expect("get");
        assert_eq!(
            num(&res, "ratelimit-limit"),
            100,
            "the minute is the tightest"
        );
        assert_eq!(
            res.headers()
                .get("ratelimit-policy")
                .and_then(|v| v.to_str().ok()),
            Some("100;w=60, 1000;w=3600")
        );
        let remaining = num(&res, "ratelimit-remaining");
        match res.status().as_u16() {
            200 => {
                // one count for both instances, down by one a request (plus what refilled)
                assert!(
                    (99..=102).contains(&(remaining + ok)),
                    "request {i}: {remaining} left after {ok}"
                );
                ok += 1;
            }
            429 => {
                limited += 1;
                assert_eq!(remaining, 0);
                let secs = num(&res, "retry-after");
                assert_eq!(num(&res, "ratelimit-reset"), secs, "reset = Retry-After");
                retry = Some(secs);
                let j: Value = res.json().await.expect("json");
                assert_eq!(j["code"], "rate_limited");
            }
            s => panic!("unexpected {s}"),
        }
    }
    // 100 per minute per key, across both instances (a request or two may refill meanwhile)
    assert!((100..=103).contains(&ok), "{ok} allowed, {limited} limited");
    let secs = retry.expect("Retry-After");
    assert!((1..=60).contains(&secs), "{secs}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Behind a trusted proxy (here the test itself, on 127.0.0.1), `X-Forwarded-For` names the
/// client: the API's and the pages' per-address limits count each client apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_address_limit() {
    let dir = temp("xff");
    let r = start_with(&dir, None, |s| {
        s.server.trusted_proxies = "127.0.0.1".into();
        s.rate_limit.per_ip_per_minute = 3;
        s.web.per_ip_per_minute = 3;
    })
    .await;
    let c = platform::tls::current()
        .reqwest_builder()
        .build()
        .expect("an HTTP client");
    for path in ["/api/catalog/brands", "/fr/"] {
        let get = |client: &str| {
            c.get(format!("{}{path}", r.base))
                .header("x-forwarded-for", client)
                .send()
        };
        for i in 0..3 {
            let res = get("198.51.100.1").await.expect("get");
            assert_eq!(res.status(), 200, "{path}: request {i}");
        }
        let res = get("198.51.100.1").await.expect("get");
        assert_eq!(res.status(), 429, "{path}: the fourth from one client");
        if path.starts_with("/api") {
            let h = |n: &str| res.headers().get(n).and_then(|v| v.to_str().ok());
            assert_eq!(h("ratelimit-limit"), Some("3"));
            assert_eq!(h("ratelimit-remaining"), Some("0"));
        }
        let res = get("198.51.100.2").await.expect("get");
        assert_eq!(
            res.status(),
            200,
            "{path}: another client behind the same proxy"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
