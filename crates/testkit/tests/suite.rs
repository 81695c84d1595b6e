//! The harness itself: what the suites rely on it for.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use contracts::catalog::PriceBook;
use platform::caller::Caller;
use serde_json::{Value, json};
use testkit::prices::FakePrices;
use testkit::principal::{self, PrincipalExt};
use testkit::{TestApp, TestDb};

/// A service that says who called and what it was sent.
fn echo() -> TestApp {
    let service = Router::new()
        .route(
            "/who",
            get(|c: Caller| async move { axum::Json(json!(c.principal())) }),
        )
        .route(
            "/echo",
            post(|h: axum::http::HeaderMap, body: String| async move {
                let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(String::from);
                axum::Json(json!({
                    "body": body,
                    "content_type": header("content-type"),
                    "idempotency_key": header("idempotency-key"),
                    "if_match": header("if-match"),
                }))
            }),
        );
    TestApp::new(service).with_common_layers(1024)
}

#[tokio::test]
async fn the_principal_arrives_as_the_edge_signed_it() {
    let app = echo();
    let manager = principal::store_manager("rennes").with_subject("u-42");
    let r = app.get("/who").as_(&manager).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.body["subject"], "u-42");
    assert_eq!(r.body["role"], "store_manager");
    assert_eq!(r.body["store"], "rennes");

    let r = app.get("/who").await;
    assert_eq!((r.status, &r.body), (StatusCode::OK, &Value::Null));

    let r = app.get("/who").forged_as(&principal::head_office()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "invalid_identity")
    );

    // another app's key does not verify here either
    let other = echo();
    let signed_elsewhere = other.get("/who").as_(&manager).build();
    let r = app.send(signed_elsewhere).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bodies_and_headers_are_sent_and_answers_read() {
    let app = echo();
    let r = app
        .post("/echo")
        .json(&json!({"a": 1}))
        .idempotency_key("k-1")
        .if_match("\"v3\"")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["body"], r#"{"a":1}"#);
    assert_eq!(r.body["content_type"], "application/json");
    assert_eq!(r.body["idempotency_key"], "k-1");
    assert_eq!(r.body["if_match"], "\"v3\"");
    assert!(r.header("x-request-id").is_some(), "the common layers ran");

    let r = app.get("/nowhere").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "route_not_found")
    );
    assert!(r.text().contains("route_not_found"));
}

#[tokio::test]
async fn a_served_app_answers_on_its_base_url() {
    let base = testkit::http::serve(Router::new().route("/ping", get(|| async { "pong" }))).await;
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("pong"), "{answer}");
}

/// No tables: the loop is what is under test.
static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;
const NOTHING: platform::db::MigrationSet = platform::db::MigrationSet {
    postgres: &NO_MIGRATIONS,
    sqlite: &NO_MIGRATIONS,
};

#[tokio::test]
async fn each_backend_removes_the_database_of_a_failed_test() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let run = tokio::spawn(async move {
        testkit::each_backend(NOTHING, move |t: &TestDb| {
            let s = s.clone();
            Box::pin(async move {
                if let platform::db::DbTarget::SqliteFile { path, .. } = &t.target {
                    s.lock().expect("lock").push(path.clone());
                }
                panic!("the test body fails");
            })
        })
        .await
    })
    .await;
    assert!(run.is_err(), "the failure is not swallowed");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1, "stopped at the first failure");
    assert!(!seen[0].exists(), "{}: removed", seen[0].display());
}

#[tokio::test]
async fn the_fake_price_book_answers_what_it_was_told() {
    let book = FakePrices::eur([("A", 1000)]);
    book.set("B", 500, "CHF", false);
    let skus = ["A".to_string(), "B".to_string(), "C".to_string()];
    let got = book.prices(&skus).await.expect("prices");
    assert_eq!(got.len(), 2, "unknown SKUs are absent");
    assert_eq!(
        (
            got["A"].unit_price.minor(),
            got["A"].unit_price.currency().code()
        ),
        (1000, "EUR")
    );
    assert_eq!(got["A"].name, "Article A");
    assert!(!got["B"].active);
    book.remove("A");
    assert!(!book.prices(&skus).await.expect("prices").contains_key("A"));
}

#[test]
fn principals_have_what_their_role_needs() {
    use platform::authz::{PrincipalKind, Role};
    assert_eq!(principal::customer("alice").subject, "alice");
    assert_eq!(principal::clerk("brest").store.as_deref(), Some("brest"));
    assert_eq!(principal::head_office().role, Role::HeadOffice);
    let key = principal::integrator("rennes", &["inventory:read"]);
    assert_eq!(key.kind, PrincipalKind::ApiKey);
    assert_eq!(key.scopes, vec!["inventory:read".to_string()]);
    let p = principal::parse("store_manager:quimper");
    assert_eq!(
        (p.role, p.store.as_deref()),
        (Role::StoreManager, Some("quimper"))
    );
}
