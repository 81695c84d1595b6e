//! Inventory types and rules. No IO (no database, no HTTP, no OpenAPI derives): everything here
//! is checked by the unit tests below. The store maps its rows into these types
//! ([`crate::store`]) and the API describes them ([`crate::http`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

pub use contracts::inventory::{HoldLine, Shortage};

/// Largest quantity one movement may carry: keeps every sum far from overflow.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// A change the rules refuse, with the sentence that says why (the use cases turn it into
/// `InvError::Invalid`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused(m: &str) -> Refused {
    Refused(m.to_string())
}

/// Kinds of movement, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    Receipt,
    Sale,
    Return,
    Hold,
    Release,
    Adjustment,
    TransferOut,
    TransferIn,
}

impl MovementKind {
    /// Every kind, in the order of the declaration.
    pub const ALL: [MovementKind; 8] = [
        MovementKind::Receipt,
        MovementKind::Sale,
        MovementKind::Return,
        MovementKind::Hold,
        MovementKind::Release,
        MovementKind::Adjustment,
        MovementKind::TransferOut,
        MovementKind::TransferIn,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            MovementKind::Receipt => "receipt",
            MovementKind::Sale => "sale",
            MovementKind::Return => "return",
            MovementKind::Hold => "hold",
            MovementKind::Release => "release",
            MovementKind::Adjustment => "adjustment",
            MovementKind::TransferOut => "transfer_out",
            MovementKind::TransferIn => "transfer_in",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Location {
    pub code: String,
    pub name: String,
    /// `head_office`, `store` or `warehouse`.
    pub kind: String,
    /// Ships parcels (online orders are served from here).
    pub ships: bool,
    pub click_and_collect: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StockLevel {
    pub location: String,
    pub sku: String,
    pub on_hand: i64,
    pub held: i64,
    pub available: i64,
    pub low_threshold: i64,
    /// Available stock is at or under a (non-zero) threshold, now: computed from the counters,
    /// so a new threshold or a checkout's hold shows at once.
    pub low: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Movement {
    pub id: Uuid,
    pub location: String,
    pub sku: String,
    pub kind: String,
    pub on_hand_delta: i64,
    pub held_delta: i64,
    pub reference: String,
    pub actor: String,
    pub created_at: i64,
}

/// A counter that disagrees with its ledger or with the active holds.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    pub location: String,
    pub sku: String,
    pub what: String,
    pub counter: i64,
    pub expected: i64,
}

/// The quantity of one movement: 1 to [`MAX_QUANTITY`].
pub fn check_qty(q: i64) -> Result<(), Refused> {
    if q <= 0 || q > MAX_QUANTITY {
        return Err(Refused(format!(
            "quantity must be between 1 and {MAX_QUANTITY}"
        )));
    }
    Ok(())
}

/// Sums the lines per SKU (a cart may name one SKU twice) and sorts them by SKU.
pub fn sum_lines(lines: &[HoldLine]) -> Result<BTreeMap<String, i64>, Refused> {
    if lines.is_empty() {
        return Err(refused("a hold needs at least one line"));
    }
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for l in lines {
        check_qty(l.quantity)?;
        if l.sku.is_empty() || l.sku.len() > 64 {
            return Err(refused("a SKU has 1 to 64 characters"));
        }
        let e = out.entry(l.sku.clone()).or_insert(0);
        *e = e
            .checked_add(l.quantity)
            .filter(|v| *v <= MAX_QUANTITY)
            .ok_or_else(|| refused("quantity too large"))?;
    }
    Ok(out)
}

/// A location's kind and code.
pub fn check_location(l: &Location) -> Result<(), Refused> {
    if !matches!(l.kind.as_str(), "head_office" | "store" | "warehouse") {
        return Err(refused("kind is head_office, store or warehouse"));
    }
    if l.code.is_empty()
        || l.code.len() > 32
        || !l
            .code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(refused(
            "a location code has 1 to 32 characters among a-z, 0-9 and -",
        ));
    }
    Ok(())
}

/// What may be recorded by hand: a receipt (positive) or an adjustment (either sign, not 0).
pub fn check_recorded(kind: MovementKind, delta: i64) -> Result<(), Refused> {
    match kind {
        MovementKind::Receipt => check_qty(delta),
        MovementKind::Adjustment => {
            if delta == 0 {
                return Err(refused("an adjustment changes the quantity"));
            }
            check_qty(delta.saturating_abs())
        }
        _ => Err(refused(
            "only receipts and adjustments are recorded by hand",
        )),
    }
}

/// A transfer goes between two different locations (its quantity is [`check_qty`]'s).
pub fn check_transfer(from: &str, to: &str) -> Result<(), Refused> {
    if from == to {
        return Err(refused("a transfer goes between two locations"));
    }
    Ok(())
}

/// A low-stock threshold: 0 (none) to [`MAX_QUANTITY`].
pub fn check_threshold(threshold: i64) -> Result<(), Refused> {
    if !(0..=MAX_QUANTITY).contains(&threshold) {
        return Err(refused("threshold must be between 0 and 1000000"));
    }
    Ok(())
}

/// Available stock at or under a non-zero threshold (`stock.low` fires once on the crossing).
pub fn is_low(available: i64, threshold: i64) -> bool {
    threshold > 0 && available <= threshold
}

/// One stock row beside what the ledger and the active holds say it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    pub location: String,
    pub sku: String,
    pub on_hand: i64,
    pub held: i64,
    pub ledger_on_hand: i64,
    pub ledger_held: i64,
    pub active_held: i64,
}

/// What disagrees in the rows: a counter against its rebuild, or a negative counter.
pub fn mismatches(rows: Vec<Counters>) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for r in rows {
        let mut push = |what: &str, counter: i64, expected: i64| {
            if counter != expected {
                out.push(Mismatch {
                    location: r.location.clone(),
                    sku: r.sku.clone(),
                    what: what.to_string(),
                    counter,
                    expected,
                });
            }
        };
        push("on_hand vs ledger", r.on_hand, r.ledger_on_hand);
        push("held vs ledger", r.held, r.ledger_held);
        push("held vs active holds", r.held, r.active_held);
        if r.on_hand < 0 || r.held < 0 || r.held > r.on_hand {
            out.push(Mismatch {
                location: r.location.clone(),
                sku: r.sku.clone(),
                what: "0 <= held <= on_hand".into(),
                counter: r.held,
                expected: r.on_hand,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str, q: i64) -> HoldLine {
        HoldLine {
            sku: s.into(),
            quantity: q,
        }
    }

    #[test]
    fn lines_of_one_sku_are_summed_before_the_check() {
        let m = sum_lines(&[line("B", 2), line("A", 1), line("B", 3)]).expect("valid");
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            vec![("A".into(), 1), ("B".into(), 5)]
        );
        for bad in [0, -1, i64::MAX, 1_000_001] {
            assert!(sum_lines(&[line("A", bad)]).is_err(), "{bad}");
        }
        assert!(
            sum_lines(&[line("A", 600_000), line("A", 600_000)]).is_err(),
            "sum over the cap"
        );
        assert!(sum_lines(&[]).is_err());
        assert!(sum_lines(&[line("", 1)]).is_err(), "empty SKU");
        assert!(sum_lines(&[line(&"X".repeat(65), 1)]).is_err(), "long SKU");
    }

    #[test]
    fn kinds_are_stored_in_snake_case() {
        for k in MovementKind::ALL {
            let json = serde_json::to_value(k).expect("serialises");
            assert_eq!(json, serde_json::Value::from(k.as_str()));
            let back: MovementKind = serde_json::from_value(json).expect("parses");
            assert_eq!(back, k);
        }
    }

    #[test]
    fn a_location_has_a_known_kind_and_a_plain_code() {
        let loc = |code: &str, kind: &str| Location {
            code: code.into(),
            name: "n".into(),
            kind: kind.into(),
            ships: false,
            click_and_collect: false,
        };
        for kind in ["head_office", "store", "warehouse"] {
            assert_eq!(check_location(&loc("saint-malo2", kind)), Ok(()));
        }
        assert!(check_location(&loc("rennes", "shop")).is_err());
        for code in ["", "Rennes", "st malo", "a_b", &"a".repeat(33)] {
            assert!(check_location(&loc(code, "store")).is_err(), "{code:?}");
        }
        assert_eq!(check_location(&loc(&"a".repeat(32), "store")), Ok(()));
    }

    #[test]
    fn only_receipts_and_adjustments_are_recorded_by_hand() {
        assert_eq!(check_recorded(MovementKind::Receipt, 5), Ok(()));
        assert!(check_recorded(MovementKind::Receipt, -5).is_err());
        assert!(check_recorded(MovementKind::Receipt, 0).is_err());
        assert_eq!(check_recorded(MovementKind::Adjustment, -5), Ok(()));
        assert_eq!(check_recorded(MovementKind::Adjustment, 5), Ok(()));
        assert!(check_recorded(MovementKind::Adjustment, 0).is_err());
        assert!(check_recorded(MovementKind::Adjustment, i64::MIN).is_err());
        assert!(check_recorded(MovementKind::Adjustment, -MAX_QUANTITY - 1).is_err());
        for k in MovementKind::ALL {
            if !matches!(k, MovementKind::Receipt | MovementKind::Adjustment) {
                assert!(check_recorded(k, 1).is_err(), "{k:?}");
            }
        }
    }

    #[test]
    fn transfers_and_thresholds_have_bounds() {
        assert_eq!(check_transfer("a", "b"), Ok(()));
        assert!(check_transfer("a", "a").is_err());
        assert_eq!(check_threshold(0), Ok(()));
        assert_eq!(check_threshold(MAX_QUANTITY), Ok(()));
        assert!(check_threshold(-1).is_err());
        assert!(check_threshold(MAX_QUANTITY + 1).is_err());
    }

    #[test]
    fn low_means_at_or_under_a_non_zero_threshold() {
        assert!(is_low(3, 3));
        assert!(is_low(-1, 3));
        assert!(!is_low(4, 3));
        assert!(!is_low(0, 0), "no threshold, never low");
    }

    #[test]
    fn the_check_names_every_disagreement() {
        let row = |on_hand, held, ledger_on_hand, ledger_held, active_held| Counters {
            location: "rennes".into(),
            sku: "A".into(),
            on_hand,
            held,
            ledger_on_hand,
            ledger_held,
            active_held,
        };
        assert!(mismatches(vec![row(5, 2, 5, 2, 2)]).is_empty());
        let what = |r| {
            mismatches(vec![r])
                .into_iter()
                .map(|m| (m.what, m.counter, m.expected))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            what(row(5, 2, 4, 2, 2)),
            vec![("on_hand vs ledger".into(), 5, 4)]
        );
        assert_eq!(
            what(row(5, 2, 5, 1, 3)),
            vec![
                ("held vs ledger".into(), 2, 1),
                ("held vs active holds".into(), 2, 3)
            ]
        );
        assert_eq!(
            what(row(1, 2, 1, 2, 2)),
            vec![("0 <= held <= on_hand".into(), 2, 1)]
        );
    }
}
