//! The recovery worker: it takes over every saga whose lease ran out (I6), and refunds captured
//! money that no paid order accounts for (I4).

use crate::domain::{OrderStatus, SagaState};
use crate::{Orders, store};
use platform::bus;
use std::time::Duration;

/// How often the worker refreshes the saga gauges (`telemetry`).
const GAUGES_EVERY: Duration = Duration::from_secs(15);

impl Orders {
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
            // a checkout's payment has the order's id
            let order_id = kernel::OrderId::from_uuid(p.id.uuid());
            let order = store::get_order(&self.db, order_id).await?;
            let saga_open = store::checkout(&self.db, order_id)
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
            let left = p.kept();
            match self
                .payments
                .refund(p.id, left, &format!("{}:orphan", p.id))
                .await
            {
                Ok(_) => {
                    n += 1;
                    metrics::counter!("comptoir_orphan_captures_refunded_total").increment(1);
                    tracing::warn!(payment = %p.id, amount = %left, "refunded an orphan capture");
                }
                Err(e) => tracing::warn!(payment = %p.id, error = %e, "orphan refund failed"),
            }
        }
        Ok(n)
    }

    /// Runs [`Orders::recover_once`] now and then every `every`; refreshes the saga gauges
    /// every 15 s.
    pub fn spawn_recovery(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune = std::time::Instant::now();
            let mut last_gauges: Option<std::time::Instant> = None;
            loop {
                tick.tick().await;
                if me.db.is_closed() {
                    return;
                }
                if last_gauges.is_none_or(|t| t.elapsed() >= GAUGES_EVERY) {
                    last_gauges = Some(std::time::Instant::now());
                    if let Err(e) = me.refresh_gauges().await {
                        tracing::warn!(error = %e, "saga gauges");
                    }
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
