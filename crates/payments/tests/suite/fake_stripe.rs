//! A fake Stripe on 127.0.0.1:0 that speaks the shape of the API our adapter uses: form
//! bodies, `pi_…`/`ch_…`/`re_…` ids, error objects (402 card errors, 400/404 invalid
//! requests), `Idempotency-Key` honoured like Stripe (same key → the first answer replayed,
//! no second effect), `expand[]=latest_charge`. It checks the API key and the pinned version,
//! counts what it was asked, can lose answers after acting (or fail before acting), and
//! builds and signs webhook events with its own HMAC code (not the crate's).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub const API_KEY: &str = "sk_test_fake_0123456789";

#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub received: i64,
    pub refunded: i64,
    pub last4: String,
    pub metadata: BTreeMap<String, String>,
    pub last_error: Option<Value>,
    /// How many times money was actually captured (must never exceed 1).
    pub captures: u32,
}

/// One POST as the fake received it.
#[derive(Debug, Clone)]
pub struct Posted {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub version: Option<String>,
    pub form: Vec<(String, String)>,
}

impl Posted {
    pub fn field(&self, k: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Delivers a webhook to the service: (body, Stripe-Signature) → HTTP status.
pub type Sink = Arc<dyn Fn(String, String) -> BoxFuture<'static, u16> + Send + Sync>;

#[derive(Default)]
struct FakeState {
    intents: BTreeMap<String, Intent>,
    /// Idempotency key → (method and path it was used for, status, answer).
    idem: HashMap<String, (String, u16, Value)>,
    gets: HashMap<String, u32>,
    posts: Vec<Posted>,
    next: u64,
    /// Act, then answer 500 (the answer is lost).
    lose_next: u32,
    /// Answer 500 without acting.
    fail_next: u32,
    /// Sends `payment_intent.amount_capturable_updated` to the service before answering the
    /// creation of an authorised intent (webhooks may beat API answers).
    sink: Option<(Sink, String)>,
}

#[derive(Clone)]
pub struct FakeStripe {
    pub url: String,
    state: Arc<Mutex<FakeState>>,
}

fn err(status: StatusCode, kind: &str, code: &str, message: &str) -> (u16, Value) {
    (
        status.as_u16(),
        json!({"error": {"type": kind, "code": code, "message": message}}),
    )
}

impl Intent {
    fn charge(&self) -> Value {
        json!({
            "id": format!("ch_{}", &self.id[3..]),
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.received,
            "amount_refunded": self.refunded,
            "captured": self.received > 0,
            "refunded": self.received > 0 && self.refunded == self.received,
            "currency": self.currency,
            "payment_intent": self.id,
            "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": self.last4}},
        })
    }

