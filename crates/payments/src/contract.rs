//! This service's side of [`contracts::payments`]: [`Payments`] implements [`PaymentsApi`] (the
//! in-process implementation), and [`internal_router`] serves it to other processes.

use crate::app::Payments;
use crate::domain::PaymentError;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use contracts::payments::{
    AuthOutcome, AuthorizeRequest, CaptureOutcome, PayError, PayResult, Payment, PaymentsApi,
    RefundRequest, TestAction,
};
use contracts::rpc::answer;
use futures_util::future::BoxFuture;
use kernel::PaymentId;
use std::time::Duration;

impl From<PaymentError> for PayError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Invalid { code, message } => PayError::Invalid {
                code: code.to_string(),
                message,
            },
            PaymentError::Provider(m) => PayError::Unavailable { detail: m },
            PaymentError::Db(e) => PayError::Unavailable {
                detail: format!("payments database: {e}"),
            },
        }
    }
}

impl PaymentsApi for Payments {
    fn authorize<'a>(&'a self, req: &'a AuthorizeRequest) -> BoxFuture<'a, PayResult<AuthOutcome>> {
        Box::pin(async move { Ok(Payments::authorize(self, req).await?) })
    }
    fn capture(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<CaptureOutcome>> {
        Box::pin(async move { Ok(Payments::capture(self, payment_id).await?) })
    }
    fn void(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<()>> {
        Box::pin(async move { Ok(Payments::void(self, payment_id).await?) })
    }
    fn refund<'a>(
        &'a self,
        payment_id: PaymentId,
        amount: kernel::Money,
        key: &'a str,
    ) -> BoxFuture<'a, PayResult<Payment>> {
        Box::pin(async move { Ok(Payments::refund(self, payment_id, amount, key).await?) })
    }
    fn get(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<Option<Payment>>> {
        Box::pin(async move { Ok(Payments::get(self, payment_id).await?) })
    }
    fn sync(&self, payment_id: PaymentId) -> BoxFuture<'_, PayResult<Option<Payment>>> {
        Box::pin(async move { Ok(Payments::sync(self, payment_id).await?) })
    }
    fn holding_money(
        &self,
        older_than: Duration,
        limit: i64,
    ) -> BoxFuture<'_, PayResult<Vec<Payment>>> {
        Box::pin(async move { Ok(Payments::holding_money(self, older_than, limit).await?) })
    }
    fn complete_test_action(
        &self,
        payment_id: PaymentId,
        approved: bool,
    ) -> BoxFuture<'_, PayResult<()>> {
        Box::pin(async move {
            if self.provider().name() != "test" {
                return Err(PayError::Invalid {
                    code: "provider_mismatch".into(),
                    message: "only the built-in test provider has a test 3-D Secure page".into(),
                });
            }
            crate::test_provider::TestProvider::complete_action(self.db(), payment_id, approved)
                .await
                .map(|_| ())
                .map_err(|e| PayError::Unavailable {
                    detail: e.to_string(),
                })
        })
    }
}

/// `/internal/payments/...`, for the orders service in another process. The wiring puts it
/// behind [`platform::caller::internal_calls_only`].
pub fn internal_router(payments: Payments) -> Router {
    Router::new()
        .route("/internal/payments/authorizations", post(authorize))
        .route("/internal/payments/holding-money", get(holding_money))
        .route("/internal/payments/{id}", get(get_payment))
        .route("/internal/payments/{id}/capture", post(capture))
        .route("/internal/payments/{id}/void", post(void))
        .route("/internal/payments/{id}/refunds", post(refund))
        .route("/internal/payments/{id}/test-action", post(test_action))
        .with_state(payments)
}

async fn authorize(
    State(p): State<Payments>,
    axum::Json(req): axum::Json<AuthorizeRequest>,
) -> Response {
    answer(PaymentsApi::authorize(&p, &req).await)
}

async fn capture(State(p): State<Payments>, Path(id): Path<PaymentId>) -> Response {
    answer(PaymentsApi::capture(&p, id).await)
}

async fn void(State(p): State<Payments>, Path(id): Path<PaymentId>) -> Response {
    answer(PaymentsApi::void(&p, id).await)
}

async fn refund(
    State(p): State<Payments>,
    Path(id): Path<PaymentId>,
    axum::Json(r): axum::Json<RefundRequest>,
) -> Response {
    answer(PaymentsApi::refund(&p, id, r.amount, &r.key).await)
}

#[derive(serde::Deserialize)]
struct GetQuery {
    #[serde(default)]
    sync: bool,
}

async fn get_payment(
    State(p): State<Payments>,
    Path(id): Path<PaymentId>,
    Query(q): Query<GetQuery>,
) -> Response {
    if q.sync {
        answer(PaymentsApi::sync(&p, id).await)
    } else {
        answer(PaymentsApi::get(&p, id).await)
    }
}

#[derive(serde::Deserialize)]
struct HoldingQuery {
    older_than_ms: u64,
    limit: i64,
}

async fn holding_money(State(p): State<Payments>, Query(q): Query<HoldingQuery>) -> Response {
    answer(PaymentsApi::holding_money(&p, Duration::from_millis(q.older_than_ms), q.limit).await)
}

async fn test_action(
    State(p): State<Payments>,
    Path(id): Path<PaymentId>,
    axum::Json(a): axum::Json<TestAction>,
) -> Response {
    answer(PaymentsApi::complete_test_action(&p, id, a.approved).await)
}
