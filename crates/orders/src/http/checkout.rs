//! `POST /api/checkout`: the key and the fingerprint, the answer to a key seen before, the
//! cart's claim (I9), then the plan (`app::checkout`), the saga, and its stored answer.

use super::OrdersState;
use super::problems::{cart_busy_retry, cart_held, checkout_problem, in_progress, key_reused};
use crate::app::{CartHeld, CheckoutRequest};
use crate::domain::{Channel, Fulfilment, Order};
use crate::saga::Start;
use crate::store;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::authz::PrincipalKind;
use platform::caller::Caller;
use platform::http::extract::HashedJson;
use platform::idempotency;
use platform::{ApiError, ApiResult, Problem};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    pub cart_id: kernel::CartId,
    /// Where the confirmation goes.
    pub email: String,
    pub fulfilment: Fulfilment,
    pub payment: contracts::payments::PaymentMethod,
}

/// Place an order from a cart: holds the stock, authorises the payment, confirms the order,
/// commits the stock and captures. `Idempotency-Key` is required.
#[utoipa::path(post, path = "/api/checkout", tag = "orders", request_body = CheckoutBody,
    params(("Idempotency-Key" = String, Header, description = "required: one per checkout attempt")),
    responses(
        (status = 201, description = "paid order", body = Order),
        (status = 402, description = "payment declined or failed; nothing taken", body = Problem),
        (status = 404, description = "no such cart, or not the caller's", body = Problem),
        (status = 409, description = "out of stock, price changed, or the same key still running", body = Problem),
        (status = 422, body = Problem),
        (status = 428, description = "Idempotency-Key missing", body = Problem),
        (status = 503, description = "not finished yet: retry with the same key", body = Problem)))]
pub(super) async fn checkout(
    State(st): State<OrdersState>,
    caller: Caller,
    headers: HeaderMap,
    body: HashedJson<CheckoutBody>,
) -> Response {
    let started = std::time::Instant::now();
    let (response, attempt) = match checkout_inner(&st, &caller, &headers, body).await {
        Ok(Answered::Attempt(r)) => (r, true),
        Ok(Answered::Retry(r)) => (r, false),
        Err(e) => (e.into_response(), true),
    };
    // One observation per checkout attempt: the answer to a key seen before (a replay, "still
    // running") is the same checkout asked again, not another one.
    if attempt {
        let outcome = match response.status().as_u16() {
            200..=299 => "paid",
            500..=599 => "failed",
            _ => "refused",
        };
        metrics::histogram!("comptoir_checkout_duration_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
    }
    response
}

/// What a checkout request was answered.
enum Answered {
    /// A new attempt: this request decided (ran the saga, or refused it).
    Attempt(Response),
    /// The answer to a key this caller used before.
    Retry(Response),
}

/// Where an order comes from: a till's key, another integration's key, or the online shop.
fn channel_of(caller: &Caller) -> Channel {
    match caller.principal() {
        Some(p) if p.kind == PrincipalKind::ApiKey && p.store.is_some() => Channel::Pos,
        Some(p) if p.kind == PrincipalKind::ApiKey => Channel::Api,
        _ => Channel::Web,
    }
}

async fn checkout_inner(
    st: &OrdersState,
    caller: &Caller,
    headers: &HeaderMap,
    body: HashedJson<CheckoutBody>,
) -> ApiResult<Answered> {
    let Some(key) = idempotency::key_from_headers(headers)? else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "idempotency_key_required",
            "a checkout needs an Idempotency-Key header (one per attempt, reused on retry)",
        ));
    };
    let b = body.value;
    // Keys are the caller's (an account, or every anonymous caller together): the same key
    // with another cart is another request, refused, never a second checkout.
    let scope = caller.scope();
    let o = &st.orders;
    if let Some(r) = retry_of(st, &scope, &key, &body.request_hash).await? {
        return Ok(Answered::Retry(r));
    }
    let viewer = caller.principal().map(|p| p.subject.clone());
    // I9: a cart another checkout holds is refused before anything is read or priced (the
    // unique index in `start_checkout` decides the races this read lets through).
    if let Some(holder) = store::checkout_holding_cart(&o.db, b.cart_id).await? {
        // the holder may be this very key, started since the lookup above: answer as a retry
        if let Some(r) = retry_of(st, &scope, &key, &body.request_hash).await? {
            return Ok(Answered::Retry(r));
        }
        return Err(cart_held(CartHeld::of(&holder, viewer.as_deref())));
    }
    let req = CheckoutRequest {
        cart_id: b.cart_id,
        email: b.email,
        fulfilment: b.fulfilment,
        payment: b.payment,
        channel: channel_of(caller),
    };
    let plan = o
        .plan_checkout(req, viewer)
        .await
        .map_err(checkout_problem)?;
    match o
        .start_checkout(&scope, &key, &body.request_hash, &plan)
        .await?
    {
        Start::New(id) => {
            o.run(id).await?;
            answer(st, id, &body.request_hash, &body.request_hash, true)
                .await
                .map(Answered::Attempt)
        }
        // the key was taken by a concurrent request of the same caller meanwhile
        Start::Done { status, body } => Ok(Answered::Retry(replay(status, body))),
        Start::Running(_) => Ok(Answered::Retry(in_progress().into_response())),
        Start::KeyReused => Ok(Answered::Retry(key_reused().into_response())),
        Start::CartTaken(holder) => Err(cart_held(CartHeld::of(&holder, plan.customer.as_deref()))),
        Start::Contended => Err(cart_busy_retry()),
    }
}