    fn json(&self, expand: bool) -> Value {
        json!({
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": if self.status == "requires_capture" { self.amount } else { 0 },
            "amount_received": self.received,
            "capture_method": "manual",
            "currency": self.currency,
            "status": self.status,
            "metadata": self.metadata,
            "last_payment_error": self.last_error.clone().unwrap_or(Value::Null),
            "latest_charge": if expand { self.charge() } else { json!(format!("ch_{}", &self.id[3..])) },
        })
    }
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeStripe {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// The same fake behind HTTPS, with the certificate pair given (its name: `localhost`).
    pub async fn start_https(files: platform::http::tls::TlsFiles) -> FakeStripe {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        let listener =
            platform::http::tls::TlsListener::new(tcp, files, std::time::Duration::from_secs(60))
                .expect("the test certificate loads");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeStripe {
            url: format!("https://localhost:{port}"),
            state,
        }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state")
    }

    pub fn posts(&self) -> Vec<Posted> {
        self.st().posts.clone()
    }
    pub fn gets(&self, intent: &str) -> u32 {
        self.st().gets.get(intent).copied().unwrap_or(0)
    }
    pub fn total_gets(&self) -> u32 {
        self.st().gets.values().sum()
    }
    pub fn intent(&self, id: &str) -> Intent {
        self.st().intents.get(id).cloned().expect("intent")
    }
    pub fn intent_count(&self) -> usize {
        self.st().intents.len()
    }
    /// The intent as a webhook carries it (`latest_charge` not expanded).
    pub fn intent_json(&self, id: &str) -> Value {
        self.intent(id).json(false)
    }
    pub fn charge_json(&self, id: &str) -> Value {
        self.intent(id).charge()
    }
    pub fn lose_next_answers(&self, n: u32) {
        self.st().lose_next = n;
    }
    pub fn fail_next_requests(&self, n: u32) {
        self.st().fail_next = n;
    }
    pub fn set_webhook_sink(&self, sink: Sink, secret: &str) {
        self.st().sink = Some((sink, secret.to_string()));
    }

    /// What the dashboard does: capture without telling us.
    pub fn capture_elsewhere(&self, id: &str) {
        let mut st = self.st();
        let i = st.intents.get_mut(id).expect("intent");
        assert_eq!(i.status, "requires_capture");
        i.status = "succeeded".into();
        i.received = i.amount;
        i.captures += 1;
    }
    /// A refund made in the dashboard.
    pub fn refund_elsewhere(&self, id: &str, amount: i64) {
        let mut st = self.st();
        let i = st.intents.get_mut(id).expect("intent");
        assert!(i.refunded + amount <= i.received);
        i.refunded += amount;
    }

    /// A new event id and body for `type` about `object`.
    pub fn event(&self, kind: &str, object: Value) -> (String, String) {
        let mut st = self.st();
        st.next += 1;
        let id = format!("evt_{:06}", st.next);
        let body = json!({
            "id": id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": chrono::Utc::now().timestamp(),
            "type": kind,
            "livemode": false,
            "data": {"object": object},
        })
        .to_string();
        (id, body)
    }
}

/// `v1` for `body` at `t` under `secret`: HMAC-SHA256 of `"{t}.{body}"`, hex.
pub fn v1(secret: &str, t: i64, body: &str) -> String {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    m.update(format!("{t}.{body}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The `Stripe-Signature` header Stripe sends.
pub fn sign(secret: &str, t: i64, body: &str) -> String {
    format!("t={t},v1={}", v1(secret, t, body))
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let auth = header(&headers, "authorization");
    let version = header(&headers, "stripe-version");
    let key = header(&headers, "idempotency-key");

    let (status, answer, webhook) = {
        let mut st = state.lock().expect("fake state");
        if method == Method::POST {
            st.posts.push(Posted {
                path: path.clone(),
                idempotency_key: key.clone(),
                authorization: auth.clone(),
                version: version.clone(),
                form: form.clone(),
            });
        }
        if auth.as_deref() != Some(&format!("Bearer {API_KEY}")) {
            let (s, v) = err(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "api_key_invalid",
                "Invalid API Key provided",
            );
            return (StatusCode::from_u16(s).expect("status"), axum::Json(v)).into_response();
        }
        if version.as_deref() != Some("2024-06-20") {
            let (s, v) = err(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "version_unpinned",
                "Stripe-Version is not the pinned one",
            );
            return (StatusCode::from_u16(s).expect("status"), axum::Json(v)).into_response();
        }
        if st.fail_next > 0 {
            st.fail_next -= 1;
            return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
        }
        let fingerprint = format!("{method} {path}");
        let replay = key
            .as_ref()
            .and_then(|k| st.idem.get(k).cloned())
            .filter(|_| method == Method::POST);
        let (status, answer, webhook) = if let Some((fp, s, v)) = replay {
            if fp == fingerprint {
                (s, v, None)
            } else {
                let (s, v) = err(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    "idempotency_key_reused",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                );
                (s, v, None)
            }
        } else {
            if method == Method::POST && key.is_none() {
                let (s, v) = err(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "idempotency_key_missing",
                    "this fake wants an Idempotency-Key on every POST",
                );
                return (StatusCode::from_u16(s).expect("status"), axum::Json(v)).into_response();
            }
            let expand = form
                .iter()
                .chain(query.iter())
                .any(|(k, v)| k == "expand[]" && v == "latest_charge");
            let (s, v, w) = act(&mut st, &method, &path, &form, expand);
            if method == Method::POST
                && let Some(k) = &key
            {
                st.idem.insert(k.clone(), (fingerprint, s, v.clone()));
            }
            (s, v, w)
        };
        let webhook =
            webhook.and_then(|obj| st.sink.clone().map(|(sink, secret)| (sink, secret, obj)));
        let webhook = webhook.map(|(sink, secret, obj)| {
            st.next += 1;
            (sink, secret, obj, format!("evt_{:06}", st.next))
        });
        if st.lose_next > 0 && method == Method::POST {
            st.lose_next -= 1;
            return (StatusCode::BAD_GATEWAY, "lost").into_response();
        }
        (status, answer, webhook)
    };
    if let Some((sink, secret, obj, id)) = webhook {
        // deliver the webhook before answering, as Stripe sometimes does
        let body =
            json!({"id": id, "object": "event", "type": "payment_intent.amount_capturable_updated",
            "created": chrono::Utc::now().timestamp(), "data": {"object": obj}})
            .to_string();
        let sig = sign(&secret, chrono::Utc::now().timestamp(), &body);
        let status = sink(body, sig).await;
        assert_eq!(status, 200, "the early webhook was refused");
    }
    (
        StatusCode::from_u16(status).expect("status"),
        axum::Json(answer),
    )
        .into_response()
}

fn field<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
}

/// Performs one request; answers (status, body, object of an early webhook to send).
fn act(
    st: &mut FakeState,
    method: &Method,
    path: &str,
    form: &[(String, String)],
    expand: bool,
) -> (u16, Value, Option<Value>) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "payment_intents"]) => {
            let amount: i64 = match field(form, "amount").and_then(|a| a.parse().ok()) {
                Some(a) if a > 0 => a,
                _ => {
                    let (s, v) = err(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        "parameter_invalid_integer",
                        "Invalid integer: amount",
                    );
                    return (s, v, None);
                }
            };
            assert_eq!(field(form, "capture_method"), Some("manual"));
            assert_eq!(field(form, "confirm"), Some("true"));
            let pm = field(form, "payment_method").unwrap_or("");
            let (status, last4, error) = match pm {
                "pm_card_visa" => ("requires_capture", "4242", None),
                "pm_card_chargeDeclined" => (
                    "requires_payment_method",
                    "0002",
                    Some((
                        "card_declined",
                        Some("generic_decline"),
                        "Your card was declined.",
                    )),
                ),
                "pm_card_chargeDeclinedInsufficientFunds" => (
                    "requires_payment_method",
                    "9995",
                    Some((
                        "card_declined",
                        Some("insufficient_funds"),
                        "Your card has insufficient funds.",
                    )),
                ),
                "pm_card_authenticationRequired" => ("requires_action", "3184", None),
                _ => {
                    let (s, v) = err(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        "resource_missing",
                        "No such PaymentMethod",
                    );
                    return (s, v, None);
                }
            };
            st.next += 1;
            let id = format!("pi_{:06}fake", st.next);
            let metadata: BTreeMap<String, String> = form
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("metadata[")
                        .and_then(|k| k.strip_suffix(']'))
                        .map(|k| (k.to_string(), v.clone()))
                })
                .collect();
            let last_error = error.map(|(code, decline, message)| {
                json!({"type": "card_error", "code": code, "decline_code": decline, "message": message})
            });
            let intent = Intent {
                id: id.clone(),
                amount,
                currency: field(form, "currency").unwrap_or("").to_string(),
                status: status.into(),
                received: 0,
                refunded: 0,
                last4: last4.into(),
                metadata,
                last_error: last_error.clone(),
                captures: 0,
            };
            let v = intent.json(expand);
            st.intents.insert(id, intent.clone());
            match last_error {
                Some(mut e) => {
                    e["payment_intent"] = intent.json(false);
                    (402, json!({"error": e}), None)
                }
                None => {
                    let early = (status == "requires_capture").then(|| intent.json(false));
                    (200, v, early)
                }
            }
        }
        ("POST", ["v1", "payment_intents", id, op]) => {
            let Some(i) = st.intents.get_mut(*id) else {
                let (s, v) = err(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "resource_missing",
                    "No such payment_intent",
                );
                return (s, v, None);
            };
            match (*op, i.status.as_str()) {
                ("capture", "requires_capture") => {
                    i.status = "succeeded".into();
                    i.received = i.amount;
                    i.captures += 1;
                }
                ("cancel", "requires_capture" | "requires_action" | "requires_payment_method") => {
                    i.status = "canceled".into();
                }
                _ => {
                    let (s, v) = err(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        "payment_intent_unexpected_state",
                        &format!(
                            "This PaymentIntent could not be {op}d because it has a status of {}.",
                            i.status
                        ),
                    );
                    return (s, v, None);
                }
            }
            (200, i.json(expand), None)
        }
        ("POST", ["v1", "refunds"]) => {
            let pi = field(form, "payment_intent").unwrap_or("");
            let amount: i64 = field(form, "amount")
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            let Some(i) = st.intents.get_mut(pi) else {
                let (s, v) = err(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "resource_missing",
                    "No such payment_intent",
                );
                return (s, v, None);
            };
            if i.status != "succeeded" || amount <= 0 || i.refunded + amount > i.received {
                let (s, v) = err(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "amount_too_large",
                    "Refund amount is greater than unrefunded amount on charge",
                );
                return (s, v, None);
            }
            i.refunded += amount;
            let pi = i.id.clone();
            st.next += 1;
            (
                200,
                json!({"id": format!("re_{:06}", st.next), "object": "refund", "amount": amount,
                "payment_intent": pi, "status": "succeeded"}),
                None,
            )
        }
        ("GET", ["v1", "payment_intents", id]) => {
            *st.gets.entry(id.to_string()).or_default() += 1;
            match st.intents.get(*id) {
                Some(i) => (200, i.json(expand), None),
                None => {
                    let (s, v) = err(
                        StatusCode::NOT_FOUND,
                        "invalid_request_error",
                        "resource_missing",
                        "No such payment_intent",
                    );
                    (s, v, None)
                }
            }
        }
        _ => {
            let (s, v) = err(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "unrecognized_url",
                "Unrecognized request URL",
            );
            (s, v, None)
        }
    }
}
