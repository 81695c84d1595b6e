//! Back-office authentication until the identity service exists: bearer tokens whose SHA-256
//! hashes are known (one from configuration, one generated at first start and stored hashed).
//! Tokens are 256-bit random values, so a fast hash is the right one (no password stretching).

use crate::http::problem::ApiError;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use std::sync::{Arc, RwLock};

/// The accepted token hashes.
#[derive(Debug, Default)]
pub struct BackOfficeAuth {
    hashes: RwLock<Vec<[u8; 32]>>,
}

impl BackOfficeAuth {
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts the token whose SHA-256 (hex) is given.
    pub fn allow_hash_hex(&self, hex_hash: &str) {
        let mut out = [0u8; 32];
        if hex::decode_to_slice(hex_hash, &mut out).is_ok()
            && let Ok(mut h) = self.hashes.write()
            && !h.contains(&out)
        {
            h.push(out);
        }
    }

    /// Accepts this token (from configuration).
    pub fn allow_token(&self, token: &str) {
        self.allow_hash_hex(&crate::sha256_hex(token));
    }

    pub fn verify(&self, token: &str) -> bool {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let Ok(hashes) = self.hashes.read() else {
            return false;
        };
        // constant-time compare against every known hash
        let mut found = 0u8;
        for h in hashes.iter() {
            let diff = h
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found |= u8::from(diff == 0);
        }
        found == 1
    }
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    BackOffice,
}

impl Caller {
    pub fn is_back_office(&self) -> bool {
        matches!(self, Caller::BackOffice)
    }
    /// A short stable name, used to scope idempotency keys.
    pub fn scope(&self) -> &'static str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::BackOffice => "back-office",
        }
    }
}

/// Anonymous without an `Authorization` header; 401 with a wrong one (a bad token is never
/// silently downgraded to anonymous).
impl<S> FromRequestParts<S> for Caller
where
    Arc<BackOfficeAuth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Caller::Anonymous);
        };
        let auth = Arc::<BackOfficeAuth>::from_ref(state);
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        if auth.verify(token) {
            Ok(Caller::BackOffice)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

/// Only back-office callers; 401 otherwise.
#[derive(Debug, Clone, Copy)]
pub struct BackOffice;

impl<S> FromRequestParts<S> for BackOffice
where
    Arc<BackOfficeAuth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::BackOffice => Ok(BackOffice),
            Caller::Anonymous => Err(ApiError::unauthorized()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_known_tokens() {
        let a = BackOfficeAuth::new();
        assert!(!a.verify("anything"));
        a.allow_token("token-one-token-one-token-one");
        a.allow_hash_hex(&crate::sha256_hex("token-two"));
        a.allow_hash_hex("not hex");
        assert!(a.verify("token-one-token-one-token-one"));
        assert!(a.verify("token-two"));
        assert!(!a.verify("token-three"));
        assert!(!a.verify(""));
    }
}
