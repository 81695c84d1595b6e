//! The gateway's forwarding against real HTTP servers on loopback: which requests go to
//! another instance when one fails (and which never do), the answer when no instance is left,
//! the body limit, and the access log line of a forwarded request.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::any;
use gateway::{Balance, Forwarder, HealthRules, RetryBudget, Service, Upstream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// An instance that answers `status` to everything and counts what it received.
async fn instance(status: StatusCode) -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let app = Router::new().fallback(any(move || {
        let s = s.clone();
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            (status, "answer")
        }
    }));
    (testkit::http::serve(app).await, seen)
}

/// An address that refuses connections.
fn refusing() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    format!("http://{a}")
}

fn gateway(urls: &[&str], balance: Balance, max_body: usize) -> (Router, Arc<Service>) {
    let service = Arc::new(
        Service::parse(
            "cart",
            "peers.cart_url",
            &urls.join(", "),
            balance,
            HealthRules::default(),
        )
        .expect("instances"),
    );
    let forwarder = Arc::new(Forwarder {
        client: gateway::client(),
        identity: None,
        budget: RetryBudget::new(1.0, 100.0),
        timeouts: vec![],
        default_timeout: Duration::from_secs(5),
        max_body,
    });
    let up = Upstream {
        prefix: "/api/carts",
        route_label: "/api/carts/*",
        service: service.clone(),
    };
    let opts = platform::http::EdgeOptions {
        request_timeout: Duration::from_secs(10),
        max_body_bytes: max_body,
        cors: None,
    };
    let r = platform::http::with_common_layers(gateway::router(forwarder, &[up], None), &opts);
    (r, service)
}

fn req(method: &str, key: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri("/api/carts/1")
        .header("content-type", "application/json");
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    b.body(Body::from(body.to_string())).expect("request")
}

#[tokio::test]
async fn a_refused_connection_goes_elsewhere_whatever_the_method() {
    let (up, seen) = instance(StatusCode::OK).await;
    let dead = refusing();
    // round robin: the dead one is tried first on every other request
    let (gw, _) = gateway(&[&dead, &up], Balance::RoundRobin, 1 << 20);
    for _ in 0..4 {
        let r = gw
            .clone()
            .oneshot(req("POST", None, "{}"))
            .await
            .expect("answer");
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "never reached the dead one: sent elsewhere"
        );
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        4,
        "each request reached the live one once"
    );
}

#[tokio::test]
async fn a_503_is_retried_only_when_the_request_may_be_repeated() {
    let (sick, sick_seen) = instance(StatusCode::SERVICE_UNAVAILABLE).await;
    let (up, seen) = instance(StatusCode::OK).await;
    let (gw, _) = gateway(&[&sick, &up], Balance::RoundRobin, 1 << 20);
    // the first request of the round goes to the sick one
    let r = gw
        .clone()
        .oneshot(req("POST", None, "{}"))
        .await
        .expect("answer");
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a POST without a key: not repeated"
    );
    assert_eq!(
        (
            sick_seen.load(Ordering::SeqCst),
            seen.load(Ordering::SeqCst)
        ),
        (1, 0)
    );
    // a keyed one and a read are sent to the other instance
    let _ = gw.clone().oneshot(req("GET", None, "")).await; // the turn moves to `up`
    let before = seen.load(Ordering::SeqCst);
    let r = gw
        .clone()
        .oneshot(req("POST", Some("k-1"), "{}"))
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::OK);
    let r = gw
        .clone()
        .oneshot(req("GET", None, ""))
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(seen.load(Ordering::SeqCst) >= before + 2);
}

