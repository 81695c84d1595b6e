//! What other services may ask of payments: authorise, capture, void and refund the money of
//! an order, and what a payment is now. Every call is idempotent on the payment's id (chosen by
//! the checkout saga: its own id) or, for a refund, on the caller's key.
//!
//! Internal routes (answered with [`crate::rpc::answer`]):
//! - `POST /internal/payments/authorizations` with [`AuthorizeRequest`] → [`AuthOutcome`]
//! - `POST /internal/payments/{id}/capture` → [`CaptureOutcome`]
//! - `POST /internal/payments/{id}/void` → `null`
//! - `POST /internal/payments/{id}/refunds` with [`RefundRequest`] → the [`Payment`]
//! - `GET /internal/payments/{id}` → the [`Payment`] or `null`; `?sync=true` asks the provider
//! - `GET /internal/payments/holding-money?older_than_ms=&limit=` → [`Payment`]s
//! - `POST /internal/payments/{id}/test-action` with [`TestAction`] → `null` (the built-in test
//!   provider's 3-D Secure page: the shopper's answer)

use crate::rpc::{Peer, Retry, WireError};
use axum::http::Method;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use kernel::{Currency, Money, PaymentId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where a payment is in its life. Stored and sent as snake_case strings.
///
/// Status only moves forward, in [`PaymentStatus::rank`] order: an older provider state (a
/// late webhook, a slow poll) never overwrites a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Recorded, the provider's answer not known yet (or the customer must act).
    Pending,
    /// The amount is held on the customer's means of payment.
    Authorized,
    Captured,
    PartiallyRefunded,
    Refunded,
    /// The authorisation was cancelled; nothing was taken.
    Voided,
    /// Declined or refused by the provider.
    Failed,
}

impl PaymentStatus {
    pub const ALL: &'static [PaymentStatus] = &[
        PaymentStatus::Pending,
        PaymentStatus::Authorized,
        PaymentStatus::Captured,
        PaymentStatus::PartiallyRefunded,
        PaymentStatus::Refunded,
        PaymentStatus::Voided,
        PaymentStatus::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Voided => "voided",
            PaymentStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentStatus> {
        Self::ALL.iter().copied().find(|x| x.as_str() == s)
    }

    /// The order in which a status may change: only to a higher rank. `voided` and `failed`
    /// share a rank (neither replaces the other); money taken (`captured` and after) outranks
    /// them both, since the provider's books are the truth.
    pub fn rank(&self) -> u8 {
        match self {
            PaymentStatus::Pending => 0,
            PaymentStatus::Authorized => 1,
            PaymentStatus::Voided | PaymentStatus::Failed => 2,
            PaymentStatus::Captured => 3,
            PaymentStatus::PartiallyRefunded => 4,
            PaymentStatus::Refunded => 5,
        }
    }

    /// Money was taken (and maybe partly or fully given back).
    pub fn is_captured(&self) -> bool {
        self.rank() >= PaymentStatus::Captured.rank()
    }
}

/// How the customer pays. Never carries real card data: the test provider accepts only its
/// published test numbers, and Stripe receives a `pm_…` token made by Stripe.js in the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaymentMethod {
    /// A test card number of the built-in test provider (see `TestProvider`).
    TestCard { number: String },
    /// A Stripe PaymentMethod id (`pm_…`).
    Stripe { payment_method: String },
}

/// What the checkout asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    /// Chosen by the caller (the checkout saga); the authorisation is idempotent on it.
    pub payment_id: PaymentId,
    pub order_ref: String,
    /// More than zero.
    pub amount: Money,
    pub method: PaymentMethod,
    pub customer_email: Option<String>,
}

/// The answer to [`PaymentsApi::authorize`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
pub enum AuthOutcome {
    /// The amount is held (the payment may have moved on since, e.g. captured on a retry).
    Authorized(Payment),
    /// The provider said no; the payment is `failed` (or `voided` when it was cancelled).
    Declined { code: String, message: String },
    /// The provider needs more time or the customer must act (3-D Secure): ask again later,
    /// or wait for the webhook.
    Pending(Payment),
}

