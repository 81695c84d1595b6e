//! The events written with each change, and the SKUs of the catalogue only (I10).

use super::*;

#[tokio::test]
async fn stock_events_are_written_with_the_change() {
    testkit::each_backend(inventory::migrations(), |t| Box::pin(async move {
        let h = H::new(t).await;
        let be = h.backend();
        let r = h.movement(Some(RENNES), "rennes", "A", "receipt", 10).await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        let changed = h.outbox("stock.changed").await;
        assert_eq!(changed.len(), 1, "{be}");
        assert_eq!(
            changed[0],
            json!({"location": "rennes", "sku": "A", "on_hand": 10, "held": 0, "available": 10}),
            "{be}"
        );
        assert!(h.outbox("stock.low").await.is_empty(), "{be}");

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

        // 10 → 5: above the threshold, no alert
        h.movement(Some(RENNES), "rennes", "A", "adjustment", -5)
            .await;
        assert!(h.outbox("stock.low").await.is_empty(), "{be}");
        // 5 → 3: at the threshold, one alert
        h.movement(Some(RENNES), "rennes", "A", "adjustment", -2)
            .await;
        let low = h.outbox("stock.low").await;
        assert_eq!(
            low,
            [json!({"location": "rennes", "sku": "A", "available": 3, "threshold": 3})],
            "{be}"
        );
        // further down: still the one alert
        h.movement(Some(RENNES), "rennes", "A", "adjustment", -1)
            .await;
        h.transfer(Some(RENNES), "rennes", "brest", "A", 1).await;
        h.movement(Some(RENNES), "rennes", "A", "receipt", 1).await;
        assert_eq!(h.level("rennes", "A").await, Some((2, 0)), "{be}");
        assert_eq!(h.outbox("stock.low").await.len(), 1, "{be}: one alert only");
        // every change of on_hand is announced (the transfer once per location)
        assert_eq!(h.outbox("stock.changed").await.len(), 7, "{be}");

        // back above the threshold re-arms the alert; falling again alerts again
        h.movement(Some(RENNES), "rennes", "A", "receipt", 10).await;
        assert_eq!(h.outbox("stock.low").await.len(), 1, "{be}");
        h.movement(Some(RENNES), "rennes", "A", "adjustment", -9)
            .await;
        let low = h.outbox("stock.low").await;
        assert_eq!(low.len(), 2, "{be}");
        assert_eq!(low[1]["available"], 3);

        // a sale down to the threshold alerts too
        h.stock("logistique", "B", 5).await;
        h.inv.set_threshold("logistique", "B", 2).await.unwrap();
        let hold = Uuid::now_v7();
        h.inv
            .hold(hold, "logistique", &[line("B", 3)], None)
            .await
            .unwrap();
        h.inv.commit(hold).await.unwrap();
        let low = h.outbox("stock.low").await;
        assert_eq!(low.len(), 3, "{be}");
        assert_eq!(
            low[2],
            json!({"location": "logistique", "sku": "B", "available": 2, "threshold": 2})
        );

        h.assert_consistent().await;
    }))
    .await;
}

/// I10: movements, thresholds and transfers refuse a SKU the catalogue does not know, a blank
/// one and a padded one (nothing is trimmed into a real SKU), and write nothing; the public
/// availability never shows them.
#[tokio::test]
async fn only_skus_of_the_catalogue_get_stock_i10() {
    testkit::each_backend(inventory::migrations(), |t| {
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            h.stock("rennes", "A", 5).await;
            let ledger = h.ledger_rows().await;
            let events = h.outbox_rows().await;
            let cases: [(&str, &str); 7] = [
                ("NOPE", "unknown_sku"),
                (" ", "validation_failed"),
                ("", "validation_failed"),
                ("A ", "validation_failed"),
                (" A", "validation_failed"),
                ("a", "validation_failed"),
                ("<b>A</b>", "validation_failed"),
            ];
            for (sku, code) in cases {
                let r = h.movement(Some(HQ), "rennes", sku, "receipt", 3).await;
                assert_eq!(
                    r.status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{be} {sku:?}: {}",
                    r.body
                );
                assert_eq!(r.code(), code, "{be} {sku:?}: {}", r.body);
                assert_eq!(r.body["errors"][0]["field"], "sku", "{be} {sku:?}");

                let r = h.transfer(Some(HQ), "rennes", "brest", sku, 1).await;
                assert_eq!(
                    r.status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{be} {sku:?}: {}",
                    r.body
                );
                assert_eq!(r.code(), code, "{be} {sku:?}: {}", r.body);
            }
            // thresholds: the SKU is in the path (percent-encoded where it must be)
            for (sku, code) in [
                ("NOPE", "unknown_sku"),
                ("%20", "validation_failed"),
                ("A%20", "validation_failed"),
                ("%3Cb%3E", "validation_failed"),
            ] {
                let r = h
                    .raw(
                        "PUT",
                        &format!("/api/inventory/stock/rennes/{sku}/threshold"),
                        Some(HQ),
                        Some(r#"{"threshold": 2}"#),
                        &[],
                    )
                    .await;
                assert_eq!(
                    r.status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{be} {sku}: {}",
                    r.body
                );
                assert_eq!(r.code(), code, "{be} {sku}: {}", r.body);
            }
            assert_eq!(h.ledger_rows().await, ledger, "{be}: nothing in the ledger");
            assert_eq!(h.outbox_rows().await, events, "{be}: no event");
            for sku in ["NOPE", " ", "A ", "<b>A</b>"] {
                assert_eq!(
                    h.level("rennes", sku).await,
                    None,
                    "{be} {sku:?}: no stock row"
                );
            }
            let r = h.get("/api/inventory/availability?skus=NOPE", None).await;
            assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
            assert_eq!(
                r.body,
                json!([]),
                "{be}: nothing published for an unknown SKU"
            );
            // a real SKU still works
            let r = h.movement(Some(HQ), "rennes", "B", "receipt", 3).await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        })
    })
    .await;
}

/// Stock left for unknown SKUs by earlier versions is reported by the check, never deleted.
#[tokio::test]
async fn stock_of_unknown_skus_is_reported_not_deleted() {
    testkit::each_backend(inventory::migrations(), |t| {
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            h.stock("rennes", "A", 5).await;
            platform::db_run!(&h.inv.db, |p| sqlx::query(
                "INSERT INTO stock (location, sku, on_hand, held, low_threshold, updated_at) \
             VALUES ('rennes', 'OLD-1', 0, 0, 0, 0)"
            )
            .execute(p)
            .await
            .map(|_| ()))
            .unwrap();
            let r = h.get("/api/inventory/check", Some(HQ)).await;
            assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
            assert_eq!(r.body["unknown_skus"], json!(["OLD-1"]), "{be}: {}", r.body);
            assert_eq!(
                h.level("rennes", "OLD-1").await,
                Some((0, 0)),
                "{be}: still there"
            );
        })
    })
    .await;
}
