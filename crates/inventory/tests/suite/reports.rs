//! Scoped listings, low-stock filters, and the ledger check (and that it can fail).

use super::*;

#[tokio::test]
async fn listings_are_scoped_and_filter_low_stock() {
    testkit::each_backend(inventory::migrations(), |t| {
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            h.stock("rennes", "A", 10).await;
            h.stock("rennes", "B", 3).await;
            h.stock("brest", "A", 2).await;
            h.stock("logistique", "C", 50).await;

            let locations = |r: &Res| -> Vec<String> {
                r.body
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["location"].as_str().unwrap().to_string())
                    .collect()
            };
            for who in [RENNES, CLERK] {
                let r = h.get("/api/inventory/stock", Some(who)).await;
                assert_eq!(r.status, StatusCode::OK, "{be}: {who} {}", r.body);
                assert_eq!(locations(&r), ["rennes", "rennes"], "{be}: {who}");
                let r = h
                    .get("/api/inventory/stock?location=rennes", Some(who))
                    .await;
                assert_eq!(locations(&r), ["rennes", "rennes"], "{be}: {who}");
                let r = h
                    .get("/api/inventory/stock?location=brest", Some(who))
                    .await;
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {who} {}", r.body);
                assert_eq!(r.code(), "not_found");
                let r = h.get("/api/inventory/movements", Some(who)).await;
                assert_eq!(r.status, StatusCode::OK, "{be}: {who} {}", r.body);
                assert_eq!(locations(&r), ["rennes", "rennes"], "{be}: {who}");
                let r = h
                    .get("/api/inventory/movements?location=brest", Some(who))
                    .await;
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {who} {}", r.body);
            }
            let r = h.get("/api/inventory/stock", Some(HQ)).await;
            assert_eq!(r.status, StatusCode::OK);
            let all = by_location(&r.body, "on_hand");
            assert_eq!(all.len(), 4, "{be}: head office sees every location");
            assert_eq!(all[&("brest".to_string(), "A".to_string())], 2);
            let r = h.get("/api/inventory/stock?location=brest", Some(HQ)).await;
            assert_eq!(locations(&r), ["brest"], "{be}");
            let r = h.get("/api/inventory/stock?sku=A", Some(HQ)).await;
            assert_eq!(locations(&r), ["brest", "rennes"], "{be}");
            let r = h.get("/api/inventory/movements", Some(HQ)).await;
            assert_eq!(r.body.as_array().unwrap().len(), 4, "{be}");
            let r = h.get("/api/inventory/stock", None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{be}");
            let r = h.get("/api/inventory/stock", Some("customer")).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}");
            let r = h.get("/api/inventory/movements", None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{be}");
            let r = h.get("/api/inventory/stock?low=maybe", Some(HQ)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{be}");
            assert_eq!(r.code(), "invalid_query");

            // no thresholds yet: nothing is low
            let r = h.get("/api/inventory/stock?low=true", Some(HQ)).await;
            assert_eq!(r.body, json!([]), "{be}");

            let threshold =
                |loc: &str, sku: &str| format!("/api/inventory/stock/{loc}/{sku}/threshold");
            let put = |path: String, who: &'static str, t: i64| {
                let h = &h;
                async move {
                    h.raw(
                        "PUT",
                        &path,
                        Some(who),
                        Some(&json!({ "threshold": t }).to_string()),
                        &[],
                    )
                    .await
                }
            };
            let r = put(threshold("rennes", "A"), RENNES, 5).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{be}: {}", r.body);
            let r = put(threshold("brest", "A"), RENNES, 5).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: another store's");
            let r = put(threshold("rennes", "A"), CLERK, 5).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}: a clerk's");
            let r = put(threshold("nowhere", "A"), HQ, 5).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}");
            let r = put(threshold("brest", "A"), HQ, 2).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{be}");

            // Rennes A: 10 > 5, not low; Brest A: 2 <= 2, low
            let r = h.get("/api/inventory/stock?low=true", Some(HQ)).await;
            assert_eq!(
                by_location(&r.body, "available")
                    .into_keys()
                    .collect::<Vec<_>>(),
                [("brest".to_string(), "A".to_string())],
                "{be}: at the threshold is low: {}",
                r.body
            );
            let r = h.get("/api/inventory/stock?low=true", Some(RENNES)).await;
            assert_eq!(r.body, json!([]), "{be}: Rennes has nothing low yet");

            // Rennes sells down to its threshold
            let r = h
                .movement(Some(RENNES), "rennes", "A", "adjustment", -5)
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
            assert_eq!(r.body["low"], true, "{be}: {}", r.body);
            let r = h.get("/api/inventory/stock?low=true", Some(RENNES)).await;
            assert_eq!(locations(&r), ["rennes"], "{be}: {}", r.body);
            assert_eq!(r.body[0]["sku"], "A");
            assert_eq!(r.body[0]["available"], 5);
            assert_eq!(r.body[0]["low_threshold"], 5);
            assert_eq!(r.body[0]["low"], true);
            let r = h.get("/api/inventory/stock?low=true", Some(HQ)).await;
            assert_eq!(r.body.as_array().unwrap().len(), 2, "{be}: {}", r.body);

            // a checkout's hold makes stock low too: what is left to sell counts
            put(threshold("rennes", "B"), RENNES, 1).await;
            h.inv
                .hold(Uuid::now_v7(), "rennes", &[line("B", 2)], None)
                .await
                .unwrap();
            let r = h.get("/api/inventory/stock?low=true", Some(RENNES)).await;
            assert_eq!(
                by_location(&r.body, "available"),
                [
                    (("rennes".to_string(), "A".to_string()), 5),
                    (("rennes".to_string(), "B".to_string()), 1)
                ]
                .into_iter()
                .collect(),
                "{be}: {}",
                r.body
            );

            // stock back above the threshold: no longer low
            let r = h.movement(Some(RENNES), "rennes", "A", "receipt", 1).await;
            assert_eq!(r.body["low"], false, "{be}: {}", r.body);
            let r = h.get("/api/inventory/stock?low=true&sku=A", Some(HQ)).await;
            assert_eq!(locations(&r), ["brest"], "{be}: {}", r.body);

            h.assert_consistent().await;
        })
    })
    .await;
}

