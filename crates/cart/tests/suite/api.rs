//! Through the HTTP router: owned carts, merging at sign-in, bad quantities, the catalogue and
//! the limits.

use super::*;

on_all_backends!(an_owned_cart_answers_404_to_anyone_else, |e| Box::pin(
    async move {
        let b = e.backend;
        let r = e.call("POST", "/api/carts", Some("alice"), None, &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{b}: {:?}", r.body);
        assert_eq!(r.body["owner"], "alice");
        let id = r.body["id"].as_str().expect("id").to_string();
        assert_eq!(
            r.headers.get("location").and_then(|v| v.to_str().ok()),
            Some(format!("/api/carts/{id}").as_str())
        );
        let again = e.call("POST", "/api/carts", Some("alice"), None, &[]).await;
        assert_eq!(again.status, StatusCode::OK, "{b}: her existing cart");
        assert_eq!(again.body["id"], id.as_str());
        let uri = format!("/api/carts/{id}");
        let lines = format!("{uri}/lines");
        let line = format!("{uri}/lines/TEE-M");
        let added = e
            .json(
                "POST",
                &lines,
                Some("alice"),
                &json!({"sku": "TEE-M", "quantity": 2}),
            )
            .await;
        assert_eq!(added.status, StatusCode::OK, "{b}: {:?}", added.body);
        assert_eq!(added.body["subtotal"], 3980);

        for who in [None, Some("bob"), Some("clerk")] {
            let r = e.call("GET", &uri, who, None, &[]).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::NOT_FOUND, "not_found"),
                "{b} {who:?}"
            );
            let r = e
                .json("POST", &lines, who, &json!({"sku": "SOCKS", "quantity": 1}))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{b} {who:?}");
            let r = e.json("PATCH", &line, who, &json!({"quantity": 5})).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{b} {who:?}");
            let r = e.call("DELETE", &line, who, None, &[]).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{b} {who:?}");
        }
        let r = e
            .call("POST", &format!("{uri}/merge"), Some("bob"), None, &[])
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{b}: bob cannot take alice's cart"
        );

        let mine = e.call("GET", &uri, Some("alice"), None, &[]).await;
        assert_eq!(mine.status, StatusCode::OK);
        assert_eq!(mine.body["lines"][0]["quantity"], 2, "{b}: untouched");
        assert_eq!(mine.body["lines"][0]["total"], 3980);
        assert_eq!(mine.body["item_count"], 2);

        // a guest cart is reachable by its id, whoever asks
        let guest = e.new_cart(None).await;
        for who in [None, Some("bob")] {
            let r = e
                .call("GET", &format!("/api/carts/{guest}"), who, None, &[])
                .await;
            assert_eq!(r.status, StatusCode::OK, "{b} {who:?}");
            assert_eq!(r.body["owner"], Value::Null);
        }
        for bad in [Uuid::new_v4().to_string(), "not-an-id".to_string()] {
            let r = e
                .call("GET", &format!("/api/carts/{bad}"), None, None, &[])
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{b}: {bad}");
        }
    }
));

on_all_backends!(merging_at_sign_in_through_the_api, |e| Box::pin(
    async move {
        let b = e.backend;
        let guest = e.new_cart(None).await;
        let r = e
            .json(
                "POST",
                &format!("/api/carts/{guest}/lines"),
                None,
                &json!({"sku": "CAP", "quantity": 3}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{b}: {:?}", r.body);
        let merge = format!("/api/carts/{guest}/merge");
        let r = e.call("POST", &merge, None, None, &[]).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{b}"
        );
        let r = e.call("POST", &merge, Some("clerk"), None, &[]).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{b}"
        );

        let mine = e.new_cart(Some("alice")).await;
        let r = e.call("POST", &merge, Some("alice"), None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{b}: {:?}", r.body);
        assert_eq!(r.body["id"], mine.to_string());
        assert_eq!(r.body["lines"][0]["sku"], "CAP");
        assert_eq!(r.body["lines"][0]["quantity"], 3);
        let r = e
            .call("GET", &format!("/api/carts/{guest}"), None, None, &[])
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{b}: the guest cart is gone"
        );
    }
));

