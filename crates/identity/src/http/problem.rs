//! The one mapping of the use cases' errors to problem documents: status, stable code, detail
//! and field errors. The web pages use it too, so a page and the API never disagree.

use crate::app::Error;
use crate::domain::Violation;
use crate::password::PasswordError;
use axum::http::StatusCode;
use platform::{ApiError, FieldError};

fn field_errors(v: Vec<Violation>) -> Vec<FieldError> {
    v.into_iter()
        .map(|v| FieldError::new(v.field, v.code, v.message))
        .collect()
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(v) => ApiError::validation(field_errors(v)),
            Error::InvalidParameters(v) => {
                let mut e = ApiError::validation(field_errors(v));
                e.status = StatusCode::BAD_REQUEST;
                e.code = "invalid_query";
                e
            }
            Error::EmailTaken => {
                ApiError::conflict("email_taken", "an account already uses this e-mail address")
                    .with_field(FieldError::new("email", "taken", "already in use"))
            }
            Error::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the e-mail address or the password is wrong",
            ),
            Error::TooManyAttempts { retry_after } => {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    "too many failed sign-ins; wait before trying again",
                );
                e.retry_after = Some(retry_after);
                e
            }
            Error::InvalidGrant(detail) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_grant", detail)
            }
            Error::RefreshTokenReused => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "refresh_token_reused",
                "this refresh token was already used; the session has been ended for safety",
            ),
            Error::NoSession => {
                ApiError::bad_request("no_session", "only a session token can sign out")
            }
            Error::NotAnAccount => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs a Comptoir account",
            ),
            Error::WrongPassword => ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_password",
                "the current password is wrong",
            )
            .with_field(FieldError::new(
                "current_password",
                "wrong",
                "does not match",
            )),
            Error::InvalidResetToken => ApiError::bad_request(
                "invalid_reset_token",
                "this reset link is unknown, used or expired; ask for a new one",
            ),
            Error::Forbidden(permission) => platform::authz::forbidden(permission),
            Error::NotFound(what) => ApiError::not_found(what),
            Error::Password(PasswordError::Busy) => {
                let mut e = ApiError::unavailable(
                    "too many sign-ins are being checked right now; retry in a moment",
                );
                e.retry_after = Some(1);
                e
            }
            Error::Password(e @ PasswordError::Failed(_)) => ApiError::internal(e),
            Error::Signing(e) => ApiError::internal(e),
            Error::Store(e) => ApiError::from(e),
        }
    }
}
