//! Authentication at the edge: turns a bearer token, an API key or the web session cookie into
//! a verified [`Principal`], applies the rate limits, and hands the identity to the services.
//!
//! Tokens:
//! - Our own access tokens: JWT, `EdDSA` (Ed25519) only, header `typ: at+jwt` and a `kid` known
//!   to our JWKS, `iss`/`aud`/`exp`/`nbf` checked with 30 s of leeway. Their session (`sid`) must
//!   still be active: sign-out and disabling a user end it, seen here within
//!   `auth.revocation_seconds`.
//! - Tokens of an external OpenID Connect provider (Keycloak...), when configured: algorithm
//!   from an allow-list of asymmetric ones, keys from its JWKS (an unknown `kid` refreshes the
//!   set at most once per `auth.oidc_jwks_min_refresh_seconds`), `iss`/`aud`/`exp`, ID and
//!   refresh tokens refused, roles mapped from a claim.
//! - Whatever the issuer: `alg: none`, HMAC algorithms, and the `jku`, `x5u`, `jwk`, `x5c` and
//!   `crit` headers are refused before any key is looked at.
//! - API keys `ck_<prefix>_<secret>` in `Authorization: Bearer` or `X-Api-Key`, looked up by
//!   prefix and compared by SHA-256; results are cached for `auth.revocation_seconds`, so a
//!   revocation reaches every instance within that time.

use crate::auth::{ClientIp, EdgeVerified, IDENTITY_HEADER};
use crate::authz::{Principal, PrincipalKind, Role};
use crate::http::client::JsonClient;
use crate::http::problem::ApiError;
use crate::ratelimit::{Decision, Limiter, Quota};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The name of the web session cookie (an access token, `__Host-` so only this origin sets it).
pub const SESSION_COOKIE: &str = "__Host-comptoir-session";
/// The `typ` header of our access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Clock leeway when checking `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// The claims of our access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// The session: the refresh-token family this token came from.
    pub sid: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organiser: Option<String>,
}

pub type DirFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// What the edge needs from the identity service: its public keys, API keys, sessions.
/// In one process it reads the identity database; otherwise it asks the identity service.
pub trait Directory: Send + Sync {
    fn signing_keys(&self) -> DirFuture<'_, JwkSet>;
    fn api_key<'a>(&'a self, presented: &'a str) -> DirFuture<'a, Option<Principal>>;
    fn session_active<'a>(&'a self, session: &'a str) -> DirFuture<'a, bool>;
}

/// The answer of the identity service's introspection endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
}

/// The directory of an identity service in another process.
pub struct RemoteDirectory {
    base: String,
    secret: String,
    client: JsonClient,
}

impl RemoteDirectory {
    pub fn new(base_url: &str, internal_secret: &str) -> Self {
        RemoteDirectory {
            base: base_url.trim_end_matches('/').to_string(),
            secret: internal_secret.to_string(),
            client: JsonClient::new(Duration::from_secs(5)),
        }
    }

    async fn introspect(&self, body: serde_json::Value) -> Result<Introspection, String> {
        let v = self
            .client
            .post(
                &format!("{}/internal/identity/introspect", self.base),
                &body,
                Some(&format!("Internal {}", self.secret)),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| format!("introspection answer: {e}"))
    }
}

impl Directory for RemoteDirectory {
    fn signing_keys(&self) -> DirFuture<'_, JwkSet> {
        Box::pin(async move {
            let v = self
                .client
                .get(&format!("{}/.well-known/jwks.json", self.base))
                .await?;
            serde_json::from_value(v).map_err(|e| format!("JWKS: {e}"))
        })
    }
    fn api_key<'a>(&'a self, presented: &'a str) -> DirFuture<'a, Option<Principal>> {
        Box::pin(async move {
            let r = self
                .introspect(serde_json::json!({ "api_key": presented }))
                .await?;
            Ok(if r.active { r.principal } else { None })
        })
    }
    fn session_active<'a>(&'a self, session: &'a str) -> DirFuture<'a, bool> {
        Box::pin(async move {
            let r = self
                .introspect(serde_json::json!({ "session_id": session }))
                .await?;
            Ok(r.active)
        })
    }
}

