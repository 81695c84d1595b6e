//! The identity suite, on SQLite always and on PostgreSQL when `COMPTOIR_TEST_POSTGRES_URL` is
//! set: the identity routes behind the real edge (authentication, policy, object checks), in
//! process. Covers RELIABILITY.md S2 (identity bodies), S4, S5, S6, S7, S18, key rotation,
//! password resets and external OIDC tokens (a local Keycloak-shaped issuer).

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path};
use axum::http::{Method, Request, StatusCode};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http_body_util::BodyExt;
use identity::service::{Identity, Policy};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::auth::{Caller, InternalKey, accept_internal_identity};
use platform::authn::{Authenticator, Edge, EdgeLimits, ExternalProvider, edge_layer};
use platform::authz::{Access, Principal, RoutePolicy, perm};
use platform::http::{EdgeOptions, with_common_layers};
use platform::ratelimit::Limiter;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use testkit::TestDb;
use tower::ServiceExt;

const ISS: &str = "http://comptoir.test";

struct H {
    router: Router,
    id: Identity,
    backend: &'static str,
}

struct Res {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

/// Routes that only these tests mount: they show what the edge decided.
fn probe_router() -> Router {
    let policy = Arc::new(
        RoutePolicy::new()
            .route(Method::GET, "/test/whoami", Access::Authenticated)
            .route(
                Method::POST,
                "/test/stores/{store}/sales",
                Access::Permission(perm::POS_SELL),
            ),
    );
    Router::new()
        .route(
            "/test/whoami",
            get(|c: Caller| async move { axum::Json(json!(c.principal())) }),
        )
        .route(
            "/test/stores/{store}/sales",
            axum::routing::post(|c: Caller, Path(store): Path<String>| async move {
                match c.principal() {
                    Some(p) if p.may_act_for_store(&store) => StatusCode::CREATED,
                    _ => StatusCode::NOT_FOUND,
                }
            }),
        )
        // an undeclared route: must be refused whoever calls
        .route("/test/undeclared", get(|| async { "should never answer" }))
        .route_layer(axum::middleware::from_fn(move |req, next| {
            platform::authz::enforce(policy.clone(), req, next)
        }))
}

fn policy() -> Policy {
    Policy {
        refresh_ttl: Duration::from_secs(30 * 86_400),
        reset_ttl: Duration::from_secs(1800),
        failures_before_delay: 3,
        first_delay: Duration::from_secs(1),
        max_failures_per_pair: 10,
        max_failures_per_ip: 50,
        max_failures_per_account: 100,
        failure_window: Duration::from_secs(900),
        public_url: "http://shop.test".into(),
    }
}

impl H {
    async fn new(t: &TestDb) -> H {
        Self::with(t, policy(), None).await
    }

    async fn with(t: &TestDb, policy: Policy, external: Option<ExternalProvider>) -> H {
        Self::with_limiter(t, policy, external, Limiter::in_process()).await
    }

