//! Routes of `/api/payments` and their OpenAPI description. The checkout saga calls
//! [`crate::Payments`] in process; over HTTP there is only reading a payment (back office) and
//! the providers' webhooks.
//!
//! `problem` holds the one mapping of [`crate::PaymentError`] to problem documents.

mod problem;

use crate::app::Payments;
use crate::domain::{Payment, PaymentMethod, PaymentStatus};
use crate::stripe::{self, SignatureError};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use platform::authz::{Access, RoutePolicy, perm};
use platform::caller::Caller;
use platform::config::Secret;
use platform::{ApiError, Problem};
use serde::Serialize;
use std::sync::Arc;

/// What the handlers share.
#[derive(Clone)]
pub struct PaymentsState {
    pub payments: Payments,
    /// Stripe webhook endpoint secrets (`whsec_…`): several during a rotation. Empty: every
    /// Stripe webhook is refused (and only polled for).
    pub stripe_webhook_secrets: Arc<Vec<Secret>>,
}

/// Who may call what. Every route of [`router`] is here: the tests check it.
pub fn policy() -> RoutePolicy {
    use axum::http::Method;
    RoutePolicy::new()
        .route(
            Method::GET,
            "/api/payments/{id}",
            Access::Permission(perm::ORDERS_READ),
        )
        .route(
            Method::POST,
            "/api/payments/webhooks/stripe",
            Access::Public,
        )
}

/// The payments routes (paths include `/api/payments`).
pub fn router(state: PaymentsState) -> Router {
    let policy = Arc::new(policy());
    Router::new()
        .route("/api/payments/{id}", get(get_payment))
        .route("/api/payments/webhooks/stripe", post(stripe_webhook))
        .route_layer(axum::middleware::from_fn(move |req, next| {
            platform::authz::enforce(policy.clone(), req, next)
        }))
        .with_state(state)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_payment, stripe_webhook),
    components(schemas(Problem, platform::FieldError, Payment, PaymentStatus, PaymentMethod, WebhookAck)),
    tags((name = "payments", description = "Payments: reading them, and the providers' webhooks"))
)]
pub struct PaymentsApi;

/// The answer to an accepted webhook.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookAck {
    pub received: bool,
    /// `applied`, `recorded` (payment not known yet), `ignored` (type not acted on) or
    /// `duplicate` (seen before).
    pub outcome: String,
}

/// Read a payment.
///
/// Payments are not bound to a store here: only principals not limited to one store (head
/// office, keys without a store) read them; store staff read them through their orders.
#[utoipa::path(
    get,
    path = "/api/payments/{id}",
    tag = "payments",
    params(("id" = uuid::Uuid, Path, description = "The payment id")),
    responses(
        (status = 200, description = "The payment", body = Payment),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs `orders:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment (or not yours to see)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn get_payment(
    State(st): State<PaymentsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.require()?;
    let id: kernel::PaymentId = id.parse().map_err(|_| ApiError::not_found("payment"))?;
    if !(principal.is_head_office() || principal.store.is_none()) {
        return Err(ApiError::not_found("payment"));
    }
    let p = st
        .payments
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("payment"))?;
    Ok(axum::Json(p).into_response())
}

/// Stripe's webhook endpoint.
///
/// The `Stripe-Signature` header must verify (HMAC-SHA256 of `t.body` under the endpoint
/// secret, any `v1` of a rotation, `t` within 300 s). A verified event is applied once (a
/// replay answers 200 and does nothing). One that does not verify answers 400
/// `invalid_signature`; if it names a payment we know, that payment's state is asked from
/// Stripe, never taken from the body.
#[utoipa::path(
    post,
    path = "/api/payments/webhooks/stripe",
    tag = "payments",
    request_body(content = String, content_type = "application/json", description = "A Stripe event"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix time>,v1=<hex HMAC-SHA256>[,v1=…]")),
    responses(
        (status = 200, description = "Accepted (applied, recorded, ignored or a duplicate)", body = WebhookAck),
        (status = 400, description = "The signature does not verify, or the event is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Could not be recorded now: Stripe retries later", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn stripe_webhook(
    State(st): State<PaymentsState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = st.payments.clock().now().timestamp();
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = stripe::verify_signature(header, &body, &st.stripe_webhook_secrets, now) {
        metrics::counter!("comptoir_payments_webhooks_total", "provider" => "stripe",
            "result" => "invalid_signature")
        .increment(1);
        tracing::warn!(reason = %e, "a Stripe webhook did not verify");
        if let Err(err) = st.payments.poll_unverified(&body).await {
            tracing::warn!(error = %err, "could not poll the payment an unverified webhook names");
        }
        let detail = match e {
            SignatureError::Missing => "the Stripe-Signature header is missing",
            SignatureError::Malformed => "the Stripe-Signature header is malformed",
            SignatureError::Mismatch => "the signature does not match the body",
            SignatureError::Stale => "the signature is too old or too far in the future",
        };
        return ApiError::bad_request("invalid_signature", detail).into_response();
    }
    match st.payments.handle_stripe_event(&body).await {
        Ok(outcome) => {
            metrics::counter!("comptoir_payments_webhooks_total", "provider" => "stripe",
                "result" => outcome.as_str())
            .increment(1);
            (
                StatusCode::OK,
                axum::Json(WebhookAck {
                    received: true,
                    outcome: outcome.as_str().to_string(),
                }),
            )
                .into_response()
        }
        Err(crate::PaymentError::Invalid { message, .. }) => {
            ApiError::bad_request("malformed_event", message).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