#[tokio::test]
async fn the_check_holds_and_catches_a_corrupted_counter() {
    testkit::each_backend(inventory::migrations(), |t| {
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            // a bit of everything
            h.stock("rennes", "A", 10).await;
            h.stock("logistique", "B", 20).await;
            h.movement(Some(RENNES), "rennes", "A", "adjustment", -1)
                .await;
            h.transfer(Some(HQ), "logistique", "rennes", "B", 5).await;
            let sold = Uuid::now_v7();
            h.inv
                .hold(sold, "rennes", &[line("A", 2), line("B", 1)], None)
                .await
                .unwrap();
            h.inv.commit(sold).await.unwrap();
            let given_back = Uuid::now_v7();
            h.inv
                .hold(given_back, "rennes", &[line("A", 1)], None)
                .await
                .unwrap();
            h.inv.release(given_back).await.unwrap();
            let returned = Uuid::now_v7();
            h.inv
                .hold(returned, "logistique", &[line("B", 3)], None)
                .await
                .unwrap();
            h.inv.commit(returned).await.unwrap();
            h.inv.restock(returned, "test").await.unwrap();
            h.inv
                .hold(Uuid::now_v7(), "rennes", &[line("A", 3)], None)
                .await
                .unwrap();
            assert_eq!(h.level("rennes", "A").await, Some((7, 3)), "{be}");
            h.assert_consistent().await;

            // the check is head office's
            for who in [RENNES, CLERK, "warehouse:logistique"] {
                let r = h.get("/api/inventory/check", Some(who)).await;
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}: {who} {}", r.body);
                assert_eq!(r.code(), "forbidden");
            }
            let r = h.get("/api/inventory/check", None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{be}");

            // a counter changed behind the ledger's back is found
            platform::db_run!(&h.db, |p| sqlx::query(
                "UPDATE stock SET on_hand = on_hand + 1 WHERE location = $1 AND sku = $2"
            )
            .bind("rennes")
            .bind("A")
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
            .unwrap();
            let r = h.get("/api/inventory/check", Some(HQ)).await;
            assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
            assert_eq!(r.body["consistent"], false, "{be}: {}", r.body);
            assert_eq!(
                r.body["mismatches"],
                json!([{"location": "rennes", "sku": "A", "what": "on_hand vs ledger",
                "counter": 8, "expected": 7}]),
                "{be}"
            );

            // and a held counter that disagrees with the active holds
            platform::db_run!(&h.db, |p| sqlx::query(
                "UPDATE stock SET on_hand = on_hand - 1, held = held - 1 \
             WHERE location = $1 AND sku = $2"
            )
            .bind("rennes")
            .bind("A")
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
            .unwrap();
            let r = h.get("/api/inventory/check", Some(HQ)).await;
            let whats: Vec<&str> = r.body["mismatches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["what"].as_str().unwrap())
                .collect();
            assert_eq!(
                whats,
                ["held vs ledger", "held vs active holds"],
                "{be}: {}",
                r.body
            );
            assert_eq!(r.body["consistent"], false);
        })
    })
    .await;
}
