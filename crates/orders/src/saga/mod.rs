//! The checkout saga, orchestrated here: hold stock → authorise payment → confirm the order →
//! commit the stock → capture. On a failure the steps already done are undone in reverse
//! (capture → refund, authorisation → void, committed stock → restock, hold → release, order →
//! cancelled).
//!
//! Durability: the saga's state is a row of `checkouts`, moved by guarded updates
//! (`WHERE state = <expected>`), one step at a time, each step logged in `saga_steps`. Every
//! call to another service is idempotent on the saga's id (the hold, the payment and the order
//! all carry it), so running a step twice — after a crash, or by the HTTP request and the
//! recovery worker at once — has one effect. No database lock is held across a call to the
//! payment provider: each step is its own short transaction.
//!
//! Recovery: a saga carries a lease (`locked_until`). The process running it extends the lease
//! at each step; [`Orders::recover_once`] (`recovery`) takes over every unfinished saga whose
//! lease ran out and drives it to `completed` or `compensated`.
//!
//! How it ends is a [`CheckoutOutcome`], stored as the answer the checkout's key replays
//! (`record_outcome`).
//!
//! - this file: starting a checkout, the runner's loop, moving between states
//! - `steps`: the forward steps, hold to capture
//! - `compensation`: undoing them
//! - `recovery`: the worker that takes over stalled sagas, and the orphan-capture refunds

mod compensation;
mod recovery;
mod steps;

use crate::Orders;
use crate::domain::{CheckoutOutcome, Failure, Plan, SagaState};
use crate::{store, telemetry};
use kernel::OrderId;
use platform::db::Tx;

/// The order number of a saga's order (the path other crates know).
pub use crate::domain::order_number;

/// After this many transient failures of a forward step, the saga compensates instead.
const MAX_FORWARD_ATTEMPTS: i32 = 30;

/// What starting a checkout found.
pub enum Start {
    /// A new saga: run it.
    New(OrderId),
    /// The same key and request finished before: replay this.
    Done { status: u16, body: String },
    /// The same key and request is still running.
    Running(OrderId),
    /// The same key was used with another request.
    KeyReused,
    /// Another checkout holds this cart (I9): still running, or ended with an order.
    CartTaken(store::CheckoutRow),
    /// The cart's claim kept changing hands while this request tried to take it.
    Contended,
}

/// Why a step could not finish now (it will be retried).
struct Transient(String);

impl From<sqlx::Error> for Transient {
    fn from(e: sqlx::Error) -> Self {
        Transient(format!("database: {e}"))
    }
}

enum Step {
    /// This runner moved the saga to that state: keep going.
    Moved(SagaState),
    /// The state changed in a way the runner must read back (compensating: the error).
    Reload,
    /// Terminal, or waiting for the provider: stop here.
    Stop,
}

impl Orders {
    /// Records a new checkout, or finds the one this key already started.
    pub async fn start_checkout(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        plan: &Plan,
    ) -> Result<Start, sqlx::Error> {
        // A key seen before, or a cart another checkout holds, is found by a unique
        // constraint (one key per scope; one live checkout per cart), not by a read first:
        // concurrent requests cannot both pass.
        let plan_json = serde_json::to_string(plan).unwrap_or_default();
        for _ in 0..3 {
            let id = OrderId::new();
            let now = self.now();
            let mut tx = self.db.begin().await?;
            let inserted = store::insert_checkout(
                &mut tx,
                id,
                scope,
                key,
                request_hash,
                plan.cart_id,
                &plan_json,
                self.lease_until(now),
                now,
            )
            .await;
            match inserted {
                Ok(()) => {
                    store::log_step(&mut tx, id, "start", "done", &plan.summary(), now).await?;
                    tx.commit().await?;
                    metrics::counter!("comptoir_checkouts_started_total").increment(1);
                    return Ok(Start::New(id));
                }
                Err(e) if platform::db::is_unique_violation(&e) => {
                    tx.rollback().await?;
                    if let Some(s) = store::checkout_by_key(&self.db, scope, key).await? {
                        return Ok(existing(s, request_hash));
                    }
                    if let Some(s) = store::checkout_holding_cart(&self.db, plan.cart_id).await? {
                        metrics::counter!("comptoir_checkouts_refused_cart_taken_total")
                            .increment(1);
                        return Ok(Start::CartTaken(s));
                    }
                    // the holder ended without an order meanwhile: the cart is free, try again
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Start::Contended)
    }

    /// Drives the saga as far as it can go now; returns the state it stopped in.
    pub async fn run(&self, id: OrderId) -> Result<SagaState, sqlx::Error> {
        let Some(mut s) = store::checkout(&self.db, id).await? else {
            return Ok(SagaState::Failed);
        };
        let plan: Plan = match serde_json::from_str(&s.plan) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(saga = %id, error = %e, "unreadable saga plan");
                return Ok(SagaState::parse(&s.state).unwrap_or(SagaState::Compensating));
            }
        };
        for _ in 0..16 {
            let state = SagaState::parse(&s.state).unwrap_or(SagaState::Compensating);
            if state.is_terminal() {
                return Ok(state);
            }
            let outcome = match state {
                SagaState::Started => self.step_hold(id, &plan).await,
                SagaState::StockHeld => self.step_authorize(id, &plan).await,
                SagaState::AwaitingAuthorization => self.step_poll_authorization(id, &s).await,
                SagaState::PaymentAuthorized => self.step_confirm(id, &plan).await,
                SagaState::OrderConfirmed => self.step_commit_stock(id).await,
                SagaState::StockCommitted => self.step_capture(id, &plan).await,
                SagaState::Compensating => self.step_compensate(id, &plan, &s).await,
                _ => Ok(Step::Stop),
            };
            match outcome {
                // this runner moved it: no need to read the row again
                Ok(Step::Moved(to)) => s.state = to.as_str().to_string(),
                // someone else moved it, or the step recorded more (an error): read it again
                Ok(Step::Reload) | Ok(Step::Stop) => {
                    let stop = matches!(outcome, Ok(Step::Stop));
                    match store::checkout(&self.db, id).await? {
                        Some(row) => s = row,
                        None => return Ok(SagaState::Failed),
                    }
                    if stop {
                        return Ok(SagaState::parse(&s.state).unwrap_or(state));
                    }
                }
                Err(Transient(why)) => {
                    self.retry_later(id, state, &s, &why).await?;
                    return Ok(state);
                }
            }
        }
        Ok(SagaState::parse(&s.state).unwrap_or(SagaState::Started))
    }

