//! Abused tokens (S4): `alg: none`, algorithm confusion, ID tokens, tampered claims, other
//! issuers, expiry beyond the leeway, malformed headers: all refused.

use super::*;

// ---- S4 ---------------------------------------------------------------------------------------

/// Signs arbitrary claims with our real current key (what a tampering attacker cannot do, but
/// what a bug in validation would let through).
async fn sign_with_our_key(h: &H, header: Header, claims: &Value) -> String {
    let row = identity::store::active_key(&h.id.db)
        .await
        .expect("read")
        .expect("key");
    let der = B64.decode(&row.private_pkcs8).expect("b64");
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&der)).expect("sign")
}

on_all_backends!(jwt_abuse_is_refused, |h, t| {
    let (_, s) = h.customer("a good password").await;
    let good = s["access_token"].as_str().expect("a").to_string();
    assert_eq!(
        h.get("/test/whoami", Some(&good)).await.status,
        StatusCode::OK
    );
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).expect("b64")).expect("h");
    let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).expect("b64")).expect("c");
    let kid = header["kid"].as_str().expect("kid").to_string();
    let now = chrono::Utc::now().timestamp();
    let enc = |v: &Value| B64.encode(v.to_string());

    let mut bad: Vec<(&str, String)> = Vec::new();
    // alg none, no signature
    bad.push((
        "alg none",
        format!(
            "{}.{}.",
            enc(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
            parts[1]
        ),
    ));
    // HS256 keyed with our public key (the RS/HS confusion, here with the Ed25519 key)
    let jwks = h.get("/.well-known/jwks.json", None).await.body;
    let x = jwks["keys"][0]["x"].as_str().expect("x").to_string();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    hs.typ = Some("at+jwt".into());
    bad.push((
        "HS256 with the public key",
        jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(x.as_bytes())).expect("hs"),
    ));
    bad.push((
        "HS256 with the decoded public key",
        jsonwebtoken::encode(
            &hs,
            &claims,
            &EncodingKey::from_secret(&B64.decode(&x).expect("x")),
        )
        .expect("hs"),
    ));
    let mut ed = Header::new(Algorithm::EdDSA);
    ed.kid = Some(kid.clone());
    ed.typ = Some("at+jwt".into());
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    bad.push((
        "expired beyond leeway",
        sign_with_our_key(&h, ed.clone(), &with("exp", json!(now - 120))).await,
    ));
    bad.push((
        "not yet valid",
        sign_with_our_key(&h, ed.clone(), &with("nbf", json!(now + 600))).await,
    ));
    bad.push((
        "wrong audience",
        sign_with_our_key(&h, ed.clone(), &with("aud", json!("someone-else"))).await,
    ));
    bad.push((
        "no audience",
        sign_with_our_key(&h, ed.clone(), &{
            let mut c = claims.clone();
            c.as_object_mut().expect("o").remove("aud");
            c
        })
        .await,
    ));
    let mut unknown = ed.clone();
    unknown.kid = Some("no-such-key".into());
    bad.push(("unknown kid", sign_with_our_key(&h, unknown, &claims).await));
    let mut nokid = ed.clone();
    nokid.kid = None;
    bad.push(("no kid", sign_with_our_key(&h, nokid, &claims).await));
    let mut jku = ed.clone();
    jku.jku = Some("http://attacker.test/jwks.json".into());
    bad.push(("jku header", sign_with_our_key(&h, jku, &claims).await));
    let mut x5u = ed.clone();
    x5u.x5u = Some("http://attacker.test/cert.pem".into());
    bad.push(("x5u header", sign_with_our_key(&h, x5u, &claims).await));
    // an ID token (or any JWT not typed as an access token)
    let mut id_typ = ed.clone();
    id_typ.typ = Some("JWT".into());
    bad.push((
        "not typed at+jwt",
        sign_with_our_key(&h, id_typ, &claims).await,
    ));
    // a tampered claim with the original signature
    let tampered = with("role", json!("head_office"));
    bad.push((
        "tampered role",
        format!("{}.{}.{}", parts[0], enc(&tampered), parts[2]),
    ));
    // another issuer
    bad.push((
        "other issuer",
        sign_with_our_key(&h, ed.clone(), &with("iss", json!("http://evil.test"))).await,
    ));
    bad.push(("garbage", "not.a.jwt".into()));

    for (what, token) in &bad {
        let r = h.get("/test/whoami", Some(token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {:?}", r.body);
        assert_eq!(r.body["code"], "invalid_token", "{what}");
        assert!(r.headers.contains_key("www-authenticate"), "{what}");
    }
    // within leeway still fine (30 s)
    let ok = sign_with_our_key(&h, ed.clone(), &with("exp", json!(now - 10))).await;
    assert_eq!(
        h.get("/test/whoami", Some(&ok)).await.status,
        StatusCode::OK
    );
    // a malformed Authorization header is refused, never anonymous
    let r = h
        .call(
            "GET",
            "/test/whoami",
            None,
            &[("authorization", "Basic YTpi".into())],
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
});
