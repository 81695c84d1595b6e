//! Compensation: whatever a failed saga did is undone, judged from the peers' own records, and
//! the saga ends `compensated` with its failure as the checkout's answer.

use super::{Step, Transient, record_outcome};
use crate::domain::{
    CheckoutOutcome, Failure, OrderStatus, Plan, SagaState, order_event, payment_of,
};
use crate::{Orders, SERVICE, store, telemetry};
use contracts::inventory::{HoldState, StockError};
use contracts::payments::{PayError, PaymentStatus};
use kernel::OrderId;
use platform::bus::{self, Event, topic};
use platform::fail;

impl Orders {
    /// Undoes whatever was done, judged from the other services' own records (each undo is
    /// idempotent, so a crash in the middle is resumed by running this again).
    pub(super) async fn step_compensate(
        &self,
        id: OrderId,
        _plan: &Plan,
        s: &store::CheckoutRow,
    ) -> Result<Step, Transient> {
        let pe = |e: PayError| Transient(format!("payments: {e}"));
        let ie = |e: StockError| Transient(format!("inventory: {e}"));
        // 1. money
        if let Some(p) = self.payments.get(payment_of(id)).await.map_err(pe)? {
            match p.status {
                PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {
                    let left = p.kept();
                    if left.minor() > 0 {
                        self.payments
                            .refund(payment_of(id), left, &format!("{id}:compensation"))
                            .await
                            .map_err(pe)?;
                    }
                }
                PaymentStatus::Pending | PaymentStatus::Authorized => {
                    self.payments.void(payment_of(id)).await.map_err(pe)?;
                }
                _ => {}
            }
        }
        fail::point("saga.mid_compensation");
        // 2. stock
        match self.inventory.hold_state(id.uuid()).await.map_err(ie)? {
            Some(HoldState::Active) => {
                self.inventory.release(id.uuid()).await.map_err(ie)?;
            }
            Some(HoldState::Committed) => {
                self.inventory
                    .restock(id.uuid(), "compensation")
                    .await
                    .map_err(ie)?;
            }
            _ => {}
        }
        // 3. the order, and the end of the saga
        let now = self.now();
        let failure = s
            .error_code
            .as_deref()
            .and_then(Failure::parse)
            .unwrap_or(Failure::CheckoutFailed);
        let code = failure.code();
        let detail = s.error_detail.clone().unwrap_or_default();
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
                code,
                now,
            )
            .await?;
            bus::enqueue(
                tx.conn(),
                &Event::new(
                    SERVICE,
                    topic::ORDER_CANCELLED,
                    &order_event(&order, Some(code)),
                    now,
                ),
            )
            .await?;
        }
        let moved = store::advance(
            &mut tx,
            id,
            SagaState::Compensating,
            SagaState::Compensated,
            now,
            now,
        )
        .await?;
        if moved {
            record_outcome(&mut tx, id, &CheckoutOutcome::failed(failure, &detail)).await?;
            store::log_step(&mut tx, id, "compensate", "compensated", code, now).await?;
        }
        tx.commit().await?;
        self.wake();
        if moved {
            telemetry::step("compensate", true);
            telemetry::checkout_ended(code);
        }
        Ok(Step::Stop)
    }
}
