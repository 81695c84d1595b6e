//! The Breizhsport demo: head office, five stores, the logistics centre, and opening stock
//! (receipts in the ledger, so the check holds from the first second).

use crate::app::{InvError, Inventory};
use crate::domain::{Location, MovementKind};

/// Head office's location code.
pub const HEAD_OFFICE: &str = "siege";
/// The logistics centre: ships online orders.
pub const LOGISTICS_CENTRE: &str = "logistique";
/// The stores (code, name): click & collect points.
pub const STORES: &[(&str, &str)] = &[
    ("rennes", "Breizhsport Rennes"),
    ("brest", "Breizhsport Brest"),
    ("quimper", "Breizhsport Quimper"),
    ("vannes", "Breizhsport Vannes"),
    ("saint-malo", "Breizhsport Saint-Malo"),
];

/// Creates the locations (idempotent).
pub async fn seed_locations(inv: &Inventory) -> Result<(), InvError> {
    inv.upsert_location(&Location {
        code: HEAD_OFFICE.into(),
        name: "Siège Breizhsport".into(),
        kind: "head_office".into(),
        ships: false,
        click_and_collect: false,
    })
    .await?;
    inv.upsert_location(&Location {
        code: LOGISTICS_CENTRE.into(),
        name: "Centre logistique".into(),
        kind: "warehouse".into(),
        ships: true,
        click_and_collect: false,
    })
    .await?;
    for (code, name) in STORES {
        inv.upsert_location(&Location {
            code: (*code).into(),
            name: (*name).into(),
            kind: "store".into(),
            ships: false,
            click_and_collect: true,
        })
        .await?;
    }
    Ok(())
}

/// Opening stock for the SKUs, once (skipped when any stock exists): 20–59 units at the
/// logistics centre, 0–7 in each store, low-stock threshold 3. Deterministic per SKU.
pub async fn seed_stock(inv: &Inventory, skus: &[String]) -> Result<usize, InvError> {
    if !inv.levels(None, None, false, 1).await?.is_empty() {
        return Ok(0);
    }
    let mut tx = inv.db.begin().await?;
    let lows = crate::LowCrossings::default();
    let mut n = 0;
    for (i, sku) in skus.iter().enumerate() {
        let h = i as i64 * 7919;
        let plan = std::iter::once((LOGISTICS_CENTRE, 20 + h % 40)).chain(
            STORES
                .iter()
                .enumerate()
                .map(|(j, (c, _))| (*c, (h / (j as i64 + 3)) % 8)),
        );
        for (loc, q) in plan {
            if q > 0 {
                inv.record_in(
                    &mut tx,
                    loc,
                    sku,
                    MovementKind::Receipt,
                    q,
                    "opening stock",
                    "demo",
                    &lows,
                )
                .await?;
                n += 1;
            }
        }
    }
    tx.commit().await?;
    lows.committed();
    for (code, _) in STORES.iter().chain([(LOGISTICS_CENTRE, "")].iter()) {
        for sku in skus.iter().take(50) {
            inv.set_threshold(code, sku, 3).await?;
        }
    }
    Ok(n)
}
