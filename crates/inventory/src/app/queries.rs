//! Reads: stock levels, availability for the storefront, the movement ledger, units sold, and
//! the ledger check that rebuilds every counter.

use super::{InvError, Inventory};
use crate::domain::{Mismatch, Movement, StockLevel, mismatches};
use crate::store;

impl Inventory {
    /// Stock levels, filtered.
    pub async fn levels(
        &self,
        location: Option<&str>,
        sku: Option<&str>,
        low_only: bool,
        limit: i64,
    ) -> Result<Vec<StockLevel>, InvError> {
        Ok(store::levels(&self.db, location, sku, low_only, limit).await?)
    }

    /// Units available of every SKU at every location, with no limit: what a read model (the
    /// storefront's stock per store) loads in one query.
    pub async fn all_available(&self) -> Result<Vec<(String, String, i64)>, InvError> {
        Ok(store::all_available(&self.db).await?)
    }

    /// Units available per location for some SKUs (the storefront's "3 left at Rennes").
    pub async fn availability(&self, skus: &[String]) -> Result<Vec<StockLevel>, InvError> {
        let mut out = Vec::new();
        for s in skus.iter().take(100) {
            out.extend(self.levels(None, Some(s), false, 100).await?);
        }
        Ok(out)
    }

    /// The movement ledger, newest first, filtered.
    pub async fn movements(
        &self,
        location: Option<&str>,
        sku: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Movement>, InvError> {
        Ok(store::movements(&self.db, location, sku, limit).await?)
    }

    /// Rebuilds every counter from the ledger and the active holds and lists what disagrees
    /// (an empty list proves the counters). Also flags negative counters.
    pub async fn check(&self) -> Result<Vec<Mismatch>, InvError> {
        Ok(mismatches(store::counters(&self.db).await?))
    }

    /// Σ of `sale` minus `return` movements for a SKU at a location (units sold).
    pub async fn sold(&self, location: &str, sku: &str) -> Result<i64, InvError> {
        Ok(store::sold(&self.db, location, sku).await?)
    }

    pub async fn level(&self, location: &str, sku: &str) -> Result<Option<StockLevel>, InvError> {
        let mut c = self.db.acquire().await?;
        Ok(store::level(c.conn(), location, sku).await?)
    }
}
