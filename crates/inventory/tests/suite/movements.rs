//! Public locations and availability; movements under the role and location rules; refused
//! adjustments, bad quantities and bodies (B4).

use super::*;

#[tokio::test]
async fn locations_and_availability_are_public() {
    testkit::each_backend(inventory::migrations(), |t| {
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            let r = h.get("/api/inventory/locations", None).await;
            assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
            let locs = r.body.as_array().unwrap();
            assert_eq!(
                locs.len(),
                7,
                "{be}: head office, logistics centre, 5 stores"
            );
            let find = |code: &str| {
                locs.iter()
                    .find(|l| l["code"] == code)
                    .unwrap_or_else(|| panic!("{be}: {code} listed"))
            };
            assert_eq!(find("rennes")["click_and_collect"], json!(true));
            assert_eq!(find("rennes")["kind"], json!("store"));
            assert_eq!(find("logistique")["ships"], json!(true));
            assert_eq!(find("siege")["kind"], json!("head_office"));

            h.stock("rennes", "A", 5).await;
            h.stock("brest", "A", 2).await;
            h.stock("logistique", "B", 30).await;
            h.stock("logistique", "C", 9).await;
            // a checkout holds 2 at Rennes: the storefront shows what is left to sell
            h.inv
                .hold(Uuid::now_v7(), "rennes", &[line("A", 2)], None)
                .await
                .unwrap();

            let r = h.get("/api/inventory/availability?skus=A,B", None).await;
            assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
            let got = by_location(&r.body, "available");
            let want: BTreeMap<_, _> = [
                (("brest", "A"), 2),
                (("logistique", "B"), 30),
                (("rennes", "A"), 3),
            ]
            .into_iter()
            .map(|((l, s), q)| ((l.to_string(), s.to_string()), q))
            .collect();
            assert_eq!(
                got, want,
                "{be}: available per location, only the asked SKUs"
            );
            assert!(
                r.body.as_array().unwrap()[0].get("on_hand").is_none(),
                "{be}: the public view shows what is available, not the counters"
            );

            let r = h.get("/api/inventory/availability?skus=NOPE", None).await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.body, json!([]), "{be}: an unknown SKU has no stock");
            let r = h.get("/api/inventory/availability", None).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{be}: skus is required");
            assert_eq!(r.code(), "invalid_query");

            h.assert_consistent().await;
        })
    })
    .await;
}

#[tokio::test]
async fn movements_follow_roles_and_locations() {
    testkit::each_backend(inventory::migrations(), |t| {
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            let r = h.movement(Some(RENNES), "rennes", "A", "receipt", 10).await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
            assert_eq!(r.body["location"], "rennes");
            assert_eq!(r.body["sku"], "A");
            assert_eq!(r.body["on_hand"], 10);
            assert_eq!(r.body["held"], 0);
            assert_eq!(r.body["available"], 10);

            let r = h
                .movement(Some(RENNES), "rennes", "A", "adjustment", -3)
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
            assert_eq!(r.body["on_hand"], 7);
            let r = h
                .movement(Some(RENNES), "rennes", "A", "adjustment", 2)
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
            assert_eq!(r.body["on_hand"], 9);
            assert_eq!(r.body["available"], 9);
            assert_eq!(h.level("rennes", "A").await, Some((9, 0)));
            assert_eq!(h.ledger_rows().await, 3);

            // the actor and the kinds are in the ledger
            let r = h
                .get(
                    "/api/inventory/movements?location=rennes&sku=A",
                    Some(RENNES),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK);
            let kinds: Vec<(&str, i64, &str)> = r
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["kind"].as_str().unwrap(),
                        m["on_hand_delta"].as_i64().unwrap(),
                        m["actor"].as_str().unwrap(),
                    )
                })
                .collect();
            let actor = "store_manager:rennes-user";
            assert_eq!(
                kinds,
                vec![
                    ("adjustment", 2, actor),
                    ("adjustment", -3, actor),
                    ("receipt", 10, actor)
                ],
                "{be}: newest first"
            );

            // another store: as if it did not exist, and nothing changes there
            for (kind, q) in [("receipt", 5), ("adjustment", -1), ("adjustment", 1)] {
                let r = h.movement(Some(RENNES), "brest", "A", kind, q).await;
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {kind} {}", r.body);
                assert_eq!(r.code(), "not_found");
            }
            assert_eq!(h.level("brest", "A").await, None, "{be}");

            // a clerk reads stock but does not change it
            let r = h.movement(Some(CLERK), "rennes", "A", "receipt", 5).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}: {}", r.body);
            assert_eq!(r.code(), "forbidden");
            // a customer neither
            let r = h
                .movement(Some("customer"), "rennes", "A", "receipt", 5)
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{be}: {}", r.body);
            // nobody signed in
            let r = h.movement(None, "rennes", "A", "receipt", 5).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{be}: {}", r.body);
            assert_eq!(r.code(), "unauthenticated");
            assert_eq!(h.level("rennes", "A").await, Some((9, 0)), "{be}");
            assert_eq!(
                h.ledger_rows().await,
                3,
                "{be}: refused calls write nothing"
            );

            // head office acts for any location, but not for one that does not exist
            let r = h.movement(Some(HQ), "brest", "A", "receipt", 4).await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
            assert_eq!(h.level("brest", "A").await, Some((4, 0)));
            let r = h.movement(Some(HQ), "nowhere", "A", "receipt", 4).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {}", r.body);
            assert_eq!(r.code(), "not_found");
            // warehouse staff act for the logistics centre only
            let r = h
                .movement(
                    Some("warehouse:logistique"),
                    "logistique",
                    "A",
                    "receipt",
                    8,
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
            let r = h
                .movement(Some("warehouse:logistique"), "rennes", "A", "receipt", 8)
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{be}: {}", r.body);
            assert_eq!(h.ledger_rows().await, 5, "{be}");

            h.assert_consistent().await;
        })
    })
    .await;
}

