//! The one mapping of orders' errors to what a client sees: the app's errors
//! ([`CheckoutError`], [`OrderError`]), the answers about a held cart or a key, and the
//! rendering of a checkout's outcome, with their status, code, detail, field errors and
//! `Retry-After`.

use crate::app::{CartHeld, CheckoutError, OrderError};
use crate::domain::rules::RuleError;
use crate::domain::{CheckoutOutcome, order_number};
use axum::http::StatusCode;
use contracts::carts::PriceChange;
use contracts::inventory::{Shortage, StockError};
use contracts::payments::PayError;
use platform::{ApiError, FieldError};

pub(super) fn invalid(field: &str, code: &'static str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, code, message)])
}

/// A query parameter that parses but names nothing: 400 `invalid_query`, like one that does not
/// parse (`ApiQuery`).
pub(super) fn bad_query(field: &str, code: &'static str, message: &str) -> ApiError {
    let mut e = invalid(field, code, message);
    e.status = StatusCode::BAD_REQUEST;
    e.code = "invalid_query";
    e.detail = format!("query parameter {field}: {message}");
    e
}

/// A checkout request that could not become a plan.
pub(super) fn checkout_problem(e: CheckoutError) -> ApiError {
    match e {
        CheckoutError::Rule(r) => rule_problem(r),
        CheckoutError::CartNotFound => ApiError::not_found("cart"),
        CheckoutError::CartsUnavailable(detail) => {
            tracing::warn!(error = %detail, "carts unavailable at checkout");
            ApiError::unavailable("the cart service is not answering; retry later")
        }
        CheckoutError::EmptyCart => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_cart",
            "the cart is empty",
        ),
        CheckoutError::PriceChanged(changes) => {
            let mut e = ApiError::conflict(
                "price_changed",
                "prices or availability changed since the items were added; review the cart",
            );
            e.errors = changes
                .iter()
                .map(|c| {
                    let msg = match c {
                        PriceChange::Changed { old, new, .. } => {
                            format!("price changed from {old} to {new}")
                        }
                        PriceChange::Unavailable { .. } => "no longer available".to_string(),
                    };
                    FieldError::new(c.sku(), "price_changed", msg)
                })
                .collect();
            e
        }
        CheckoutError::UnknownStore => invalid(
            "fulfilment.store",
            "unknown_store",
            "not a click & collect store",
        ),
        CheckoutError::Stock(e) => stock_problem(e),
    }
}

fn rule_problem(r: RuleError) -> ApiError {
    match r {
        RuleError::InvalidEmail => invalid("email", "invalid_email", "an e-mail address"),
        RuleError::InvalidAddress(f) => invalid(
            &format!("fulfilment.address.{f}"),
            "invalid_address",
            "required, and not too long",
        ),
        RuleError::InvalidCountry => invalid(
            "fulfilment.address.country",
            "invalid_country",
            "an ISO 3166-1 alpha-2 code such as FR",
        ),
        RuleError::AmountTooLarge => invalid("cart", "amount_too_large", "amount too large"),
        e @ RuleError::CurrencyMismatch { what, .. } => invalid(
            if what == "home delivery" {
                "fulfilment"
            } else {
                "cart"
            },
            "currency_mismatch",
            &format!("{e}: choose click & collect, or a cart in the shop's currency"),
        ),
    }
}

/// A staff action on an order that did not happen.
pub(super) fn order_problem(e: OrderError) -> ApiError {
    match e {
        OrderError::NotFound => ApiError::not_found("order"),
        OrderError::WrongState { from, to } => ApiError::conflict(
            "invalid_transition",
            format!(
                "an order that is {} cannot become {}",
                from.as_str(),
                to.as_str()
            ),
        ),
        OrderError::InvalidAmount { left } => {
            let detail = format!("between 1 and {} minor units ({left})", left.minor());
            invalid("amount", "invalid_amount", &detail)
        }
        OrderError::Payments(e) => payment_error(e),
        OrderError::Stock(e) => stock_problem(e),
        OrderError::Db(e) => e.into(),
    }
}

/// The answer to a checkout of a cart that another checkout holds (I9): the 404 a stranger
/// gets for the cart itself, or which checkout holds it.
pub(super) fn cart_held(held: CartHeld) -> ApiError {
    match held {
        CartHeld::Hidden => ApiError::not_found("cart"),
        CartHeld::CheckedOut(id) => {
            let number = order_number(id);
            ApiError::conflict(
                "cart_checked_out",
                format!("this cart was already checked out as order {number} ({id})"),
            )
            .with_field(FieldError::new(
                "cart_id",
                "cart_checked_out",
                format!("order {id}"),
            ))
        }
        CartHeld::InProgress(id) => {
            let mut e = ApiError::conflict(
                "cart_checkout_in_progress",
                format!(
                    "this cart is already being checked out (checkout {id}); wait for its \
                     answer, or retry that attempt with its own Idempotency-Key"
                ),
            )
            .with_field(FieldError::new(
                "cart_id",
                "cart_checkout_in_progress",
                format!("checkout {id}"),
            ));
            e.retry_after = Some(1);
            e
        }
    }
}

pub(super) fn cart_busy_retry() -> ApiError {
    let mut e = ApiError::conflict(
        "cart_checkout_in_progress",
        "another checkout of this cart started and ended meanwhile; retry shortly",
    );
    e.retry_after = Some(1);
    e
}

