//! Cached JWKS: the keys by `kid`, how long a set is trusted, and the bounded refresh an unknown
//! `kid` may force.

use super::AuthError;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One issuer's keys by `kid`, and when they were fetched.
pub(super) struct KeySet {
    pub(super) keys: HashMap<String, Arc<DecodingKey>>,
    pub(super) fetched: Option<Instant>,
    /// The last refresh forced by an unknown `kid` (the bounded one).
    pub(super) last_forced: Option<Instant>,
    pub(super) jwks_url: Option<String>,
}

impl KeySet {
    pub(super) fn new() -> Self {
        KeySet {
            keys: HashMap::new(),
            fetched: None,
            last_forced: None,
            jwks_url: None,
        }
    }
}

/// The usable keys of a JWKS: a key without a `kid`, or one that cannot be decoded, is skipped.
pub(super) fn keys_from_jwks(set: &JwkSet) -> HashMap<String, Arc<DecodingKey>> {
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
pub(super) const JWKS_MAX_AGE: Duration = Duration::from_secs(600);

/// Bounded refresh: a kid missing from a loaded, fresh set forces a refetch at most once per
/// `min`. A cold or stale set is always fetched.
pub(super) fn forced_too_soon(ks: &KeySet, kid: &str, min: Duration) -> bool {
    let fresh = ks.fetched.is_some_and(|f| f.elapsed() < JWKS_MAX_AGE);
    fresh && !ks.keys.contains_key(kid) && ks.last_forced.is_some_and(|t| t.elapsed() < min)
}

pub(super) fn note_forced(ks: &mut KeySet, kid: &str) {
    let fresh = ks.fetched.is_some_and(|f| f.elapsed() < JWKS_MAX_AGE);
    if fresh && !ks.keys.contains_key(kid) {
        ks.last_forced = Some(Instant::now());
    }
}

pub(super) fn fresh_key(
    keys: &RwLock<KeySet>,
    kid: &str,
) -> Result<Option<Arc<DecodingKey>>, AuthError> {
    let ks = keys.read().map_err(|_| AuthError::Invalid("key cache"))?;
    Ok(ks
        .keys
        .get(kid)
        .filter(|_| ks.fetched.is_some_and(|f| f.elapsed() < JWKS_MAX_AGE))
        .cloned())
}
