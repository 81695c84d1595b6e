//! TLS to the backing services, against this machine's real servers with TLS turned on by
//! `.ci/tls-services` (a test CA, PostgreSQL's `ssl = on`, a TLS-only Redis and a TLS-only
//! RabbitMQ node): each connects when its server's CA is trusted, refuses the server when it is
//! not (with a message naming the setting), and never falls back to clear text.
//!
//! The environment: `COMPTOIR_TEST_TLS_CA_FILE` (the CA that signed the servers),
//! `COMPTOIR_TEST_TLS_OTHER_CA_FILE` (a CA that signed nothing), `COMPTOIR_TEST_TLS_SERVER_CERT_FILE`
//! / `_KEY_FILE` (for the HTTPS server of the outbound test), `COMPTOIR_TEST_POSTGRES_TLS_URL`,
//! `COMPTOIR_TEST_REDIS_TLS_URL`, `COMPTOIR_TEST_RABBITMQ_TLS_URL`. Without them the tests skip
//! with the reason printed; under `COMPTOIR_TEST_STRICT=1` they fail.

use super::{DEADLINE, Inbox, event, unique_prefix};
use platform::bus::EventBus;
use platform::db::{Db, DbError, DbTarget};
use platform::rabbit::RabbitBus;
use platform::tls::TlsClient;
use std::path::PathBuf;
use std::time::Duration;

fn var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                !testkit::strict(),
                "{}=1 but {name} is not set (eval \"$(.ci/tls-services)\"): the TLS tests cannot run",
                testkit::STRICT_ENV
            );
            eprintln!("skipping a TLS test: {name} is not set (see .ci/tls-services)");
            None
        }
    }
}

struct Cas {
    right: TlsClient,
    right_file: PathBuf,
    other: TlsClient,
    other_file: PathBuf,
}

fn cas() -> Option<Cas> {
    let right_file = PathBuf::from(var("COMPTOIR_TEST_TLS_CA_FILE")?);
    let other_file = PathBuf::from(var("COMPTOIR_TEST_TLS_OTHER_CA_FILE")?);
    Some(Cas {
        right: TlsClient::with_ca_file(&right_file).expect("the test CA loads"),
        other: TlsClient::with_ca_file(&other_file).expect("the other CA loads"),
        right_file,
        other_file,
    })
}

const DB_SETTING: &str = "catalog.database_url";

fn with_query(url: &str, q: &str) -> String {
    format!("{url}{}{q}", if url.contains('?') { '&' } else { '?' })
}

async fn pg(url: &str, tls: &TlsClient) -> Result<Db, DbError> {
    let target = DbTarget::Postgres {
        url: url.to_string(),
        schema: "public".into(),
    };
    Db::connect_as(&target, 1, DB_SETTING, tls).await
}

async fn session_is_tls(db: &Db) -> bool {
    let Db::Pg(p) = db else {
        panic!("a PostgreSQL pool")
    };
    sqlx::query_scalar::<_, bool>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(p)
        .await
        .expect("pg_stat_ssl")
}

fn assert_refused(message: &str, setting: &str) {
    assert!(message.contains(setting), "names {setting}: {message}");
    assert!(
        message.contains("tls.ca_file"),
        "says how to trust the server: {message}"
    );
}

#[tokio::test]
async fn postgres_sslmode_require_is_a_tls_session() {
    let (Some(_), Some(url)) = (cas(), var("COMPTOIR_TEST_POSTGRES_TLS_URL")) else {
        return;
    };
    let db = pg(
        &with_query(&url, "sslmode=require"),
        &TlsClient::public_roots(),
    )
    .await
    .expect("sslmode=require connects");
    assert!(session_is_tls(&db).await, "the session is encrypted");
    db.close().await;
}