pub(super) fn in_progress() -> ApiError {
    let mut e = ApiError::conflict(
        "idempotency_in_progress",
        "this checkout is still being processed; retry with the same key shortly",
    );
    e.retry_after = Some(1);
    e
}

pub(super) fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different checkout; use a new key",
    )
}

/// A payments answer as a problem: the same status and code a client gets from payments.
fn payment_error(e: PayError) -> ApiError {
    match &e {
        PayError::Invalid { message, .. } => {
            let code = e.code().unwrap_or("payment_refused");
            if code == "unknown_payment" {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message.clone())
            } else {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.clone())
            }
        }
        PayError::Unavailable { detail } => {
            tracing::warn!(error = %detail, "payments unavailable");
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "payment_provider_unavailable",
                "the payment provider is not answering; retry later",
            );
            e.retry_after = Some(5);
            e
        }
    }
}

/// An inventory answer as a problem.
fn stock_problem(e: StockError) -> ApiError {
    match e {
        StockError::UnknownLocation { .. } => ApiError::not_found("location"),
        StockError::Invalid { message } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_stock_change",
            message,
        ),
        StockError::OutOfStock { shortages } => {
            let mut e = ApiError::conflict("out_of_stock", "not enough stock for this change");
            e.errors = contracts::inventory::shortage_errors(&shortages);
            e
        }
        StockError::HoldLost { .. } => {
            ApiError::conflict("hold_lost", "the hold is no longer active")
        }
        StockError::Unavailable { detail } => {
            tracing::warn!(error = %detail, "inventory unavailable");
            let mut e = ApiError::unavailable("inventory is not answering; retry later");
            e.retry_after = Some(2);
            e
        }
    }
}

/// The stored answer of a checkout that ended: the paid order (201), or the problem of its
/// failure. Pure, so that the saga stores exactly what a replay sends (`saga::record_outcome`).
pub fn render_outcome(outcome: &CheckoutOutcome) -> (u16, String) {
    match outcome {
        CheckoutOutcome::Paid(order) => (201, serde_json::to_string(order).unwrap_or_default()),
        CheckoutOutcome::Failed {
            failure,
            detail,
            shortages,
        } => error_response(failure.code(), detail, shortages),
    }
}

/// The problem of a failed checkout. Matched on the code's text, so that the error-code table's
/// test reads each status here.
fn error_response(code: &str, detail: &str, shortages: &[Shortage]) -> (u16, String) {
    let (status, title, message) = match code {
        "out_of_stock" => (409, "Conflict", "some items are out of stock"),
        "payment_declined" => (402, "Payment Required", "the payment was declined"),
        "payment_failed" => (
            402,
            "Payment Required",
            "the payment could not be completed",
        ),
        "payment_timeout" => (
            402,
            "Payment Required",
            "the payment was not confirmed in time",
        ),
        "invalid_payment" => (
            422,
            "Unprocessable Entity",
            "the payment details were refused",
        ),
        "hold_expired" => (
            409,
            "Conflict",
            "the stock reservation expired; please try again",
        ),
        "unknown_location" => (422, "Unprocessable Entity", "unknown fulfilment location"),
        "invalid_order" => (422, "Unprocessable Entity", "the order is not valid"),
        "checkout_failed" => (
            503,
            "Service Unavailable",
            "the checkout could not be completed",
        ),
        // `checkout_unavailable`: the saga gave up retrying a forward step
        _ => (
            503,
            "Service Unavailable",
            "the checkout could not be completed",
        ),
    };
    let errors = if code == "out_of_stock" {
        contracts::inventory::shortage_errors(shortages)
    } else {
        Vec::new()
    };
    let body = serde_json::json!({
        "type": format!("urn:comptoir:problem:{code}"),
        "title": title,
        "status": status,
        "detail": if code == "out_of_stock" { message.to_string() } else { format!("{message} ({detail})") },
        "code": code,
        "errors": errors,
    });
    (status, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Failure;

    /// Checkouts stored before the saga's outcome was typed hold these exact bodies; a new
    /// checkout stores the same bytes, so every stored answer replays alike.
    #[test]
    fn a_failed_checkout_renders_the_problem_stored_before() {
        let declined = CheckoutOutcome::failed(Failure::PaymentDeclined, "card_declined: no");
        assert_eq!(
            render_outcome(&declined),
            (
                402,
                r#"{"code":"payment_declined","detail":"the payment was declined (card_declined: no)","errors":[],"status":402,"title":"Payment Required","type":"urn:comptoir:problem:payment_declined"}"#
                    .to_string()
            )
        );
        let gave_up = CheckoutOutcome::failed(Failure::CheckoutUnavailable, "inventory: down");
        assert_eq!(
            render_outcome(&gave_up),
            (
                503,
                r#"{"code":"checkout_unavailable","detail":"the checkout could not be completed (inventory: down)","errors":[],"status":503,"title":"Service Unavailable","type":"urn:comptoir:problem:checkout_unavailable"}"#
                    .to_string()
            )
        );
        let short = r#"[{"sku":"A-1","requested":3,"available":1}]"#;
        let (status, body) = render_outcome(&CheckoutOutcome::failed(Failure::OutOfStock, short));
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(status, 409);
        assert_eq!(body["detail"], "some items are out of stock");
        assert_eq!(body["errors"][0]["field"], "A-1");
    }
}