#[tokio::test]
async fn an_adjustment_below_what_is_available_is_refused() {
    testkit::each_backend(inventory::migrations(), |t| {
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            h.stock("rennes", "A", 5).await;
            h.inv
                .hold(Uuid::now_v7(), "rennes", &[line("A", 2)], None)
                .await
                .unwrap();
            let ledger = h.ledger_rows().await;
            let events = h.outbox_rows().await;

            // 3 are available (2 are held for a checkout): taking 4 would sell held units
            let r = h
                .movement(Some(RENNES), "rennes", "A", "adjustment", -4)
                .await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{be}: {}", r.body);
            assert_eq!(r.code(), "out_of_stock");
            let errors = r.body["errors"].as_array().unwrap();
            assert_eq!(errors.len(), 1, "{be}: {}", r.body);
            assert_eq!(errors[0]["field"], "A", "{be}: the SKU is named");
            assert_eq!(errors[0]["code"], "out_of_stock");
            assert_eq!(h.level("rennes", "A").await, Some((5, 2)), "{be}");
            assert_eq!(h.ledger_rows().await, ledger, "{be}");
            assert_eq!(
                h.outbox_rows().await,
                events,
                "{be}: no event for a refusal"
            );

            // a SKU never received has nothing to take
            let r = h
                .movement(Some(RENNES), "rennes", "ZZ", "adjustment", -1)
                .await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{be}: {}", r.body);
            assert_eq!(r.body["errors"][0]["field"], "ZZ");
            assert_eq!(h.level("rennes", "ZZ").await, None);

            // exactly what is available is fine
            let r = h
                .movement(Some(RENNES), "rennes", "A", "adjustment", -3)
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{be}: {}", r.body);
            assert_eq!(r.body["on_hand"], 2);
            assert_eq!(r.body["held"], 2);
            assert_eq!(r.body["available"], 0);

            h.assert_consistent().await;
        })
    })
    .await;
}

