//! Creating and changing products and variants; refused writes change nothing; who may write;
//! what the public sees of drafts and archived products.

use super::*;

on_all_backends!(create_then_read_by_id_and_slug, 0, |h| Box::pin(
    async move {
        let r = h
            .write(
                "POST",
                "/api/catalog/products",
                &new_product("veste-glaz", "GLZ-001", 8990),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {:?}", h.backend, r.body);
        let id = r.body["id"].as_str().expect("id").to_string();
        assert_eq!(r.headers["location"], format!("/api/catalog/products/{id}"));
        assert_eq!(r.body["price_range"]["min"]["amount_minor"], 8990);
        assert_eq!(r.body["price_range"]["max"]["amount_minor"], 9490);
        assert_eq!(r.body["variants"][0]["vat_included_minor"], 1498);
        assert_eq!(r.body["version"], 1);
        let by_id = h.get(&format!("/api/catalog/products/{id}")).await;
        let by_slug = h.get("/api/catalog/products/veste-glaz").await;
        assert_eq!(by_id.status, StatusCode::OK);
        assert_eq!(by_id.body, by_slug.body);
        assert_eq!(by_id.body["attributes"][0]["value"], true);
        let found = h.get("/api/catalog/products?q=glaz%20pluie").await;
        assert_eq!(found.body["items"][0]["slug"], "veste-glaz");
        let missing = h.get("/api/catalog/products/does-not-exist").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.body["code"], "not_found");
    }
));

