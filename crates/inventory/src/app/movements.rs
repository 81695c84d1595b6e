//! Changes made by staff: receipts and adjustments, transfers between locations, low-stock
//! thresholds. Each SKU is checked against the catalogue (I10) before its transaction opens.

use super::{InvError, Inventory, LowCrossings, after_change};
use crate::domain::{
    MovementKind, Shortage, StockLevel, check_qty, check_recorded, check_threshold, check_transfer,
};
use crate::store;
use platform::db::Tx;

impl Inventory {
    /// Receipt (positive), adjustment (either sign) at one location, with the ledger row.
    pub async fn record(
        &self,
        location: &str,
        sku: &str,
        kind: MovementKind,
        delta: i64,
        reason: &str,
        actor: &str,
    ) -> Result<StockLevel, InvError> {
        self.ensure_sku("sku", sku).await?;
        let mut tx = self.db.begin().await?;
        let lows = LowCrossings::default();
        match self
            .record_in(&mut tx, location, sku, kind, delta, reason, actor, &lows)
            .await
        {
            Ok(l) => {
                tx.commit().await?;
                lows.committed();
                self.wake();
                Ok(l)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    /// [`Inventory::record`] inside the caller's transaction (the caller commits, then calls
    /// [`LowCrossings::committed`] on `lows` and wakes the relay with [`Inventory::wake`]). The
    /// caller has checked the SKU with [`Inventory::ensure_sku`] before opening the transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_in(
        &self,
        tx: &mut Tx,
        location: &str,
        sku: &str,
        kind: MovementKind,
        delta: i64,
        reason: &str,
        actor: &str,
        lows: &LowCrossings,
    ) -> Result<StockLevel, InvError> {
        check_recorded(kind, delta)?;
        crate::skus::check_shape("sku", sku)?;
        let now = self.now();
        if !store::location_exists(tx.conn(), location).await? {
            return Err(InvError::UnknownLocation(location.to_string()));
        }
        if !store::change_on_hand(tx.conn(), location, sku, delta, now).await? {
            let avail = store::available(tx.conn(), location, sku).await?;
            return Err(InvError::OutOfStock(vec![Shortage {
                sku: sku.to_string(),
                requested: -delta,
                available: avail.max(0),
            }]));
        }
        store::ledger(tx.conn(), location, sku, kind, delta, 0, reason, actor, now).await?;
        after_change(tx, location, sku, now, lows).await?;
        let level = store::level(tx.conn(), location, sku).await?;
        level.ok_or_else(|| InvError::Invalid("stock row missing".into()))
    }

    /// Moves units between two locations in one transaction.
    pub async fn transfer(
        &self,
        from: &str,
        to: &str,
        sku: &str,
        quantity: i64,
        reason: &str,
        actor: &str,
    ) -> Result<(), InvError> {
        self.ensure_sku("sku", sku).await?;
        let mut tx = self.db.begin().await?;
        let lows = LowCrossings::default();
        match self
            .transfer_in(&mut tx, from, to, sku, quantity, reason, actor, &lows)
            .await
        {
            Ok(()) => {
                tx.commit().await?;
                lows.committed();
                self.wake();
                Ok(())
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    /// [`Inventory::transfer`] inside the caller's transaction (as [`Inventory::record_in`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn transfer_in(
        &self,
        tx: &mut Tx,
        from: &str,
        to: &str,
        sku: &str,
        quantity: i64,
        reason: &str,
        actor: &str,
        lows: &LowCrossings,
    ) -> Result<(), InvError> {
        check_qty(quantity)?;
        crate::skus::check_shape("sku", sku)?;
        check_transfer(from, to)?;
        let now = self.now();
        for l in [from, to] {
            if !store::location_exists(tx.conn(), l).await? {
                return Err(InvError::UnknownLocation(l.to_string()));
            }
        }
        if !store::change_on_hand(tx.conn(), from, sku, -quantity, now).await? {
            let avail = store::available(tx.conn(), from, sku).await?;
            return Err(InvError::OutOfStock(vec![Shortage {
                sku: sku.to_string(),
                requested: quantity,
                available: avail.max(0),
            }]));
        }
        store::change_on_hand(tx.conn(), to, sku, quantity, now).await?;
        store::ledger(
            tx.conn(),
            from,
            sku,
            MovementKind::TransferOut,
            -quantity,
            0,
            reason,
            actor,
            now,
        )
        .await?;
        store::ledger(
            tx.conn(),
            to,
            sku,
            MovementKind::TransferIn,
            quantity,
            0,
            reason,
            actor,
            now,
        )
        .await?;
        after_change(tx, from, sku, now, lows).await?;
        after_change(tx, to, sku, now, lows).await?;
        Ok(())
    }

    /// Sets the low-stock threshold of a SKU at a location (0: none).
    pub async fn set_threshold(
        &self,
        location: &str,
        sku: &str,
        threshold: i64,
    ) -> Result<(), InvError> {
        check_threshold(threshold)?;
        self.ensure_sku("sku", sku).await?;
        let now = self.now();
        let mut tx = self.db.begin().await?;
        if !store::location_exists(tx.conn(), location).await? {
            tx.rollback().await?;
            return Err(InvError::UnknownLocation(location.to_string()));
        }
        store::set_threshold(tx.conn(), location, sku, threshold, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