#[tokio::test]
async fn bad_quantities_and_bodies_are_refused_and_change_nothing() {
    testkit::each_backend(inventory::migrations(), |t| Box::pin(async move {
        let h = H::new(t).await;
        let be = h.backend();
        h.stock("rennes", "A", 5).await;
        let ledger = h.ledger_rows().await;
        let events = h.outbox_rows().await;
        let body = |kind: &str, q: &str| {
            format!(
                r#"{{"location":"rennes","sku":"A","kind":"{kind}","quantity":{q},"reason":"x"}}"#
            )
        };
        let long_sku = "S".repeat(65);
        let cases: Vec<(String, StatusCode, &str)> = vec![
            (
                body("receipt", "0"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("receipt", "-1"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("adjustment", "0"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            // 2^31: fits an i64, but past the largest quantity of one movement
            (
                body("receipt", "2147483648"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("adjustment", "-2147483648"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("receipt", "1000001"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            // i64::MIN: its absolute value does not exist
            (
                body("adjustment", "-9223372036854775808"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            // 2^63 and beyond: not an i64 at all
            (
                body("receipt", "9223372036854775808"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                body("adjustment", "-9223372036854775809"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                body("receipt", "1e3"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                body("receipt", "1.5"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                body("receipt", r#""5""#),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                body("receipt", "null"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            // kinds that only checkouts and transfers write
            (
                body("sale", "1"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("transfer_in", "1"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                body("teleport", "1"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            // unknown fields are refused, not ignored
            (
                r#"{"location":"rennes","sku":"A","kind":"receipt","quantity":1,"reason":"x","on_hand":99}"#
                    .to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                r#"{"location":"rennes","sku":"A","kind":"receipt","reason":"x"}"#.to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                r#"{"location":"rennes","sku":"A","kind":"receipt","quantity":1,"reason":"  "}"#
                    .to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_reason",
            ),
            (
                format!(
                    r#"{{"location":"rennes","sku":"{long_sku}","kind":"receipt","quantity":1,"reason":"x"}}"#
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                r#"{"location":"rennes","sku":"","kind":"receipt","quantity":1,"reason":"x"}"#
                    .to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                r#"{"location":"rennes","sku":"A","#.to_string(),
                StatusCode::BAD_REQUEST,
                "malformed_json",
            ),
        ];
        for (b, status, code) in &cases {
            let r = h
                .raw(
                    "POST",
                    "/api/inventory/movements",
                    Some(RENNES),
                    Some(b),
                    &[],
                )
                .await;
            assert_eq!(r.status, *status, "{be}: {b} → {}", r.body);
            assert_eq!(r.code(), *code, "{be}: {b} → {}", r.body);
        }
        // the field at fault is named
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(&body("receipt", r#""5""#)),
                &[],
            )
            .await;
        assert_eq!(r.body["errors"][0]["field"], "quantity", "{be}: {}", r.body);
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                Some(
                    r#"{"location":"rennes","sku":"A","kind":"receipt","quantity":1,"reason":"x","on_hand":99}"#,
                ),
                &[],
            )
            .await;
        assert_eq!(r.body["errors"][0]["code"], "unknown_field", "{be}");
        // not JSON at all
        let r = h
            .raw(
                "POST",
                "/api/inventory/movements",
                Some(RENNES),
                None,
                &[("content-type", "text/plain")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{be}");

        // transfers check their quantities the same way
        for (q, status, code) in [
            (
                "0",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                "-1",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                "2147483648",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_stock_change",
            ),
            (
                "9223372036854775808",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (r#""1""#, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ] {
            let b = format!(
                r#"{{"from":"rennes","to":"brest","sku":"A","quantity":{q},"reason":"x"}}"#
            );
            let r = h
                .raw("POST", "/api/inventory/transfers", Some(HQ), Some(&b), &[])
                .await;
            assert_eq!(r.status, status, "{be}: transfer {q} → {}", r.body);
            assert_eq!(r.code(), code, "{be}: transfer {q} → {}", r.body);
        }
        let r = h
            .raw(
                "POST",
                "/api/inventory/transfers",
                Some(HQ),
                Some(r#"{"from":"rennes","to":"brest","sku":"A","quantity":1,"reason":"x","x":1}"#),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{be}");
        assert_eq!(r.body["errors"][0]["code"], "unknown_field", "{be}");

        // thresholds too
        for t in ["-1", "1000001", "9223372036854775808", r#""3""#] {
            let r = h
                .raw(
                    "PUT",
                    "/api/inventory/stock/rennes/A/threshold",
                    Some(RENNES),
                    Some(&format!(r#"{{"threshold":{t}}}"#)),
                    &[],
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{be}: threshold {t} → {}",
                r.body
            );
        }

        assert_eq!(h.level("rennes", "A").await, Some((5, 0)), "{be}");
        assert_eq!(h.level("brest", "A").await, None, "{be}");
        assert_eq!(h.ledger_rows().await, ledger, "{be}: nothing in the ledger");
        assert_eq!(h.outbox_rows().await, events, "{be}: no event");
        let levels = h.inv.levels(None, None, false, 1000).await.unwrap();
        assert_eq!(levels.len(), 1, "{be}: no stock row was created");
        assert_eq!(levels[0].low_threshold, 0, "{be}: no threshold was set");
        h.assert_consistent().await;
    }))
    .await;
}
