//! Password resets and signing-key rotation.

use super::*;

// ---- resets, rotation --------------------------------------------------------------------------

on_all_backends!(
    password_reset_is_single_use_and_goes_through_the_outbox,
    |h, t| {
        let (email, s) = h.customer("forgotten password").await;
        let before = s["access_token"].as_str().expect("a").to_string();
        let r = h
            .post(
                "/api/identity/password-resets",
                &json!({"email": email}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let r = h
            .post(
                "/api/identity/password-resets",
                &json!({"email": "nobody@test.example"}),
                None,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::ACCEPTED,
            "same answer for an unknown address"
        );
        let msgs =
            identity::store::pending_outbox(&h.id.db, identity::service::TOPIC_PASSWORD_RESET)
                .await
                .expect("outbox");
        assert_eq!(msgs.len(), 1, "one message, for the known account only");
        let payload: Value = serde_json::from_str(&msgs[0].payload).expect("json");
        assert_eq!(payload["email"], email.as_str());
        let token = payload["token"].as_str().expect("token").to_string();
        assert!(
            payload["reset_url"]
                .as_str()
                .expect("url")
                .starts_with("http://shop.test/")
        );
        // the token is stored hashed only
        let leaked: i64 = platform::db_run!(&h.id.db, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM password_resets WHERE token_hash = $1"
        )
        .bind(&token)
        .fetch_one(p)
        .await)
        .expect("count");
        assert_eq!(leaked, 0);

        let weak = h
            .post(
                "/api/identity/password-resets/confirm",
                &json!({"token": token, "new_password": "password"}),
                None,
            )
            .await;
        assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
        let ok = h
            .post(
                "/api/identity/password-resets/confirm",
                &json!({"token": token, "new_password": "a brand new secret"}),
                None,
            )
            .await;
        assert_eq!(ok.status, StatusCode::NO_CONTENT, "{:?}", ok.body);
        let again = h
            .post(
                "/api/identity/password-resets/confirm",
                &json!({"token": token, "new_password": "yet another secret"}),
                None,
            )
            .await;
        assert_eq!(
            (again.status, again.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_reset_token"))
        );
        assert_eq!(
            h.sign_in(&email, "forgotten password").await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            h.sign_in(&email, "a brand new secret").await.status,
            StatusCode::CREATED
        );
        until_refused(&h, &before).await;

        // a newer request voids the older link; an expired link does not work
        h.post(
            "/api/identity/password-resets",
            &json!({"email": email}),
            None,
        )
        .await;
        h.post(
            "/api/identity/password-resets",
            &json!({"email": email}),
            None,
        )
        .await;
        let msgs =
            identity::store::pending_outbox(&h.id.db, identity::service::TOPIC_PASSWORD_RESET)
                .await
                .expect("outbox");
        let older: Value = serde_json::from_str(&msgs[1].payload).expect("json");
        let r = h
            .post(
                "/api/identity/password-resets/confirm",
                &json!({"token": older["token"], "new_password": "older link secret"}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let mut p = policy();
        p.reset_ttl = Duration::ZERO;
        let h0 = H::with(t, p, None).await;
        h0.post(
            "/api/identity/password-resets",
            &json!({"email": email}),
            None,
        )
        .await;
        let msgs =
            identity::store::pending_outbox(&h0.id.db, identity::service::TOPIC_PASSWORD_RESET)
                .await
                .expect("outbox");
        let last: Value = serde_json::from_str(&msgs[msgs.len() - 1].payload).expect("json");
        let r = h0
            .post(
                "/api/identity/password-resets/confirm",
                &json!({"token": last["token"], "new_password": "expired link secret"}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "expired");
    }
);

on_all_backends!(key_rotation_keeps_issued_tokens_valid, |h, t| {
    let ho = h.head_office().await;
    let (_, s) = h.customer("rotation password").await;
    let old = s["access_token"].as_str().expect("a").to_string();
    let disc = h.get("/.well-known/openid-configuration", None).await;
    assert_eq!(disc.body["issuer"], ISS);
    assert_eq!(
        disc.body["jwks_uri"],
        format!("{ISS}/.well-known/jwks.json")
    );
    let r = h
        .post("/api/identity/signing-keys/rotate", &json!({}), Some(&ho))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let new_kid = r.body["kid"].as_str().expect("kid").to_string();
    let jwks = h.get("/.well-known/jwks.json", None).await.body;
    assert_eq!(
        jwks["keys"].as_array().expect("keys").len(),
        2,
        "old key still published"
    );
    assert_eq!(
        h.get("/test/whoami", Some(&old)).await.status,
        StatusCode::OK,
        "old token still verifies"
    );
    let (_, s2) = h.customer("rotation password 2").await;
    let fresh = s2["access_token"].as_str().expect("a").to_string();
    let header: Value = serde_json::from_slice(
        &B64.decode(fresh.split('.').next().expect("h"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(header["kid"], new_kid.as_str());
    assert_eq!(
        h.get("/test/whoami", Some(&fresh)).await.status,
        StatusCode::OK,
        "new kid fetched on demand"
    );
});
