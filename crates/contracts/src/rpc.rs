//! The wire protocol of calls between services.
//!
//! A contract call is an HTTP request to the peer's `/internal/<service>/...` routes:
//! - **signed**: the `x-comptoir-call` header carries the caller's name and an HMAC over the
//!   method, the path and the time under the installation's internal secret
//!   ([`platform::caller::InternalKey::sign_call`]); the peer's guard
//!   ([`platform::caller::internal_calls_only`]) refuses anything else. The gateway never
//!   forwards `/internal/...`;
//! - **answered** as JSON: `2xx` with the value, or a status with the contract's error
//!   ([`WireError`]) as the body for an answer of the domain (out of stock, hold lost, declined
//!   request). A `5xx`, a timeout or a refused connection means "not known": the caller retries
//!   or treats it as its error's `unavailable` case;
//! - **traced**: the request id of the request being served goes along (`x-request-id`), so
//!   one id follows a checkout through every process's logs;
//! - **bounded**: each attempt has a timeout; calls marked [`Retry::Safe`] (every call of our
//!   contracts is idempotent on an id or a key the caller chose) are retried a bounded number of
//!   times with exponential back-off and full jitter, and only on "not known" outcomes.
//!
//! Metrics per peer: `comptoir_peer_calls_total{peer,outcome}`,
//! `comptoir_peer_call_duration_seconds{peer}`, `comptoir_peer_retries_total{peer}`.

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::caller::{CALL_HEADER, InternalKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A contract's error, as it crosses the wire.
pub trait WireError: Serialize + DeserializeOwned + Send + 'static {
    /// The status an internal route answers with for this error.
    fn status(&self) -> u16;
    /// The peer could not be asked, or did not answer in time: the outcome is not known.
    fn unavailable(detail: String) -> Self;
}

/// Renders a contract call's result as the answer of an internal route.
pub fn answer<T: Serialize, E: WireError>(r: Result<T, E>) -> Response {
    let (status, body) = match r {
        Ok(v) => (StatusCode::OK, serde_json::to_vec(&v)),
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            serde_json::to_vec(&e),
        ),
    };
    match body {
        Ok(b) => (status, [(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => platform::ApiError::internal(format!("encoding an internal answer: {e}"))
            .into_response(),
    }
}

/// Whether a call may be sent again when its outcome is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Idempotent (on an id or key the caller chose): sending it twice has one effect.
    Safe,
    /// Not idempotent: one attempt.
    Never,
}

/// How a service calls one peer.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    /// Per attempt, connection included.
    pub timeout: Duration,
    /// Attempts of a [`Retry::Safe`] call whose outcome is not known (1 = no retry).
    pub attempts: u32,
    /// First back-off; doubled each retry, capped at 1 s, fully jittered.
    pub backoff: Duration,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(50),
        }
    }
}

/// Another service, over HTTP.
#[derive(Clone)]
pub struct Peer {
    /// The peer's name (its target), for metrics and messages.
    name: &'static str,
    /// This process's name, signed into every call.
    caller: &'static str,
    /// Its instances, taken in turn (a retry goes to the next one).
    bases: Arc<Vec<String>>,
    turn: Arc<AtomicUsize>,
    key: InternalKey,
    http: reqwest::Client,
    settings: PeerSettings,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.name)
            .field("bases", &self.bases)
            .finish_non_exhaustive()
    }
}

/// Checks a peer URL from the settings: `http://host:port` (no path). `https://` is refused
/// with a clear message rather than sent in clear: this build speaks plain HTTP to peers inside
/// the installation's network (TLS between services is the deployment's: a mesh or sidecar).
pub fn check_url(url: &str) -> Result<String, String> {
    let u = url.trim().trim_end_matches('/');
    if u.starts_with("https://") {
        return Err(format!(
            "`{u}`: this build calls peers over plain HTTP inside the installation; terminate \
             TLS in front of the peer (mesh, sidecar) and give its http:// address"
        ));
    }
    let Some(rest) = u.strip_prefix("http://") else {
        return Err(format!("`{u}` is not an http://host:port URL"));
    };
    if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err(format!("`{u}`: give http://host:port, without a path"));
    }
    Ok(u.to_string())
}

/// The instances a `peers.<service>_url` setting names, each checked by [`check_url`]: one
/// URL, a comma-separated list (a ` weight=N` after a URL is the gateway's; calls between
/// services take the instances in turn), or `dns+http://name:port` (the name, resolved on each
/// new connection).
pub fn instance_urls(setting: &str) -> Result<Vec<String>, String> {
    let urls = setting
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let url = item.split_whitespace().next().unwrap_or_default();
            check_url(url.strip_prefix("dns+").unwrap_or(url))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err("names no instance".into());
    }
    Ok(urls)
}