on_all_backends!(bad_writes_are_refused_and_change_nothing, 0, |h| Box::pin(
    async move {
        let ok = new_product("ok-product", "OK-1", 1000);
        assert_eq!(
            h.write("POST", "/api/catalog/products", &ok, &[])
                .await
                .status,
            StatusCode::CREATED
        );
        let before = (h.count("products").await, h.count("variants").await);
        // the accepted write told the other services, in its transaction
        assert_eq!(h.count("events").await, 1);
        let payload: String = platform::db_run!(&h.db, |p| sqlx::query_scalar(
            "SELECT payload FROM outbox WHERE topic = 'product.changed'"
        )
        .fetch_one(p)
        .await)
        .expect("event");
        let payload: Value = serde_json::from_str(&payload).expect("json");
        assert_eq!(
            (payload["slug"].clone(), payload["skus"].clone()),
            (json!("ok-product"), json!(["OK-1", "OK-1-L"]))
        );
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = new_product("new-one", "NEW-1", 1000);
            f(&mut v);
            v
        };
        let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
            (
                with(&|v| v["variants"][0]["price"]["amount_minor"] = json!(-1)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[0].price.amount_minor",
            ),
            (
                with(&|v| v["variants"][0]["price"]["amount_minor"] = json!(99_999_999_999i64)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[0].price.amount_minor",
            ),
            (
                with(&|v| v["variants"][0]["price"]["amount_minor"] = json!("12")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "variants[0].price.amount_minor",
            ),
            (
                with(&|v| v["variants"][0]["price"]["currency"] = json!("EURO")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "variants[0].price.currency",
            ),
            (
                with(&|v| v["variants"][1]["price"]["currency"] = json!("USD")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[1].price.currency",
            ),
            (
                with(&|v| v["status"] = json!("sold_out")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "status",
            ),
            (
                with(&|v| v["name"]["fr"] = json!("x".repeat(201))),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "name.fr",
            ),
            (
                with(&|v| v["name"]["en"] = json!("")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "name.en",
            ),
            (
                with(&|v| v["slug"] = json!("Not A Slug")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "slug",
            ),
            (
                with(&|v| v["variants"][0]["barcode"] = json!("4006381333932")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[0].barcode",
            ),
            (
                with(&|v| v["variants"][1]["sku"] = json!("NEW-1")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[1].sku",
            ),
            (
                with(&|v| v["variants"][0]["vat_rate"] = json!(20000)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[0].vat_rate",
            ),
            (
                with(&|v| v["is_admin"] = json!(true)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "is_admin",
            ),
            (
                with(&|v| v["variants"] = json!([])),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants",
            ),
            (
                with(&|v| v["brand_id"] = json!("0190d4c6-3a4b-7c2d-8e9f-0a1b2c3d4e5f")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "brand_id",
            ),
            (
                with(&|v| v["slug"] = json!("ok-product")),
                StatusCode::CONFLICT,
                "slug_taken",
                "slug",
            ),
            (
                with(&|v| v["variants"][0]["sku"] = json!("OK-1")),
                StatusCode::CONFLICT,
                "sku_taken",
                "variants[0].sku",
            ),
            (
                with(&|v| v["variants"][0]["barcode"] = json!("4006381333931")),
                StatusCode::CONFLICT,
                "barcode_taken",
                "variants[0].barcode",
            ),
        ];
        for (body, status, code, field) in cases {
            let r = h.write("POST", "/api/catalog/products", &body, &[]).await;
            assert_eq!(r.status, status, "{}: {field}: {:?}", h.backend, r.body);
            assert_eq!(r.body["code"], code, "{field}: {:?}", r.body);
            assert_eq!(r.headers["content-type"], "application/problem+json");
            let fields: Vec<&str> = r.body["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .map(|e| e["field"].as_str().expect("field"))
                .collect();
            assert!(fields.contains(&field), "{field} not in {fields:?}");
        }
        let ho = head_office();
        let json_ct = [("content-type", "application/json")];
        let r = h
            .raw_as(
                Some(&ho),
                "POST",
                "/api/catalog/products",
                "{\"name\": ",
                &json_ct,
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("malformed_json"))
        );
        let r = h
            .raw_as(
                Some(&ho),
                "POST",
                "/api/catalog/products",
                &ok.to_string(),
                &[],
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("unsupported_media_type")
            )
        );
        // JSON nested 10,000 deep where any value is allowed: refused, no stack overflow
        let deep = format!(
            "{{\"attributes\": [{{\"code\": \"a\", \"type\": \"list\", \"value\": {}{}}}]}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let r = h
            .raw_as(Some(&ho), "POST", "/api/catalog/products", &deep, &json_ct)
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("malformed_json")),
            "deep nesting: {:?}",
            r.body
        );
        let big = format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024));
        let r = h
            .raw_as(Some(&ho), "POST", "/api/catalog/products", &big, &json_ct)
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
        );
        assert_eq!(
            (h.count("products").await, h.count("variants").await),
            before,
            "nothing written"
        );
        assert_eq!(h.count("events").await, 1, "no event for a refused write");
    }
));

on_all_backends!(writes_need_the_catalog_write_permission, 0, |h| Box::pin(
    async move {
        let body = new_product("anon", "ANON-1", 100).to_string();
        let r = h
            .raw(
                "POST",
                "/api/catalog/products",
                &body,
                &[("content-type", "application/json")],
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
        );
        // an identity header that does not verify
        let r = h
            .app
            .post("/api/catalog/products")
            .forged_as(&head_office())
            .header("content-type", "application/json")
            .body(body.clone())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // a wrong identity is refused even on reads (never silently downgraded)
        let r = h
            .app
            .get("/api/catalog/products")
            .forged_as(&head_office())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // signed in, but without `catalog:write`
        let customer = principal::customer("Customer");
        let r = h
            .raw_as(
                Some(&customer),
                "POST",
                "/api/catalog/products",
                &body,
                &[("content-type", "application/json")],
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        // a customer sees published products only, like the public
        let r = h
            .raw_as(
                Some(&customer),
                "GET",
                "/api/catalog/products?status=draft",
                "",
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
        assert_eq!(h.count("products").await, 0);
    }
));

on_all_backends!(
    drafts_and_archived_products_are_hidden_from_the_public,
    0,
    |h| Box::pin(async move {
        let mut draft = new_product("brouillon", "DRF-1", 100);
        draft["status"] = json!("draft");
        draft["variants"][0]["barcode"] = json!(null);
        let r = h.write("POST", "/api/catalog/products", &draft, &[]).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let id = r.body["id"].as_str().expect("id").to_string();
        assert_eq!(
            h.get("/api/catalog/products/brouillon").await.status,
            StatusCode::NOT_FOUND
        );
        let bo = h.get_bo("/api/catalog/products/brouillon").await;
        assert_eq!(bo.status, StatusCode::OK);
        assert_eq!(bo.headers["etag"], "\"v1\"");
        let drafts = h.get_bo("/api/catalog/products?status=draft").await;
        assert_eq!(drafts.body["items"].as_array().expect("items").len(), 1);
        // publish with If-Match: a stale version is refused, the right one applies
        let stale = h
            .write(
                "PATCH",
                &format!("/api/catalog/products/{id}"),
                &json!({"status": "published"}),
                &[("if-match", "\"v7\"")],
            )
            .await;
        assert_eq!(
            (stale.status, stale.body["code"].as_str()),
            (StatusCode::PRECONDITION_FAILED, Some("version_mismatch"))
        );
        let r = h
            .write(
                "PATCH",
                &format!("/api/catalog/products/{id}"),
                &json!({"status": "published", "name": {"fr": "Publié", "en": "Published"}}),
                &[("if-match", "\"v1\"")],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["version"], 2);
        assert!(r.body["published_at"].is_string());
        assert_eq!(
            h.get("/api/catalog/products/brouillon").await.body["name"]["fr"],
            "Publié"
        );
        // archive: gone for the public, kept for the back office
        let r = h
            .write(
                "POST",
                &format!("/api/catalog/products/{id}/archive"),
                &json!({}),
                &[],
            )
            .await;
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (StatusCode::OK, Some("archived"))
        );
        assert_eq!(
            h.get(&format!("/api/catalog/products/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            h.get_bo(&format!("/api/catalog/products/{id}"))
                .await
                .status,
            StatusCode::OK
        );
        let r = h
            .write(
                "PATCH",
                &format!("/api/catalog/products/{id}"),
                &json!({"status": "published"}),
                &[],
            )
            .await;
        assert_eq!(r.body["code"], "product_archived");
    })
);

on_all_backends!(variants_can_be_added_and_repriced, 0, |h| Box::pin(
    async move {
        let r = h
            .write(
                "POST",
                "/api/catalog/products",
                &new_product("veste-v", "VV-1", 5000),
                &[],
            )
            .await;
        let id = r.body["id"].as_str().expect("id").to_string();
        let r = h.write("POST", &format!("/api/catalog/products/{id}/variants"),
        &json!({"sku": "VV-XL", "size": "XL", "colour": "Navy", "price": {"amount_minor": 6500, "currency": "EUR"}, "vat_rate": 2000}), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["variants"].as_array().expect("v").len(), 3);
        assert_eq!(r.body["price_range"]["max"]["amount_minor"], 6500);
        let vid = r.body["variants"][0]["id"]
            .as_str()
            .expect("vid")
            .to_string();
        let r = h
            .write(
                "PATCH",
                &format!("/api/catalog/products/{id}/variants/{vid}"),
                &json!({"price": {"amount_minor": 4000, "currency": "EUR"}}),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["price_range"]["min"]["amount_minor"], 4000);
        let r = h
            .write(
                "PATCH",
                &format!("/api/catalog/products/{id}/variants/{vid}"),
                &json!({"price": {"amount_minor": 4000, "currency": "USD"}}),
                &[],
            )
            .await;
        assert_eq!(r.body["code"], "validation_failed");
        let r = h
            .get("/api/catalog/products?min_price=3900&max_price=4100")
            .await;
        assert_eq!(r.body["items"][0]["slug"], "veste-v");
    }
));