/// The answer to [`PaymentsApi::capture`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
pub enum CaptureOutcome {
    Captured(Payment),
    /// The provider refused the capture; the authorisation stands (void it).
    Failed {
        code: String,
        message: String,
    },
}

/// A payment as we know it. Its amounts are all in its currency; on the wire they are bare
/// minor units beside one `currency` field ([`PaymentRecord`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "PaymentRecord", from = "PaymentRecord")]
pub struct Payment {
    pub id: PaymentId,
    pub order_ref: String,
    /// `test` or `stripe`.
    pub provider: String,
    /// The provider's id (`tch_…` for the test provider, `pi_…` for Stripe).
    pub provider_ref: Option<String>,
    pub currency: Currency,
    /// Authorised amount.
    pub amount: Money,
    pub status: PaymentStatus,
    /// Captured amount.
    pub captured: Money,
    /// Refunded so far.
    pub refunded: Money,
    /// Last 4 digits of the card, when the provider says.
    pub last4: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A payment as written in JSON (the API's `Payment` schema, and the internal calls).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Payment)]
pub struct PaymentRecord {
    pub id: PaymentId,
    pub order_ref: String,
    /// `test` or `stripe`.
    pub provider: String,
    /// The provider's id (`tch_…` for the test provider, `pi_…` for Stripe).
    pub provider_ref: Option<String>,
    /// Authorised amount, minor units.
    pub amount: i64,
    /// ISO 4217 code of every amount.
    pub currency: Currency,
    pub status: PaymentStatus,
    /// Captured amount, minor units.
    pub captured: i64,
    /// Refunded so far, minor units.
    pub refunded: i64,
    /// Last 4 digits of the card, when the provider says.
    pub last4: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Payment> for PaymentRecord {
    fn from(p: Payment) -> Self {
        PaymentRecord {
            id: p.id,
            order_ref: p.order_ref,
            provider: p.provider,
            provider_ref: p.provider_ref,
            amount: p.amount.minor(),
            currency: p.currency,
            status: p.status,
            captured: p.captured.minor(),
            refunded: p.refunded.minor(),
            last4: p.last4,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

impl From<PaymentRecord> for Payment {
    fn from(r: PaymentRecord) -> Self {
        let m = |a| Money::new(a, r.currency);
        Payment {
            id: r.id,
            order_ref: r.order_ref,
            provider: r.provider,
            provider_ref: r.provider_ref,
            currency: r.currency,
            amount: m(r.amount),
            status: r.status,
            captured: m(r.captured),
            refunded: m(r.refunded),
            last4: r.last4,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl utoipa::PartialSchema for Payment {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <PaymentRecord as utoipa::PartialSchema>::schema()
    }
}
impl utoipa::ToSchema for Payment {
    fn name() -> std::borrow::Cow<'static, str> {
        "Payment".into()
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <PaymentRecord as utoipa::ToSchema>::schemas(schemas)
    }
}

impl Payment {
    /// Captured and not refunded: what the customer has paid and not been given back.
    pub fn kept(&self) -> Money {
        self.captured
            .with_minor(self.captured.minor() - self.refunded.minor())
    }
}

/// The body of `POST /internal/payments/{id}/refunds`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundRequest {
    /// In the payment's currency.
    pub amount: Money,
    /// The refund's idempotency key (the same key and amount answer the payment again).
    pub key: String,
}

/// The body of `POST /internal/payments/{id}/test-action`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestAction {
    pub approved: bool,
}

/// Why payments did not do what was asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum PayError {
    /// The request cannot succeed as sent (bad amount, not a test card, unknown payment,
    /// over-refund, key reused…). Retrying the same request gives the same answer.
    #[error("{code}: {message}")]
    Invalid { code: String, message: String },
    /// Payments or its provider could not answer: nothing is known to have failed; retry later
    /// (the ids and keys make the retry safe).
    #[error("payments are unavailable: {detail}")]
    Unavailable { detail: String },
}

impl PayError {
    /// The stable code of an `Invalid` error, from [`kernel::codes`] (`payment_refused` for a
    /// code the table does not hold: a newer peer, or a reason that is not sent to clients).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            PayError::Invalid { code, .. } => Some(
                kernel::codes::find(code)
                    .map(|c| c.code)
                    .unwrap_or("payment_refused"),
            ),
            PayError::Unavailable { .. } => None,
        }
    }
}

impl WireError for PayError {
    fn status(&self) -> u16 {
        match self {
            PayError::Invalid { code, .. } if code == "unknown_payment" => 404,
            PayError::Invalid { .. } => 422,
            PayError::Unavailable { .. } => 503,
        }
    }
    fn unavailable(detail: String) -> Self {
        PayError::Unavailable { detail }
    }
}

pub type PayResult<T> = Result<T, PayError>;

/// What the checkout saga, refunds and reconciliation ask of payments.
pub trait PaymentsApi: Send + Sync {
    fn authorize<'a>(&'a self, req: &'a AuthorizeRequest) -> BoxFuture<'a, PayResult<AuthOutcome>>;
    fn capture(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<CaptureOutcome>>;
    fn void(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<()>>;
    /// Refunds `amount` (in the payment's currency: another is refused); idempotent on `key`.
    fn refund<'a>(
        &'a self,
        payment_id: PaymentId,
        amount: Money,
        key: &'a str,
    ) -> BoxFuture<'a, PayResult<Payment>>;
    fn get(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<Option<Payment>>>;
    /// Asks the provider for the current state and records it.
    fn sync(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<Option<Payment>>>;
    /// Payments that still keep captured money and were last changed before `older_than`
    /// (oldest first, at most `limit`, and at most 1000 in one call; none for a `limit` of 0
    /// or less).
    fn holding_money(
        &self,
        older_than: Duration,
        limit: i64,
    ) -> BoxFuture<'_, PayResult<Vec<Payment>>>;
    /// The built-in test provider only: the shopper approved (or refused) the 3-D Secure
    /// challenge of this payment. `Invalid` with another provider.
    fn complete_test_action(
        &self,
        payment_id: PaymentId,
        approved: bool,
    ) -> BoxFuture<'_, PayResult<()>>;
}

/// Payments over HTTP.
#[derive(Clone, Debug)]
pub struct PaymentsClient(pub Peer);

impl PaymentsApi for PaymentsClient {
    fn authorize<'a>(&'a self, req: &'a AuthorizeRequest) -> BoxFuture<'a, PayResult<AuthOutcome>> {
        Box::pin(async move {
            self.0
                .call(
                    Method::POST,
                    "/internal/payments/authorizations",
                    Some(req),
                    Retry::Safe,
                )
                .await
        })
    }

    fn capture(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<CaptureOutcome>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::POST,
                    &format!("/internal/payments/{payment_id}/capture"),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }

    fn void(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<()>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::POST,
                    &format!("/internal/payments/{payment_id}/void"),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }

    fn refund<'a>(
        &'a self,
        payment_id: PaymentId,
        amount: Money,
        key: &'a str,
    ) -> BoxFuture<'a, PayResult<Payment>> {
        Box::pin(async move {
            self.0
                .call(
                    Method::POST,
                    &format!("/internal/payments/{payment_id}/refunds"),
                    Some(&RefundRequest {
                        amount,
                        key: key.to_string(),
                    }),
                    Retry::Safe,
                )
                .await
        })
    }

    fn get(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<Option<Payment>>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::GET,
                    &format!("/internal/payments/{payment_id}"),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }

    fn sync(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<Option<Payment>>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::GET,
                    &format!("/internal/payments/{payment_id}?sync=true"),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }

    fn holding_money(
        &self,
        older_than: Duration,
        limit: i64,
    ) -> BoxFuture<'_, PayResult<Vec<Payment>>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::GET,
                    &format!(
                        "/internal/payments/holding-money?older_than_ms={}&limit={limit}",
                        older_than.as_millis()
                    ),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }

    fn complete_test_action(
        &self,
        payment_id: PaymentId,
        approved: bool,
    ) -> BoxFuture<'_, PayResult<()>> {
        Box::pin(async move {
            self.0
                .call(
                    Method::POST,
                    &format!("/internal/payments/{payment_id}/test-action"),
                    Some(&TestAction { approved }),
                    Retry::Safe,
                )
                .await
        })
    }
}
