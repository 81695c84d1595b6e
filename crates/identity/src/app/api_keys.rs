//! API keys: created with scopes the creator holds, listed and revoked by who may, and verified
//! for the edge (by prefix, then SHA-256 digest).

use super::{Error, Identity, Result, secret_token};
use crate::domain::{check_code, check_name, invalid, scopes_from};
use crate::http::wire::{ApiKey, ApiKeyCreated, ApiKeyList, NewApiKey, key_view};
use crate::store::{self, ApiKeyRow};
use platform::authz::{Principal, PrincipalKind, Role, perm};
use uuid::Uuid;

impl Identity {
    pub async fn create_api_key(&self, p: &Principal, k: &NewApiKey) -> Result<ApiKeyCreated> {
        let mut errors = Vec::new();
        check_name("name", &k.name, &mut errors);
        if k.scopes.is_empty() {
            errors.push(invalid("scopes", "required", "at least one scope"));
        }
        let mut scopes: Vec<String> = Vec::new();
        for (i, s) in k.scopes.iter().enumerate() {
            if !perm::KEY_SCOPES.contains(&s.as_str()) {
                errors.push(invalid(
                    format!("scopes[{i}]"),
                    "unknown",
                    format!("not a key scope; one of: {}", perm::KEY_SCOPES.join(", ")),
                ));
            } else if !p.has(s) {
                errors.push(invalid(
                    format!("scopes[{i}]"),
                    "not_yours",
                    "you cannot grant a permission you do not hold",
                ));
            } else if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let store = if p.is_head_office() {
            k.store.clone()
        } else {
            match (&k.store, &p.store) {
                (None, Some(own)) => Some(own.clone()),
                (Some(x), Some(own)) if x == own => Some(own.clone()),
                _ => return Err(Error::NotFound("store")),
            }
        };
        if let Some(s) = &store {
            check_code("store", s, &mut errors);
        }
        if let Some(d) = k.expires_in_days
            && !(1..=3650).contains(&d)
        {
            errors.push(invalid("expires_in_days", "out_of_range", "1 to 3650"));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let now = self.now_ms();
        let prefix = platform::random_hex(8);
        let key = format!("ck_{prefix}_{}", secret_token());
        let row = ApiKeyRow {
            id: Uuid::now_v7(),
            prefix,
            secret_sha256: platform::sha256_hex(&key),
            name: k.name.trim().to_string(),
            scopes: scopes.join(" "),
            store_id: store,
            created_by: p.subject.clone(),
            created_at: now,
            expires_at: k.expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
            last_used_at: None,
            revoked_at: None,
        };
        store::insert_api_key(&self.db, &row).await?;
        Ok(ApiKeyCreated {
            key,
            api_key: key_view(&row),
        })
    }

    fn key_visible(p: &Principal, k: &ApiKeyRow) -> bool {
        p.is_head_office()
            || (p.has(perm::API_KEYS_MANAGE)
                && k.store_id
                    .as_deref()
                    .is_some_and(|s| p.may_act_for_store(s)))
    }

    pub async fn list_api_keys(&self, p: &Principal) -> Result<ApiKeyList> {
        let rows = if p.is_head_office() {
            store::list_api_keys(&self.db, None).await?
        } else {
            match &p.store {
                Some(s) => store::list_api_keys(&self.db, Some(s)).await?,
                None => vec![],
            }
        };
        Ok(ApiKeyList {
            items: rows
                .iter()
                .filter(|k| Self::key_visible(p, k))
                .map(key_view)
                .collect(),
        })
    }

    pub async fn get_api_key(&self, p: &Principal, id: Uuid) -> Result<ApiKey> {
        match store::api_key_by_id(&self.db, id).await? {
            Some(k) if Self::key_visible(p, &k) => Ok(key_view(&k)),
            _ => Err(Error::NotFound("API key")),
        }
    }

    pub async fn revoke_api_key(&self, p: &Principal, id: Uuid) -> Result<()> {
        match store::api_key_by_id(&self.db, id).await? {
            Some(k) if Self::key_visible(p, &k) => {
                store::revoke_api_key(&self.db, id, self.now_ms()).await?;
                Ok(())
            }
            _ => Err(Error::NotFound("API key")),
        }
    }

    /// The principal of a presented API key, if it is valid now.
    pub async fn verify_api_key(&self, presented: &str) -> Result<Option<Principal>> {
        let Some(rest) = presented.strip_prefix("ck_") else {
            return Ok(None);
        };
        let Some((prefix, _)) = rest.split_once('_') else {
            return Ok(None);
        };
        if prefix.len() != 16 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(k) = store::api_key_by_prefix(&self.db, prefix).await? else {
            return Ok(None);
        };
        let digest = platform::sha256_hex(presented);
        let same = digest.len() == k.secret_sha256.len()
            && digest
                .bytes()
                .zip(k.secret_sha256.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        let now = self.now_ms();
        if !same || k.revoked_at.is_some() || k.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        store::touch_api_key(&self.db, k.id, now).await?;
        Ok(Some(Principal {
            subject: k.id.to_string(),
            kind: PrincipalKind::ApiKey,
            role: Role::Integrator,
            store: k.store_id.clone(),
            organiser: None,
            scopes: scopes_from(&k.scopes),
            session: None,
        }))
    }
}