impl Peer {
    pub fn new(
        name: &'static str,
        caller: &'static str,
        base_url: &str,
        key: InternalKey,
        settings: PeerSettings,
    ) -> Result<Peer, String> {
        let bases = instance_urls(base_url)?;
        let http = platform::tls::current()
            .reqwest_builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(3)))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for {name}: {e}"))?;
        describe_metrics(name);
        Ok(Peer {
            name,
            caller,
            bases: Arc::new(bases),
            turn: Arc::new(AtomicUsize::new(0)),
            key,
            http,
            settings,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The instance for the next attempt.
    fn base(&self) -> &str {
        let k = self.turn.fetch_add(1, Ordering::Relaxed);
        &self.bases[k % self.bases.len()]
    }

    /// Calls `method path` with `body`; decodes a `2xx` as `T` and a domain answer as `E`.
    /// Outcomes not known (transport, timeout, `5xx` without a contract error) are retried when
    /// `retry` is [`Retry::Safe`], then answered as `E::unavailable`.
    pub async fn call<B, T, E>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        retry: Retry,
    ) -> Result<T, E>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
        E: WireError,
    {
        let body = match body.map(serde_json::to_vec).transpose() {
            Ok(b) => b,
            Err(e) => {
                return Err(E::unavailable(format!(
                    "encoding a call to {}: {e}",
                    self.name
                )));
            }
        };
        let attempts = match retry {
            Retry::Safe => self.settings.attempts.max(1),
            Retry::Never => 1,
        };
        let started = Instant::now();
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                metrics::counter!("comptoir_peer_retries_total", "peer" => self.name).increment(1);
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            match self.once::<T, E>(&method, path, body.as_deref()).await {
                Attempt::Answer(r) => {
                    let outcome = if r.is_ok() { "ok" } else { "refused" };
                    self.observe(outcome, started);
                    return r;
                }
                Attempt::NotKnown(why) => {
                    tracing::debug!(peer = self.name, path, attempt, error = %why, "peer call not answered");
                    last = why;
                }
            }
        }
        self.observe("unavailable", started);
        Err(E::unavailable(format!("{}: {last}", self.name)))
    }

    fn observe(&self, outcome: &'static str, started: Instant) {
        // outcomes: ok, refused (the peer answered with the contract's error), unavailable
        metrics::counter!("comptoir_peer_calls_total", "peer" => self.name, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("comptoir_peer_call_duration_seconds", "peer" => self.name)
            .record(started.elapsed().as_secs_f64());
    }

    /// Full jitter: a random wait in [0, min(1 s, backoff × 2^(attempt-1))].
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .settings
            .backoff
            .saturating_mul(1 << (attempt - 1).min(10))
            .min(Duration::from_secs(1));
        let r = (uuid::Uuid::new_v4().as_u128() & 0xffff_ffff) as u64;
        cap.mul_f64(r as f64 / u32::MAX as f64)
    }

    async fn once<T: DeserializeOwned, E: WireError>(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Attempt<T, E> {
        let now = chrono::Utc::now().timestamp();
        let signed = self.key.sign_call(self.caller, method.as_str(), path, now);
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base()))
            .header(CALL_HEADER, signed)
            .header(header::ACCEPT, "application/json");
        if let Some(id) = platform::http::request_id::current() {
            req = req.header(platform::http::request_id::HEADER, id);
        }
        if let Some(b) = body {
            req = req
                .header(header::CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::NotKnown(e.without_url().to_string()),
        };
        let status = res.status();
        let bytes = match res.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::NotKnown(format!("reading the answer: {}", e.without_url())),
        };
        if status.is_success() {
            let src: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return match serde_json::from_slice(src) {
                Ok(v) => Attempt::Answer(Ok(v)),
                Err(e) => Attempt::Answer(Err(E::unavailable(format!(
                    "{} answered {path} with an unreadable body: {e}",
                    self.name
                )))),
            };
        }
        if let Ok(e) = serde_json::from_slice::<E>(&bytes) {
            return Attempt::Answer(Err(e));
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Attempt::NotKnown(format!("answered {status}"));
        }
        // a refusal of the call itself (401: the secrets differ; 404: another version)
        Attempt::Answer(Err(E::unavailable(format!(
            "{} refused {method} {path}: {status} {}",
            self.name,
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        ))))
    }
}

enum Attempt<T, E> {
    Answer(Result<T, E>),
    NotKnown(String),
}

