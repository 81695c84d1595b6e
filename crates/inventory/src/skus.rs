//! I10: stock exists only for SKUs the catalogue knows. Inventory asks through [`SkuCatalog`],
//! a contract the wiring implements over the catalogue service; inventory never reads the
//! catalogue's tables. A SKU is refused before any transaction opens, so a lookup never runs
//! under a write lock.

use crate::app::{InvError, Inventory};
use crate::store;
use futures_util::future::BoxFuture;
use std::collections::HashSet;

pub use contracts::catalog::SkuCatalog;

/// A fixed list of SKUs: for tests and tools that run without a catalogue.
pub struct FixedSkus(pub HashSet<String>);

impl FixedSkus {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(skus: I) -> Self {
        FixedSkus(skus.into_iter().map(Into::into).collect())
    }
}

impl SkuCatalog for FixedSkus {
    fn known<'a>(&'a self, skus: &'a [String]) -> BoxFuture<'a, Result<HashSet<String>, String>> {
        let found = skus
            .iter()
            .filter(|s| self.0.contains(*s))
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }
}

/// The SKU rule (shape only), as an inventory error naming the field.
pub fn check_shape(field: &str, sku: &str) -> Result<(), InvError> {
    kernel::sku::check(sku).map_err(|e| InvError::InvalidSku {
        field: field.to_string(),
        error: e,
    })
}

impl Inventory {
    /// Refuses a malformed SKU, or one the catalogue does not know (`field` names it in the
    /// error). Call before the transaction of the change.
    pub async fn ensure_sku(&self, field: &str, sku: &str) -> Result<(), InvError> {
        check_shape(field, sku)?;
        let asked = [sku.to_string()];
        let known = self
            .skus
            .known(&asked)
            .await
            .map_err(InvError::CatalogUnavailable)?;
        if known.contains(sku) {
            Ok(())
        } else {
            Err(InvError::UnknownSku {
                field: field.to_string(),
                sku: sku.to_string(),
            })
        }
    }

    /// SKUs that have stock rows but that the catalogue does not know: left by versions before
    /// this check, reported (by `GET /api/inventory/check` and at start-up), never deleted.
    pub async fn unknown_skus(&self) -> Result<Vec<String>, InvError> {
        let all = store::stocked_skus(&self.db).await?;
        let mut unknown = Vec::new();
        for chunk in all.chunks(200) {
            let known = self
                .skus
                .known(chunk)
                .await
                .map_err(InvError::CatalogUnavailable)?;
            unknown.extend(chunk.iter().filter(|s| !known.contains(*s)).cloned());
        }
        Ok(unknown)
    }
}
