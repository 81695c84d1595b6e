//! Idempotent movements (D2) and transfers between locations.

use super::*;

#[tokio::test]
async fn idempotency_key_on_movements_records_once() {
    testkit::each_backend(inventory::migrations(), |t| Box::pin(async move {
        let h = H::new(t).await;
        let be = h.backend();
        let body = r#"{"location":"rennes","sku":"A","kind":"receipt","quantity":4,"reason":"delivery 17"}"#;
        let key = [("idempotency-key", "delivery-17")];
        let first = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(body),
                &key,
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{be}: {}", first.body);
        assert!(first.headers.get("idempotent-replayed").is_none());
        assert_eq!(first.body["on_hand"], 4);

        let again = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(body),
                &key,
            )
            .await;
        assert_eq!(again.status, StatusCode::CREATED, "{be}: {}", again.body);
        assert_eq!(again.body, first.body, "{be}: the same answer");
        assert_eq!(
            again
                .headers
                .get("idempotent-replayed")
                .and_then(|v| v.to_str().ok()),
            Some("true"),
            "{be}"
        );
        assert_eq!(h.level("rennes", "A").await, Some((4, 0)), "{be}");
        assert_eq!(h.ledger_of("A").await.len(), 1, "{be}: one movement");
        assert_eq!(h.outbox("stock.changed").await.len(), 1, "{be}: one event");

        // the same key with another body is a client bug: refused, nothing recorded
        let other = r#"{"location":"rennes","sku":"A","kind":"receipt","quantity":40,"reason":"delivery 17"}"#;
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(other),
                &key,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{be}: {}",
            r.body
        );
        assert_eq!(r.code(), "idempotency_key_reused");
        assert_eq!(h.level("rennes", "A").await, Some((4, 0)), "{be}");
        assert_eq!(h.ledger_of("A").await.len(), 1, "{be}");

        // another caller's key of the same name is theirs
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(HQ),
                Some(body),
                &key,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert!(r.headers.get("idempotent-replayed").is_none(), "{be}");
        assert_eq!(r.body["on_hand"], 8);

        // a refused request does not use its key up: the retry after a fix runs
        let take = r#"{"location":"rennes","sku":"A","kind":"adjustment","quantity":-10,"reason":"breakage"}"#;
        let k2 = [("idempotency-key", "breakage-1")];
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(take),
                &k2,
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{be}: {}", r.body);
        h.stock("rennes", "A", 2).await;
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(take),
                &k2,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
        assert!(r.headers.get("idempotent-replayed").is_none(), "{be}");
        assert_eq!(r.body["on_hand"], 0);

        // a malformed key is refused before anything runs
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(body),
                &[("idempotency-key", "has space")],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{be}: {}", r.body);
        assert_eq!(r.code(), "invalid_idempotency_key");
        assert_eq!(h.level("rennes", "A").await, Some((0, 0)), "{be}");

        h.assert_consistent().await;
    }))
    .await;
}

#[tokio::test]
async fn transfers_move_units_between_locations() {
    testkit::each_backend(inventory::migrations(), |t| {
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            h.stock("rennes", "A", 10).await;
            let r = h.transfer(Some(RENNES), "rennes", "brest", "A", 4).await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
            assert_eq!(
                r.body,
                json!({"from": "rennes", "to": "brest", "sku": "A", "quantity": 4})
            );
            assert_eq!(h.level("rennes", "A").await, Some((6, 0)), "{be}");
            assert_eq!(h.level("brest", "A").await, Some((4, 0)), "{be}");
            let ledger = h.ledger_of("A").await;
            let s = |l: &str, k: &str, d: i64| (l.to_string(), k.to_string(), d);
            let moved: BTreeSet<_> = ledger[1..].iter().cloned().collect();
            let want: BTreeSet<_> = [
                s("rennes", "transfer_out", -4),
                s("brest", "transfer_in", 4),
            ]
            .into_iter()
            .collect();
            assert_eq!(moved, want, "{be}: two ledger rows");
            assert_eq!(ledger.len(), 3, "{be}");

            // from a location the caller may not act for: 404, nothing moves
            h.stock("brest", "A", 6).await;
            let r = h.transfer(Some(RENNES), "brest", "rennes", "A", 1).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {}", r.body);
            assert_eq!(r.code(), "not_found");
            // more than available: 409, the SKU named, nothing moves
            let r = h.transfer(Some(RENNES), "rennes", "brest", "A", 7).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{be}: {}", r.body);
            assert_eq!(r.code(), "out_of_stock");
            assert_eq!(r.body["errors"][0]["field"], "A");
            // units held for a checkout cannot leave
            h.inv
                .hold(Uuid::now_v7(), "rennes", &[line("A", 5)], None)
                .await
                .unwrap();
            let r = h.transfer(Some(RENNES), "rennes", "brest", "A", 2).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{be}: {}", r.body);
            // to nowhere, to itself
            let r = h.transfer(Some(RENNES), "rennes", "nowhere", "A", 1).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {}", r.body);
            let r = h.transfer(Some(RENNES), "rennes", "rennes", "A", 1).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{be}: {}",
                r.body
            );
            assert_eq!(r.code(), "invalid_stock_change");
            // a clerk may not, nobody signed in may not
            let r = h.transfer(Some(CLERK), "rennes", "brest", "A", 1).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}: {}", r.body);
            let r = h.transfer(None, "rennes", "brest", "A", 1).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{be}: {}", r.body);
            assert_eq!(h.level("rennes", "A").await, Some((6, 5)), "{be}");
            assert_eq!(h.level("brest", "A").await, Some((10, 0)), "{be}");
            assert_eq!(
                h.ledger_of("A").await.len(),
                5,
                "{be}: receipt, 2 transfer, receipt, hold"
            );

            // head office moves between any two; a retried transfer moves once
            let b =
                r#"{"from":"brest","to":"logistique","sku":"A","quantity":3,"reason":"return"}"#;
            let k = [("idempotency-key", "t-1")];
            let first = h
                .raw("POST", "/api/inventory/transfers", Some(HQ), Some(b), &k)
                .await;
            assert_eq!(first.status, StatusCode::CREATED, "{be}: {}", first.body);
            let again = h
                .raw("POST", "/api/inventory/transfers", Some(HQ), Some(b), &k)
                .await;
            assert_eq!(again.status, StatusCode::CREATED, "{be}");
            assert_eq!(again.body, first.body);
            assert_eq!(
                again.headers.get("idempotent-replayed").unwrap(),
                "true",
                "{be}"
            );
            assert_eq!(h.level("brest", "A").await, Some((7, 0)), "{be}");
            assert_eq!(h.level("logistique", "A").await, Some((3, 0)), "{be}");
            assert_eq!(h.ledger_of("A").await.len(), 7, "{be}");

            h.assert_consistent().await;
        })
    })
    .await;
}
