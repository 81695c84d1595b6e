//! Checkout holds: hold (all lines or none), commit as a sale, release, restock after a sale,
//! and the sweeper that releases expired holds. Every step is idempotent on the hold id.

use super::{InvError, Inventory, LowCrossings, after_change};
use crate::domain::{HoldLine, MovementKind, Shortage, sum_lines};
use crate::store;
use platform::db::Tx;
use std::time::Duration;
use uuid::Uuid;

/// Gives back the held units of an active hold (state → `to`), with its ledger rows.
async fn release_in(
    tx: &mut Tx,
    id: Uuid,
    to: &str,
    actor: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let Some(h) = store::hold_row(tx.conn(), id).await? else {
        return Ok(false);
    };
    if !store::set_hold_state(tx.conn(), id, "active", to, now).await? {
        return Ok(false);
    }
    for l in store::hold_lines(tx.conn(), id).await? {
        store::unhold(tx.conn(), &h.location, &l.sku, l.quantity, now).await?;
        store::ledger(
            tx.conn(),
            &h.location,
            &l.sku,
            MovementKind::Release,
            0,
            -l.quantity,
            &id.to_string(),
            actor,
            now,
        )
        .await?;
    }
    Ok(true)
}

impl Inventory {
    /// Holds stock for a checkout: all lines or none; answers when the hold expires. Idempotent
    /// on `hold_id`: holding again an active or committed hold succeeds without taking more, and
    /// answers the expiry it was given (a retry does not extend it).
    pub async fn hold(
        &self,
        hold_id: Uuid,
        location: &str,
        lines: &[HoldLine],
        ttl: Option<Duration>,
    ) -> Result<i64, InvError> {
        let wanted = sum_lines(lines)?;
        let now = self.now();
        let expires = now + ttl.unwrap_or(self.hold_ttl).as_millis() as i64;
        let mut tx = self.db.begin().await?;
        if let Some(h) = store::hold_row(tx.conn(), hold_id).await? {
            tx.rollback().await?;
            return match h.state.as_str() {
                "active" | "committed" => Ok(h.expires_at),
                _ => Err(InvError::HoldLost(hold_id)),
            };
        }
        let mut short = Vec::new();
        let mut reclaimed = 0;
        for (sku, q) in &wanted {
            if store::take(tx.conn(), location, sku, *q, now).await? {
                continue;
            }
            // Not enough: reclaim expired holds on this SKU here, then try once more.
            let n = self.reclaim_expired(&mut tx, location, sku, now).await?;
            reclaimed += n;
            if n > 0 && store::take(tx.conn(), location, sku, *q, now).await? {
                continue;
            }
            short.push(Shortage {
                sku: sku.clone(),
                requested: *q,
                available: store::available(tx.conn(), location, sku).await?.max(0),
            });
        }
        if !short.is_empty() {
            // an unknown location has no stock at all: say which it is
            if !store::location_exists(tx.conn(), location).await? {
                tx.rollback().await?;
                return Err(InvError::UnknownLocation(location.to_string()));
            }
            tx.rollback().await?;
            metrics::counter!("comptoir_stock_holds_refused_total").increment(1);
            return Err(InvError::OutOfStock(short));
        }
        store::insert_hold(tx.conn(), hold_id, location, now, expires).await?;
        let reference = hold_id.to_string();
        for (sku, q) in &wanted {
            store::insert_hold_line(tx.conn(), hold_id, sku, *q).await?;
            store::ledger(
                tx.conn(),
                location,
                sku,
                MovementKind::Hold,
                0,
                *q,
                &reference,
                "checkout",
                now,
            )
            .await?;
        }
        tx.commit().await?;
        // the holds this one reclaimed expired too (a refusal rolled their release back)
        if reclaimed > 0 {
            metrics::counter!("comptoir_stock_holds_expired_total").increment(reclaimed);
        }
        Ok(expires)
    }

