//! Stripe: our own small client of the PaymentIntents API on `reqwest`, the webhook signature
//! check, and the decoding of the events we act on.
//!
//! - Authorise: `POST /v1/payment_intents` (form: amount, lowercase currency, payment_method,
//!   `confirm=true`, `capture_method=manual`, `metadata[payment_id]`, `metadata[order_ref]`);
//!   capture, cancel: `POST /v1/payment_intents/{id}/capture|cancel`; refund: `POST /v1/refunds`
//!   then a read of the intent for the new refund total; read: `GET /v1/payment_intents/{id}`
//!   (always with `expand[]=latest_charge`, which carries the refunded amount and the last 4).
//! - Every POST carries `Idempotency-Key`; every request `Authorization: Bearer <secret key>`
//!   and the pinned `Stripe-Version`. The key is a [`Secret`]: never printed nor logged.
//! - Statuses: `requires_capture` → authorized, `succeeded` → captured, `processing` and
//!   `requires_action` → pending, `canceled` → voided, `requires_payment_method` after an
//!   error → failed; a card error (HTTP 402) is a decline with its `decline_code` (else `code`).
//! - Webhooks: `Stripe-Signature: t=…,v1=…[,v1=…]`, HMAC-SHA256 of `"{t}.{raw body}"` under the
//!   endpoint secret, compared in constant time; any `v1` may match any configured secret
//!   (rotation), and `t` must be within 300 s of now.

use crate::app::Observation;
use crate::domain::{AuthorizeRequest, PaymentMethod, PaymentStatus};
use crate::provider::{Failure, Provider, ProviderCharge, ProviderError, ProviderFuture};
use hmac::{Hmac, Mac};
use platform::config::Secret;
use serde_json::Value;
use std::time::Duration;

/// The API version every request pins (the shapes below are this version's).
pub const STRIPE_VERSION: &str = "2024-06-20";
/// How far a webhook's `t` may be from now.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// How to reach Stripe.
#[derive(Clone, Debug)]
pub struct StripeConfig {
    /// `https://api.stripe.com` in production (verified against Mozilla's roots and
    /// `tls.ca_file`), a loopback fake in tests.
    pub base_url: String,
    pub secret_key: Secret,
    pub timeout: Duration,
}

/// The Stripe adapter.
#[derive(Clone)]
pub struct StripeProvider {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

impl std::fmt::Debug for StripeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeProvider")
            .field("base", &self.base)
            .field("key", &self.key)
            .finish()
    }
}

type Result<T> = std::result::Result<T, ProviderError>;

fn bad_answer(what: &str) -> ProviderError {
    ProviderError::Unavailable(format!("stripe answered something unexpected: {what}"))
}

/// Stripe's error codes we name, as our static codes; anything else is `provider_refused`.
fn stripe_code(code: &str) -> &'static str {
    match code {
        "resource_missing" => "unknown_charge",
        "payment_intent_unexpected_state" => "unexpected_state",
        "amount_too_large" | "charge_already_refunded" => "amount_too_large",
        "idempotency_key_in_use" => "idempotency_in_progress",
        "parameter_invalid_integer" | "parameter_missing" | "parameter_unknown" => {
            "invalid_request"
        }
        _ => "provider_refused",
    }
}

/// A decline's code: the bank's `decline_code` when Stripe gives one, else the error `code`.
fn decline_of(err: &Value) -> Failure {
    let code = err["decline_code"]
        .as_str()
        .or_else(|| err["code"].as_str())
        .unwrap_or("card_declined")
        .to_string();
    let message = err["message"]
        .as_str()
        .unwrap_or("the card was declined")
        .to_string();
    Failure { code, message }
}

/// Maps a PaymentIntent (with or without its expanded `latest_charge`).
pub fn intent_charge(pi: &Value) -> Result<ProviderCharge> {
    let id = pi["id"]
        .as_str()
        .filter(|s| s.starts_with("pi_"))
        .ok_or_else(|| bad_answer("a payment intent without id"))?;
    let charge = &pi["latest_charge"]; // an object only when expanded
    let err = &pi["last_payment_error"];
    let failure = err.is_object().then(|| decline_of(err));
    let status = match pi["status"].as_str().unwrap_or("") {
        "requires_capture" => PaymentStatus::Authorized,
        "succeeded" => PaymentStatus::Captured,
        "canceled" => PaymentStatus::Voided,
        "requires_payment_method" if failure.is_some() => PaymentStatus::Failed,
        _ => PaymentStatus::Pending,
    };
    let captured = if status == PaymentStatus::Captured {
        pi["amount_received"]
            .as_i64()
            .unwrap_or(0)
            .max(charge["amount_captured"].as_i64().unwrap_or(0))
    } else {
        0
    };
    Ok(ProviderCharge {
        provider_ref: id.to_string(),
        status,
        amount: pi["amount"].as_i64().unwrap_or(0),
        captured,
        refunded: charge["amount_refunded"].as_i64().unwrap_or(0),
        last4: last4_of(charge),
        failure: if status == PaymentStatus::Failed {
            failure
        } else {
            None
        },
    })
}

