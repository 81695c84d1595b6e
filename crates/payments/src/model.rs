//! What the payments service exchanges with its callers: requests, outcomes, the payment as
//! stored, and errors.

use chrono::{DateTime, Utc};
use platform::ApiError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// Chosen by the caller (the checkout saga); the authorisation is idempotent on it.
    pub payment_id: Uuid,
    pub order_ref: String,
    /// Minor units, > 0.
    pub amount: i64,
    pub currency: kernel::Currency,
    pub method: PaymentMethod,
    pub customer_email: Option<String>,
}

/// The answer to [`crate::Payments::authorize`].
#[derive(Debug, Clone, PartialEq)]
pub enum AuthOutcome {
    /// The amount is held (the payment may have moved on since, e.g. captured on a retry).
    Authorized(Payment),
    /// The provider said no; the payment is `failed` (or `voided` when it was cancelled).
    Declined { code: String, message: String },
    /// The provider needs more time or the customer must act (3-D Secure): ask again later,
    /// or wait for the webhook.
    Pending(Payment),
}

/// The answer to [`crate::Payments::capture`].
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureOutcome {
    Captured(Payment),
    /// The provider refused the capture; the authorisation stands (void it).
    Failed {
        code: String,
        message: String,
    },
}

/// A payment as we know it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: Uuid,
    pub order_ref: String,
    /// `test` or `stripe`.
    pub provider: String,
    /// The provider's id (`tch_…` for the test provider, `pi_…` for Stripe).
    pub provider_ref: Option<String>,
    /// Authorised amount, minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
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

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The request cannot succeed as sent (bad amount, not a test card, unknown payment,
    /// over-refund, key reused…). Retrying the same request gives the same answer.
    #[error("{code}: {message}")]
    Invalid { code: &'static str, message: String },
    /// The provider could not be reached or did not answer: nothing is known to have failed;
    /// retry later (the provider idempotency keys make the retry safe).
    #[error("the payment provider is unavailable: {0}")]
    Provider(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl PaymentError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        PaymentError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// The stable code of an `Invalid` error.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            PaymentError::Invalid { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        use axum::http::StatusCode;
        match e {
            PaymentError::Invalid {
                code: "unknown_payment",
                message,
            } => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            PaymentError::Invalid { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            PaymentError::Provider(m) => {
                tracing::warn!(error = %m, "payment provider unavailable");
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "payment_provider_unavailable",
                    "the payment provider is not answering; retry later",
                );
                e.retry_after = Some(5);
                e
            }
            PaymentError::Db(e) => e.into(),
        }
    }
}