    /// Releases the expired active holds that name `sku` at `location` (lazy reclaim).
    async fn reclaim_expired(
        &self,
        tx: &mut Tx,
        location: &str,
        sku: &str,
        now: i64,
    ) -> Result<u64, sqlx::Error> {
        let ids = store::expired_holds_of(tx.conn(), location, sku, now).await?;
        let mut n = 0;
        for id in ids {
            if release_in(tx, id, "expired", "expiry", now).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Turns a hold into a sale: on_hand and held both drop. Idempotent; an expired or
    /// released hold is [`InvError::HoldLost`].
    pub async fn commit(&self, hold_id: Uuid) -> Result<(), InvError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let Some(h) = store::hold_row(tx.conn(), hold_id).await? else {
            tx.rollback().await?;
            return Err(InvError::HoldLost(hold_id));
        };
        match h.state.as_str() {
            "committed" => {
                tx.rollback().await?;
                return Ok(());
            }
            "active" => {}
            _ => {
                tx.rollback().await?;
                return Err(InvError::HoldLost(hold_id));
            }
        }
        if !store::set_hold_state(tx.conn(), hold_id, "active", "committed", now).await? {
            tx.rollback().await?;
            return Err(InvError::HoldLost(hold_id));
        }
        let reference = hold_id.to_string();
        let lows = LowCrossings::default();
        for l in store::hold_lines(tx.conn(), hold_id).await? {
            store::sell(tx.conn(), &h.location, &l.sku, l.quantity, now).await?;
            store::ledger(
                tx.conn(),
                &h.location,
                &l.sku,
                MovementKind::Sale,
                -l.quantity,
                -l.quantity,
                &reference,
                "checkout",
                now,
            )
            .await?;
            after_change(&mut tx, &h.location, &l.sku, now, &lows).await?;
        }
        tx.commit().await?;
        lows.committed();
        self.wake();
        Ok(())
    }

    /// Gives back an active hold. Idempotent; a hold that is not active is left as it is.
    pub async fn release(&self, hold_id: Uuid) -> Result<bool, InvError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let done = release_in(&mut tx, hold_id, "released", "checkout", now).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Undoes a committed sale (compensation, or a cancelled order): the units come back on
    /// hand. Idempotent.
    pub async fn restock(&self, hold_id: Uuid, actor: &str) -> Result<bool, InvError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let Some(h) = store::hold_row(tx.conn(), hold_id).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        if !store::set_hold_state(tx.conn(), hold_id, "committed", "returned", now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let reference = hold_id.to_string();
        let lows = LowCrossings::default();
        for l in store::hold_lines(tx.conn(), hold_id).await? {
            store::change_on_hand(tx.conn(), &h.location, &l.sku, l.quantity, now).await?;
            store::ledger(
                tx.conn(),
                &h.location,
                &l.sku,
                MovementKind::Return,
                l.quantity,
                0,
                &reference,
                actor,
                now,
            )
            .await?;
            after_change(&mut tx, &h.location, &l.sku, now, &lows).await?;
        }
        tx.commit().await?;
        lows.committed();
        self.wake();
        Ok(true)
    }

    /// Releases every expired hold; returns how many. Run by the sweeper.
    pub async fn sweep(&self) -> Result<u64, InvError> {
        let now = self.now();
        let ids = store::expired_holds(&self.db, now).await?;
        let mut n = 0;
        for chunk in ids.chunks(50) {
            let mut tx = self.db.begin().await?;
            for id in chunk {
                if release_in(&mut tx, *id, "expired", "expiry", now).await? {
                    n += 1;
                }
            }
            tx.commit().await?;
        }
        if n > 0 {
            metrics::counter!("comptoir_stock_holds_expired_total").increment(n);
        }
        Ok(n)
    }

    /// Runs [`Inventory::sweep`] every `every` until the task is dropped.
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if me.db.is_closed() {
                    return;
                }
                if let Err(e) = me.sweep().await {
                    tracing::warn!(error = %e, "hold sweeper");
                }
            }
        })
    }

    /// The state of a hold (`active`, `committed`, `released`, `expired`, `returned`).
    pub async fn hold_state(&self, hold_id: Uuid) -> Result<Option<String>, InvError> {
        let mut c = self.db.acquire().await?;
        Ok(store::hold_row(c.conn(), hold_id).await?.map(|h| h.state))
    }
}
