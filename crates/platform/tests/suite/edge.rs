//! The edge's consumer plans (issue 13), through the real edge layer, on the in-process
//! limiter and on the real Redis (`COMPTOIR_TEST_REDIS_URL`): the `RateLimit-*` headers as a
//! key spends its 100/min and 1000/h, a route with its own quota, two gateways sharing the
//! counts, and the client address behind trusted proxies.
//!
//! Time is a hand-moved clock given to the limiter ([`Limiter::with_clock`]), in Redis too:
//! minutes pass without waiting for them, and every count is exact.

use axum::Router;
use axum::routing::get;
use jsonwebtoken::jwk::JwkSet;
use platform::authn::{Authenticator, DirFuture, Directory, Edge, EdgeLimits, edge_layer};
use platform::authz::Principal;
use platform::caller::{ClientIp, TrustedProxies};
use platform::ratelimit::{Limiter, Quota};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::http::{Res, TestApp};
use testkit::principal::PrincipalExt;

/// A clock the test moves by hand.
struct ManualClock(Mutex<chrono::DateTime<chrono::Utc>>);

impl ManualClock {
    fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(chrono::Utc::now())))
    }
    fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += chrono::Duration::from_std(d).expect("a short duration");
    }
}

impl kernel::Clock for ManualClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The identity service as the edge sees it: API keys and their principals, nothing else.
struct Keys(HashMap<String, Principal>);

impl Directory for Keys {
    fn signing_keys(&self) -> DirFuture<'_, JwkSet> {
        Box::pin(async { Ok(JwkSet { keys: vec![] }) })
    }
    fn api_key<'a>(&'a self, presented: &'a str) -> DirFuture<'a, Option<Principal>> {
        Box::pin(async move { Ok(self.0.get(presented).cloned()) })
    }
    fn session_active<'a>(&'a self, _: &'a str) -> DirFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
}

/// Fresh API keys (unique per run: the Redis counters outlive the test).
fn api_keys(n: usize) -> Vec<(String, Principal)> {
    (0..n)
        .map(|_| {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let p = testkit::principal::integrator("rennes", &["catalog:read"]).with_subject(&id);
            (format!("ck_{id}"), p)
        })
        .collect()
}

/// The default plan of the shipped configuration: 100/min and 1000/h per key.
fn default_plan() -> EdgeLimits {
    EdgeLimits {
        per_ip: vec![Quota::per_minute(1200)],
        per_account: vec![Quota::per_minute(600)],
        per_key: vec![Quota::per_minute(100), Quota::per_hour(1000)],
        routes: vec![],
    }
}

/// Three routes behind the real edge; `/api/whoami` answers the client address the edge found.
fn gateway(
    limiter: Limiter,
    limits: EdgeLimits,
    keys: &[(String, Principal)],
    proxies: &str,
) -> TestApp {
    let dir = Keys(keys.iter().cloned().collect());
    let auth = Arc::new(Authenticator::new(
        "http://edge.test",
        "comptoir",
        Arc::new(dir),
        None,
        Duration::from_secs(1),
    ));
    let edge = Arc::new(Edge {
        auth,
        limiter,
        limits,
        proxies: TrustedProxies::parse(proxies).expect("proxies"),
    });
    let router = Router::new()
        .route("/api/catalog/brands", get(|| async { "brands" }))
        .route("/api/checkout/start", get(|| async { "started" }))
        .route(
            "/api/whoami",
            get(|ip: ClientIp| async move { ip.0.to_string() }),
        )
        .layer(axum::middleware::from_fn(move |req, next| {
            edge_layer(edge.clone(), req, next)
        }));
    TestApp::unsigned(router).with_common_layers(64 * 1024)
}

/// The limiters under test: in process, and shared through Redis when it is configured.
async fn limiters(clock: &Arc<ManualClock>) -> Vec<(&'static str, Limiter)> {
    let mut out = vec![("memory", Limiter::in_process().with_clock(clock.clone()))];
    if let Some(url) = testkit::redis_url() {
        let l = Limiter::redis(&url)
            .await
            .expect("redis")
            .with_clock(clock.clone());
        // the script answers, rather than each limiter falling back to its own counters
        let probe = format!("probe:{}", uuid::Uuid::new_v4());
        let q = [Quota::per_hour(2)];
        assert!(l.hit(&probe, &q).await.allowed());
        let other = Limiter::redis(&url).await.expect("redis");
        let seen = other.with_clock(clock.clone()).hit(&probe, &q).await;
        assert_eq!(
            seen.tightest.map(|s| s.remaining),
            Some(0),
            "counted in Redis"
        );
        out.push(("redis", l));
    }
    out
}

