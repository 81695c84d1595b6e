//! The metrics of inventory, each moved once per fact: a stock-low crossing per `stock.low`
//! event (not for a keyed replay, not for a refused movement), holds refused for want of stock,
//! holds expired (by the sweeper, or reclaimed by a new hold). Read from the test's own
//! recorder (`testkit::metrics`).

use super::*;
use testkit::metrics::Recorder;

/// A recorder on this thread for the whole test (the bodies of `each_backend` are `Send`, its
/// guard is not): each body reads the difference from where it started.
fn recorder() -> Arc<Recorder> {
    Arc::new(Recorder::new())
}

#[tokio::test]
async fn each_stock_low_crossing_is_counted_once() {
    let m = recorder();
    let _on = m.on_this_thread();
    testkit::each_backend(inventory::migrations(), |t| {
        let m = m.clone();
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            let base = m.value("comptoir_stock_low_crossings_total", &[]);
            let crossings = || m.value("comptoir_stock_low_crossings_total", &[]) - base;
            h.movement(Some(RENNES), "rennes", "A", "receipt", 10).await;
            let r = h
                .raw(
                    "PUT",
                    "/api/inventory/stock/rennes/A/threshold",
                    Some(RENNES),
                    Some(r#"{"threshold":3}"#),
                    &[],
                )
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{be}");
            // 10 → 3 under a key: one crossing; the same request again is replayed
            let body = json!({"location": "rennes", "sku": "A", "kind": "adjustment",
                "quantity": -7, "reason": "casse"})
            .to_string();
            let key = [("idempotency-key", "low-1")];
            let path = "/api/inventory/movements";
            let r = h.raw("POST", path, Some(RENNES), Some(&body), &key).await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
            assert_eq!(crossings(), 1.0, "{be}");
            let r = h.raw("POST", path, Some(RENNES), Some(&body), &key).await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}");
            assert_eq!(r.headers["idempotent-replayed"], "true");
            assert_eq!(crossings(), 1.0, "{be}: a replay crosses nothing");
            // further down, by a transfer: still low, no new crossing; a refused movement
            // changes nothing
            let r = h.transfer(Some(RENNES), "rennes", "brest", "A", 1).await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
            let r = h
                .movement(Some(RENNES), "rennes", "A", "adjustment", -50)
                .await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{be}");
            assert_eq!(crossings(), 1.0, "{be}");
            // back above re-arms it; a sale down to the threshold crosses again
            h.movement(Some(RENNES), "rennes", "A", "receipt", 10).await;
            let hold = Uuid::now_v7();
            h.inv
                .hold(hold, "rennes", &[line("A", 9)], None)
                .await
                .unwrap();
            h.inv.commit(hold).await.unwrap();
            assert_eq!(h.level("rennes", "A").await, Some((3, 0)), "{be}");
            assert_eq!(crossings(), 2.0, "{be}");
            h.inv.commit(hold).await.unwrap();
            assert_eq!(crossings(), 2.0, "{be}: a commit again sells nothing");
            assert_eq!(
                h.outbox("stock.low").await.len() as f64,
                crossings(),
                "{be}: one per stock.low event"
            );
        })
    })
    .await;
}

#[tokio::test]
async fn holds_refused_and_expired_are_counted() {
    let m = recorder();
    let _on = m.on_this_thread();
    testkit::each_backend(inventory::migrations(), |t| {
        let m = m.clone();
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            let at = |name: &str| m.value(name, &[]);
            let (refused0, expired0) = (
                at("comptoir_stock_holds_refused_total"),
                at("comptoir_stock_holds_expired_total"),
            );
            h.stock("rennes", "B", 2).await;
            let refused = h
                .inv
                .hold(Uuid::now_v7(), "rennes", &[line("B", 3)], None)
                .await;
            assert!(refused.is_err(), "{be}");
            assert_eq!(
                at("comptoir_stock_holds_refused_total") - refused0,
                1.0,
                "{be}"
            );
            // two holds run out of time: the sweeper gives one back, a new hold reclaims the
            // other
            let expired = || at("comptoir_stock_holds_expired_total") - expired0;
            h.inv
                .hold(
                    Uuid::now_v7(),
                    "rennes",
                    &[line("B", 1)],
                    Some(Duration::ZERO),
                )
                .await
                .unwrap();
            assert_eq!(h.inv.sweep().await.unwrap(), 1, "{be}");
            assert_eq!(expired(), 1.0, "{be}");
            h.inv
                .hold(
                    Uuid::now_v7(),
                    "rennes",
                    &[line("B", 2)],
                    Some(Duration::ZERO),
                )
                .await
                .unwrap();
            h.inv
                .hold(Uuid::now_v7(), "rennes", &[line("B", 2)], None)
                .await
                .unwrap();
            assert_eq!(expired(), 2.0, "{be}: reclaimed by the new hold");
            assert_eq!(h.inv.sweep().await.unwrap(), 0, "{be}");
            assert_eq!(expired(), 2.0, "{be}");
        })
    })
    .await;
}