    /// A transient failure: log it, push the lease out (backoff), or give up and compensate.
    async fn retry_later(
        &self,
        id: OrderId,
        state: SagaState,
        s: &store::CheckoutRow,
        why: &str,
    ) -> Result<(), sqlx::Error> {
        tracing::warn!(saga = %id, state = state.as_str(), reason = why, "checkout step will be retried");
        let now = self.now();
        let backoff = (250i64 << s.attempts.clamp(0, 7)).min(30_000);
        let mut tx = self.db.begin().await?;
        store::bump_attempts(&mut tx, id, now + backoff, now).await?;
        store::log_step(&mut tx, id, state.as_str(), "retry", why, now).await?;
        let give_up = s.attempts + 1 >= MAX_FORWARD_ATTEMPTS
            && matches!(
                state,
                SagaState::Started
                    | SagaState::StockHeld
                    | SagaState::AwaitingAuthorization
                    | SagaState::PaymentAuthorized
                    | SagaState::OrderConfirmed
            );
        let mut gave_up = false;
        if give_up {
            store::set_error(&mut tx, id, Failure::CheckoutUnavailable.code(), why).await?;
            gave_up = store::advance(
                &mut tx,
                id,
                state,
                SagaState::Compensating,
                now,
                self.lease_until(now),
            )
            .await?;
        }
        tx.commit().await?;
        if gave_up {
            telemetry::compensation(telemetry::step_of(state));
        }
        Ok(())
    }

    /// Moves the saga one state forward, logging the step.
    async fn advance(
        &self,
        id: OrderId,
        from: SagaState,
        to: SagaState,
        step: &str,
        detail: &str,
    ) -> Result<Step, Transient> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let moved = store::advance(&mut tx, id, from, to, now, self.lease_until(now)).await?;
        if moved {
            store::log_step(&mut tx, id, step, "done", detail, now).await?;
        }
        tx.commit().await?;
        // waiting for the provider is not the end of the step
        if moved && to != SagaState::AwaitingAuthorization {
            telemetry::step(step, true);
        }
        Ok(if moved { Step::Moved(to) } else { Step::Reload })
    }

    /// Starts compensating with an error the client will see.
    async fn compensate(
        &self,
        id: OrderId,
        from: SagaState,
        step: &str,
        failure: Failure,
        detail: &str,
    ) -> Result<Step, Transient> {
        let code = failure.code();
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let moved = store::advance(
            &mut tx,
            id,
            from,
            SagaState::Compensating,
            now,
            self.lease_until(now),
        )
        .await?;
        if moved {
            store::set_error(&mut tx, id, code, detail).await?;
            store::log_step(
                &mut tx,
                id,
                step,
                "failed",
                &format!("{code}: {detail}"),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        if moved {
            telemetry::compensation(step);
        }
        Ok(Step::Reload)
    }
}

fn existing(s: store::CheckoutRow, request_hash: &str) -> Start {
    if s.request_hash != request_hash {
        return Start::KeyReused;
    }
    match (s.response_status, s.response_body) {
        (Some(status), Some(body)) => Start::Done {
            status: u16::try_from(status).unwrap_or(500),
            body,
        },
        _ => Start::Running(s.id),
    }
}

/// Stores how a checkout ended as the answer its `Idempotency-Key` replays.
///
/// The outcome is stored rendered (`response_status`, `response_body`: the problem document or
/// the order, by the one pure renderer `http::render_outcome`), not as a typed column: rows
/// written before hold exactly that, so old and new rows replay by the same path, byte for
/// byte, with no migration; and the web's checkout page reads those columns.
async fn record_outcome(
    tx: &mut Tx,
    id: OrderId,
    outcome: &CheckoutOutcome,
) -> Result<(), sqlx::Error> {
    let (status, body) = crate::http::render_outcome(outcome);
    store::set_response(tx, id, status, &body).await
}
