//! Token signing keys (Ed25519) and access tokens.
//!
//! One key signs at a time. Rotation makes a new key the signer and retires the old one: a
//! retired key stays in the JWKS until every token it signed has expired (`expires_at` = time of
//! retirement + access-token lifetime + leeway), so rotation never signs anyone out.

use crate::store;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::authn::{ACCESS_TOKEN_TYP, AccessClaims, LEEWAY_SECS};
use platform::authz::Principal;
use platform::db::Db;
use serde::Serialize;
use std::sync::RwLock;
use std::time::Duration;

/// A key pair as stored (the private half never leaves the identity database).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub private_pkcs8: String,
    pub public_x: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410).
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A fresh Ed25519 key pair.
pub fn generate(now_ms: i64) -> KeyRow {
    let mut seed = [0u8; 32];
    // without an OS random source nothing here is safe; refuse to go on
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut seed).expect("the operating system's random source is available");
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    KeyRow {
        kid: format!(
            "{}-{}",
            chrono::DateTime::from_timestamp_millis(now_ms)
                .map(|d| d.format("%Y%m%d").to_string())
                .unwrap_or_default(),
            platform::random_hex(4)
        ),
        alg: "EdDSA".into(),
        private_pkcs8: B64.encode(der),
        public_x: B64.encode(public),
        created_at: now_ms,
        retired_at: None,
        expires_at: None,
    }
}

/// A JWK as published.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicJwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    pub kid: String,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

pub fn jwks(rows: &[KeyRow]) -> Jwks {
    Jwks {
        keys: rows
            .iter()
            .map(|r| PublicJwk {
                kty: "OKP",
                crv: "Ed25519",
                x: r.public_x.clone(),
                kid: r.kid.clone(),
                alg: "EdDSA",
                use_: "sig",
            })
            .collect(),
    }
}

/// Signs access tokens with the current key.
pub struct Signer {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    current: RwLock<Option<(String, EncodingKey)>>,
}

/// Why the signer could not install a key or sign a token.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signer lock")]
    Lock,
    #[error("no signing key loaded")]
    NotLoaded,
    #[error("{0}")]
    Decode(#[from] base64::DecodeError),
    #[error("{0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("no signing key after creating one")]
    Missing,
    #[error("signing keys: {0}")]
    Db(#[from] sqlx::Error),
}

/// An issued access token.
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
}

impl Signer {
    pub fn new(issuer: &str, audience: &str, access_ttl: Duration) -> Self {
        Signer {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            access_ttl,
            current: RwLock::new(None),
        }
    }

    /// Makes sure a signing key exists and loads the newest active one.
    pub async fn load(&self, db: &Db, now_ms: i64) -> Result<(), KeyError> {
        let row = match store::active_key(db).await? {
            Some(r) => r,
            None => {
                let r = generate(now_ms);
                store::insert_key(db, &r).await?;
                // another instance may have created one at the same moment: take the newest
                store::active_key(db).await?.ok_or(KeyError::Missing)?
            }
        };
        self.install(&row)
    }

    /// Signs with this key from now on (tests and benchmarks; `load` and `rotate` otherwise).
    pub fn install(&self, row: &KeyRow) -> Result<(), KeyError> {
        let der = B64.decode(&row.private_pkcs8)?;
        let key = EncodingKey::from_ed_der(&der);
        let mut cur = self.current.write().map_err(|_| KeyError::Lock)?;
        *cur = Some((row.kid.clone(), key));
        Ok(())
    }

    pub fn current_kid(&self) -> Option<String> {
        self.current
            .read()
            .ok()
            .and_then(|c| c.as_ref().map(|(k, _)| k.clone()))
    }

    /// Rotates: a new key signs from now on; the old one verifies until its tokens expired.
    pub async fn rotate(&self, db: &Db, now_ms: i64) -> Result<String, KeyError> {
        let row = generate(now_ms);
        let keep_ms = (self.access_ttl.as_secs() + LEEWAY_SECS) as i64 * 1000;
        store::rotate_keys(db, &row, now_ms, now_ms + keep_ms).await?;
        self.install(&row)?;
        Ok(row.kid)
    }

    /// An access token for this user and session.
    pub fn issue(&self, p: &Principal, session: &str, now_ms: i64) -> Result<Issued, KeyError> {
        let cur = self.current.read().map_err(|_| KeyError::Lock)?;
        let (kid, key) = cur.as_ref().ok_or(KeyError::NotLoaded)?;
        let now = now_ms / 1000;
        let ttl = self.access_ttl.as_secs();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: p.subject.clone(),
            exp: now + ttl as i64,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: session.to_string(),
            role: p.role,
            store: p.store.clone(),
            organiser: p.organiser.clone(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        let token = jsonwebtoken::encode(&header, &claims, key)?;
        Ok(Issued {
            token,
            expires_in: ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify() {
        let row = generate(1_700_000_000_000);
        let der = B64.decode(&row.private_pkcs8).expect("b64");
        let key = EncodingKey::from_ed_der(&der);
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(row.kid.clone());
        let t = jsonwebtoken::encode(
            &h,
            &serde_json::json!({"sub": "x", "exp": 4_000_000_000u64}),
            &key,
        )
        .expect("sign");
        let dk = jsonwebtoken::DecodingKey::from_ed_components(&row.public_x).expect("x");
        let mut v = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        v.set_required_spec_claims(&["exp"]);
        v.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&t, &dk, &v).expect("verifies");
        let other = generate(1_700_000_000_000);
        let dk2 = jsonwebtoken::DecodingKey::from_ed_components(&other.public_x).expect("x");
        assert!(jsonwebtoken::decode::<serde_json::Value>(&t, &dk2, &v).is_err());
    }
}