/// An external OpenID Connect provider whose access tokens we accept.
#[derive(Debug, Clone)]
pub struct ExternalProvider {
    pub issuer: String,
    pub audience: String,
    /// Empty: discovered from `<issuer>/.well-known/openid-configuration`.
    pub jwks_url: String,
    pub algorithms: Vec<Algorithm>,
    /// Dot path of the roles list, e.g. `realm_access.roles` (Keycloak realm roles).
    pub role_claim: String,
    /// Provider role → Comptoir role.
    pub role_map: Vec<(String, Role)>,
    /// Dot path of the store a store-scoped role acts for.
    pub store_claim: String,
    pub organiser_claim: String,
    pub min_refresh: Duration,
}

impl ExternalProvider {
    /// Parses `RS256,ES256`; only asymmetric algorithms are allowed.
    pub fn parse_algorithms(s: &str) -> Result<Vec<Algorithm>, String> {
        let mut out = Vec::new();
        for a in s.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let alg = match a {
                "RS256" => Algorithm::RS256,
                "RS384" => Algorithm::RS384,
                "RS512" => Algorithm::RS512,
                "PS256" => Algorithm::PS256,
                "PS384" => Algorithm::PS384,
                "PS512" => Algorithm::PS512,
                "ES256" => Algorithm::ES256,
                "ES384" => Algorithm::ES384,
                "EdDSA" => Algorithm::EdDSA,
                other => {
                    return Err(format!(
                        "`{other}` is not allowed (asymmetric algorithms only: RS256, RS384, \
                         RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
                    ));
                }
            };
            out.push(alg);
        }
        if out.is_empty() {
            return Err("at least one algorithm is needed".into());
        }
        Ok(out)
    }

    /// Parses `provider-role=comptoir_role,...`.
    pub fn parse_role_map(s: &str) -> Result<Vec<(String, Role)>, String> {
        let mut out = Vec::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (from, to) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}`: expected provider_role=comptoir_role"))?;
            let role = Role::parse(to.trim())
                .ok_or_else(|| format!("`{}` is not a Comptoir role", to.trim()))?;
            if role == Role::Integrator {
                return Err("integrator is for API keys only".into());
            }
            out.push((from.trim().to_string(), role));
        }
        Ok(out)
    }
}

/// Why a credential was refused.
#[derive(Debug)]
pub enum AuthError {
    /// The credential is not valid: 401.
    Invalid(&'static str),
    /// The identity service or a provider's JWKS cannot be reached: 503.
    Unavailable(String),
}

struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched: Option<Instant>,
    /// The last refresh forced by an unknown `kid` (the bounded one).
    last_forced: Option<Instant>,
    jwks_url: Option<String>,
}

impl KeySet {
    fn new() -> Self {
        KeySet {
            keys: HashMap::new(),
            fetched: None,
            last_forced: None,
            jwks_url: None,
        }
    }
}

fn keys_from_jwks(set: &JwkSet) -> HashMap<String, Arc<DecodingKey>> {
    let mut out = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(k) => {
                out.insert(kid, Arc::new(k));
            }
            Err(e) => tracing::warn!(kid, error = %e, "unusable key in a JWKS: skipped"),
        }
    }
    out
}

/// How long a JWKS is trusted before it is fetched again.
const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
const CACHE_MAX_ENTRIES: usize = 50_000;

/// Verifies credentials.
pub struct Authenticator {
    issuer: String,
    audience: String,
    directory: Arc<dyn Directory>,
    own_keys: RwLock<KeySet>,
    own_refresh: tokio::sync::Mutex<()>,
    own_min_refresh: Duration,
    external: Option<(ExternalProvider, RwLock<KeySet>, tokio::sync::Mutex<()>)>,
    http: JsonClient,
    cache_ttl: Duration,
    api_keys: Mutex<HashMap<String, (Option<Principal>, Instant)>>,
    sessions: Mutex<HashMap<String, (bool, Instant)>>,
}

/// A credential found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Token(String),
    ApiKey(String),
    Cookie(String),
}

impl Credential {
    /// Reads `Authorization: Bearer`, `X-Api-Key`, then the session cookie. A malformed
    /// `Authorization` header is an error, never anonymous.
    pub fn from_headers(h: &HeaderMap) -> Result<Option<Credential>, AuthError> {
        if let Some(v) = h.get(header::AUTHORIZATION) {
            let v = v
                .to_str()
                .map_err(|_| AuthError::Invalid("unreadable Authorization header"))?;
            let (scheme, value) = v
                .split_once(' ')
                .ok_or(AuthError::Invalid("Authorization must be `Bearer <token>`"))?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::Invalid("Authorization must be `Bearer <token>`"));
            }
            let value = value.trim();
            if value.is_empty() {
                return Err(AuthError::Invalid("empty bearer token"));
            }
            return Ok(Some(if value.starts_with("ck_") {
                Credential::ApiKey(value.to_string())
            } else {
                Credential::Token(value.to_string())
            }));
        }
        if let Some(v) = h.get("x-api-key") {
            let v = v
                .to_str()
                .map_err(|_| AuthError::Invalid("unreadable X-Api-Key header"))?;
            return Ok(Some(Credential::ApiKey(v.trim().to_string())));
        }
        for c in h.get_all(header::COOKIE) {
            let Ok(c) = c.to_str() else { continue };
            for pair in c.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=')
                    && k == SESSION_COOKIE
                    && !v.is_empty()
                {
                    return Ok(Some(Credential::Cookie(v.to_string())));
                }
            }
        }
        Ok(None)
    }
}

impl Authenticator {
    pub fn new(
        issuer: &str,
        audience: &str,
        directory: Arc<dyn Directory>,
        external: Option<ExternalProvider>,
        cache_ttl: Duration,
    ) -> Self {
        Authenticator {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            directory,
            own_keys: RwLock::new(KeySet::new()),
            own_refresh: tokio::sync::Mutex::new(()),
            own_min_refresh: Duration::from_secs(1),
            external: external
                .map(|e| (e, RwLock::new(KeySet::new()), tokio::sync::Mutex::new(()))),
            http: JsonClient::new(Duration::from_secs(5)),
            cache_ttl,
            api_keys: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies one credential.
    pub async fn authenticate(&self, cred: &Credential) -> Result<Principal, AuthError> {
        match cred {
            Credential::ApiKey(k) => self.api_key(k).await,
            Credential::Token(t) | Credential::Cookie(t) => self.token(t).await,
        }
    }

    async fn api_key(&self, presented: &str) -> Result<Principal, AuthError> {
        if !presented.starts_with("ck_") || presented.len() > 200 {
            return Err(AuthError::Invalid("malformed API key"));
        }
        let digest = crate::sha256_hex(presented);
        let now = Instant::now();
        if let Ok(c) = self.api_keys.lock()
            && let Some((p, at)) = c.get(&digest)
            && now.duration_since(*at) < self.cache_ttl
        {
            return p
                .clone()
                .ok_or(AuthError::Invalid("unknown or revoked API key"));
        }
        let p = self
            .directory
            .api_key(presented)
            .await
            .map_err(AuthError::Unavailable)?;
        if let Ok(mut c) = self.api_keys.lock() {
            if c.len() > CACHE_MAX_ENTRIES {
                c.clear();
            }
            c.insert(digest, (p.clone(), now));
        }
        p.ok_or(AuthError::Invalid("unknown or revoked API key"))
    }

    async fn session_active(&self, sid: &str) -> Result<bool, AuthError> {
        let now = Instant::now();
        if let Ok(c) = self.sessions.lock()
            && let Some((active, at)) = c.get(sid)
            && now.duration_since(*at) < self.cache_ttl
        {
            return Ok(*active);
        }
        let active = self
            .directory
            .session_active(sid)
            .await
            .map_err(AuthError::Unavailable)?;
        if let Ok(mut c) = self.sessions.lock() {
            if c.len() > CACHE_MAX_ENTRIES {
                c.clear();
            }
            c.insert(sid.to_string(), (active, now));
        }
        Ok(active)
    }

    /// Forgets cached answers (tests, and after a local revocation).
    pub fn forget(&self) {
        if let Ok(mut c) = self.api_keys.lock() {
            c.clear();
        }
        if let Ok(mut c) = self.sessions.lock() {
            c.clear();
        }
    }

    async fn token(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > 16 * 1024 {
            return Err(AuthError::Invalid("token too long"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed token"))?;
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err(AuthError::Invalid(
                "token headers jku, x5u, jwk, x5c and crit are not accepted",
            ));
        }
        let kid = header
            .kid
            .clone()
            .ok_or(AuthError::Invalid("token has no key id (kid)"))?;
        // route by issuer; the signature is checked right after with that issuer's keys
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<IssOnly>(token)
            .map_err(|_| AuthError::Invalid("malformed token"))?
            .iss;
        if iss == self.issuer {
            if header.alg != Algorithm::EdDSA {
                return Err(AuthError::Invalid("algorithm not allowed"));
            }
            if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
                return Err(AuthError::Invalid("not an access token"));
            }
            let key = self.own_key(&kid).await?;
            let mut v = Validation::new(Algorithm::EdDSA);
            v.leeway = LEEWAY_SECS;
            v.validate_nbf = true;
            v.set_issuer(&[&self.issuer]);
            v.set_audience(&[&self.audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
            let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &v)
                .map_err(|e| AuthError::Invalid(jwt_reason(&e)))?;
            let c = data.claims;
            if !self.session_active(&c.sid).await? {
                return Err(AuthError::Invalid("the session has ended"));
            }
            return Ok(Principal {
                subject: c.sub,
                kind: PrincipalKind::User,
                role: c.role,
                store: c.store,
                organiser: c.organiser,
                scopes: vec![],
                session: Some(c.sid),
            });
        }
        match &self.external {
            Some((p, keys, lock)) if p.issuer == iss => {
                if !p.algorithms.contains(&header.alg) {
                    return Err(AuthError::Invalid("algorithm not allowed"));
                }
                let key = self.external_key(p, keys, lock, &kid).await?;
                let mut v = Validation::new(header.alg);
                v.leeway = LEEWAY_SECS;
                v.validate_nbf = true;
                v.set_issuer(&[&p.issuer]);
                v.set_audience(&[&p.audience]);
                v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
                    .map_err(|e| AuthError::Invalid(jwt_reason(&e)))?;
                external_principal(p, &data.claims)
            }
            _ => Err(AuthError::Invalid("unknown token issuer")),
        }
    }

    async fn own_key(&self, kid: &str) -> Result<Arc<DecodingKey>, AuthError> {
        if let Some(k) = fresh_key(&self.own_keys, kid)? {
            return Ok(k);
        }
        let _guard = self.own_refresh.lock().await;
        if let Some(k) = fresh_key(&self.own_keys, kid)? {
            return Ok(k);
        }
        {
            // bounded: an unknown kid refreshes at most once per own_min_refresh
            let ks = self
                .own_keys
                .read()
                .map_err(|_| AuthError::Invalid("key cache"))?;
            if forced_too_soon(&ks, kid, self.own_min_refresh) {
                return Err(AuthError::Invalid("unknown signing key"));
            }
        }
        let fetched = self.directory.signing_keys().await;
        let mut ks = self
            .own_keys
            .write()
            .map_err(|_| AuthError::Invalid("key cache"))?;
        note_forced(&mut ks, kid);
        match fetched {
            Ok(set) => {
                ks.keys = keys_from_jwks(&set);
                ks.fetched = Some(Instant::now());
            }
            Err(e) if ks.keys.is_empty() => return Err(AuthError::Unavailable(e)),
            Err(e) => tracing::warn!(error = %e, "cannot refresh our JWKS: keeping the old one"),
        }
        ks.keys
            .get(kid)
            .cloned()
            .ok_or(AuthError::Invalid("unknown signing key"))
    }

    async fn external_key(
        &self,
        p: &ExternalProvider,
        keys: &RwLock<KeySet>,
        lock: &tokio::sync::Mutex<()>,
        kid: &str,
    ) -> Result<Arc<DecodingKey>, AuthError> {
        if let Some(k) = fresh_key(keys, kid)? {
            return Ok(k);
        }
        let _guard = lock.lock().await;
        let (url, known) = {
            let ks = keys.read().map_err(|_| AuthError::Invalid("key cache"))?;
            if let Some(k) = ks.keys.get(kid)
                && ks.fetched.is_some_and(|f| f.elapsed() < JWKS_MAX_AGE)
            {
                return Ok(k.clone());
            }
            if forced_too_soon(&ks, kid, p.min_refresh) {
                return Err(AuthError::Invalid("unknown signing key"));
            }
            (ks.jwks_url.clone(), !ks.keys.is_empty())
        };
        let result = async {
            let url = match url {
                Some(u) => u,
                None if !p.jwks_url.is_empty() => p.jwks_url.clone(),
                None => {
                    let d = self
                        .http
                        .get(&format!(
                            "{}/.well-known/openid-configuration",
                            p.issuer.trim_end_matches('/')
                        ))
                        .await?;
                    d.get("jwks_uri")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                        .ok_or_else(|| "discovery document has no jwks_uri".to_string())?
                }
            };
            let v = self.http.get(&url).await?;
            let set: JwkSet = serde_json::from_value(v).map_err(|e| format!("JWKS: {e}"))?;
            Ok::<_, String>((url, set))
        }
        .await;
        metrics::counter!("comptoir_oidc_jwks_fetches_total").increment(1);
        let mut ks = keys.write().map_err(|_| AuthError::Invalid("key cache"))?;
        note_forced(&mut ks, kid);
        match result {
            Ok((url, set)) => {
                ks.jwks_url = Some(url);
                ks.keys = keys_from_jwks(&set);
                ks.fetched = Some(Instant::now());
            }
            Err(e) if !known => return Err(AuthError::Unavailable(e)),
            Err(e) => tracing::warn!(error = %e, "cannot refresh the provider's JWKS"),
        }
        ks.keys
            .get(kid)
            .cloned()
            .ok_or(AuthError::Invalid("unknown signing key"))
    }
}

/// Bounded refresh: a kid missing from a loaded, fresh set forces a refetch at most once per
/// `min`. A cold or stale set is always fetched.
fn forced_too_soon(ks: &KeySet, kid: &str, min: Duration) -> bool {
    let fresh = ks.fetched.is_some_and(|f| f.elapsed() < JWKS_MAX_AGE);
    fresh && !ks.keys.contains_key(kid) && ks.last_forced.is_some_and(|t| t.elapsed() < min)
}

fn note_forced(ks: &mut KeySet, kid: &str) {
    let fresh = ks.fetched.is_some_and(|f| f.elapsed() < JWKS_MAX_AGE);
    if fresh && !ks.keys.contains_key(kid) {
        ks.last_forced = Some(Instant::now());
    }
}

fn fresh_key(keys: &RwLock<KeySet>, kid: &str) -> Result<Option<Arc<DecodingKey>>, AuthError> {
    let ks = keys.read().map_err(|_| AuthError::Invalid("key cache"))?;
    Ok(ks
        .keys
        .get(kid)
        .filter(|_| ks.fetched.is_some_and(|f| f.elapsed() < JWKS_MAX_AGE))
        .cloned())
}

#[derive(Deserialize)]
struct IssOnly {
    #[serde(default)]
    iss: String,
}

fn jwt_reason(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "the token has expired",
        K::ImmatureSignature => "the token is not valid yet",
        K::InvalidAudience => "the token is for another audience",
        K::InvalidIssuer => "the token is from another issuer",
        K::InvalidSignature => "the token's signature does not verify",
        K::InvalidAlgorithm => "algorithm not allowed",
        K::MissingRequiredClaim(_) => "the token lacks a required claim",
        _ => "invalid token",
    }
}

fn claim_at<'a>(claims: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    if path.is_empty() {
        return None;
    }
    path.split('.').try_fold(claims, |v, k| v.get(k))
}

/// A principal from an external provider's verified claims.
pub fn external_principal(
    p: &ExternalProvider,
    claims: &serde_json::Value,
) -> Result<Principal, AuthError> {
    // Keycloak marks ID and refresh tokens in `typ`; only access tokens are accepted
    if let Some(t) = claims.get("typ").and_then(|t| t.as_str())
        && !t.eq_ignore_ascii_case("bearer")
    {
        return Err(AuthError::Invalid("not an access token"));
    }
    let sub = claims
        .get("sub")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::Invalid("the token lacks a subject"))?;
    let roles: Vec<&str> = claim_at(claims, &p.role_claim)
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|r| r.as_str()).collect())
        .unwrap_or_default();
    let role = p
        .role_map
        .iter()
        .filter(|(from, _)| roles.contains(&from.as_str()))
        .map(|(_, r)| *r)
        .max_by_key(Role::rank)
        .ok_or(AuthError::Invalid(
            "the token carries no role mapped to Comptoir",
        ))?;
    let text = |path: &str| {
        claim_at(claims, path)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let store = text(&p.store_claim);
    let organiser = text(&p.organiser_claim);
    if role.needs_store() && store.is_none() {
        return Err(AuthError::Invalid("a store role without a store claim"));
    }
    if role.needs_organiser() && organiser.is_none() {
        return Err(AuthError::Invalid(
            "an organiser role without an organiser claim",
        ));
    }
    Ok(Principal {
        subject: format!("{}#{sub}", p.issuer),
        kind: PrincipalKind::External,
        role,
        store: if role.needs_store() { store } else { None },
        organiser: if role.needs_organiser() {
            organiser
        } else {
            None
        },
        scopes: vec![],
        session: None,
    })
}

// ---- the edge layer --------------------------------------------------------------------------

/// Rate limits applied at the edge.
#[derive(Debug, Clone, Default)]
pub struct EdgeLimits {
    pub per_ip: Vec<Quota>,
    pub per_account: Vec<Quota>,
    pub per_key: Vec<Quota>,
}

/// The edge: authentication and rate limits in front of every route.
pub struct Edge {
    pub auth: Arc<Authenticator>,
    pub limiter: Limiter,
    pub limits: EdgeLimits,
}

fn limited(d: Decision) -> Response {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests; wait before retrying",
    );
    e.retry_after = d.retry_after_secs();
    e.into_response()
}

fn invalid_token(reason: &'static str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", reason).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

/// Paths that are never authenticated nor limited: probes and metrics.
fn exempt(path: &str) -> bool {
    matches!(path, "/livez" | "/readyz" | "/metrics")
}

/// Whether an unsafe request authenticated by cookie comes from our own pages:
/// `Sec-Fetch-Site: same-origin`, else an `Origin` whose host is `Host`; neither is a no.
/// The web pages apply the same rule to every form they receive.
pub fn same_origin(h: &HeaderMap) -> bool {
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    let (Some(origin), Some(host)) = (
        h.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        h.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

/// The edge middleware.
pub async fn edge_layer(edge: Arc<Edge>, mut req: Request, next: Next) -> Response {
    req.headers_mut().remove(IDENTITY_HEADER);
    req.extensions_mut().remove::<Principal>();
    req.extensions_mut().insert(EdgeVerified);
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    req.extensions_mut().insert(ClientIp(ip));
    let ip_key = format!("ip:{ip}");
    let cred = match Credential::from_headers(req.headers()) {
        Ok(c) => c,
        Err(AuthError::Invalid(reason)) => {
            let d = edge.limiter.hit(&ip_key, &edge.limits.per_ip).await;
            if d != Decision::Allow {
                return limited(d);
            }
            return invalid_token(reason);
        }
        Err(AuthError::Unavailable(e)) => {
            return ApiError::unavailable(e).into_response();
        }
    };
    let Some(cred) = cred else {
        let d = edge.limiter.hit(&ip_key, &edge.limits.per_ip).await;
        if d != Decision::Allow {
            return limited(d);
        }
        return next.run(req).await;
    };
    if matches!(cred, Credential::Cookie(_))
        && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !same_origin(req.headers())
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "a request authenticated by cookie must come from this site",
        )
        .into_response();
    }
    match edge.auth.authenticate(&cred).await {
        Ok(p) => {
            let (key, quotas) = match p.kind {
                PrincipalKind::ApiKey => (p.scope_key(), &edge.limits.per_key),
                _ => (p.scope_key(), &edge.limits.per_account),
            };
            let d = edge.limiter.hit(&key, quotas).await;
            if d != Decision::Allow {
                return limited(d);
            }
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(AuthError::Invalid(reason)) => {
            metrics::counter!("comptoir_auth_rejected_total").increment(1);
            let d = edge.limiter.hit(&ip_key, &edge.limits.per_ip).await;
            if d != Decision::Allow {
                return limited(d);
            }
            invalid_token(reason)
        }
        Err(AuthError::Unavailable(e)) => {
            tracing::error!(error = %e, "cannot verify credentials");
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "identity_unavailable",
                "credentials cannot be verified right now; retry shortly",
            );
            err.retry_after = Some(1);
            err.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_read_from_the_expected_places() {
        let mut h = HeaderMap::new();
        assert_eq!(Credential::from_headers(&h).ok().flatten(), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; __Host-comptoir-session=tok"),
        );
        assert_eq!(
            Credential::from_headers(&h).ok().flatten(),
            Some(Credential::Cookie("tok".into()))
        );
        h.insert("x-api-key", HeaderValue::from_static("ck_x_y"));
        assert_eq!(
            Credential::from_headers(&h).ok().flatten(),
            Some(Credential::ApiKey("ck_x_y".into()))
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(
            Credential::from_headers(&h).ok().flatten(),
            Some(Credential::Token("abc".into()))
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(
            Credential::from_headers(&h).is_err(),
            "never silently anonymous"
        );
    }

    #[test]
    fn external_claims_map_to_roles() {
        let p = ExternalProvider {
            issuer: "http://kc/realms/shop".into(),
            audience: "comptoir".into(),
            jwks_url: String::new(),
            algorithms: vec![Algorithm::RS256],
            role_claim: "realm_access.roles".into(),
            role_map: ExternalProvider::parse_role_map(
                "shop-admin=head_office, shop-manager=store_manager",
            )
            .expect("map"),
            store_claim: "store".into(),
            organiser_claim: "organiser".into(),
            min_refresh: Duration::from_secs(10),
        };
        let c = serde_json::json!({"sub": "42", "typ": "Bearer",
            "realm_access": {"roles": ["offline_access", "shop-manager"]}, "store": "brest"});
        let pr = external_principal(&p, &c).expect("mapped");
        assert_eq!(
            (pr.role, pr.store.as_deref()),
            (Role::StoreManager, Some("brest"))
        );
        assert_eq!(pr.subject, "http://kc/realms/shop#42");
        let c = serde_json::json!({"sub": "42", "realm_access": {"roles": ["shop-manager", "shop-admin"]}});
        assert_eq!(
            external_principal(&p, &c).expect("mapped").role,
            Role::HeadOffice
        );
        let id = serde_json::json!({"sub": "42", "typ": "ID", "realm_access": {"roles": ["shop-admin"]}});
        assert!(external_principal(&p, &id).is_err(), "ID token");
        let none = serde_json::json!({"sub": "42", "realm_access": {"roles": ["other"]}});
        assert!(external_principal(&p, &none).is_err());
        let no_store =
            serde_json::json!({"sub": "42", "realm_access": {"roles": ["shop-manager"]}});
        assert!(external_principal(&p, &no_store).is_err());
        assert!(ExternalProvider::parse_algorithms("RS256,HS256").is_err());
        assert!(ExternalProvider::parse_algorithms("none").is_err());
        assert!(ExternalProvider::parse_role_map("x=root").is_err());
    }
}
