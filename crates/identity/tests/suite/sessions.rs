//! Passwords (S6, S2: argon2id, the policy) and sessions (S5: refresh tokens rotate, reuse ends
//! the family; sign-out, disabling and a password change end sessions).

use super::*;

// ---- S6 and S2 -------------------------------------------------------------------------------

on_all_backends!(passwords_are_argon2id_and_the_policy_holds, |h, t| {
    let long = "k".repeat(40) + "ouign-amann-au-beurre-sale";
    assert_eq!(long.chars().count(), 66);
    for pw in [long.as_str(), "Crêpe au caramel ☕ 2026", "ça-va-très-bien"] {
        let (email, tokens) = h.customer(pw).await;
        // S2: no hash, nothing internal in what comes back
        let text = tokens.to_string();
        assert!(
            !text.contains("argon2") && !text.contains("password"),
            "{text}"
        );
        let hash = h.stored_hash(&email).await;
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }
    for (pw, code) in [
        ("1234567", "too_short"),
        ("password1", "too_common"),
        ("Azertyuiop", "too_common"),
        ("iloveyou", "too_common"),
    ] {
        let r = h
            .post(
                "/api/identity/customers",
                &json!({"email": "weak@test.example", "password": pw, "name": "W"}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{pw}");
        assert_eq!(r.body["errors"][0]["code"], code, "{pw}");
    }
    let r = h
        .post(
            "/api/identity/customers",
            &json!({"email": "x@test.example", "password": "x".repeat(129), "name": "W"}),
            None,
        )
        .await;
    assert_eq!(r.body["errors"][0]["code"], "too_long");
    // mass assignment: a role slipped into sign-up is refused, nothing is created
    let r = h
        .post(
            "/api/identity/customers",
            &json!({"email": "boss@test.example", "password": "a fine password",
                    "name": "B", "role": "head_office"}),
            None,
        )
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    assert!(
        identity::store::user_by_email_key(&h.id.db, "boss@test.example")
            .await
            .expect("read")
            .is_none()
    );
    // the same e-mail twice, whatever the case
    let (email, _) = h.customer("another fine password").await;
    let r = h
        .post(
            "/api/identity/customers",
            &json!({"email": email.to_uppercase(), "password": "another fine password", "name": "C"}),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("email_taken"))
    );
});

// ---- S5 ---------------------------------------------------------------------------------------

on_all_backends!(refresh_tokens_rotate_and_reuse_ends_the_family, |h, t| {
    let (email, first) = h.customer("rotate me please").await;
    let access = first["access_token"].as_str().expect("a").to_string();
    let r1 = first["refresh_token"].as_str().expect("r").to_string();
    assert_eq!(
        h.get("/api/identity/me", Some(&access)).await.status,
        StatusCode::OK
    );
    // a new session id at every sign-in
    let again = h.sign_in(&email, "rotate me please").await;
    assert_ne!(again.body["session_id"], first["session_id"]);

    let second = h
        .post(
            "/api/identity/sessions/refresh",
            &json!({"refresh_token": r1}),
            None,
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    let r2 = second.body["refresh_token"]
        .as_str()
        .expect("r2")
        .to_string();
    assert_ne!(r1, r2);
    assert_eq!(second.body["session_id"], first["session_id"]);
    let access2 = token_of(&second);

    // the rotated token used again: the whole family ends
    let reuse = h
        .post(
            "/api/identity/sessions/refresh",
            &json!({"refresh_token": r1}),
            None,
        )
        .await;
    assert_eq!(
        (reuse.status, reuse.body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("refresh_token_reused"))
    );
    let r = h
        .post(
            "/api/identity/sessions/refresh",
            &json!({"refresh_token": r2}),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the newest token died with the family"
    );
    until_refused(&h, &access2).await;
    until_refused(&h, &access).await;
    // the other session (second sign-in) is untouched
    assert_eq!(
        h.get("/api/identity/me", Some(&token_of(&again)))
            .await
            .status,
        StatusCode::OK
    );
    // access tokens live at most 15 minutes
    let claims: Value = serde_json::from_slice(
        &B64.decode(access.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("json");
    let life = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert!(life > 0 && life <= 900, "{life}");
});

on_all_backends!(sign_out_disable_and_password_change_end_sessions, |h, t| {
    // sign-out
    let (_, s) = h.customer("sign me out now").await;
    let a = s["access_token"].as_str().expect("a").to_string();
    let r = h
        .call(
            "DELETE",
            "/api/identity/sessions/current",
            None,
            &[("authorization", format!("Bearer {a}"))],
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    until_refused(&h, &a).await;
    let r = h
        .post(
            "/api/identity/sessions/refresh",
            &json!({"refresh_token": s["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // disabling a user
    let ho = h.head_office().await;
    let (clerk_id, clerk) = h.staff(&ho, "clerk", Some("rennes")).await;
    assert_eq!(
        h.get("/test/whoami", Some(&clerk)).await.status,
        StatusCode::OK
    );
    let r = h
        .call(
            "PATCH",
            &format!("/api/identity/users/{clerk_id}"),
            Some(&json!({"status": "disabled"})),
            &[("authorization", format!("Bearer {ho}"))],
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    until_refused(&h, &clerk).await;
    let email = r.body["email"].as_str().expect("email").to_string();
    let r = h.sign_in(&email, "a staff password").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );

    // changing one's password
    let (email, s) = h.customer("old password here").await;
    let a = s["access_token"].as_str().expect("a").to_string();
    let r = h
        .call(
            "PUT",
            "/api/identity/me/password",
            Some(&json!({"current_password": "wrong one!", "new_password": "new password here"})),
            &[("authorization", format!("Bearer {a}"))],
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h.call("PUT", "/api/identity/me/password",
        Some(&json!({"current_password": "old password here", "new_password": "new password here"})),
        &[("authorization", format!("Bearer {a}"))], "127.0.0.1").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    until_refused(&h, &a).await;
    assert_eq!(
        h.sign_in(&email, "old password here").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.sign_in(&email, "new password here").await.status,
        StatusCode::CREATED
    );
});