fn last4_of(charge: &Value) -> Option<String> {
    charge["payment_method_details"]["card"]["last4"]
        .as_str()
        .filter(|s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
}

/// What a verified event says, for the events we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    /// The PaymentIntent it is about.
    pub intent_ref: Option<String>,
    /// Our payment id, from the intent's metadata.
    pub payment_id: Option<kernel::PaymentId>,
    pub observation: Observation,
}

/// The event types acted on.
pub const HANDLED_EVENTS: &[&str] = &[
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.amount_capturable_updated",
    "charge.refunded",
];

fn payment_id_of(obj: &Value) -> Option<kernel::PaymentId> {
    obj["metadata"]["payment_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
}

/// Decodes a verified event's object (`data.object`, as JSON text); `None` for the types we
/// do not act on or an object that does not fit.
pub fn event_facts(event_type: &str, object: &str) -> Option<EventFacts> {
    let obj: Value = serde_json::from_str(object).ok()?;
    match event_type {
        "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "payment_intent.canceled"
        | "payment_intent.amount_capturable_updated" => {
            let c = intent_charge(&obj).ok()?;
            Some(EventFacts {
                intent_ref: Some(c.provider_ref.clone()),
                payment_id: payment_id_of(&obj),
                observation: Observation::from(&c),
            })
        }
        "charge.refunded" => {
            let intent = obj["payment_intent"].as_str()?.to_string();
            let captured = obj["amount_captured"].as_i64().unwrap_or(0);
            Some(EventFacts {
                intent_ref: Some(intent.clone()),
                payment_id: payment_id_of(&obj),
                observation: Observation {
                    provider_ref: Some(intent),
                    status: if captured > 0 {
                        PaymentStatus::Captured
                    } else {
                        PaymentStatus::Pending
                    },
                    captured,
                    refunded: obj["amount_refunded"].as_i64().unwrap_or(0),
                    last4: last4_of(&obj),
                    failure: None,
                },
            })
        }
        _ => None,
    }
}

/// Why a webhook signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("no signature matches")]
    Mismatch,
    #[error("the signature's time is more than 300 s from now")]
    Stale,
}

fn mac(secret: &str, t: &str, body: &[u8]) -> Hmac<sha2::Sha256> {
    // HMAC takes keys of any length
    #[allow(clippy::expect_used)]
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(t.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// Checks a `Stripe-Signature` header against the raw body: some `v1` must be the HMAC-SHA256
/// of `"{t}.{body}"` under one of `secrets` (compared in constant time), and `t` within
/// [`SIGNATURE_TOLERANCE_SECS`] of `now_unix`.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secrets: &[Secret],
    now_unix: i64,
) -> std::result::Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<&str> = None;
    let mut v1: Vec<Vec<u8>> = Vec::new();
    for item in header.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        match k {
            "t" if t.is_none() => t = Some(v),
            "v1" => {
                if let Ok(sig) = hex::decode(v) {
                    v1.push(sig);
                }
            }
            _ => {}
        }
    }
    let t_str = t.ok_or(SignatureError::Malformed)?;
    let ts: i64 = t_str.parse().map_err(|_| SignatureError::Malformed)?;
    if v1.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let matched = secrets.iter().filter(|s| !s.is_empty()).any(|s| {
        let m = mac(s.expose(), t_str, body);
        v1.iter().any(|sig| m.clone().verify_slice(sig).is_ok())
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if (now_unix - ts).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// A `Stripe-Signature` header for `body` (what Stripe sends; for tools and tests).
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    let sig = mac(secret, &t.to_string(), body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(sig))
}

fn valid_intent_id(id: &str) -> Result<()> {
    if id.starts_with("pi_")
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(())
    } else {
        Err(ProviderError::Invalid {
            code: "unknown_charge",
            message: "not a PaymentIntent id".into(),
        })
    }
}

