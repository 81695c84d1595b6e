//! API keys (S18: shown once, scoped, revoked fast) and object-level checks: staff see and change
//! only what is theirs.

use super::*;

// ---- S18 and object-level checks ---------------------------------------------------------------

on_all_backends!(api_keys_are_shown_once_scoped_and_revoked_fast, |h, t| {
    let ho = h.head_office().await;
    let r = h
        .post(
            "/api/identity/api-keys",
            &json!({"name": "Till 3", "scopes": ["pos:sell", "inventory:read"], "store": "rennes"}),
            Some(&ho),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let key = r.body["key"].as_str().expect("key").to_string();
    let id = r.body["api_key"]["id"].as_str().expect("id").to_string();
    // ck_<16 hex>_<secret>; the secret is base64url and may itself hold '_'
    let secret = &key[20..];
    assert_eq!(&key[..3], "ck_");
    assert!(
        B64.decode(secret).expect("b64").len() >= 16,
        "at least 128 bits"
    );
    // never shown again, stored as SHA-256 only
    let listed = h.get("/api/identity/api-keys", Some(&ho)).await;
    assert!(!listed.body.to_string().contains(secret));
    let one = h
        .get(&format!("/api/identity/api-keys/{id}"), Some(&ho))
        .await;
    assert!(!one.body.to_string().contains(secret));
    let row = identity::store::api_key_by_id(&h.id.db, id.parse().expect("uuid"))
        .await
        .expect("r")
        .expect("row");
    assert_eq!(row.secret_sha256, platform::sha256_hex(&key));

    // it works for its store, in both headers
    let sale = |k: String, store: &'static str, header: &'static str| {
        let h = &h;
        async move {
            let v = if header == "authorization" {
                format!("Bearer {k}")
            } else {
                k
            };
            h.call(
                "POST",
                &format!("/test/stores/{store}/sales"),
                Some(&json!({})),
                &[(header, v)],
                "127.0.0.1",
            )
            .await
            .status
        }
    };
    assert_eq!(
        sale(key.clone(), "rennes", "authorization").await,
        StatusCode::CREATED
    );
    assert_eq!(
        sale(key.clone(), "rennes", "x-api-key").await,
        StatusCode::CREATED
    );
    // not for another store
    assert_eq!(
        sale(key.clone(), "brest", "x-api-key").await,
        StatusCode::NOT_FOUND
    );
    // not for what its scopes do not cover, nor for managing keys
    let r = h
        .call(
            "GET",
            "/api/identity/api-keys",
            None,
            &[("x-api-key", key.clone())],
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            "GET",
            "/test/undeclared",
            None,
            &[("authorization", format!("Bearer {ho}"))],
            "127.0.0.1",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "undeclared route refused even to head office"
    );
    // a forged key with a real prefix
    let forged = format!("{}{}", &key[..20], B64.encode([7u8; 32]));
    assert_eq!(
        sale(forged, "rennes", "x-api-key").await,
        StatusCode::UNAUTHORIZED
    );

    // revoked: refused within seconds
    let r = h
        .call(
            "DELETE",
            &format!("/api/identity/api-keys/{id}"),
            None,
            &[("authorization", format!("Bearer {ho}"))],
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let revoked_at = Instant::now();
    testkit::eventually(
        "the revoked key to be refused",
        Duration::from_secs(5),
        || {
            let k = key.clone();
            let sale = &sale;
            async move {
                (sale(k, "rennes", "x-api-key").await == StatusCode::UNAUTHORIZED).then_some(())
            }
        },
    )
    .await;
    assert!(revoked_at.elapsed() <= Duration::from_secs(5));
    let one = h
        .get(&format!("/api/identity/api-keys/{id}"), Some(&ho))
        .await;
    assert!(one.body["revoked_at"].is_string());

    // a store manager: keys of their store only, scopes they hold only
    let (_, manager) = h.staff(&ho, "store_manager", Some("brest")).await;
    assert_eq!(
        h.get(&format!("/api/identity/api-keys/{id}"), Some(&manager))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = h
        .call(
            "DELETE",
            &format!("/api/identity/api-keys/{id}"),
            None,
            &[("authorization", format!("Bearer {manager}"))],
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .post(
            "/api/identity/api-keys",
            &json!({"name": "x", "scopes": ["pos:sell"], "store": "rennes"}),
            Some(&manager),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .post(
            "/api/identity/api-keys",
            &json!({"name": "x", "scopes": ["catalog:write"]}),
            Some(&manager),
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_yours"))
    );
    let r = h
        .post(
            "/api/identity/api-keys",
            &json!({"name": "Till B", "scopes": ["pos:sell"]}),
            Some(&manager),
        )
        .await;
    assert_eq!(
        (r.status, r.body["api_key"]["store"].as_str()),
        (StatusCode::CREATED, Some("brest"))
    );
    let listed = h.get("/api/identity/api-keys", Some(&manager)).await;
    let stores: Vec<&str> = listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|k| k["store"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(stores, vec!["brest"]);
});

on_all_backends!(staff_see_and_change_only_what_is_theirs, |h, t| {
    let ho = h.head_office().await;
    let (rennes_clerk, clerk) = h.staff(&ho, "clerk", Some("rennes")).await;
    let (brest_clerk, _) = h.staff(&ho, "clerk", Some("brest")).await;
    let (_, manager) = h.staff(&ho, "store_manager", Some("rennes")).await;
    let (_, cust) = h.customer("customer password").await;
    let cust = cust["access_token"].as_str().expect("a").to_string();

    // a store manager lists their store only, even when asking for another
    for q in ["", "?store=brest"] {
        let r = h
            .get(&format!("/api/identity/users{q}"), Some(&manager))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        for u in r.body["items"].as_array().expect("items") {
            assert_eq!(u["store"], "rennes", "{q}: {u}");
        }
    }
    assert_eq!(
        h.get(
            &format!("/api/identity/users/{rennes_clerk}"),
            Some(&manager)
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        h.get(
            &format!("/api/identity/users/{brest_clerk}"),
            Some(&manager)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let patch = |id: String, tok: String, body: Value| {
        let h = &h;
        async move {
            h.call(
                "PATCH",
                &format!("/api/identity/users/{id}"),
                Some(&body),
                &[("authorization", format!("Bearer {tok}"))],
                "127.0.0.1",
            )
            .await
        }
    };
    assert_eq!(
        patch(
            brest_clerk.clone(),
            manager.clone(),
            json!({"status": "disabled"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        patch(
            rennes_clerk.clone(),
            manager.clone(),
            json!({"role": "head_office"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        patch(
            rennes_clerk.clone(),
            manager.clone(),
            json!({"name": "Renamed"})
        )
        .await
        .status,
        StatusCode::OK
    );
    // a manager creates clerks of their store only
    let r = h.post("/api/identity/users", &json!({"email": "m1@test.example", "name": "M", "role": "store_manager", "store": "rennes"}), Some(&manager)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .post(
            "/api/identity/users",
            &json!({"email": "m2@test.example", "name": "M", "role": "clerk", "store": "brest"}),
            Some(&manager),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .post(
            "/api/identity/users",
            &json!({"email": "m3@test.example", "name": "M", "role": "clerk"}),
            Some(&manager),
        )
        .await;
    assert_eq!(
        (r.status, r.body["user"]["store"].as_str()),
        (StatusCode::CREATED, Some("rennes"))
    );
    assert!(
        r.body["initial_password"]
            .as_str()
            .is_some_and(|p| p.len() >= 16)
    );

    // a clerk and a customer manage nobody, and see only themselves
    for tok in [&clerk, &cust] {
        assert_eq!(
            h.get("/api/identity/users", Some(tok)).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            h.get(&format!("/api/identity/users/{brest_clerk}"), Some(tok))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let r = h.post("/api/identity/users", &json!({"email": "z@test.example", "name": "Z", "role": "clerk", "store": "rennes"}), Some(tok)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(
            h.post("/api/identity/signing-keys/rotate", &json!({}), Some(tok))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        h.get(&format!("/api/identity/users/{rennes_clerk}"), Some(&clerk))
            .await
            .status,
        StatusCode::OK
    );
    // anonymous: 401 everywhere that needs someone
    assert_eq!(
        h.get("/api/identity/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.get("/api/identity/users", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // unknown fields are refused on staff writes (mass assignment)
    let r = patch(rennes_clerk, ho.clone(), json!({"password_hash": "x"})).await;
    assert!(r.status.is_client_error());
});
