//! External OpenID Connect tokens (a local Keycloak-shaped issuer): verified and mapped.

use super::*;

// ---- external OIDC -----------------------------------------------------------------------------

struct FakeIssuer {
    url: String,
    keys: Arc<std::sync::Mutex<Vec<(String, rsa::RsaPrivateKey)>>>,
    fetches: Arc<AtomicUsize>,
}

impl FakeIssuer {
    /// A Keycloak-shaped issuer on loopback: discovery + JWKS (RS256), counting JWKS fetches.
    async fn start() -> FakeIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/realms/shop",
            listener.local_addr().expect("addr")
        );
        let keys: Arc<std::sync::Mutex<Vec<(String, rsa::RsaPrivateKey)>>> = Arc::default();
        let fetches = Arc::new(AtomicUsize::new(0));
        let (k2, f2, u2) = (keys.clone(), fetches.clone(), url.clone());
        let app = Router::new()
            .route("/realms/shop/.well-known/openid-configuration", get(move || {
                let u = u2.clone();
                async move { axum::Json(json!({"issuer": u, "jwks_uri": format!("{u}/protocol/openid-connect/certs")})) }
            }))
            .route("/realms/shop/protocol/openid-connect/certs", get(move || {
                let keys = k2.clone();
                f2.fetch_add(1, Ordering::SeqCst);
                async move {
                    use rsa::traits::PublicKeyParts;
                    let keys = keys.lock().expect("lock");
                    let list: Vec<Value> = keys.iter().map(|(kid, k)| json!({
                        "kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
                        "n": B64.encode(k.n().to_bytes_be()), "e": B64.encode(k.e().to_bytes_be()),
                    })).collect();
                    axum::Json(json!({"keys": list}))
                }
            }));
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        let f = FakeIssuer { url, keys, fetches };
        f.add_key("kc-1");
        f
    }

    fn add_key(&self, kid: &str) {
        let mut rng = rsa::rand_core::OsRng;
        let k = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("rsa key");
        self.keys.lock().expect("lock").push((kid.to_string(), k));
    }

    fn token(&self, kid: &str, claims: &Value) -> String {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let keys = self.keys.lock().expect("lock");
        let (_, k) = keys.iter().find(|(id, _)| id == kid).expect("kid");
        let der = k.to_pkcs1_der().expect("der");
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(kid.to_string());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_der(der.as_bytes())).expect("sign")
    }

    fn public_pem(&self) -> String {
        use rsa::pkcs8::EncodePublicKey;
        let keys = self.keys.lock().expect("lock");
        keys[0]
            .1
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_oidc_tokens_are_verified_and_mapped() {
    let _serial = SERIAL.lock().await;
    let kc = FakeIssuer::start().await;
    let provider = ExternalProvider {
        issuer: kc.url.clone(),
        audience: "comptoir-api".into(),
        jwks_url: String::new(),
        algorithms: vec![Algorithm::RS256],
        role_claim: "realm_access.roles".into(),
        role_map: ExternalProvider::parse_role_map(
            "shop-admin=head_office,shop-manager=store_manager",
        )
        .expect("map"),
        store_claim: "comptoir_store".into(),
        organiser_claim: "comptoir_organiser".into(),
        min_refresh: Duration::from_secs(60),
    };
    let t = TestDb::sqlite(identity::migrations()).await;
    let h = H::with(&t, policy(), Some(provider)).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut c = json!({
            "iss": kc.url, "aud": ["comptoir-api", "account"], "sub": "f81d4fae-7dec",
            "exp": now + 300, "iat": now, "typ": "Bearer", "azp": "storefront",
            "realm_access": {"roles": ["offline_access", "shop-manager"]},
            "comptoir_store": "quimper", "preferred_username": "yann"
        });
        for (k, v) in extra.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    let ok = kc.token("kc-1", &claims(json!({})));
    let r = h.get("/test/whoami", Some(&ok)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["role"], "store_manager");
    assert_eq!(r.body["store"], "quimper");
    assert_eq!(r.body["kind"], "external");
    assert_eq!(kc.fetches.load(Ordering::SeqCst), 1);
    // it acts for its store only
    let r = h
        .call(
            "POST",
            "/test/stores/brest/sales",
            Some(&json!({})),
            &[("authorization", format!("Bearer {ok}"))],
            "127.0.0.1",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a manager sells in their own store only"
    );

    let cases = [
        ("ID token", claims(json!({"typ": "ID"}))),
        ("refresh token", claims(json!({"typ": "Refresh"}))),
        ("wrong audience", claims(json!({"aud": "other-client"}))),
        ("expired", claims(json!({"exp": now - 120}))),
        (
            "no mapped role",
            claims(json!({"realm_access": {"roles": ["offline_access"]}})),
        ),
        (
            "store role without store",
            claims(json!({"comptoir_store": ""})),
        ),
    ];
    for (what, c) in cases {
        let r = h.get("/test/whoami", Some(&kc.token("kc-1", &c))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {:?}", r.body);
    }
    // HS256 keyed with the provider's public key (RS/HS confusion)
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("kc-1".into());
    let confused = jsonwebtoken::encode(
        &hs,
        &claims(json!({})),
        &EncodingKey::from_secret(kc.public_pem().as_bytes()),
    )
    .expect("hs");
    assert_eq!(
        h.get("/test/whoami", Some(&confused)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // the provider rotates: an unknown kid refreshes the JWKS once...
    kc.add_key("kc-2");
    let rotated = kc.token(
        "kc-2",
        &claims(json!({"realm_access": {"roles": ["shop-admin"]}})),
    );
    let r = h.get("/test/whoami", Some(&rotated)).await;
    assert_eq!(
        (r.status, r.body["role"].as_str()),
        (StatusCode::OK, Some("head_office"))
    );
    assert_eq!(kc.fetches.load(Ordering::SeqCst), 2);
    // ...and a flood of unknown kids does not hammer the provider (bounded refresh)
    kc.add_key("kc-3");
    for _ in 0..20 {
        let r = h
            .get("/test/whoami", Some(&kc.token("kc-3", &claims(json!({})))))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        kc.fetches.load(Ordering::SeqCst),
        2,
        "at most one refresh per min_refresh"
    );
    t.cleanup().await;
}
