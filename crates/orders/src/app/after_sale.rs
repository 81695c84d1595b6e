//! Staff actions on a placed order: fulfil, complete, cancel (refund in full and restock),
//! refund part or all.
//!
//! An action that moves money or stock does it first, outside any transaction (each call is
//! idempotent on its key), then records the order's change in the caller's transaction (the
//! one that also stores the idempotent answer): `cancel_effects` + `record_cancel`,
//! `refund_payment` + `record_refund`.

use crate::domain::{Order, OrderStatus, order_event, payment_of};
use crate::{Orders, SERVICE, store};
use contracts::inventory::StockError;
use contracts::payments::PayError;
use platform::bus::{self, Event, topic};
use platform::db::Tx;

/// Why a staff action on an order did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("no such order")]
    NotFound,
    #[error("an order that is {} cannot become {}", .from.as_str(), .to.as_str())]
    WrongState { from: OrderStatus, to: OrderStatus },
    /// A refund of nothing, or of more than is left.
    #[error("the amount must be between 1 and {left}")]
    InvalidAmount { left: kernel::Money },
    #[error("payments: {0}")]
    Payments(PayError),
    #[error("inventory: {0}")]
    Stock(StockError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl Orders {
    /// Moves `o` to `to` (fulfilled or completed) on behalf of `actor`; fulfilment announces
    /// `order.fulfilled`. Returns the order as it is now.
    pub async fn transition(
        &self,
        tx: &mut Tx,
        o: &Order,
        to: OrderStatus,
        actor: &str,
        note: &str,
    ) -> Result<Order, OrderError> {
        let now = self.now();
        if !store::transition(tx, o.id, o.status, to, actor, note, now).await? {
            return Err(OrderError::WrongState { from: o.status, to });
        }
        if to == OrderStatus::Fulfilled {
            let order = store::order(tx.conn(), o.id)
                .await?
                .unwrap_or_else(|| o.clone());
            let event = Event::new(
                SERVICE,
                topic::ORDER_FULFILLED,
                &order_event(&order, None),
                now,
            );
            bus::enqueue(tx.conn(), &event).await?;
        }
        store::order(tx.conn(), o.id)
            .await?
            .ok_or(OrderError::NotFound)
    }

    /// The money and stock of a cancellation: only a paid order not yet fulfilled (the refund's
    /// own event may already have marked it refunded) is refunded in full and restocked.
    /// `key` is the action's idempotency key, so a retry refunds once.
    pub async fn cancel_effects(&self, o: &Order, key: &str) -> Result<(), OrderError> {
        let fulfilled = store::order_history(&self.db, o.id)
            .await?
            .iter()
            .any(|h| h.to_status == OrderStatus::Fulfilled.as_str());
        let was_paid =
            o.status == OrderStatus::Paid || (o.status == OrderStatus::Refunded && !fulfilled);
        if !was_paid {
            return Err(OrderError::WrongState {
                from: o.status,
                to: OrderStatus::Cancelled,
            });
        }
        let left = o.refundable();
        if left.minor() > 0 {
            self.payments
                .refund(payment_of(o.id), left, &format!("{}:cancel:{key}", o.id))
                .await
                .map_err(OrderError::Payments)?;
        }
        self.inventory
            .restock(o.id.uuid(), "cancellation")
            .await
            .map_err(OrderError::Stock)?;
        Ok(())
    }

    /// Records a cancellation whose money and stock are back ([`Orders::cancel_effects`]),
    /// announcing `order.cancelled` the first time. Returns the order as it is now.
    pub async fn record_cancel(
        &self,
        tx: &mut Tx,
        o: &Order,
        actor: &str,
        note: &str,
    ) -> Result<Order, OrderError> {
        let now = self.now();
        if store::cancel_paid(tx, o.id, actor, note, now).await? {
            let after = store::order(tx.conn(), o.id)
                .await?
                .ok_or(OrderError::NotFound)?;
            let event = Event::new(
                SERVICE,
                topic::ORDER_CANCELLED,
                &order_event(&after, Some("cancelled by staff")),
                now,
            );
            bus::enqueue(tx.conn(), &event).await?;
        }
        store::order(tx.conn(), o.id)
            .await?
            .ok_or(OrderError::NotFound)
    }

    /// Refunds `amount` (minor units of the order's currency) of a paid order, at most what is
    /// left; returns the payment's refunded total. `key` is the action's idempotency key.
    pub async fn refund_payment(
        &self,
        o: &Order,
        amount: i64,
        key: &str,
    ) -> Result<kernel::Money, OrderError> {
        if !o.status.is_paid() {
            return Err(OrderError::WrongState {
                from: o.status,
                to: OrderStatus::Refunded,
            });
        }
        let left = o.refundable();
        if amount <= 0 || amount > left.minor() {
            return Err(OrderError::InvalidAmount { left });
        }
        let p = self
            .payments
            .refund(
                payment_of(o.id),
                left.with_minor(amount),
                &format!("{}:refund:{key}", o.id),
            )
            .await
            .map_err(OrderError::Payments)?;
        Ok(p.refunded)
    }

    /// Records the payment's refunded total on the order. Returns the order as it is now.
    pub async fn record_refund(
        &self,
        tx: &mut Tx,
        o: &Order,
        refunded: kernel::Money,
        actor: &str,
    ) -> Result<Order, OrderError> {
        store::set_refunded(tx, o.id, refunded, actor, self.now()).await?;
        store::order(tx.conn(), o.id)
            .await?
            .ok_or(OrderError::NotFound)
    }
}
