//! Idempotency keys, concurrent duplicates, the response cache, problems on every error.

use super::*;

on_all_backends!(idempotency_keys_replay_and_refuse, 0, |h| Box::pin(
    async move {
        let body = new_product("idem", "IDEM-1", 1234);
        let first = h
            .write(
                "POST",
                "/api/catalog/products",
                &body,
                &[("idempotency-key", "k-1")],
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED);
        let again = h
            .write(
                "POST",
                "/api/catalog/products",
                &body,
                &[("idempotency-key", "k-1")],
            )
            .await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_eq!(again.body, first.body, "byte-identical replay");
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(again.headers["location"], first.headers["location"]);
        let other = h
            .write(
                "POST",
                "/api/catalog/products",
                &new_product("idem-2", "IDEM-2", 1),
                &[("idempotency-key", "k-1")],
            )
            .await;
        assert_eq!(
            (other.status, other.body["code"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("idempotency_key_reused")
            )
        );
        let bad = h
            .write(
                "POST",
                "/api/catalog/products",
                &body,
                &[("idempotency-key", "has space")],
            )
            .await;
        assert_eq!(bad.body["code"], "invalid_idempotency_key");
        // a failed request does not burn its key
        let mut invalid = new_product("idem-3", "IDEM-3", -5);
        let r = h
            .write(
                "POST",
                "/api/catalog/products",
                &invalid,
                &[("idempotency-key", "k-3")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        invalid["variants"][0]["price"]["amount_minor"] = json!(5);
        invalid["variants"][0]["barcode"] = json!(null);
        let r = h
            .write(
                "POST",
                "/api/catalog/products",
                &invalid,
                &[("idempotency-key", "k-3")],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "the corrected retry runs: {:?}",
            r.body
        );
        assert_eq!(h.count("products").await, 2);
    }
));

on_all_backends!(concurrent_duplicates_create_one_product, 0, |h| Box::pin(
    async move {
        let body = new_product("race", "RACE-1", 999);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let app = h.app.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                app.post("/api/catalog/products")
                    .as_(&head_office())
                    .json(&body)
                    .idempotency_key("race-key")
                    .await
                    .status
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.expect("task"));
        }
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
            "{statuses:?}"
        );
        assert!(statuses.contains(&StatusCode::CREATED));
        assert_eq!(h.count("products").await, 1, "{}: one execution", h.backend);
    }
));

on_all_backends!(cached_reads_see_writes_at_once, 60, |h| Box::pin(
    async move {
        let r = h.get("/api/catalog/products?q=cache").await;
        assert_eq!(r.body["items"].as_array().expect("items").len(), 0);
        let mut p = new_product("cache-me", "CACHE-1", 100);
        p["name"]["fr"] = json!("Produit cache");
        assert_eq!(
            h.write("POST", "/api/catalog/products", &p, &[])
                .await
                .status,
            StatusCode::CREATED
        );
        let r = h.get("/api/catalog/products?q=cache").await;
        assert_eq!(
            r.body["items"].as_array().expect("items").len(),
            1,
            "the write cleared the cache"
        );
        assert!(
            r.headers["cache-control"]
                .to_str()
                .expect("cc")
                .starts_with("public")
        );
    }
));

on_all_backends!(errors_are_problems_everywhere, 0, |h| Box::pin(
    async move {
        let r = h.get("/api/catalog/nowhere").await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("route_not_found"))
        );
        let r = h.raw("DELETE", "/api/catalog/products", "", &[]).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
        );
        let r = h
            .raw(
                "GET",
                "/api/catalog/brands",
                "",
                &[("x-request-id", "abc-123")],
            )
            .await;
        assert_eq!(r.headers["x-request-id"], "abc-123");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        let r = h
            .raw(
                "GET",
                "/api/catalog/products/x",
                "",
                &[("x-request-id", "bad id with spaces")],
            )
            .await;
        assert_ne!(r.headers["x-request-id"], "bad id with spaces");
        assert_eq!(
            r.body["request_id"],
            r.headers["x-request-id"].to_str().expect("id")
        );
    }
));