#[tokio::test]
async fn postgres_verify_full_needs_the_servers_ca() {
    let (Some(c), Some(url)) = (cas(), var("COMPTOIR_TEST_POSTGRES_TLS_URL")) else {
        return;
    };
    let full = with_query(&url, "sslmode=verify-full");
    // the CA from tls.ca_file
    let db = pg(&full, &c.right)
        .await
        .expect("verify-full with tls.ca_file");
    assert!(session_is_tls(&db).await);
    db.close().await;
    // the CA from the URL's sslrootcert
    let own = with_query(&full, &format!("sslrootcert={}", c.right_file.display()));
    let db = pg(&own, &TlsClient::public_roots())
        .await
        .expect("verify-full with sslrootcert");
    assert!(session_is_tls(&db).await);
    db.close().await;

    // another CA, or Mozilla's roots alone: refused, naming the setting
    for tls in [&c.other, &TlsClient::public_roots()] {
        let e = pg(&full, tls)
            .await
            .expect_err("a certificate that does not verify");
        assert!(matches!(e, DbError::Tls { .. }), "{e}");
        assert_refused(&e.to_string(), DB_SETTING);
    }
    let wrong = with_query(&full, &format!("sslrootcert={}", c.other_file.display()));
    let e = pg(&wrong, &c.right)
        .await
        .expect_err("the URL's sslrootcert wins");
    assert_refused(&e.to_string(), DB_SETTING);
    // libpq: `require` with a root certificate verifies the chain
    let required = with_query(
        &url,
        &format!("sslmode=require&sslrootcert={}", c.other_file.display()),
    );
    let e = pg(&required, &c.right)
        .await
        .expect_err("require + sslrootcert verifies");
    assert_refused(&e.to_string(), DB_SETTING);
}

/// A server that answers PostgreSQL's SSLRequest with `N` (no TLS): `require` must not go on in
/// clear text.
#[tokio::test]
async fn postgres_require_never_falls_back_to_clear_text() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut req = [0u8; 8];
        s.read_exact(&mut req).await.expect("SSLRequest");
        // length 8, code 80877103
        assert_eq!(
            req,
            [0, 0, 0, 8, 4, 210, 22, 47],
            "the client asked for TLS first"
        );
        s.write_all(b"N").await.expect("answer");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        rest
    });
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/x?sslmode=require",
        addr.port()
    );
    let e = pg(&url, &TlsClient::public_roots())
        .await
        .expect_err("no TLS, no connection");
    assert_refused(&e.to_string(), DB_SETTING);
    let after = server.await.expect("server");
    assert!(
        after.is_empty(),
        "nothing was sent in clear after the refusal: {after:?}"
    );
}

const REDIS_SETTING: &str = "rate_limit.redis_url";

#[tokio::test]
async fn rediss_verifies_the_server() {
    let (Some(c), Some(url)) = (cas(), var("COMPTOIR_TEST_REDIS_TLS_URL")) else {
        return;
    };
    // a round trip through the client our code builds
    let client = c.right.redis_client(&url, REDIS_SETTING).expect("client");
    let mut conn = tokio::time::timeout(DEADLINE, client.get_multiplexed_async_connection())
        .await
        .expect("in time")
        .expect("rediss:// with the CA connects");
    let key = format!("comptoir-tls-test:{}", unique_prefix());
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("crêpe")
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .expect("SET");
    let v: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert_eq!(v, "crêpe");
    // the rate limiter over it
    let limiter = platform::ratelimit::Limiter::redis_with(&url, &c.right)
        .await
        .expect("the limiter connects over TLS");
    assert!(limiter.is_shared());

    for tls in [&c.other, &TlsClient::public_roots()] {
        let e = platform::ratelimit::Limiter::redis_with(&url, tls)
            .await
            .err()
            .expect("a server whose certificate does not verify is refused");
        assert_refused(&e, REDIS_SETTING);
    }
    let e = c
        .right
        .redis_client(&format!("{url}#insecure"), REDIS_SETTING)
        .expect_err("#insecure is refused");
    assert!(e.contains(REDIS_SETTING), "{e}");
}

