//! The one mapping of the cart's errors ([`CartError`], and the store's [`StoreError`]) to
//! problem documents: status, code, detail and field errors.

use crate::app::CartError;
use crate::domain::MAX_QUANTITY;
use crate::store::StoreError;
use platform::{ApiError, FieldError};

impl From<CartError> for ApiError {
    fn from(e: CartError) -> Self {
        use axum::http::StatusCode;
        let unprocessable =
            |code, detail: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail);
        match e {
            CartError::NotFound => ApiError::not_found("cart"),
            CartError::LineNotFound => ApiError::not_found("cart line"),
            CartError::InvalidQuantity { min } => unprocessable("invalid_quantity", e.to_string())
                .with_field(FieldError::new(
                    "quantity",
                    "out_of_range",
                    format!("an integer from {min} to {MAX_QUANTITY}"),
                )),
            CartError::TooManyLines => unprocessable("too_many_lines", e.to_string()),
            CartError::UnknownSku(_) => unprocessable("unknown_sku", e.to_string()).with_field(
                FieldError::new("sku", "unknown", "no such SKU in the catalogue"),
            ),
            CartError::Unavailable(_) => unprocessable("unavailable", e.to_string()),
            CartError::CurrencyMismatch { .. } => unprocessable("currency_mismatch", e.to_string()),
            CartError::InvalidCurrency => ApiError::validation(vec![FieldError::new(
                "currency",
                "unknown_currency",
                format!(
                    "one of {}",
                    kernel::Currency::all_codes().collect::<Vec<_>>().join(", ")
                ),
            )]),
            CartError::Conflict => ApiError::conflict(
                "concurrent_update",
                "the cart was changed by other requests at the same time; retry",
            ),
            CartError::PricesUnavailable(m) => {
                tracing::error!(error = %m, "price lookup failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream_unavailable",
                    "the catalogue is not answering; retry later",
                )
            }
            CartError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::conflict(
                "concurrent_update",
                "the cart was changed by another request at the same time; retry",
            ),
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "cart store unavailable");
                ApiError::unavailable("the cart store is not answering; retry later")
            }
            StoreError::Sql(e) => e.into(),
            StoreError::Corrupt(m) | StoreError::Backend(m) => ApiError::internal(m),
        }
    }
}
