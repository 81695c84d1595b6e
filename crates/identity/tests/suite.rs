//! The identity suite, on SQLite always and on PostgreSQL when `COMPTOIR_TEST_POSTGRES_URL` is
//! set: the identity routes behind the real edge (authentication, policy, object checks), in
//! process. Covers RELIABILITY.md S2 (identity bodies), S4, S5, S6, S7, S18, key rotation,
//! password resets and external OIDC tokens (a local Keycloak-shaped issuer). Requests go
//! through `testkit::TestApp` as they are (the edge reads the tokens); the scenarios are in
//! `sessions`, `jwt`, `limits`, `access`, `resets`, `oidc` and `metrics`.

use axum::Router;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use identity::service::{Identity, Policy};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::authn::{Authenticator, Edge, EdgeLimits, ExternalProvider, edge_layer};
use platform::authz::{Access, RoutePolicy, perm};
use platform::caller::{Caller, InternalKey, accept_internal_identity};
use platform::ratelimit::Limiter;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use testkit::principal::{self, PrincipalExt};
use testkit::{Res, TestApp, TestDb};

const ISS: &str = "http://comptoir.test";

struct H {
    app: TestApp,
    id: Identity,
    backend: &'static str,
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
            proxies: Default::default(),
        });
        let key = InternalKey::random();
        let state = identity::http::IdentityState {
            identity: id.clone(),
        };
        let services = identity::http::router(state)
            .merge(probe_router())
            .layer(axum::middleware::from_fn(move |req, next| {
                accept_internal_identity(Some(key.clone()), req, next)
            }))
            .layer(axum::middleware::from_fn(move |req, next| {
                edge_layer(edge.clone(), req, next)
            }));
        H {
            // the real edge authenticates: requests carry tokens, not a signed identity
            app: TestApp::unsigned(services).with_common_layers(64 * 1024),
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
        let mut c = self
            .app
            .request(method.parse().expect("method"), uri)
            .headers(headers)
            .from_ip(ip.parse::<IpAddr>().expect("ip"));
        if let Some(v) = body {
            c = c.json(v);
        }
        c.await
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
        let seeder = principal::head_office().with_subject("seed");
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
            testkit::each_backend(identity::migrations(), |$t| {
                Box::pin(async move {
                    let $h = H::new($t).await;
                    eprintln!("{}: {}", stringify!($name), $h.backend);
                    $body
                })
            })
            .await;
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

#[path = "suite/access.rs"]
mod access;
#[path = "suite/jwt.rs"]
mod jwt;
#[path = "suite/limits.rs"]
mod limits;
#[path = "suite/metrics.rs"]
mod metrics;
#[path = "suite/oidc.rs"]
mod oidc;
#[path = "suite/resets.rs"]
mod resets;
#[path = "suite/sessions.rs"]
mod sessions;