/// The answer to a key this caller used before (its replay, "still running", or 422 for
/// another request), or `None` for a new key.
async fn retry_of(
    st: &OrdersState,
    scope: &str,
    key: &str,
    request_hash: &str,
) -> ApiResult<Option<Response>> {
    match store::checkout_by_key(&st.orders.db, scope, key).await? {
        Some(existing) => Ok(Some(
            match answer(st, existing.id, &existing.request_hash, request_hash, false).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            },
        )),
        None => Ok(None),
    }
}

fn replay(status: u16, body: String) -> Response {
    let mut r = raw(status, body);
    r.headers_mut().insert(
        idempotency::REPLAYED_HEADER,
        HeaderValue::from_static("true"),
    );
    r
}

fn raw(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (ct, body) = if status.is_success() {
        ("application/json", body)
    } else {
        ("application/problem+json", with_request_id(body))
    };
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

/// A stored problem carries the id of the request that answers it (as every problem does), so
/// that a support request can quote it.
fn with_request_id(body: String) -> String {
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_str::<serde_json::Value>(&body)
    else {
        return body;
    };
    match platform::http::request_id::current() {
        Some(id) => {
            m.insert("request_id".into(), serde_json::Value::String(id));
        }
        None => {
            m.remove("request_id");
        }
    }
    serde_json::Value::Object(m).to_string()
}

/// The answer for a saga: its stored final response (a replay unless this request ran it),
/// or "not finished yet".
async fn answer(
    st: &OrdersState,
    id: kernel::OrderId,
    stored_hash: &str,
    request_hash: &str,
    ran_it: bool,
) -> ApiResult<Response> {
    if stored_hash != request_hash {
        return Err(key_reused());
    }
    let s = store::checkout(&st.orders.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("checkout"))?;
    match (s.response_status, s.response_body) {
        (Some(status), Some(body)) => {
            let status = u16::try_from(status).unwrap_or(500);
            Ok(if ran_it {
                raw(status, body)
            } else {
                replay(status, body)
            })
        }
        _ if ran_it => {
            let mut e = ApiError::unavailable(
                "the checkout is not finished yet; retry with the same Idempotency-Key",
            );
            e.retry_after = Some(2);
            Err(e)
        }
        _ => Err(in_progress()),
    }
}
