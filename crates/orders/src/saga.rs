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
//! at each step; [`Orders::recover_once`] takes over every unfinished saga whose lease ran out
//! and drives it to `completed` or `compensated`.

use crate::model::*;
use crate::store;
use crate::{Orders, SERVICE};
use contracts::inventory::{HoldLine, HoldState, StockError};
use contracts::payments::{AuthOutcome, AuthorizeRequest, CaptureOutcome, PayError, PaymentStatus};
use platform::bus::{self, Event, topic};
use platform::fail;
use std::time::Duration;
use uuid::Uuid;

/// After this many transient failures of a forward step, the saga compensates instead.
const MAX_FORWARD_ATTEMPTS: i32 = 30;

/// What starting a checkout found.
pub enum Start {
    /// A new saga: run it.
    New(Uuid),
    /// The same key and request finished before: replay this.
    Done { status: u16, body: String },
    /// The same key and request is still running.
    Running(Uuid),
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
    fn now(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn lease_until(&self, now: i64) -> i64 {
        now + self.settings.saga_lease.as_millis() as i64
    }

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
            let id = Uuid::now_v7();
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
    pub async fn run(&self, id: Uuid) -> Result<SagaState, sqlx::Error> {
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
        id: Uuid,
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
        if give_up {
            store::set_error(&mut tx, id, "checkout_unavailable", why).await?;
            store::advance(
                &mut tx,
                id,
                state,
                SagaState::Compensating,
                now,
                self.lease_until(now),
            )
            .await?;
        }
        tx.commit().await
    }

    /// Moves the saga one state forward, logging the step.
    async fn advance(
        &self,
        id: Uuid,
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
        Ok(if moved { Step::Moved(to) } else { Step::Reload })
    }

    /// Starts compensating with an error the client will see.
    async fn compensate(
        &self,
        id: Uuid,
        from: SagaState,
        step: &str,
        code: &str,
        detail: &str,
    ) -> Result<Step, Transient> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        if store::advance(
            &mut tx,
            id,
            from,
            SagaState::Compensating,
            now,
            self.lease_until(now),
        )
        .await?
        {
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
        Ok(Step::Reload)
    }

    async fn step_hold(&self, id: Uuid, plan: &Plan) -> Result<Step, Transient> {
        let lines: Vec<HoldLine> = plan
            .lines
            .iter()
            .map(|l| HoldLine {
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect();
        match self
            .inventory
            .hold(id, &plan.location, &lines, Some(self.settings.hold_ttl))
            .await
        {
            Ok(expires) => {
                fail::point("saga.after_hold");
                self.advance(
                    id,
                    SagaState::Started,
                    SagaState::StockHeld,
                    "hold_stock",
                    &format!("held at {} until {expires}", plan.location),
                )
                .await
            }
            Err(StockError::OutOfStock { shortages }) => {
                let detail = serde_json::to_string(&shortages).unwrap_or_default();
                self.finish_failed(id, "hold_stock", "out_of_stock", &detail)
                    .await
            }
            Err(StockError::UnknownLocation { location }) => {
                self.finish_failed(id, "hold_stock", "unknown_location", &location)
                    .await
            }
            Err(StockError::Invalid { message }) => {
                self.finish_failed(id, "hold_stock", "invalid_order", &message)
                    .await
            }
            Err(StockError::HoldLost { .. }) => {
                self.compensate(
                    id,
                    SagaState::Started,
                    "hold_stock",
                    "hold_expired",
                    "the stock hold expired",
                )
                .await
            }
            Err(e @ StockError::Unavailable { .. }) => Err(Transient(e.to_string())),
        }
    }

    /// Ends a saga that took nothing (no compensation needed).
    async fn finish_failed(
        &self,
        id: Uuid,
        step: &str,
        code: &str,
        detail: &str,
    ) -> Result<Step, Transient> {
        let now = self.now();
        let (status, body) = error_response(code, detail);
        let mut tx = self.db.begin().await?;
        if store::advance(&mut tx, id, SagaState::Started, SagaState::Failed, now, now).await? {
            store::set_error(&mut tx, id, code, detail).await?;
            store::set_response(&mut tx, id, status, &body).await?;
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
        metrics::counter!("comptoir_checkouts_total", "outcome" => code.to_string()).increment(1);
        Ok(Step::Stop)
    }

    async fn step_authorize(&self, id: Uuid, plan: &Plan) -> Result<Step, Transient> {
        let req = AuthorizeRequest {
            payment_id: id,
            order_ref: order_number(id),
            amount: plan.total,
            currency: kernel::Currency::parse(&plan.currency)
                .map_err(|e| Transient(e.to_string()))?,
            method: plan.payment.clone(),
            customer_email: Some(plan.email.clone()),
        };
        match self.payments.authorize(&req).await {
            Ok(AuthOutcome::Authorized(p)) => {
                fail::point("saga.after_authorize");
                self.advance(
                    id,
                    SagaState::StockHeld,
                    SagaState::PaymentAuthorized,
                    "authorize_payment",
                    &format!("{} {} authorised ({})", p.amount, p.currency, p.provider),
                )
                .await
            }
            Ok(AuthOutcome::Pending(_)) => {
                self.advance(
                    id,
                    SagaState::StockHeld,
                    SagaState::AwaitingAuthorization,
                    "authorize_payment",
                    "the provider needs more time; polling",
                )
                .await?;
                Ok(Step::Stop)
            }
            Ok(AuthOutcome::Declined { code, message }) => {
                self.compensate(
                    id,
                    SagaState::StockHeld,
                    "authorize_payment",
                    "payment_declined",
                    &format!("{code}: {message}"),
                )
                .await
            }
            Err(PayError::Invalid { code, message }) => {
                self.compensate(
                    id,
                    SagaState::StockHeld,
                    "authorize_payment",
                    "invalid_payment",
                    &format!("{code}: {message}"),
                )
                .await
            }
            Err(e) => Err(Transient(format!("payments: {e}"))),
        }
    }

    async fn step_poll_authorization(
        &self,
        id: Uuid,
        s: &store::CheckoutRow,
    ) -> Result<Step, Transient> {
        let p = self
            .payments
            .sync(id)
            .await
            .map_err(|e| Transient(format!("payments: {e}")))?;
        let from = SagaState::AwaitingAuthorization;
        match p.map(|p| p.status) {
            Some(PaymentStatus::Authorized) => {
                self.advance(
                    id,
                    from,
                    SagaState::PaymentAuthorized,
                    "authorize_payment",
                    "authorised",
                )
                .await
            }
            Some(PaymentStatus::Failed) | Some(PaymentStatus::Voided) | None => {
                self.compensate(
                    id,
                    from,
                    "authorize_payment",
                    "payment_declined",
                    "not authorised",
                )
                .await
            }
            Some(_) => {
                // Still pending: give up when the hold would expire.
                let age = self.now() - s.created_at;
                if age > self.settings.hold_ttl.as_millis() as i64 {
                    self.compensate(
                        id,
                        from,
                        "authorize_payment",
                        "payment_timeout",
                        "no answer in time",
                    )
                    .await
                } else {
                    Err(Transient("payment still pending".into()))
                }
            }
        }
    }

    async fn step_confirm(&self, id: Uuid, plan: &Plan) -> Result<Step, Transient> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        if store::order(tx.conn(), id).await?.is_none() {
            let order = plan_to_order(id, plan, now);
            store::insert_order(&mut tx, &order).await?;
            store::history(
                &mut tx,
                id,
                None,
                OrderStatus::Pending,
                "checkout",
                "placed",
                now,
            )
            .await?;
            bus::enqueue(
                tx.conn(),
                &Event::new(
                    SERVICE,
                    topic::ORDER_PLACED,
                    &order_event(&order, None),
                    now,
                ),
            )
            .await?;
        }
        let moved = store::advance(
            &mut tx,
            id,
            SagaState::PaymentAuthorized,
            SagaState::OrderConfirmed,
            now,
            self.lease_until(now),
        )
        .await?;
        if moved {
            store::log_step(&mut tx, id, "confirm_order", "done", &order_number(id), now).await?;
        }
        tx.commit().await?;
        self.wake();
        fail::point("saga.after_confirm");
        Ok(if moved {
            Step::Moved(SagaState::OrderConfirmed)
        } else {
            Step::Reload
        })
    }

    async fn step_commit_stock(&self, id: Uuid) -> Result<Step, Transient> {
        match self.inventory.commit(id).await {
            Ok(()) => {
                fail::point("saga.after_commit");
                let now = self.now();
                let mut tx = self.db.begin().await?;
                let moved = store::advance(
                    &mut tx,
                    id,
                    SagaState::OrderConfirmed,
                    SagaState::StockCommitted,
                    now,
                    self.lease_until(now),
                )
                .await?;
                if moved {
                    store::transition(
                        &mut tx,
                        id,
                        OrderStatus::Pending,
                        OrderStatus::AwaitingPayment,
                        "checkout",
                        "stock committed",
                        now,
                    )
                    .await?;
                    store::log_step(&mut tx, id, "commit_stock", "done", "sold", now).await?;
                }
                tx.commit().await?;
                Ok(if moved {
                    Step::Moved(SagaState::StockCommitted)
                } else {
                    Step::Reload
                })
            }
            Err(StockError::HoldLost { .. }) => {
                self.compensate(
                    id,
                    SagaState::OrderConfirmed,
                    "commit_stock",
                    "hold_expired",
                    "the stock hold expired before the order was confirmed",
                )
                .await
            }
            Err(e) => Err(Transient(format!("inventory: {e}"))),
        }
    }

    async fn step_capture(&self, id: Uuid, plan: &Plan) -> Result<Step, Transient> {
        match self.payments.capture(id).await {
            Ok(CaptureOutcome::Captured(p)) => {
                fail::point("saga.after_capture");
                let now = self.now();
                let mut tx = self.db.begin().await?;
                if store::advance(
                    &mut tx,
                    id,
                    SagaState::StockCommitted,
                    SagaState::Completed,
                    now,
                    now,
                )
                .await?
                {
                    store::transition(
                        &mut tx,
                        id,
                        OrderStatus::AwaitingPayment,
                        OrderStatus::Paid,
                        "checkout",
                        &format!("captured {} {}", p.captured, p.currency),
                        now,
                    )
                    .await?;
                    let order = store::order(tx.conn(), id)
                        .await?
                        .ok_or_else(|| Transient("order row missing".into()))?;
                    bus::enqueue(
                        tx.conn(),
                        &Event::new(SERVICE, topic::ORDER_PAID, &order_event(&order, None), now),
                    )
                    .await?;
                    let body = serde_json::to_string(&order).unwrap_or_default();
                    store::set_response(&mut tx, id, 201, &body).await?;
                    store::log_step(&mut tx, id, "capture_payment", "done", "paid", now).await?;
                }
                tx.commit().await?;
                self.wake();
                metrics::counter!("comptoir_checkouts_total", "outcome" => "paid").increment(1);
                if let Err(e) = self.carts.checked_out(plan.cart_id).await {
                    tracing::warn!(cart = %plan.cart_id, error = %e, "could not clear a checked-out cart");
                }
                Ok(Step::Stop)
            }
            Ok(CaptureOutcome::Failed { code, message }) => {
                self.compensate(
                    id,
                    SagaState::StockCommitted,
                    "capture_payment",
                    "payment_failed",
                    &format!("{code}: {message}"),
                )
                .await
            }
            Err(PayError::Invalid { code, message }) => {
                self.compensate(
                    id,
                    SagaState::StockCommitted,
                    "capture_payment",
                    "payment_failed",
                    &format!("{code}: {message}"),
                )
                .await
            }
            // Unknown outcome (timeout, lost response): retry; the capture is idempotent.
            Err(e) => Err(Transient(format!("payments: {e}"))),
        }
    }

    /// Undoes whatever was done, judged from the other services' own records (each undo is
    /// idempotent, so a crash in the middle is resumed by running this again).
    async fn step_compensate(
        &self,
        id: Uuid,
        _plan: &Plan,
        s: &store::CheckoutRow,
    ) -> Result<Step, Transient> {
        let pe = |e: PayError| Transient(format!("payments: {e}"));
        let ie = |e: StockError| Transient(format!("inventory: {e}"));
        // 1. money
        if let Some(p) = self.payments.get(id).await.map_err(pe)? {
            match p.status {
                PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {
                    let left = p.captured - p.refunded;
                    if left > 0 {
                        self.payments
                            .refund(id, left, &format!("{id}:compensation"))
                            .await
                            .map_err(pe)?;
                    }
                }
                PaymentStatus::Pending | PaymentStatus::Authorized => {
                    self.payments.void(id).await.map_err(pe)?;
                }
                _ => {}
            }
        }
        fail::point("saga.mid_compensation");
        // 2. stock
        match self.inventory.hold_state(id).await.map_err(ie)? {
            Some(HoldState::Active) => {
                self.inventory.release(id).await.map_err(ie)?;
            }
            Some(HoldState::Committed) => {
                self.inventory
                    .restock(id, "compensation")
                    .await
                    .map_err(ie)?;
            }
            _ => {}
        }
        // 3. the order, and the end of the saga
        let now = self.now();
        let code = s
            .error_code
            .clone()
            .unwrap_or_else(|| "checkout_failed".into());
        let detail = s.error_detail.clone().unwrap_or_default();
        let (status, body) = error_response(&code, &detail);
        let mut tx = self.db.begin().await?;
        if let Some(order) = store::order(tx.conn(), id).await?
            && order.status != OrderStatus::Cancelled
        {
            store::transition(
                &mut tx,
                id,
                order.status,
                OrderStatus::Cancelled,
                "checkout",
                &code,
                now,
            )
            .await?;
            bus::enqueue(
                tx.conn(),
                &Event::new(
                    SERVICE,
                    topic::ORDER_CANCELLED,
                    &order_event(&order, Some(&code)),
                    now,
                ),
            )
            .await?;
        }
        if store::advance(
            &mut tx,
            id,
            SagaState::Compensating,
            SagaState::Compensated,
            now,
            now,
        )
        .await?
        {
            store::set_response(&mut tx, id, status, &body).await?;
            store::log_step(&mut tx, id, "compensate", "compensated", &code, now).await?;
        }
        tx.commit().await?;
        self.wake();
        metrics::counter!("comptoir_checkouts_total", "outcome" => code).increment(1);
        Ok(Step::Stop)
    }

    /// One pass of the recovery worker: takes over every unfinished saga whose lease ran out.
    /// Returns how many it ran.
    pub async fn recover_once(&self) -> Result<usize, sqlx::Error> {
        let now = self.now();
        let due = store::due_checkouts(&self.db, now, 50).await?;
        let mut n = 0;
        for (id, locked_until) in due {
            if store::claim(&self.db, id, locked_until, self.lease_until(now)).await? {
                n += 1;
                self.run(id).await?;
            }
        }
        Ok(n)
    }

    /// Reconciliation (RELIABILITY.md I4, D3): money still captured for which no paid order
    /// exists — the order was cancelled, or no order was ever confirmed and the saga has
    /// ended — is refunded once it is older than `orders.orphan_refund_seconds`. Returns how
    /// many payments were refunded.
    pub async fn refund_orphans(&self) -> Result<usize, sqlx::Error> {
        let held = match self
            .payments
            .holding_money(self.settings.orphan_after, 100)
            .await
        {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation: payments unavailable");
                return Ok(0);
            }
        };
        let mut n = 0;
        for p in held {
            let order = store::get_order(&self.db, p.id).await?;
            let saga_open = store::checkout(&self.db, p.id)
                .await?
                .and_then(|s| SagaState::parse(&s.state))
                .is_some_and(|s| !s.is_terminal());
            let orphan = match order {
                Some(o) => o.status == OrderStatus::Cancelled,
                None => !saga_open,
            };
            if !orphan {
                continue;
            }
            let left = p.captured - p.refunded;
            match self
                .payments
                .refund(p.id, left, &format!("{}:orphan", p.id))
                .await
            {
                Ok(_) => {
                    n += 1;
                    metrics::counter!("comptoir_orphan_captures_refunded_total").increment(1);
                    tracing::warn!(payment = %p.id, amount = left, "refunded an orphan capture");
                }
                Err(e) => tracing::warn!(payment = %p.id, error = %e, "orphan refund failed"),
            }
        }
        Ok(n)
    }

    /// Runs [`Orders::recover_once`] now and then every `every`.
    pub fn spawn_recovery(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune = std::time::Instant::now();
            loop {
                tick.tick().await;
                if me.db.is_closed() {
                    return;
                }
                if last_prune.elapsed() >= Duration::from_secs(3600) {
                    last_prune = std::time::Instant::now();
                    if let Err(e) = bus::prune_processed(&me.db).await {
                        tracing::warn!(error = %e, "pruning processed event ids");
                    }
                }
                match me.recover_once().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(sagas = n, "recovery worker resumed checkouts"),
                    Err(e) => tracing::warn!(error = %e, "recovery worker"),
                }
                if let Err(e) = me.refund_orphans().await {
                    tracing::warn!(error = %e, "reconciliation");
                }
            }
        })
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

/// The stored answer of a saga that ended without an order to show.
pub fn error_response(code: &str, detail: &str) -> (u16, String) {
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
        _ => (
            503,
            "Service Unavailable",
            "the checkout could not be completed",
        ),
    };
    let mut errors = Vec::new();
    if code == "out_of_stock"
        && let Ok(short) = serde_json::from_str::<Vec<contracts::inventory::Shortage>>(detail)
    {
        errors = contracts::inventory::shortage_errors(&short);
    }
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

/// The human-facing order number, derived from the id.
pub fn order_number(id: Uuid) -> String {
    let s = id.simple().to_string().to_uppercase();
    format!("BZH-{}", &s[20..32])
}

fn plan_to_order(id: Uuid, plan: &Plan, now: i64) -> Order {
    let (fulfilment, address) = match &plan.fulfilment {
        Fulfilment::Delivery { address } => ("delivery", Some(address.clone())),
        Fulfilment::Collect { .. } => ("collect", None),
    };
    Order {
        id,
        number: order_number(id),
        customer: plan.customer.clone(),
        email: plan.email.clone(),
        status: OrderStatus::Pending,
        fulfilment: fulfilment.to_string(),
        location: plan.location.clone(),
        address,
        currency: plan.currency.clone(),
        subtotal: plan.subtotal,
        shipping: plan.shipping,
        total: plan.total,
        refunded: 0,
        lines: plan.lines.clone(),
        created_at: now,
        updated_at: now,
    }
}

/// The payload of the order events.
pub fn order_event(o: &Order, reason: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "order_id": o.id,
        "number": o.number,
        "customer": o.customer,
        "email": o.email,
        "location": o.location,
        "fulfilment": o.fulfilment,
        "currency": o.currency,
        "total": o.total,
        "refunded": o.refunded,
        "lines": o.lines,
        "reason": reason,
    })
}

impl Plan {
    pub fn summary(&self) -> String {
        format!(
            "{} line(s), {} {} from {}",
            self.lines.len(),
            self.total,
            self.currency,
            self.location
        )
    }
}