fn valid_pm(pm: &str) -> bool {
    pm.starts_with("pm_")
        && pm.len() <= 255
        && pm.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl StripeProvider {
    /// HTTPS with the process's trust store ([`platform::tls::current`]).
    pub fn new(cfg: &StripeConfig) -> std::result::Result<Self, String> {
        StripeProvider::with_tls(cfg, &platform::tls::current())
    }

    /// With the trust store given: an `https://` base is TLS or an error, never clear text.
    pub fn with_tls(
        cfg: &StripeConfig,
        tls: &platform::tls::TlsClient,
    ) -> std::result::Result<Self, String> {
        let http = tls
            .reqwest_builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the Stripe HTTP client: {e}"))?;
        let base = cfg.base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("stripe base URL `{base}` is not an http(s) URL"));
        }
        if cfg.secret_key.is_empty() {
            return Err("the Stripe secret key is empty".into());
        }
        Ok(StripeProvider {
            http,
            base,
            key: cfg.secret_key.clone(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn answer(
        &self,
        res: std::result::Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Value> {
        let res = res.map_err(|e| {
            if self.base.starts_with("https://") && platform::tls::is_tls_failure(&e) {
                return ProviderError::Unavailable(format!(
                    "stripe: {}",
                    platform::tls::refused(
                        "payments.stripe_api_base",
                        platform::tls::chain(&e.without_url())
                    )
                ));
            }
            // reqwest's errors name the URL, never the headers: no key in them
            ProviderError::Unavailable(format!("stripe: {}", e.without_url()))
        })?;
        let status = res.status().as_u16();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("stripe: {}", e.without_url())))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let err = &body["error"];
        match status {
            200..=299 => Ok(body),
            402 => {
                let f = decline_of(err);
                Err(ProviderError::Declined {
                    code: f.code,
                    message: f.message,
                    provider_ref: err["payment_intent"]["id"].as_str().map(str::to_string),
                })
            }
            400 | 404 => {
                let code = err["code"].as_str().unwrap_or("");
                Err(ProviderError::Invalid {
                    code: stripe_code(code),
                    message: format!(
                        "stripe: {code}: {}",
                        err["message"].as_str().unwrap_or("request refused")
                    ),
                })
            }
            401 | 403 => {
                tracing::error!(
                    status,
                    "stripe refused our API key: check the configuration"
                );
                Err(ProviderError::Unavailable(format!(
                    "stripe refused the API key ({status})"
                )))
            }
            _ => Err(ProviderError::Unavailable(format!(
                "stripe answered {status}"
            ))),
        }
    }

    async fn post(&self, path: &str, form: &[(&str, String)], key: &str) -> Result<Value> {
        let body = serde_urlencoded::to_string(form)
            .map_err(|e| ProviderError::Unavailable(format!("form encoding: {e}")))?;
        let res = self
            .http
            .post(self.url(path))
            .bearer_auth(self.key.expose())
            .header("Stripe-Version", STRIPE_VERSION)
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;
        self.answer(res).await
    }

    async fn get_intent(&self, id: &str) -> Result<ProviderCharge> {
        valid_intent_id(id)?;
        let res = self
            .http
            .get(self.url(&format!(
                "/v1/payment_intents/{id}?expand%5B%5D=latest_charge"
            )))
            .bearer_auth(self.key.expose())
            .header("Stripe-Version", STRIPE_VERSION)
            .send()
            .await;
        intent_charge(&self.answer(res).await?)
    }

    async fn intent_op(&self, id: &str, op: &str, key: &str) -> Result<ProviderCharge> {
        valid_intent_id(id)?;
        let v = self
            .post(
                &format!("/v1/payment_intents/{id}/{op}"),
                &[("expand[]", "latest_charge".to_string())],
                key,
            )
            .await?;
        intent_charge(&v)
    }
}

impl Provider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn accepts(&self, method: &PaymentMethod) -> Result<()> {
        match method {
            PaymentMethod::Stripe { payment_method } if valid_pm(payment_method) => Ok(()),
            PaymentMethod::Stripe { .. } => Err(ProviderError::Invalid {
                code: "invalid_payment_method",
                message: "a Stripe payment method is a `pm_…` id".into(),
            }),
            PaymentMethod::TestCard { .. } => Err(ProviderError::Invalid {
                code: "method_not_supported",
                message: "Stripe takes `stripe` payment methods (a `pm_…` id) only".into(),
            }),
        }
    }

    fn authorize<'a>(
        &'a self,
        req: &'a AuthorizeRequest,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge> {
        Box::pin(async move {
            let PaymentMethod::Stripe { payment_method } = &req.method else {
                return Err(ProviderError::Invalid {
                    code: "method_not_supported",
                    message: "not a Stripe payment method".into(),
                });
            };
            let mut form = vec![
                ("amount", req.amount.minor().to_string()),
                (
                    "currency",
                    req.amount.currency().code().to_ascii_lowercase(),
                ),
                ("payment_method", payment_method.clone()),
                ("payment_method_types[]", "card".to_string()),
                ("confirm", "true".to_string()),
                ("capture_method", "manual".to_string()),
                ("metadata[payment_id]", req.payment_id.to_string()),
                ("metadata[order_ref]", req.order_ref.clone()),
                ("expand[]", "latest_charge".to_string()),
            ];
            if let Some(e) = &req.customer_email {
                form.push(("receipt_email", e.clone()));
            }
            let v = self
                .post("/v1/payment_intents", &form, idempotency_key)
                .await?;
            intent_charge(&v)
        })
    }

    fn capture<'a>(
        &'a self,
        provider_ref: &'a str,
        _amount: i64,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge> {
        // no amount_to_capture: the whole authorisation is captured
        Box::pin(self.intent_op(provider_ref, "capture", idempotency_key))
    }

    fn cancel<'a>(
        &'a self,
        provider_ref: &'a str,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge> {
        Box::pin(self.intent_op(provider_ref, "cancel", idempotency_key))
    }

    fn refund<'a>(
        &'a self,
        provider_ref: &'a str,
        amount: i64,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge> {
        Box::pin(async move {
            let r = self
                .post(
                    "/v1/refunds",
                    &[
                        ("payment_intent", provider_ref.to_string()),
                        ("amount", amount.to_string()),
                    ],
                    idempotency_key,
                )
                .await?;
            match r["status"].as_str() {
                Some("failed") | Some("canceled") => {
                    return Err(ProviderError::Declined {
                        code: r["failure_reason"]
                            .as_str()
                            .unwrap_or("refund_failed")
                            .to_string(),
                        message: "stripe could not make the refund".into(),
                        provider_ref: Some(provider_ref.to_string()),
                    });
                }
                Some(_) => {}
                None => return Err(bad_answer("a refund without status")),
            }
            // the refund object does not carry the charge's total: read it (a failure here is
            // retried with the same key, which Stripe answers with the same refund)
            self.get_intent(provider_ref).await
        })
    }

    fn retrieve<'a>(
        &'a self,
        provider_ref: Option<&'a str>,
        _authorize_key: &'a str,
    ) -> ProviderFuture<'a, Option<ProviderCharge>> {
        Box::pin(async move {
            match provider_ref {
                Some(r) => self.get_intent(r).await.map(Some),
                // Stripe cannot look an intent up by idempotency key
                None => Ok(None),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_a_secret_fresh_and_unchanged() {
        let secrets = [Secret::new("whsec_old"), Secret::new("whsec_new")];
        let body = br#"{"id":"evt_1"}"#;
        let h = signature_header("whsec_new", 1000, body);
        assert_eq!(verify_signature(Some(&h), body, &secrets, 1000), Ok(()));
        assert_eq!(verify_signature(Some(&h), body, &secrets, 1300), Ok(()));
        assert_eq!(
            verify_signature(Some(&h), body, &secrets, 1301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(Some(&h), body, &secrets, 699),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(Some(&h), br#"{"id":"evt_2"}"#, &secrets, 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(None, body, &secrets, 1000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(Some("v1=00"), body, &secrets, 1000),
            Err(SignatureError::Malformed)
        );
        let other = signature_header("whsec_other", 1000, body);
        assert_eq!(
            verify_signature(Some(&other), body, &secrets, 1000),
            Err(SignatureError::Mismatch)
        );
        // two v1 (Stripe rotating its secret): one matching is enough
        let v1_other = other.split_once(",v1=").map(|x| x.1).unwrap_or("");
        let both = format!("{h},v1={v1_other}");
        assert_eq!(verify_signature(Some(&both), body, &secrets, 1000), Ok(()));
    }

    #[test]
    fn intents_map_to_our_statuses() {
        let pi = |status: &str| serde_json::json!({"id": "pi_1", "status": status, "amount": 500, "amount_received": 500});
        let s = |status: &str| intent_charge(&pi(status)).map(|c| c.status).ok();
        assert_eq!(s("requires_capture"), Some(PaymentStatus::Authorized));
        assert_eq!(s("succeeded"), Some(PaymentStatus::Captured));
        assert_eq!(s("processing"), Some(PaymentStatus::Pending));
        assert_eq!(s("requires_action"), Some(PaymentStatus::Pending));
        assert_eq!(s("canceled"), Some(PaymentStatus::Voided));
        assert_eq!(s("requires_payment_method"), Some(PaymentStatus::Pending));
        let failed = serde_json::json!({"id": "pi_1", "status": "requires_payment_method",
            "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds", "message": "no"}});
        let c = intent_charge(&failed).ok();
        assert_eq!(c.as_ref().map(|c| c.status), Some(PaymentStatus::Failed));
        assert_eq!(
            c.and_then(|c| c.failure).map(|f| f.code),
            Some("insufficient_funds".to_string())
        );
    }
}