/// Percent-encodes one path segment.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Describes the `comptoir_peer_*` metrics and starts the series of `peer` at 0.
fn describe_metrics(peer: &'static str) {
    metrics::describe_counter!(
        "comptoir_peer_calls_total",
        "Calls to another service's contract, by peer and outcome (ok, refused, unavailable)"
    );
    metrics::describe_histogram!(
        "comptoir_peer_call_duration_seconds",
        metrics::Unit::Seconds,
        "Time of a call to another service's contract, retries included, by peer"
    );
    metrics::describe_counter!(
        "comptoir_peer_retries_total",
        "Calls to another service sent again after no answer (idempotent calls only), by peer"
    );
    for outcome in ["ok", "refused", "unavailable"] {
        metrics::counter!("comptoir_peer_calls_total", "peer" => peer, "outcome" => outcome)
            .increment(0);
    }
    metrics::counter!("comptoir_peer_retries_total", "peer" => peer).increment(0);
    let _ = metrics::histogram!("comptoir_peer_call_duration_seconds", "peer" => peer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_are_plain_http_without_a_path() {
        assert_eq!(
            check_url("http://127.0.0.1:8081/").as_deref(),
            Ok("http://127.0.0.1:8081")
        );
        assert!(check_url("https://inventory:8443").is_err());
        assert!(check_url("inventory:8080").is_err());
        assert!(check_url("http://inventory:8080/api").is_err());
        assert!(check_url("http://").is_err());
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    #[serde(tag = "error", rename_all = "snake_case")]
    enum TestError {
        Refused,
        Unavailable { detail: String },
    }

    impl WireError for TestError {
        fn status(&self) -> u16 {
            match self {
                TestError::Refused => 409,
                TestError::Unavailable { .. } => 503,
            }
        }
        fn unavailable(detail: String) -> Self {
            TestError::Unavailable { detail }
        }
    }

    /// A peer that fails the first `failures` calls with a bare 503, then answers `answer`;
    /// counts the calls and checks each one is signed for its path.
    async fn peer_that_fails(
        failures: usize,
        answer: Result<u32, TestError>,
    ) -> (Peer, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let key = InternalKey::new(b"rpc-test-secret");
        let (c, k) = (calls.clone(), key.clone());
        let answer = std::sync::Arc::new(answer);
        let app = axum::Router::new().route(
            "/internal/x/{id}",
            axum::routing::post(move |req: axum::extract::Request| {
                let (c, k, answer) = (c.clone(), k.clone(), answer.clone());
                async move {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    let signed = req
                        .headers()
                        .get(CALL_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| {
                            k.verify_call(
                                v,
                                "POST",
                                req.uri().path(),
                                chrono::Utc::now().timestamp(),
                            )
                        });
                    assert_eq!(signed.as_deref(), Some("orders"), "signed by the caller");
                    if n < failures {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    match answer.as_ref() {
                        Ok(v) => answer_of::<u32>(Ok(*v)),
                        Err(TestError::Refused) => answer_of::<u32>(Err(TestError::Refused)),
                        Err(e) => panic!("unused {e:?}"),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let peer = Peer::new(
            "x",
            "orders",
            &url,
            key,
            PeerSettings {
                timeout: Duration::from_secs(2),
                attempts: 3,
                backoff: Duration::from_millis(5),
            },
        )
        .expect("peer");
        (peer, calls)
    }

    fn answer_of<T: Serialize>(r: Result<T, TestError>) -> Response {
        answer(r)
    }

    #[tokio::test]
    async fn a_call_not_answered_is_retried_a_bounded_number_of_times() {
        use std::sync::atomic::Ordering;
        let (p, calls) = peer_that_fails(2, Ok(7)).await;
        let r: Result<u32, TestError> = p
            .call::<(), _, _>(Method::POST, "/internal/x/1", None, Retry::Safe)
            .await;
        assert_eq!(r, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3, "two 503s, then the answer");

        let (p, calls) = peer_that_fails(5, Ok(7)).await;
        let r: Result<u32, TestError> = p
            .call::<(), _, _>(Method::POST, "/internal/x/1", None, Retry::Safe)
            .await;
        assert!(matches!(r, Err(TestError::Unavailable { .. })), "{r:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "at most `attempts` calls");

        let (p, calls) = peer_that_fails(1, Ok(7)).await;
        let r: Result<u32, TestError> = p
            .call::<(), _, _>(Method::POST, "/internal/x/1", None, Retry::Never)
            .await;
        assert!(matches!(r, Err(TestError::Unavailable { .. })));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a call that is not idempotent is sent once"
        );
    }

    #[tokio::test]
    async fn a_domain_answer_is_never_retried() {
        use std::sync::atomic::Ordering;
        let (p, calls) = peer_that_fails(0, Err(TestError::Refused)).await;
        let r: Result<u32, TestError> = p
            .call::<(), _, _>(Method::POST, "/internal/x/1", None, Retry::Safe)
            .await;
        assert_eq!(r, Err(TestError::Refused));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn back_off_is_jittered_and_capped() {
        let p = Peer::new(
            "inventory",
            "orders",
            "http://127.0.0.1:9",
            InternalKey::new(b"k"),
            PeerSettings::default(),
        )
        .expect("peer");
        for attempt in 1..20 {
            assert!(p.backoff(attempt) <= Duration::from_secs(1));
        }
        let waits: std::collections::HashSet<_> = (0..20).map(|_| p.backoff(3)).collect();
        assert!(waits.len() > 1, "full jitter: the waits differ");
    }
}