    async fn with_limiter(
        t: &TestDb,
        policy: Policy,
        external: Option<ExternalProvider>,
        limiter: Limiter,
    ) -> H {
        let id = Identity {
            db: t.db.clone(),
            passwords: identity::password::Passwords::new(2, Duration::from_secs(30)),
            signer: Arc::new(identity::keys::Signer::new(
                ISS,
                "comptoir",
                Duration::from_secs(600),
            )),
            limiter: limiter.clone(),
            clock: Arc::new(kernel::SystemClock),
            policy: Arc::new(policy),
        };
        id.signer
            .load(&t.db, chrono::Utc::now().timestamp_millis())
            .await
            .expect("signing key");
        let auth = Arc::new(Authenticator::new(
            ISS,
            "comptoir",
            Arc::new(identity::LocalDirectory(id.clone())),
            external,
            Duration::from_secs(1),
        ));
        let edge = Arc::new(Edge {
            auth,
            limiter,
            limits: EdgeLimits::default(),
        });
        let key = InternalKey::random();
        let state = identity::http::IdentityState {
            identity: id.clone(),
            internal: key.clone(),
        };
        let services = identity::http::router(state)
            .merge(probe_router())
            .layer(axum::middleware::from_fn(move |req, next| {
                accept_internal_identity(Some(key.clone()), req, next)
            }))
            .layer(axum::middleware::from_fn(move |req, next| {
                edge_layer(edge.clone(), req, next)
            }));
        let router = with_common_layers(
            services,
            &EdgeOptions {
                request_timeout: Duration::from_secs(30),
                max_body_bytes: 64 * 1024,
            },
        );
        H {
            router,
            id,
            backend: t.backend,
        }
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
        ip: &str,
    ) -> Res {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        let mut req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        let addr = SocketAddr::new(ip.parse::<IpAddr>().expect("ip"), 40000);
        req.extensions_mut().insert(ConnectInfo(addr));
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Res {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, uri: &str, body: &Value, token: Option<&str>) -> Res {
        let h: Vec<(&str, String)> = token
            .map(|t| vec![("authorization", format!("Bearer {t}"))])
            .unwrap_or_default();
        self.call("POST", uri, Some(body), &h, "127.0.0.1").await
    }

    async fn get(&self, uri: &str, token: Option<&str>) -> Res {
        let h: Vec<(&str, String)> = token
            .map(|t| vec![("authorization", format!("Bearer {t}"))])
            .unwrap_or_default();
        self.call("GET", uri, None, &h, "127.0.0.1").await
    }

    async fn sign_in(&self, email: &str, password: &str) -> Res {
        self.post(
            "/api/identity/sessions",
            &json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    /// A head-office account created directly, and its access token.
    async fn head_office(&self) -> String {
        let seeder = Principal {
            subject: "seed".into(),
            kind: platform::authz::PrincipalKind::User,
            role: platform::authz::Role::HeadOffice,
            store: None,
            organiser: None,
            scopes: vec![],
            session: None,
        };
        let email = format!("ho-{}@test.example", uuid::Uuid::new_v4().simple());
        self.id
            .create_staff(
                &seeder,
                &identity::model::NewStaff {
                    email: email.clone(),
                    name: "Head".into(),
                    role: platform::authz::Role::HeadOffice,
                    store: None,
                    organiser: None,
                    password: Some("head office password".into()),
                },
            )
            .await
            .expect("head office");
        let r = self.sign_in(&email, "head office password").await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["access_token"].as_str().expect("token").to_string()
    }

    async fn staff(&self, ho: &str, role: &str, store: Option<&str>) -> (String, String) {
        let email = format!("{role}-{}@test.example", uuid::Uuid::new_v4().simple());
        let r = self
            .post(
                "/api/identity/users",
                &json!({"email": email, "name": role, "role": role, "store": store,
                        "password": "a staff password"}),
                Some(ho),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["user"]["id"].as_str().expect("id").to_string();
        let t = self.sign_in(&email, "a staff password").await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
        (
            id,
            t.body["access_token"].as_str().expect("token").to_string(),
        )
    }

    async fn customer(&self, password: &str) -> (String, Value) {
        let email = format!("c-{}@test.example", uuid::Uuid::new_v4().simple());
        let r = self
            .post(
                "/api/identity/customers",
                &json!({"email": email, "password": password, "name": "Client"}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let t = self.sign_in(&email, password).await;
        assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
        (email, t.body)
    }

    async fn stored_hash(&self, email: &str) -> String {
        identity::store::user_by_email_key(&self.id.db, &email.to_lowercase())
            .await
            .expect("read")
            .expect("user")
            .password_hash
            .expect("hash")
    }
}

/// The tests of this suite run one at a time: password hashing saturates both cores, and the
/// timing comparison of S7 needs a machine that is not hashing for another test meanwhile.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! on_all_backends {
    ($name:ident, |$h:ident, $t:ident| $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let _serial = SERIAL.lock().await;
            for $t in TestDb::all(identity::migrations()).await {
                {
                    let $h = H::new(&$t).await;
                    eprintln!("{}: {}", stringify!($name), $h.backend);
                    $body
                }
                $t.cleanup().await;
            }
        }
    };
}

fn token_of(r: &Res) -> String {
    r.body["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

/// Polls until the access token is refused (the edge caches "session active" for 1 s here).
async fn until_refused(h: &H, token: &str) {
    testkit::eventually(
        "the token to be refused",
        Duration::from_secs(5),
        || async {
            (h.get("/test/whoami", Some(token)).await.status == StatusCode::UNAUTHORIZED)
                .then_some(())
        },
    )
    .await;
}

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

// ---- S7 ---------------------------------------------------------------------------------------

/// The two limiter backends the sign-in throttling must agree on: this process's counters, and
/// Redis's (when `COMPTOIR_TEST_REDIS_URL` is set; required in strict mode).
async fn limiters() -> Vec<(&'static str, Limiter)> {
    let mut v = vec![("memory", Limiter::in_process())];
    if let Some(url) = testkit::redis_url() {
        v.push(("redis", Limiter::redis(&url).await.expect("Redis limiter")));
    }
    v
}

/// Client addresses of one test only (Redis counters outlive a run): `fdXX:XXXX:XXXX:XXXX::n`.
struct Net(String);

impl Net {
    fn new() -> Self {
        let u = uuid::Uuid::new_v4().simple().to_string();
        Net(format!(
            "fd{}:{}:{}:{}",
            &u[0..2],
            &u[2..6],
            &u[6..10],
            &u[10..14]
        ))
    }

    fn ip(&self, n: u16) -> String {
        format!("{}::{n:x}", self.0)
    }
}

async fn attempt(h: &H, email: &str, password: &str, ip: &str) -> Res {
    h.call(
        "POST",
        "/api/identity/sessions",
        Some(&json!({"email": email, "password": password})),
        &[],
        ip,
    )
    .await
}

fn retry_after(r: &Res) -> u64 {
    r.headers
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds")
}

on_all_backends!(
    a_strangers_guesses_do_not_lock_the_account_holder_out,
    |h, t| {
        for (name, limiter) in limiters().await {
            eprintln!("  limiter: {name}");
            // the first delay is long enough that no attempt of this test outlasts one
            let mut p = policy();
            p.first_delay = Duration::from_secs(60);
            let h = H::with_limiter(&t, p, None, limiter).await;
            let net = Net::new();
            let (stranger, holder) = (net.ip(1), net.ip(2));
            let (email, _) = h.customer("the real password").await;

            // 50 wrong passwords from the stranger's address: three at full speed, then each one
            // must wait, and is answered before any password is checked
            let before = h.id.passwords.verifications();
            let (mut unauthorized, mut slowed) = (0, 0);
            for i in 0..50 {
                let r = attempt(&h, &email, "not the password", &stranger).await;
                match r.status {
                    StatusCode::UNAUTHORIZED => {
                        assert_eq!(r.body["code"], "invalid_credentials");
                        unauthorized += 1;
                    }
                    StatusCode::TOO_MANY_REQUESTS => {
                        assert_eq!(r.body["code"], "too_many_attempts");
                        let secs = retry_after(&r);
                        assert!((1..=60).contains(&secs), "attempt {i}: Retry-After {secs}");
                        slowed += 1;
                    }
                    s => panic!("unexpected {s}"),
                }
            }
            assert_eq!((unauthorized, slowed), (3, 47));
            assert_eq!(
                h.id.passwords.verifications(),
                before + 3,
                "a slowed attempt verifies no password"
            );
            // even the right password waits at the stranger's address: the check comes first
            let r = attempt(&h, &email, "the real password", &stranger).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

            // the account holder, from their own address, is not locked out
            let r = attempt(&h, &email, "the real password", &holder).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

            // a success clears that (account, address): two mistypes, a success, then three
            // mistypes at full speed again before the fourth waits
            for _ in 0..2 {
                let r = attempt(&h, &email, "mistyped password", &holder).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            }
            let r = attempt(&h, &email, "the real password", &holder).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            for _ in 0..3 {
                let r = attempt(&h, &email, "mistyped password", &holder).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
            }
            let r = attempt(&h, &email, "mistyped password", &holder).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        }
    }
);

on_all_backends!(a_stranger_is_slowed_down_then_refused, |h, t| {
    for (name, limiter) in limiters().await {
        eprintln!("  limiter: {name}");
        // growing delays of 20 ms, 40 ms ... 1.28 s: the seven waits take about 2.5 s here
        let mut p = policy();
        p.first_delay = Duration::from_millis(20);
        let h = H::with_limiter(&t, p, None, limiter).await;
        let net = Net::new();
        let stranger = net.ip(1);
        let (email, _) = h.customer("the real password").await;
        let unauthorized = AtomicUsize::new(0);
        let (hr, er, ur, sr) = (&h, email.as_str(), &unauthorized, stranger.as_str());
        let refused_for = testkit::eventually(
            "the stranger to be refused for the window",
            Duration::from_secs(60),
            move || async move {
                let r = attempt(hr, er, "not the password", sr).await;
                match r.status {
                    StatusCode::UNAUTHORIZED => {
                        ur.fetch_add(1, Ordering::SeqCst);
                        None
                    }
                    StatusCode::TOO_MANY_REQUESTS => {
                        assert_eq!(r.body["code"], "too_many_attempts");
                        // a delay (Retry-After 1 or 2 s) or the rest of the window
                        let secs = retry_after(&r);
                        (secs > 2).then_some(secs)
                    }
                    s => panic!("unexpected {s}"),
                }
            },
        )
        .await;
        assert_eq!(
            unauthorized.load(Ordering::SeqCst),
            10,
            "the (account, address) maximum"
        );
        assert!((60..=900).contains(&refused_for), "{refused_for}");
        // refused for the window, whatever the password
        let r = attempt(&h, &email, "the real password", &stranger).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(retry_after(&r) > 2);
        // the account holder, elsewhere, signs in
        let r = attempt(&h, &email, "the real password", &net.ip(2)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
});

on_all_backends!(the_per_address_and_per_account_limits_still_hold, |h, t| {
    for (name, limiter) in limiters().await {
        eprintln!("  limiter: {name}");
        let h = H::with_limiter(&t, policy(), None, limiter.clone()).await;
        let net = Net::new();
        let run = uuid::Uuid::new_v4().simple().to_string();

        // one address spraying many accounts, one guess each: refused after 50
        let sprayer = net.ip(1);
        let mut unauthorized = 0;
        for i in 0..80 {
            let r = attempt(
                &h,
                &format!("nobody{i}-{run}@test.example"),
                "whatever123",
                &sprayer,
            )
            .await;
            match r.status {
                StatusCode::UNAUTHORIZED => unauthorized += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert_eq!(r.body["code"], "too_many_attempts");
                    assert!(retry_after(&r) > 2);
                }
                s => panic!("unexpected {s}"),
            }
        }
        assert_eq!(unauthorized, 50, "the per-address limit");

        // 200 guesses on one account from 20 addresses (no delays here, so that each address
        // reaches its maximum at once): the account's ceiling stops them at 100
        let mut p = policy();
        p.failures_before_delay = p.max_failures_per_pair;
        let h = H::with_limiter(&t, p, None, limiter).await;
        let (email, _) = h.customer("the real password").await;
        let mut unauthorized = 0;
        for i in 0..200u16 {
            let r = attempt(&h, &email, "not the password", &net.ip(100 + i % 20)).await;
            match r.status {
                StatusCode::UNAUTHORIZED => unauthorized += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert_eq!(r.body["code"], "too_many_attempts")
                }
                s => panic!("unexpected {s}"),
            }
        }
        assert_eq!(
            unauthorized, 100,
            "at most 100 failures per account and window"
        );
        // distributed guessing is capped for everyone, the holder too, until the window ends...
        let r = attempt(&h, &email, "the real password", &net.ip(999)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(retry_after(&r) > 2);
        // ... or a reset link is used
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
        let link = msgs
            .iter()
            .map(|m| serde_json::from_str::<Value>(&m.payload).expect("json"))
            .find(|m| m["email"] == email.as_str())
            .expect("reset message");
        let r = h
            .call(
                "POST",
                "/api/identity/password-resets/confirm",
                Some(&json!({"token": link["token"], "new_password": "a brand new password"})),
                &[],
                &net.ip(999),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let r = attempt(&h, &email, "a brand new password", &net.ip(999)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
});

on_all_backends!(unknown_accounts_look_like_wrong_passwords, |h, t| {
    let mut p = policy();
    p.failures_before_delay = 1000;
    p.max_failures_per_pair = 1000;
    p.max_failures_per_account = 1000;
    p.max_failures_per_ip = 1000;
    let h = H::with(&t, p, None).await;
    let (email, _) = h.customer("the real password").await;
    let known = json!({"email": email, "password": "not the password"});
    let unknown = json!({"email": "nobody-at-all@test.example", "password": "not the password"});
    let a = h.post("/api/identity/sessions", &known, None).await;
    let b = h.post("/api/identity/sessions", &unknown, None).await;
    assert_eq!(a.status, b.status);
    let strip = |mut v: Value| {
        v.as_object_mut().expect("object").remove("request_id");
        v
    };
    assert_eq!(
        strip(a.body),
        strip(b.body),
        "same body for unknown and wrong"
    );
    // and the same work: both verify one argon2id hash (counted, not timed: wall-clock
    // ratios are noise on a shared machine)
    let before = h.id.passwords.verifications();
    h.post("/api/identity/sessions", &known, None).await;
    assert_eq!(
        h.id.passwords.verifications(),
        before + 1,
        "known: one verification"
    );
    h.post("/api/identity/sessions", &unknown, None).await;
    assert_eq!(
        h.id.passwords.verifications(),
        before + 2,
        "unknown: one dummy verification"
    );
    // throttled, they still look alike: after three failures each, the same 429
    let mut p = policy();
    p.first_delay = Duration::from_secs(60);
    let h = H::with(&t, p, None).await;
    let net = Net::new();
    let unknown_email = format!("nobody-{}@test.example", uuid::Uuid::new_v4().simple());
    let mut answers = Vec::new();
    for who in [email.as_str(), unknown_email.as_str()] {
        for _ in 0..3 {
            let r = attempt(&h, who, "not the password", &net.ip(1)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        let r = attempt(&h, who, "not the password", &net.ip(1)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(retry_after(&r) >= 1);
        answers.push(strip(r.body));
    }
    assert_eq!(answers[0], answers[1], "same throttled answer");
});

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
        let h0 = H::with(&t, p, None).await;
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

on_all_backends!(
    a_burst_of_parallel_guesses_is_counted_like_a_sequence,
    |h, t| {
        for (name, limiter) in limiters().await {
            eprintln!("  limiter: {name}");
            // the first delay is long enough that the burst cannot outwait it
            let mut p = policy();
            p.first_delay = Duration::from_secs(60);
            let h = H::with_limiter(&t, p, None, limiter).await;
            let net = Net::new();
            let stranger = net.ip(1);
            let (email, _) = h.customer("the real password").await;
            let burst = (0..20).map(|_| attempt(&h, &email, "not the password", &stranger));
            let answers = futures_util::future::join_all(burst).await;
            let unauthorized = answers
                .iter()
                .filter(|r| r.status == StatusCode::UNAUTHORIZED)
                .count();
            let throttled = answers
                .iter()
                .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
                .count();
            assert_eq!(
                (unauthorized, throttled),
                (3, 17),
                "{name}: the passwords checked are those of a sequence: 3, then the delay"
            );
            let r = attempt(&h, &email, "the real password", &net.ip(2)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        }
    }
);