#[tokio::test]
async fn no_instance_left_is_a_503_problem_with_retry_after() {
    let (up, seen) = instance(StatusCode::OK).await;
    let (gw, service) = gateway(&[&up], Balance::LeastConnections, 1 << 20);
    for i in service.pool.instances() {
        for _ in 0..3 {
            i.checked(false, &service.pool.rules);
        }
    }
    let r = gw.oneshot(req("GET", None, "")).await.expect("answer");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get("retry-after").is_some());
    let body = axum::body::to_bytes(r.into_body(), 1 << 16)
        .await
        .expect("body");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("problem");
    assert_eq!(v["code"], "upstream_unavailable");
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_any_instance_sees_it() {
    let (up, seen) = instance(StatusCode::OK).await;
    let (gw, _) = gateway(&[&up], Balance::LeastConnections, 1024);
    let r = gw
        .oneshot(req("POST", Some("k"), &"x".repeat(2048)))
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

/// Captures what the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_forwarded_request_has_an_access_log_line() {
    let out = Captured::default();
    let w = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || w.clone())
        .finish();
    // the process's subscriber (no other test of this binary sets one): a thread-local one can
    // miss events whose call sites were registered before it
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let (up, _) = instance(StatusCode::OK).await;
    let (gw, _) = gateway(&[&up], Balance::LeastConnections, 1 << 20);
    let r = gw
        .oneshot(
            Request::get("/api/carts/1")
                .header("x-request-id", "req-access-1")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::OK);
    let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf8");
    let line = text
        .lines()
        .find(|l| l.contains("req-access-1") && l.contains("status=200"))
        .unwrap_or_else(|| panic!("no access line in {text}"));
    let instance = up.trim_start_matches("http://");
    for part in [
        "upstream=\"cart\"".to_string(),
        format!("instance={instance}"),
        "consumer=anonymous".to_string(),
        "route=/api/carts/*".to_string(),
    ] {
        assert!(line.contains(&part), "{part} in {line}");
    }
}

// ---- the upstream client: kept connections ----

/// An instance that counts the connections it accepts; `close` makes it end each connection
/// after its answer (`Connection: close`).
async fn counting_instance(close: bool) -> (String, Arc<AtomicUsize>) {
    use axum::serve::ListenerExt;
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    let app = Router::new().fallback(any(move || async move {
        let mut res = axum::response::Response::new(Body::from("x".repeat(20_000)));
        if close {
            res.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        res
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let listener = listener.tap_io(move |_| {
        a.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr.to_string(), accepted)
}

fn get(authority: &str) -> Request<http_body_util::Full<axum::body::Bytes>> {
    Request::get("/x")
        .header("host", authority)
        .body(http_body_util::Full::default())
        .expect("request")
}

#[tokio::test]
async fn a_connection_is_kept_once_its_answer_is_read_and_closed_when_it_is_not() {
    use http_body_util::BodyExt;
    let (authority, accepted) = counting_instance(false).await;
    let client = gateway::client();
    for _ in 0..3 {
        let res = client
            .send(&authority, get(&authority))
            .await
            .expect("answer");
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(body.len(), 20_000);
        assert_eq!(
            client.idle_count(&authority),
            1,
            "kept for the next request"
        );
    }
    // a server stops reading a body once it says it has ended, without asking for more: the
    // connection is free as soon as the last frame is out
    let mut body = client
        .send(&authority, get(&authority))
        .await
        .expect("answer")
        .into_body();
    while !hyper::body::Body::is_end_stream(&body) {
        body.frame().await.expect("a frame").expect("frame");
    }
    assert_eq!(client.idle_count(&authority), 1, "kept at the last frame");
    drop(body);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "four requests, one connection"
    );
    // an answer dropped before its end: that connection is never handed out again
    let res = client
        .send(&authority, get(&authority))
        .await
        .expect("answer");
    assert_eq!(client.idle_count(&authority), 0);
    drop(res);
    assert_eq!(client.idle_count(&authority), 0);
    let res = client
        .send(&authority, get(&authority))
        .await
        .expect("answer");
    res.into_body().collect().await.expect("body");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "a new connection after the cut one"
    );
}

#[tokio::test]
async fn a_connection_the_instance_closed_is_replaced_without_failing_the_request() {
    use http_body_util::BodyExt;
    let (authority, accepted) = counting_instance(true).await;
    let client = gateway::client();
    for n in 1..=3 {
        let res = client
            .send(&authority, get(&authority))
            .await
            .expect("answer");
        assert_eq!(res.status(), StatusCode::OK);
        res.into_body().collect().await.expect("body");
        assert_eq!(accepted.load(Ordering::SeqCst), n);
    }
}

#[tokio::test]
async fn an_instance_that_refuses_connections_is_a_connect_error() {
    let url = refusing();
    let authority = url.trim_start_matches("http://").to_string();
    let client = gateway::client();
    match client.send(&authority, get(&authority)).await {
        Err(gateway::client::SendError::Connect(_)) => {}
        Err(e) => panic!("expected a connect error, got {e}"),
        Ok(_) => panic!("expected a connect error, got an answer"),
    }
}
