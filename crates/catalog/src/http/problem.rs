//! The one mapping of the use cases' errors ([`app::Error`]) and the store's to problem
//! documents: status, code, detail and field errors.

use crate::app;
use crate::domain::Violation;
use crate::store::{StoreError, Unique};
use axum::http::StatusCode;
use platform::{ApiError, FieldError};

fn field_errors(v: Vec<Violation>) -> Vec<FieldError> {
    v.into_iter()
        .map(|v| FieldError::new(v.field, v.code, v.message))
        .collect()
}

/// A query parameter that parses but is refused: 400 `invalid_query`, like one that does not
/// parse (`ApiQuery`), with the parameter as a field error.
fn bad_query(field: &str, code: &'static str, message: &str) -> ApiError {
    let mut e = ApiError::validation(vec![FieldError::new(field, code, message)]);
    e.status = StatusCode::BAD_REQUEST;
    e.code = "invalid_query";
    e.detail = format!("query parameter {field}: {message}");
    e
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Sql(e) => e.into(),
            StoreError::Corrupt(m) => ApiError::internal(m),
        }
    }
}

impl From<app::Error> for ApiError {
    fn from(e: app::Error) -> Self {
        use app::Error as E;
        match e {
            E::Invalid(v) => ApiError::validation(field_errors(v)),
            E::BadQuery { field, message } => bad_query(field, "invalid_parameter", message),
            E::BadCursor => {
                let mut e = bad_query(
                    "cursor",
                    "invalid_parameter",
                    "not a cursor of this list; start again without it",
                );
                e.code = "invalid_cursor";
                e
            }
            E::Unpublished => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only the back office sees unpublished products",
            ),
            E::Taken {
                what,
                ref field,
                ref value,
            } => {
                let code = match what {
                    Unique::ProductSlug | Unique::BrandSlug | Unique::CategorySlug => "slug_taken",
                    Unique::Sku => "sku_taken",
                    Unique::Barcode => "barcode_taken",
                };
                ApiError::conflict(code, format!("{field} `{value}` is already used"))
                    .with_field(FieldError::new(field.as_str(), code, "already used"))
            }
            E::NotFound(what) => ApiError::not_found(what),
            E::VersionMismatch { current, given } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "version_mismatch",
                format!("the product is at version {current}, not {given}; reload it and retry"),
            ),
            E::ConcurrentUpdate => ApiError::conflict(
                "concurrent_update",
                "the product changed while this request ran; reload it and retry",
            ),
            E::Archived => ApiError::conflict(
                "product_archived",
                "an archived product cannot be changed back",
            ),
            E::Lost => ApiError::internal("a product written in this transaction is missing"),
            E::Store(e) => ApiError::from(e),
        }
    }
}
