//! What the identity API receives and sends. Request bodies refuse unknown fields, so that a
//! client cannot slip in `role`, `is_admin` or `store_id` where they are not asked for.

use crate::domain::{iso, scopes_from};
use crate::store::{ApiKeyRow, UserRow};
use platform::authz::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub email: String,
    /// 8 to 128 characters, any; the most common passwords are refused.
    pub password: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Tokens of a session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT (EdDSA) to send as `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires (at most 900).
    pub expires_in: u64,
    /// Single use: each refresh returns a new one. Reusing an old one ends the session.
    pub refresh_token: String,
    pub session_id: Uuid,
    pub user: User,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organiser: Option<String>,
    /// `active` or `disabled`.
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Required for `clerk`, `store_manager` and `warehouse`.
    #[serde(default)]
    pub store: Option<String>,
    /// Required for `organiser`.
    #[serde(default)]
    pub organiser: Option<String>,
    /// Leave out to have one generated and shown once.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffCreated {
    pub user: User,
    /// Present when the password was generated: shown this once, stored only hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub name: Option<String>,
    /// `active` or `disabled`; disabling ends every session of the user.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub store: Option<String>,
    #[serde(default)]
    pub organiser: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    pub token: String,
    pub new_password: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    /// Among `catalog:write`, `inventory:read`, `inventory:write`, `orders:read`,
    /// `orders:write`, `pos:sell`, `events:manage`, and only ones the creator holds.
    pub scopes: Vec<String>,
    /// The store the key acts for (a store manager's keys are always bound to their store).
    #[serde(default)]
    pub store: Option<String>,
    /// Optional lifetime in days (1 to 3650).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The public part of the key (`ck_<prefix>_...`), to recognise it in lists.
    pub prefix: String,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    pub created_by: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    /// The key: shown this once, stored only as a SHA-256 digest.
    pub key: String,
    pub api_key: ApiKey,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKey>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rotated {
    /// The key id that signs from now on.
    pub kid: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
}

/// A user as the API shows it.
pub fn user_view(u: &UserRow) -> User {
    User {
        id: u.id,
        email: u.email.clone(),
        name: u.name.clone(),
        role: Role::parse(&u.role).unwrap_or(Role::Customer),
        store: u.store_id.clone(),
        organiser: u.organiser_id.clone(),
        status: u.status.clone(),
        created_at: iso(u.created_at),
    }
}

/// An API key as the API shows it: never its secret.
pub fn key_view(k: &ApiKeyRow) -> ApiKey {
    ApiKey {
        id: k.id,
        name: k.name.clone(),
        prefix: format!("ck_{}", k.prefix),
        scopes: scopes_from(&k.scopes),
        store: k.store_id.clone(),
        created_by: k.created_by.clone(),
        created_at: iso(k.created_at),
        expires_at: k.expires_at.map(iso),
        last_used_at: k.last_used_at.map(iso),
        revoked_at: k.revoked_at.map(iso),
    }
}