fn header<'a>(r: &'a Res, name: &str) -> &'a str {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} on a {}: {:?}", r.status, r.headers))
}

/// (Limit, Remaining, Reset) as numbers.
fn rate(r: &Res) -> (u64, u64, u64) {
    let n = |h| header(r, h).parse::<u64>().expect("an integer");
    (
        n("ratelimit-limit"),
        n("ratelimit-remaining"),
        n("ratelimit-reset"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_101st_request_of_a_key_in_a_minute_is_refused_and_the_headers_count_down() {
    let clock = ManualClock::new();
    for (name, limiter) in limiters(&clock).await {
        let keys = api_keys(1);
        let app = gateway(limiter, default_plan(), &keys, "");
        let key = &keys[0].0;
        for i in 0..100u64 {
            let r = app
                .get("/api/catalog/brands")
                .header("x-api-key", key)
                .await;
            assert_eq!(r.status, 200, "{name}: request {i}: {}", r.body);
            let (limit, remaining, reset) = rate(&r);
            assert_eq!(
                (limit, remaining),
                (100, 99 - i),
                "{name}: the minute, fewer left than the hour"
            );
            // whole again after 0.6 s per request spent; with none left, the next fits in 0.6 s
            let whole = if remaining == 0 {
                1
            } else {
                (6 * (i + 1)).div_ceil(10)
            };
            assert_eq!(reset, whole, "{name}: request {i}");
            assert_eq!(header(&r, "ratelimit-policy"), "100;w=60, 1000;w=3600");
        }
        let r = app
            .get("/api/catalog/brands")
            .header("x-api-key", key)
            .await;
        assert_eq!(r.status, 429, "{name}: the 101st");
        assert_eq!(r.code(), "rate_limited");
        assert_eq!(header(&r, "retry-after"), "1", "{name}: 0.6 s, rounded up");
        assert_eq!(rate(&r), (100, 0, 1), "{name}: reset at the Retry-After");
        assert_eq!(header(&r, "ratelimit-policy"), "100;w=60, 1000;w=3600");
        // a refused request is not counted: 0.6 s later exactly one more fits
        clock.advance(Duration::from_millis(600));
        let r = app
            .get("/api/catalog/brands")
            .header("x-api-key", key)
            .await;
        assert_eq!(r.status, 200, "{name}: one more after 0.6 s");
        assert_eq!(rate(&r).1, 0);
        let r = app
            .get("/api/catalog/brands")
            .header("x-api-key", key)
            .await;
        assert_eq!(r.status, 429, "{name}: and only one");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_quota_holds_across_minutes() {
    let clock = ManualClock::new();
    for (name, limiter) in limiters(&clock).await {
        let keys = api_keys(1);
        let app = gateway(limiter, default_plan(), &keys, "");
        let key = &keys[0].0;
        let mut allowed = 0u64;
        let mut refusal = None;
        'minutes: for minute in 0..=11u64 {
            for i in 0..=100u64 {
                let r = app
                    .get("/api/catalog/brands")
                    .header("x-api-key", key)
                    .await;
                if minute == 11 && i == 0 {
                    // 1100 spent in 11 minutes: the hour, with 82 left, is now the tightest
                    assert_eq!(rate(&r).0, 1000, "{name}: the hour's headers");
                    assert_eq!(rate(&r).1, 82, "{name}");
                }
                if r.status == 429 {
                    if i < 100 {
                        refusal = Some((minute, i, r));
                        break 'minutes;
                    }
                    // the minute's own 100 are spent: the next minute
                    assert_eq!(
                        rate(&r).0,
                        100,
                        "{name}: minute {minute}: the minute refuses"
                    );
                    break;
                }
                assert_eq!(r.status, 200, "{name}");
                allowed += 1;
            }
            clock.advance(Duration::from_secs(60));
        }
        let (minute, i, r) = refusal.expect("the hour refuses at last");
        assert_eq!(
            minute, 11,
            "{name}: ten minutes at the minute's pace fit in the hour"
        );
        // 1000 at once, then one every 3.6 s: 660 s bring 183 more
        assert_eq!(allowed, 1000 + 660 * 10 / 36, "{name}");
        assert!(i < 100, "{name}: the minute still had room");
        let (limit, remaining, reset) = rate(&r);
        assert_eq!((limit, remaining), (1000, 0), "{name}: the hour's headers");
        let retry: u64 = header(&r, "retry-after").parse().expect("seconds");
        assert_eq!(reset, retry, "{name}");
        assert_eq!(retry, 3, "{name}: the next hourly unit in 2.4 s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_the_counts_through_redis() {
    let Some(url) = testkit::redis_url() else {
        return;
    };
    let clock = ManualClock::new();
    let keys = api_keys(1);
    let gateways: Vec<TestApp> = {
        let mut v = Vec::new();
        for _ in 0..2 {
            let l = Limiter::redis(&url).await.expect("redis");
            v.push(gateway(
                l.with_clock(clock.clone()),
                default_plan(),
                &keys,
                "",
            ));
        }
        v
    };
    let key = &keys[0].0;
    for i in 0..100u64 {
        let r = gateways[(i % 2) as usize]
            .get("/api/catalog/brands")
            .header("x-api-key", key)
            .await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(rate(&r).1, 99 - i, "both gateways count down one counter");
    }
    for g in &gateways {
        let r = g.get("/api/catalog/brands").header("x-api-key", key).await;
        assert_eq!(r.status, 429, "the 101st, on either gateway");
        assert_eq!(rate(&r).1, 0);
    }
    // a gateway counting in its own process knows nothing of them
    let alone = gateway(
        Limiter::in_process().with_clock(clock.clone()),
        default_plan(),
        &keys,
        "",
    );
    let r = alone
        .get("/api/catalog/brands")
        .header("x-api-key", key)
        .await;
    assert_eq!((r.status.as_u16(), rate(&r).1), (200, 99));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_with_its_own_quota_refuses_at_it_while_other_routes_pass() {
    let clock = ManualClock::new();
    for (name, limiter) in limiters(&clock).await {
        let keys = api_keys(2);
        let mut s = platform::config::Settings::defaults().rate_limit;
        assert_eq!(s.routes().expect("defaults"), vec![], "none by default");
        s.routes = "/api/checkout=20/min, /api/catalog=600/min".into();
        let mut limits = default_plan();
        limits.routes = s.routes().expect("routes");
        let app = gateway(limiter, limits, &keys, "");
        let (a, b) = (&keys[0].0, &keys[1].0);
        for i in 0..20u64 {
            let r = app.get("/api/checkout/start").header("x-api-key", a).await;
            assert_eq!(r.status, 200, "{name}: checkout {i}");
            assert_eq!(rate(&r).0, 20, "{name}: the route's quota is the tightest");
            assert_eq!(rate(&r).1, 19 - i, "{name}");
            assert_eq!(
                header(&r, "ratelimit-policy"),
                "20;w=60, 100;w=60, 1000;w=3600"
            );
        }
        let r = app.get("/api/checkout/start").header("x-api-key", a).await;
        assert_eq!(r.status, 429, "{name}: the 21st checkout");
        assert_eq!(rate(&r).0, 20, "{name}");
        assert_eq!(rate(&r).1, 0, "{name}");
        // the same key elsewhere: its default plan counted the 20 checkouts (not the refusal)
        let r = app.get("/api/catalog/brands").header("x-api-key", a).await;
        assert_eq!(r.status, 200, "{name}: the catalogue still answers");
        assert_eq!(rate(&r).0, 100, "{name}: the minute of the plan");
        assert_eq!(rate(&r).1, 100 - 20 - 1, "{name}");
        assert_eq!(
            header(&r, "ratelimit-policy"),
            "600;w=60, 100;w=60, 1000;w=3600"
        );
        // another consumer's checkouts are its own
        let r = app.get("/api/checkout/start").header("x-api-key", b).await;
        assert_eq!(r.status, 200, "{name}: another key");
        assert_eq!(rate(&r).1, 19, "{name}");
        // the route's minute passes: checkouts again
        clock.advance(Duration::from_secs(60));
        let r = app.get("/api/checkout/start").header("x-api-key", a).await;
        assert_eq!(r.status, 200, "{name}: a minute later");
    }
}

#[test]
fn the_longest_route_prefix_wins_on_whole_segments() {
    let mut s = platform::config::Settings::defaults().rate_limit;
    s.routes = "/api=1000/min, /api/checkout/=20/min, /api/checkout=200/h".into();
    let limits = EdgeLimits {
        routes: s.routes().expect("routes"),
        ..Default::default()
    };
    let route = |p| {
        limits
            .route(p)
            .map(|(prefix, q)| (prefix.as_str(), q.len()))
    };
    assert_eq!(route("/api/checkout"), Some(("/api/checkout", 2)));
    assert_eq!(route("/api/checkout/start"), Some(("/api/checkout", 2)));
    assert_eq!(route("/api/checkoutx"), Some(("/api", 1)));
    assert_eq!(route("/apix"), None);
    assert_eq!(route("/fr"), None);
}

/// (peer, X-Forwarded-For lines) → the client address the routes see.
async fn client_seen(app: &TestApp, peer: &str, xff: &[&str]) -> String {
    let mut call = app
        .get("/api/whoami")
        .from_ip(peer.parse::<IpAddr>().expect("ip"));
    for line in xff {
        call = call.header("x-forwarded-for", line);
    }
    let r = call.await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let clock = ManualClock::new();
    let limiter = Limiter::in_process().with_clock(clock.clone());
    let app = gateway(
        limiter.clone(),
        default_plan(),
        &[],
        "10.0.0.0/24, 192.0.2.7",
    );
    // from an untrusted peer, the header is ignored
    assert_eq!(
        client_seen(&app, "203.0.113.9", &["198.51.100.1"]).await,
        "203.0.113.9"
    );
    // from a trusted proxy, the right-most address that is not a trusted proxy
    assert_eq!(
        client_seen(&app, "10.0.0.1", &["198.51.100.1"]).await,
        "198.51.100.1"
    );
    assert_eq!(
        client_seen(&app, "10.0.0.1", &["198.51.100.1, 192.0.2.7"]).await,
        "198.51.100.1",
        "through two proxies"
    );
    assert_eq!(
        client_seen(&app, "10.0.0.1", &["198.51.100.1", "192.0.2.7:4711"]).await,
        "198.51.100.1",
        "two header lines, a port"
    );
    // a client cannot pass for another trusted proxy, nor for anyone, by writing the header:
    // what the first trusted proxy appended (its peer) is the client
    assert_eq!(
        client_seen(&app, "10.0.0.1", &["10.0.0.2, 198.51.100.1"]).await,
        "198.51.100.1"
    );
    assert_eq!(
        client_seen(&app, "10.0.0.1", &["203.0.113.50, 10.0.0.3, 198.51.100.1"]).await,
        "198.51.100.1"
    );
    // a proxy's own request (no header, or only proxies): the left-most proxy
    assert_eq!(client_seen(&app, "10.0.0.1", &[]).await, "10.0.0.1");
    assert_eq!(
        client_seen(&app, "10.0.0.1", &["10.0.0.2"]).await,
        "10.0.0.2"
    );
    // a hop that is no address ends the walk at the last good one
    assert_eq!(
        client_seen(&app, "10.0.0.1", &["198.51.100.1, unknown"]).await,
        "10.0.0.1"
    );
    // with no trusted proxy (the default), the header is never believed
    let plain = gateway(limiter, default_plan(), &[], "");
    assert_eq!(
        client_seen(&plain, "10.0.0.1", &["198.51.100.1"]).await,
        "10.0.0.1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_limits_count_the_forwarded_client() {
    let clock = ManualClock::new();
    for (name, limiter) in limiters(&clock).await {
        let mut limits = default_plan();
        limits.per_ip = vec![Quota::per_minute(2)];
        let app = gateway(limiter, limits, &[], "10.0.0.0/24");
        // addresses of the documentation range, unique per run (Redis keeps its counters)
        let n = uuid::Uuid::new_v4().as_u128() >> 64 << 1;
        let a = std::net::Ipv6Addr::from((0x2001_0db8_u128 << 96) | n).to_string();
        let b = std::net::Ipv6Addr::from((0x2001_0db8_u128 << 96) | n | 1).to_string();
        let via_proxy = |client: &str| {
            app.get("/api/catalog/brands")
                .from_ip([10, 0, 0, 1].into())
                .header("x-forwarded-for", client)
        };
        for _ in 0..2 {
            assert_eq!(via_proxy(&a).await.status, 200, "{name}");
        }
        let r = via_proxy(&a).await;
        assert_eq!(r.status, 429, "{name}: the third from {a}");
        assert_eq!(rate(&r).0, 2);
        let r = via_proxy(&b).await;
        assert_eq!(
            r.status, 200,
            "{name}: {b}, behind the same proxy, is another client"
        );
        assert_eq!(rate(&r), (2, 1, 30));
    }
}
