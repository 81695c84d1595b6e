//! The one mapping of [`PaymentError`] to problem documents: an unknown payment is 404
//! `not_found`, a refused request 422 with its own code, an unreachable provider 503 with
//! `Retry-After`.

use crate::domain::PaymentError;
use platform::ApiError;

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
