//! Locations: the stores, the logistics centre and head office.

use super::{InvError, Inventory};
use crate::domain::{Location, check_location};
use crate::store;

impl Inventory {
    pub async fn locations(&self) -> Result<Vec<Location>, InvError> {
        Ok(store::locations(&self.db).await?)
    }

    pub async fn location(&self, code: &str) -> Result<Option<Location>, InvError> {
        Ok(store::location(&self.db, code).await?)
    }

    /// Creates or renames a location.
    pub async fn upsert_location(&self, l: &Location) -> Result<(), InvError> {
        check_location(l)?;
        let now = self.now();
        store::upsert_location(&self.db, l, now).await?;
        Ok(())
    }
}
