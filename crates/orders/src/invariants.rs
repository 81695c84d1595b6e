//! The invariant checker (RELIABILITY.md D1): any test calls [`check`] after load or faults.
//! It is an auditor, not a use case: it reads the books of orders, inventory and payments (and
//! the built-in test provider's) directly ([`Books`]), whichever processes run them, and lists
//! every violation of I1, I3–I7 and I9. `quiescent` says the system has settled (no
//! request in flight, workers caught up): then unfinished sagas and unpublished events count
//! as violations too.

use crate::consumers::NOTIFICATIONS_GROUP;
use crate::domain::OrderStatus;
use crate::{Orders, store};
use platform::db_run;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub violations: Vec<String>,
    pub paid_orders: i64,
    pub open_sagas: i64,
    pub psp_captured: i64,
    pub psp_refunded: i64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The other services' books the checker reads (open them on their databases when the services
/// run in other processes).
pub struct Books<'a> {
    pub inventory: &'a inventory::Inventory,
    pub payments: &'a payments::Payments,
}

pub async fn check(o: &Orders, books: &Books<'_>, quiescent: bool) -> Result<Report, sqlx::Error> {
    let mut r = Report::default();
    let now = o.clock.now().timestamp_millis();

    // I1: counters equal their ledger rebuild; 0 ≤ held ≤ on_hand; held = Σ active holds.
    match books.inventory.check().await {
        Ok(m) => {
            for x in m {
                r.violations.push(format!(
                    "I1 {}/{}: {} is {} but should be {}",
                    x.location, x.sku, x.what, x.counter, x.expected
                ));
            }
        }
        Err(e) => r.violations.push(format!("I1 cannot be checked: {e}")),
    }

    // I3 / I4: per payment, what stays captured maps to exactly one paid order of that amount.
    let pays: Vec<(Uuid, i64, i64)> = db_run!(books.payments.db(), |p| sqlx::query_as(
        "SELECT id, captured, refunded FROM payments"
    )
    .fetch_all(p)
    .await)?;
    let mut ours_net = 0i64;
    for (id, captured, refunded) in &pays {
        let net = captured - refunded;
        ours_net += net;
        // a checkout's payment has the order's id
        let order = store::get_order(&o.db, kernel::OrderId::from_uuid(*id)).await?;
        match order {
            Some(ord) if ord.status.is_paid() && ord.refundable().minor() != net => {
                r.violations.push(format!(
                    "I3 order {}: kept {} but the payment kept {net}",
                    ord.number,
                    ord.refundable()
                ));
            }
            Some(ord) if ord.status.is_paid() => {}
            Some(ord) if net != 0 => r.violations.push(format!(
                "I4 order {} is {} but {net} stays captured",
                ord.number,
                ord.status.as_str()
            )),
            None if net != 0 => r.violations.push(format!(
                "I4 payment {id}: {net} captured with no order (orphan capture not refunded)"
            )),
            _ => {}
        }
    }
    let orders_net: i64 = {
        let paid: Vec<String> = OrderStatus::ALL
            .iter()
            .filter(|s| s.is_paid())
            .map(|s| s.as_str().to_string())
            .collect();
        let mut sum = 0;
        for s in paid {
            let (n, total): (i64, i64) = db_run!(&o.db, |p| {
                sqlx::query_as(
                "SELECT COUNT(*), CAST(COALESCE(SUM(total - refunded), 0) AS BIGINT) FROM orders \
                 WHERE status = $1"
            )
            .bind(&s)
            .fetch_one(p)
            .await
            })?;
            r.paid_orders += n;
            sum += total;
        }
        sum
    };
    if orders_net != ours_net {
        r.violations.push(format!(
            "I3 paid orders keep {orders_net} but payments keep {ours_net}"
        ));
    }
    if books.payments.provider().name() == "test" {
        let psp = payments::test_provider::psp_ledger_totals(books.payments.db()).await?;
        r.psp_captured = psp.captured;
        r.psp_refunded = psp.refunded;
        if psp.captured - psp.refunded != ours_net {
            r.violations.push(format!(
                "I3 the provider kept {} but our payments say {ours_net}",
                psp.captured - psp.refunded
            ));
        }
        // I5: at most one capture per charge.
        if psp.max_captures_per_charge > 1 {
            r.violations.push(format!(
                "I5 a charge was captured {} times",
                psp.max_captures_per_charge
            ));
        }
    }

    // I6: sagas end; holds do not outlive their expiry (plus the sweeper's slack).
    let open: i64 = db_run!(&o.db, |p| {
        sqlx::query_scalar(
        "SELECT COUNT(*) FROM checkouts WHERE state NOT IN ('completed', 'compensated', 'failed')"
    )
    .fetch_one(p)
    .await
    })?;
    r.open_sagas = open;
    if quiescent && open > 0 {
        r.violations.push(format!(
            "I6 {open} checkout saga(s) neither completed nor compensated"
        ));
    }
    let stale_holds: i64 = db_run!(&books.inventory.db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM holds WHERE state = 'active' AND expires_at < $1"
    )
    .bind(now - 60_000)
    .fetch_one(p)
    .await)?;
    if stale_holds > 0 {
        r.violations.push(format!(
            "I6 {stale_holds} hold(s) still active a minute after expiry"
        ));
    }
    // A finished saga leaves no active hold behind.
    let ended: Vec<Uuid> = db_run!(&o.db, |p| sqlx::query_scalar(
        "SELECT id FROM checkouts WHERE state IN ('completed', 'compensated', 'failed')"
    )
    .fetch_all(p)
    .await)?;
    for id in ended {
        if books
            .inventory
            .hold_state(id)
            .await
            .ok()
            .flatten()
            .as_deref()
            == Some("active")
        {
            r.violations.push(format!(
                "I6 saga {id} ended but its stock hold is still active"
            ));
        }
    }

    // I9: one checkout per cart. At most one saga per cart is live or ended with an order, and
    // at most one order of a cart was ever paid. Read from the plans, so that checkouts older
    // than the claim column are checked too.
    let sagas: Vec<(Uuid, String, String, Option<String>)> = db_run!(&o.db, |p| {
        sqlx::query_as(
        "SELECT c.id, c.state, c.plan, o.status FROM checkouts c LEFT JOIN orders o ON o.id = c.id"
    )
    .fetch_all(p)
    .await
    })?;
    let mut per_cart: std::collections::BTreeMap<kernel::CartId, (Vec<Uuid>, Vec<Uuid>)> =
        Default::default();
    for (id, state, plan, status) in sagas {
        let Ok(plan) = serde_json::from_str::<crate::domain::Plan>(&plan) else {
            continue;
        };
        let e = per_cart.entry(plan.cart_id).or_default();
        if !matches!(state.as_str(), "compensated" | "failed") {
            e.0.push(id);
        }
        if status
            .as_deref()
            .and_then(OrderStatus::parse)
            .is_some_and(|s| s.is_paid())
        {
            e.1.push(id);
        }
    }
    for (cart, (live, paid)) in per_cart {
        if live.len() > 1 {
            r.violations.push(format!(
                "I9 cart {cart} has {} live checkouts: {live:?}",
                live.len()
            ));
        }
        if paid.len() > 1 {
            r.violations.push(format!(
                "I9 cart {cart} became {} paid orders: {paid:?}",
                paid.len()
            ));
        }
    }

    // I7: one effect per event.
    let dup: Vec<(Uuid, i64)> = db_run!(&o.db, |p| sqlx::query_as(
        "SELECT event_id, COUNT(*) FROM notifications GROUP BY event_id HAVING COUNT(*) > 1"
    )
    .fetch_all(p)
    .await)?;
    for (e, n) in dup {
        r.violations
            .push(format!("I7 event {e} produced {n} notifications"));
    }
    if quiescent {
        for (name, db) in [
            ("orders", &o.db),
            ("inventory", &books.inventory.db),
            ("payments", books.payments.db()),
        ] {
            let n = platform::bus::pending_count(db).await?;
            if n > 0 {
                r.violations
                    .push(format!("I7 {n} event(s) of {name} still unpublished"));
            }
        }
        // every published order event reached the mail sink exactly once
        let missing: i64 = db_run!(&o.db, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox ob WHERE ob.published_at IS NOT NULL \
             AND ob.topic IN ('order.placed', 'order.paid', 'order.cancelled') \
             AND NOT EXISTS (SELECT 1 FROM processed_events pe \
                 WHERE pe.consumer = $1 AND pe.event_id = ob.id)"
        )
        .bind(NOTIFICATIONS_GROUP)
        .fetch_one(p)
        .await)?;
        if missing > 0 {
            r.violations.push(format!(
                "I7 {missing} published order event(s) never reached the notifications"
            ));
        }
    }
    Ok(r)
}