on_all_backends!(bad_quantities_get_a_stable_code_and_change_nothing, |e| {
    Box::pin(async move {
        let b = e.backend;
        let id = e.new_cart(None).await;
        let lines = format!("/api/carts/{id}/lines");
        let ok = e
            .json(
                "POST",
                &lines,
                None,
                &json!({"sku": "TEE-M", "quantity": 1}),
            )
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{b}: {:?}", ok.body);
        let numbers = [
            "0",
            "-1",
            "100",
            "2147483648",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551616",
            "1e300",
            "1.5",
            "-9223372036854775808",
        ];
        for q in numbers {
            let body = format!(r#"{{"sku": "SOCKS", "quantity": {q}}}"#);
            let r = e.call("POST", &lines, None, Some(&body), &[]).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_quantity"),
                "{b}: add {q}"
            );
            let body = format!(r#"{{"quantity": {q}}}"#);
            let r = e
                .call("PATCH", &format!("{lines}/TEE-M"), None, Some(&body), &[])
                .await;
            let expected = if q == "0" {
                StatusCode::OK // 0 removes the line: allowed on PATCH
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            assert_eq!(r.status, expected, "{b}: set {q}: {:?}", r.body);
            if q == "0" {
                let again = e
                    .json(
                        "POST",
                        &lines,
                        None,
                        &json!({"sku": "TEE-M", "quantity": 1}),
                    )
                    .await;
                assert_eq!(again.status, StatusCode::OK);
            } else {
                assert_eq!(r.code(), "invalid_quantity", "{b}: set {q}");
            }
        }
        for (body, code) in [
            (r#"{"sku": "SOCKS", "quantity": "3"}"#, "invalid_body"),
            (r#"{"sku": "SOCKS", "quantity": null}"#, "invalid_body"),
            (r#"{"sku": "SOCKS"}"#, "invalid_body"),
            (
                r#"{"sku": "SOCKS", "quantity": 1, "unit_price": 1}"#,
                "invalid_body",
            ),
            (r#"{"sku": "SOCKS", "quantity": 1"#, "malformed_json"),
        ] {
            let r = e.call("POST", &lines, None, Some(body), &[]).await;
            assert!(r.status.is_client_error(), "{b}: {body}");
            assert_eq!(r.code(), code, "{b}: {body}");
        }
        let r = e
            .call(
                "POST",
                &lines,
                None,
                Some(r#"{"sku":"SOCKS","quantity":1,"unit_price":1}"#),
                &[],
            )
            .await;
        assert_eq!(
            r.body["errors"][0]["code"], "unknown_field",
            "{b}: prices are never sent"
        );

        // adding past 99 on one line is refused too
        let r = e
            .json(
                "POST",
                &lines,
                None,
                &json!({"sku": "TEE-M", "quantity": 99}),
            )
            .await;
        assert_eq!(r.code(), "invalid_quantity", "{b}");

        let cart = e.carts.get(id, None).await.expect("get");
        assert_eq!(cart.lines.len(), 1, "{b}: nothing else was added");
        assert_eq!(cart.line("TEE-M").map(|l| l.quantity), Some(1), "{b}");
    })
});

on_all_backends!(lines_follow_the_catalogue_and_the_limits, |e| Box::pin(
    async move {
        let b = e.backend;
        let id = e.new_cart(None).await;
        let lines = format!("/api/carts/{id}/lines");
        let add = |sku: &str, q: i64| json!({"sku": sku, "quantity": q});
        for (sku, code) in [
            ("NOPE", "unknown_sku"),
            ("", "unknown_sku"),
            ("OLD", "unavailable"),
            ("SWISS", "currency_mismatch"),
        ] {
            let r = e.json("POST", &lines, None, &add(sku, 1)).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{b}: {sku}"
            );
        }
        let r = e.json("POST", &lines, None, &add("TEE-M", 2)).await;
        assert_eq!(
            r.body["lines"][0]["unit_price"], 1990,
            "{b}: the catalogue's price"
        );
        assert_eq!(r.body["lines"][0]["name"], "Article TEE-M");
        // adding the same SKU adds to its line, at the current price
        e.prices.set("TEE-M", 1790, "EUR", true);
        let r = e.json("POST", &lines, None, &add("TEE-M", 1)).await;
        assert_eq!(r.body["lines"].as_array().map(Vec::len), Some(1), "{b}");
        assert_eq!(r.body["lines"][0]["quantity"], 3);
        assert_eq!(r.body["subtotal"], 3 * 1790);

        let r = e
            .json(
                "PATCH",
                &format!("{lines}/TEE-M"),
                None,
                &json!({"quantity": 7}),
            )
            .await;
        assert_eq!(r.body["lines"][0]["quantity"], 7, "{b}");
        let r = e
            .json(
                "PATCH",
                &format!("{lines}/CAP"),
                None,
                &json!({"quantity": 7}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{b}: not in the cart");
        let r = e
            .call("DELETE", &format!("{lines}/TEE-M"), None, None, &[])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{b}");
        assert_eq!(r.body["lines"], json!([]));
        assert_eq!(r.body["subtotal"], 0);
        let r = e
            .call("DELETE", &format!("{lines}/TEE-M"), None, None, &[])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{b}");

        // at most 50 lines
        for i in 0..MAX_LINES {
            e.prices.set(&format!("SKU-{i}"), 100, "EUR", true);
            e.carts
                .add_line(id, None, &format!("SKU-{i}"), 1, None)
                .await
                .expect("within the limit");
        }
        let r = e.json("POST", &lines, None, &add("CAP", 1)).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "too_many_lines"),
            "{b}"
        );
        let r = e.json("POST", &lines, None, &add("SKU-0", 1)).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{b}: an existing line still grows"
        );

        // a cart in another currency
        let r = e
            .json("POST", "/api/carts", None, &json!({"currency": "CHF"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{b}");
        assert_eq!(r.body["currency"], "CHF");
        let r = e
            .json("POST", "/api/carts", None, &json!({"currency": "XXX"}))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        let r = e
            .json("POST", "/api/carts", None, &json!({"owner": "alice"}))
            .await;
        assert_eq!(r.code(), "invalid_body", "{b}: unknown fields are refused");
    }
));
