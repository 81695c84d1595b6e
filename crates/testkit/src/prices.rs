//! A price book the test fills: the catalogue as carts and checkouts see it, without one.

use contracts::catalog::{PriceBook, PriceInfo};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Mutex;

/// SKU → price, changed while a test runs. Every SKU is named `Article <sku>`.
#[derive(Default)]
pub struct FakePrices(Mutex<HashMap<String, PriceInfo>>);

impl FakePrices {
    /// Active SKUs priced in euros.
    pub fn eur<'a>(prices: impl IntoIterator<Item = (&'a str, i64)>) -> FakePrices {
        let book = FakePrices::default();
        for (sku, price) in prices {
            book.set(sku, price, "EUR", true);
        }
        book
    }

    /// Sets (or replaces) what the catalogue says about `sku`.
    pub fn set(&self, sku: &str, unit_price: i64, currency: &str, active: bool) {
        self.map().insert(
            sku.to_string(),
            PriceInfo {
                sku: sku.to_string(),
                name: format!("Article {sku}"),
                unit_price: kernel::Money::new(
                    unit_price,
                    kernel::Currency::parse(currency).expect("a test currency"),
                ),
                active,
            },
        );
    }

    /// The catalogue forgets `sku`.
    pub fn remove(&self, sku: &str) {
        self.map().remove(sku);
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, PriceInfo>> {
        // a test that panicked while holding the lock has already failed
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PriceBook for FakePrices {
    fn prices<'a>(
        &'a self,
        skus: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, PriceInfo>, String>> {
        let map = self.map();
        let found = skus
            .iter()
            .filter_map(|s| map.get(s).map(|p| (s.clone(), p.clone())))
            .collect();
        Box::pin(async move { Ok(found) })
    }
}
