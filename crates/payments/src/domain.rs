//! What the payments service exchanges with its callers: requests, outcomes, the payment as
//! stored (the types of [`contracts::payments`]), and its own errors. No IO, no HTTP: `http`
//! maps [`PaymentError`] to problem documents.

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
