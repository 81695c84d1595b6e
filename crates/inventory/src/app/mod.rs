//! The use cases on [`Inventory`]: each opens its transaction, applies the rules of
//! [`crate::domain`], runs the statements of [`crate::store`], enqueues its events in the
//! outbox and commits. Errors are [`InvError`]; `http` and `contract` map them.
//!
//! Rules that keep I1 (no oversell) true on both backends:
//! - every change is one guarded statement (`… WHERE on_hand - held >= $q`) inside a write
//!   transaction, and every counter change writes its row in the `movements` ledger in the same
//!   transaction, so the counters can always be rebuilt from the ledger ([`Inventory::check`]);
//! - the lines of one hold are summed per SKU before any check (a cart with the same SKU twice
//!   needs the sum), and touched in SKU order so two holds never wait on each other in a cycle;
//! - the database refuses what the code must never do (`CHECK (held <= on_hand)`, `>= 0`).
//!
//! - `locations`: list, read, create or rename
//! - `holds`: hold, commit, release, restock, the sweeper of expired holds
//! - `movements`: receipts and adjustments, transfers, low-stock thresholds
//! - `queries`: levels, availability, the ledger, the ledger check

mod holds;
mod locations;
mod movements;
mod queries;

use crate::SERVICE;
use crate::domain::{Refused, Shortage, is_low};
use crate::store;
use kernel::Clock;
use platform::bus::{self, Event, Relay, topic};
use platform::db::{Db, Tx};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum InvError {
    #[error("unknown location `{0}`")]
    UnknownLocation(String),
    #[error("{0}")]
    Invalid(String),
    #[error("not enough stock")]
    OutOfStock(Vec<Shortage>),
    #[error("the hold {0} is no longer active")]
    HoldLost(Uuid),
    #[error("`{field}` is not a SKU: {}", error.message())]
    InvalidSku {
        field: String,
        error: kernel::sku::SkuError,
    },
    #[error("the catalogue has no SKU `{sku}`")]
    UnknownSku { field: String, sku: String },
    #[error("the catalogue cannot be asked: {0}")]
    CatalogUnavailable(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Refused> for InvError {
    fn from(r: Refused) -> Self {
        InvError::Invalid(r.0)
    }
}

#[derive(Clone)]
pub struct Inventory {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// Wakes the outbox relay after a commit (when one runs in this process).
    pub relay: Option<Relay>,
    /// How long a checkout hold lasts.
    pub hold_ttl: Duration,
    /// The SKUs that exist (I10).
    pub skus: Arc<dyn crate::SkuCatalog>,
}

impl Inventory {
    fn now(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub fn wake(&self) {
        if let Some(r) = &self.relay {
            r.wake();
        }
    }
}

/// The `stock.low` events of a transaction, counted (`comptoir_stock_low_crossings_total`) once
/// it committed: a rolled-back change crossed nothing.
#[derive(Debug, Clone, Default)]
pub struct LowCrossings(Arc<AtomicU64>);

impl LowCrossings {
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The transaction committed: count its crossings (once; later calls count nothing).
    pub fn committed(&self) {
        let n = self.0.swap(0, Ordering::Relaxed);
        if n > 0 {
            metrics::counter!("comptoir_stock_low_crossings_total").increment(n);
        }
    }
}

/// Describes the metrics of inventory and starts them at 0 (a process with inventory calls
/// this once).
pub fn describe_metrics() {
    metrics::describe_counter!(
        "comptoir_stock_holds_expired_total",
        "Stock holds released because they expired (by the sweeper, or reclaimed by a new hold)"
    );
    metrics::describe_counter!(
        "comptoir_stock_holds_refused_total",
        "Stock holds refused for want of stock"
    );
    metrics::describe_counter!(
        "comptoir_stock_low_crossings_total",
        "Times a SKU's available stock at a location fell to its low-stock threshold (stock.low)"
    );
    for name in [
        "comptoir_stock_holds_expired_total",
        "comptoir_stock_holds_refused_total",
        "comptoir_stock_low_crossings_total",
    ] {
        metrics::counter!(name).increment(0);
    }
}

/// After `on_hand` changed: `stock.changed`, and `stock.low` once when available stock falls to
/// the threshold (re-armed when it rises above), noted in `lows`.
async fn after_change(
    tx: &mut Tx,
    location: &str,
    sku: &str,
    now: i64,
    lows: &LowCrossings,
) -> Result<(), sqlx::Error> {
    let Some(r) = store::stock_row(tx.conn(), location, sku).await? else {
        return Ok(());
    };
    let available = r.on_hand - r.held;
    let payload = serde_json::json!({
        "location": location, "sku": sku, "on_hand": r.on_hand, "held": r.held,
        "available": available,
    });
    bus::enqueue(
        tx.conn(),
        &Event::new(SERVICE, topic::STOCK_CHANGED, &payload, now),
    )
    .await?;
    let low = is_low(available, r.low_threshold);
    if low != r.low_alerted {
        store::set_low_alerted(tx.conn(), location, sku, low).await?;
        if low {
            let payload = serde_json::json!({
                "location": location, "sku": sku, "available": available,
                "threshold": r.low_threshold,
            });
            bus::enqueue(
                tx.conn(),
                &Event::new(SERVICE, topic::STOCK_LOW, &payload, now),
            )
            .await?;
            lows.add(1);
        }
    }
    Ok(())
}
