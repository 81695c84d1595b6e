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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invalid;

    type Answer = (
        u16,
        &'static str,
        String,
        Vec<(String, String)>,
        Option<u64>,
    );

    /// Status, code, detail, field errors (field, code) and `Retry-After` of an error's problem.
    fn answer(e: Error) -> Answer {
        let a = ApiError::from(e);
        let fields = a
            .errors
            .iter()
            .map(|f| (f.field.clone(), f.code.clone()))
            .collect();
        (a.status.as_u16(), a.code, a.detail, fields, a.retry_after)
    }

    fn field(f: &str, c: &str) -> (String, String) {
        (f.to_string(), c.to_string())
    }

    /// What clients branch on (status, code, field errors) and read (detail, `Retry-After`) is
    /// the answer the service gave before its use cases had errors of their own.
    #[test]
    fn every_error_keeps_its_problem() {
        let one = vec![invalid("email", "invalid_format", "not an e-mail address")];
        assert_eq!(
            answer(Error::Invalid(one.clone())),
            (
                422,
                "validation_failed",
                "email: not an e-mail address".into(),
                vec![field("email", "invalid_format")],
                None
            )
        );
        assert_eq!(
            answer(Error::InvalidParameters(one)),
            (
                400,
                "invalid_query",
                "email: not an e-mail address".into(),
                vec![field("email", "invalid_format")],
                None
            )
        );
        let cases = [
            (
                Error::EmailTaken,
                409,
                "email_taken",
                "an account already uses this e-mail address",
            ),
            (
                Error::InvalidCredentials,
                401,
                "invalid_credentials",
                "the e-mail address or the password is wrong",
            ),
            (
                Error::InvalidGrant("unknown session"),
                401,
                "invalid_grant",
                "unknown session",
            ),
            (
                Error::RefreshTokenReused,
                401,
                "refresh_token_reused",
                "this refresh token was already used; the session has been ended for safety",
            ),
            (
                Error::NoSession,
                400,
                "no_session",
                "only a session token can sign out",
            ),
            (
                Error::NotAnAccount,
                403,
                "forbidden",
                "this needs a Comptoir account",
            ),
            (
                Error::WrongPassword,
                403,
                "wrong_password",
                "the current password is wrong",
            ),
            (
                Error::InvalidResetToken,
                400,
                "invalid_reset_token",
                "this reset link is unknown, used or expired; ask for a new one",
            ),
            (
                Error::Forbidden("staff:manage"),
                403,
                "forbidden",
                "this needs the `staff:manage` permission",
            ),
            (
                Error::NotFound("API key"),
                404,
                "not_found",
                "API key not found",
            ),
            (
                Error::TooManyAttempts { retry_after: 7 },
                429,
                "too_many_attempts",
                "too many failed sign-ins; wait before trying again",
            ),
            (
                Error::Password(PasswordError::Busy),
                503,
                "unavailable",
                "too many sign-ins are being checked right now; retry in a moment",
            ),
            (
                Error::Password(PasswordError::Failed("x".into())),
                500,
                "internal",
                "an internal error occurred; quote the request id when reporting it",
            ),
            (
                Error::Store(sqlx::Error::PoolTimedOut),
                503,
                "unavailable",
                "the database is not answering; retry later",
            ),
        ];
        for (e, status, code, detail) in cases {
            let (s, c, d, _, _) = answer(e);
            assert_eq!((s, c, d.as_str()), (status, code, detail));
        }
        assert_eq!(answer(Error::EmailTaken).3, vec![field("email", "taken")]);
        assert_eq!(
            answer(Error::WrongPassword).3,
            vec![field("current_password", "wrong")]
        );
        assert_eq!(answer(Error::TooManyAttempts { retry_after: 7 }).4, Some(7));
        assert_eq!(answer(Error::Password(PasswordError::Busy)).4, Some(1));
    }
}
