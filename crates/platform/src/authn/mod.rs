//! Authentication at the edge: turns a bearer token, an API key or the web session cookie into
//! a verified [`Principal`](crate::authz::Principal), applies the rate limits, and hands the identity to the services.
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
//!
//! Where things are: `credential` (where a request carries its credential), `authenticator`
//! (verification and its caches), `jwks` (key sets and their bounded refresh), `external` (the
//! OIDC provider's settings and claims), `directory` (what the edge asks the identity service,
//! and `RemoteDirectory`), `edge` (the middleware, `same_origin`).

mod authenticator;
mod credential;
mod directory;
mod edge;
mod external;
mod jwks;

pub use authenticator::Authenticator;
pub use credential::Credential;
pub use directory::{DirFuture, Directory, Introspection, RemoteDirectory};
pub use edge::{Edge, EdgeLimits, edge_layer, same_origin};
pub use external::{ExternalProvider, external_principal};

/// Describes the edge's metrics and starts them at 0 (a process with the edge or the web pages
/// calls this once).
pub fn describe_metrics() {
    for (name, help) in [
        (
            "comptoir_auth_rejected_total",
            "Requests refused at the edge for a credential that does not verify (401)",
        ),
        (
            "comptoir_rate_limit_fallback_total",
            "Rate-limit decisions taken on this process's counters because Redis did not answer",
        ),
        (
            "comptoir_oidc_jwks_fetches_total",
            "Fetches of the external OpenID Connect provider's key set",
        ),
    ] {
        metrics::describe_counter!(name, help);
        metrics::counter!(name).increment(0);
    }
}

use crate::authz::Role;
use serde::{Deserialize, Serialize};

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

/// Why a credential was refused.
#[derive(Debug)]
pub enum AuthError {
    /// The credential is not valid: 401.
    Invalid(&'static str),
    /// The identity service or a provider's JWKS cannot be reached: 503.
    Unavailable(String),
}
