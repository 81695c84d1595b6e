//! An external OpenID Connect provider (Keycloak...): its settings and the principal its
//! verified claims map to.

use super::AuthError;
use crate::authz::{Principal, PrincipalKind, Role};
use jsonwebtoken::Algorithm;
use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
