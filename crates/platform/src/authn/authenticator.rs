//! The [`Authenticator`]: verifies a credential, our tokens with the directory's keys, an
//! external provider's with its JWKS, and caches API-key and session answers.

use super::credential::Credential;
use super::directory::Directory;
use super::external::{ExternalProvider, external_principal};
use super::jwks::{JWKS_MAX_AGE, KeySet, forced_too_soon, fresh_key, keys_from_jwks, note_forced};
use super::{ACCESS_TOKEN_TYP, AccessClaims, AuthError, LEEWAY_SECS};
use crate::authz::{Principal, PrincipalKind};
use crate::http::client::JsonClient;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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
            http: JsonClient::new(Duration::from_secs(5), "auth.oidc_jwks_url"),
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
