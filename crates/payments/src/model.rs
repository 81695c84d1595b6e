//! What the payments service exchanges with its callers: requests, outcomes, the payment as
//! stored, and errors.

use platform::ApiError;

pub use contracts::payments::{
    AuthOutcome, AuthorizeRequest, CaptureOutcome, PayError, Payment, PaymentMethod, PaymentStatus,
};

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
