//! The forward steps of the saga, one per state: hold the stock, authorise (or poll a pending
//! authorisation), confirm the order, commit the stock, capture. Each calls one peer, then
//! moves the saga in a short transaction of its own; a refusal starts compensating (or, before
//! anything was taken, ends the saga `failed`).

use super::{Step, Transient, record_outcome};
use crate::domain::{
    CheckoutOutcome, Failure, OrderStatus, Plan, SagaState, order_event, order_number, payment_of,
};
use crate::{Orders, SERVICE, store, telemetry};
use contracts::inventory::{HoldLine, StockError};
use contracts::payments::{AuthOutcome, AuthorizeRequest, CaptureOutcome, PayError, PaymentStatus};
use kernel::OrderId;
use platform::bus::{self, Event, topic};
use platform::fail;

impl Orders {
    pub(super) async fn step_hold(&self, id: OrderId, plan: &Plan) -> Result<Step, Transient> {
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
            .hold(
                id.uuid(),
                &plan.location,
                &lines,
                Some(self.settings.hold_ttl),
            )
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
                self.finish_failed(id, "hold_stock", Failure::OutOfStock, &detail)
                    .await
            }
            Err(StockError::UnknownLocation { location }) => {
                self.finish_failed(id, "hold_stock", Failure::UnknownLocation, &location)
                    .await
            }
            Err(StockError::Invalid { message }) => {
                self.finish_failed(id, "hold_stock", Failure::InvalidOrder, &message)
                    .await
            }
            Err(StockError::HoldLost { .. }) => {
                self.compensate(
                    id,
                    SagaState::Started,
                    "hold_stock",
                    Failure::HoldExpired,
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
        id: OrderId,
        step: &str,
        failure: Failure,
        detail: &str,
    ) -> Result<Step, Transient> {
        let code = failure.code();
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let moved =
            store::advance(&mut tx, id, SagaState::Started, SagaState::Failed, now, now).await?;
        if moved {
            store::set_error(&mut tx, id, code, detail).await?;
            record_outcome(&mut tx, id, &CheckoutOutcome::failed(failure, detail)).await?;
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
            telemetry::step(step, false);
            telemetry::checkout_ended(code);
        }
        Ok(Step::Stop)
    }

    pub(super) async fn step_authorize(&self, id: OrderId, plan: &Plan) -> Result<Step, Transient> {
        let req = AuthorizeRequest {
            payment_id: payment_of(id),
            order_ref: order_number(id),
            amount: plan.total,
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
                    Failure::PaymentDeclined,
                    &format!("{code}: {message}"),
                )
                .await
            }
            Err(PayError::Invalid { code, message }) => {
                self.compensate(
                    id,
                    SagaState::StockHeld,
                    "authorize_payment",
                    Failure::InvalidPayment,
                    &format!("{code}: {message}"),
                )
                .await
            }
            Err(e) => Err(Transient(format!("payments: {e}"))),
        }
    }

    pub(super) async fn step_poll_authorization(
        &self,
        id: OrderId,
        s: &store::CheckoutRow,
    ) -> Result<Step, Transient> {
        let p = self
            .payments
            .sync(payment_of(id))
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
                    Failure::PaymentDeclined,
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
                        Failure::PaymentTimeout,
                        "no answer in time",
                    )
                    .await
                } else {
                    Err(Transient("payment still pending".into()))
                }
            }
        }
    }

    pub(super) async fn step_confirm(&self, id: OrderId, plan: &Plan) -> Result<Step, Transient> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let placed = store::order(tx.conn(), id).await?.is_none();
        if placed {
            let order = plan.to_order(id, now);
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
        // the order row is inserted once (a second runner's insert fails on its key)
        if placed {
            telemetry::order_placed(plan.channel);
        }
        if moved {
            telemetry::step("confirm_order", true);
        }
        self.wake();
        fail::point("saga.after_confirm");
        Ok(if moved {
            Step::Moved(SagaState::OrderConfirmed)
        } else {
            Step::Reload
        })
    }

    pub(super) async fn step_commit_stock(&self, id: OrderId) -> Result<Step, Transient> {
        match self.inventory.commit(id.uuid()).await {
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
                if moved {
                    telemetry::step("commit_stock", true);
                }
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
                    Failure::HoldExpired,
                    "the stock hold expired before the order was confirmed",
                )
                .await
            }
            Err(e) => Err(Transient(format!("inventory: {e}"))),
        }
    }

    pub(super) async fn step_capture(&self, id: OrderId, plan: &Plan) -> Result<Step, Transient> {
        match self.payments.capture(payment_of(id)).await {
            Ok(CaptureOutcome::Captured(p)) => {
                fail::point("saga.after_capture");
                let now = self.now();
                let mut tx = self.db.begin().await?;
                let moved = store::advance(
                    &mut tx,
                    id,
                    SagaState::StockCommitted,
                    SagaState::Completed,
                    now,
                    now,
                )
                .await?;
                if moved {
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
                    record_outcome(&mut tx, id, &CheckoutOutcome::Paid(Box::new(order))).await?;
                    store::log_step(&mut tx, id, "capture_payment", "done", "paid", now).await?;
                }
                tx.commit().await?;
                self.wake();
                // counted by the runner that recorded the capture, once: another runner, or
                // this one resumed, finds the saga completed and moves nothing
                if moved {
                    telemetry::step("capture_payment", true);
                    telemetry::checkout_ended("paid");
                    telemetry::order_paid(p.captured);
                }
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
                    Failure::PaymentFailed,
                    &format!("{code}: {message}"),
                )
                .await
            }
            Err(PayError::Invalid { code, message }) => {
                self.compensate(
                    id,
                    SagaState::StockCommitted,
                    "capture_payment",
                    Failure::PaymentFailed,
                    &format!("{code}: {message}"),
                )
                .await
            }
            // Unknown outcome (timeout, lost response): retry; the capture is idempotent.
            Err(e) => Err(Transient(format!("payments: {e}"))),
        }
    }
}