#[tokio::test]
async fn rediss_to_a_clear_text_server_fails() {
    let (Some(c), Some(plain)) = (cas(), testkit::redis_url()) else {
        return;
    };
    let url = plain.replacen("redis://", "rediss://", 1);
    let e = platform::ratelimit::Limiter::redis_with(&url, &c.right)
        .await
        .err()
        .expect("rediss:// to a clear-text port does not connect");
    assert!(e.contains(REDIS_SETTING), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_publishes_and_consumes_through_the_bus() {
    let (Some(c), Some(url)) = (cas(), var("COMPTOIR_TEST_RABBITMQ_TLS_URL")) else {
        return;
    };
    let prefix = unique_prefix();
    let bus = RabbitBus::connect_with(&url, &prefix, &c.right)
        .await
        .expect("amqps:// with the CA connects");
    let inbox = Inbox::default();
    bus.subscribe("tls", &["#"], inbox.handler())
        .await
        .expect("subscribe");
    let events = vec![event("order.placed", 1), event("order.paid", 2)];
    bus.publish(&events).await.expect("the broker confirms");
    inbox.wait_for("both events over TLS", events.len()).await;
    bus.close().await;
    platform::rabbit::delete_topology_with(&url, &prefix, &["tls"], &c.right)
        .await
        .expect("delete the test topology");

    for tls in [&c.other, &TlsClient::public_roots()] {
        let e = RabbitBus::connect_with(&url, &unique_prefix(), tls)
            .await
            .err()
            .expect("a broker whose certificate does not verify is refused");
        assert_refused(&e.to_string(), "bus.rabbitmq_url");
    }
}

#[tokio::test]
async fn amqps_to_a_clear_text_listener_fails() {
    let (Some(c), Some(plain)) = (cas(), testkit::rabbitmq_url()) else {
        return;
    };
    let url = plain.replacen("amqp://", "amqps://", 1);
    let e = tokio::time::timeout(
        DEADLINE,
        RabbitBus::connect_with(&url, &unique_prefix(), &c.right),
    )
    .await
    .expect("fails in time")
    .err()
    .expect("amqps:// to the clear-text listener does not connect");
    assert!(e.to_string().contains("bus.rabbitmq_url"), "{e}");
}

/// An HTTPS server with the test certificate, answering a JWKS document to every request.
async fn https_jwks_server() -> Option<std::net::SocketAddr> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let files = platform::http::tls::TlsFiles {
        cert: PathBuf::from(var("COMPTOIR_TEST_TLS_SERVER_CERT_FILE")?),
        key: PathBuf::from(var("COMPTOIR_TEST_TLS_SERVER_KEY_FILE")?),
    };
    let config = platform::http::tls::load(&files).expect("the server certificate loads");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = r#"{"keys":[]}"#;
                let res = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(res.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Some(addr)
}

#[tokio::test]
async fn outbound_https_trusts_tls_ca_file_and_refuses_without_it() {
    let Some(c) = cas() else {
        return;
    };
    let Some(addr) = https_jwks_server().await else {
        return;
    };
    let url = format!("https://localhost:{}/jwks", addr.port());
    let client = platform::http::client::JsonClient::with_tls(
        Duration::from_secs(10),
        &c.right,
        "auth.oidc_jwks_url",
    );
    let v = client.get(&url).await.expect("the JWKS over HTTPS");
    assert_eq!(v, serde_json::json!({ "keys": [] }));

    for tls in [&c.other, &TlsClient::public_roots()] {
        let client = platform::http::client::JsonClient::with_tls(
            Duration::from_secs(10),
            tls,
            "auth.oidc_jwks_url",
        );
        let e = client
            .get(&url)
            .await
            .expect_err("a certificate that does not verify");
        assert_refused(&e, "auth.oidc_jwks_url");
    }
    // an https:// URL to a clear-text server fails instead of going on in clear
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = plain.local_addr().expect("addr").port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = plain.accept().await {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .await;
        }
    });
    let client = platform::http::client::JsonClient::with_tls(
        Duration::from_secs(10),
        &c.right,
        "auth.oidc_jwks_url",
    );
    client
        .get(&format!("https://localhost:{port}/jwks"))
        .await
        .expect_err("https:// to a clear-text server");
}

#[test]
fn the_ca_file_setting_is_checked_at_start() {
    let dir = std::env::temp_dir().join(format!("comptoir-tls-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("bad.pem");
    std::fs::write(&bad, "not a certificate\n").expect("write");
    let load = |path: &str| {
        platform::config::Settings::load(platform::config::Sources {
            file: None,
            env: [("COMPTOIR_TLS__CA_FILE".to_string(), path.to_string())].into(),
        })
    };
    for path in [
        dir.join("missing.pem").display().to_string(),
        bad.display().to_string(),
    ] {
        let e = load(&path).expect_err(&path);
        assert_eq!(e.setting, "tls.ca_file", "{e}");
    }
    if let Some(ca) = std::env::var("COMPTOIR_TEST_TLS_CA_FILE")
        .ok()
        .filter(|v| !v.is_empty())
    {
        let s = load(&ca).expect("a PEM CA bundle");
        assert_eq!(s.tls.ca_file, ca);
        let tls = TlsClient::from_settings(&s.tls).expect("trust store");
        assert_eq!(tls.ca_file(), Some(std::path::Path::new(&ca)));
    }
    std::fs::remove_dir_all(&dir).ok();
}
