//! Routes of the identity service, their access policy and their OpenAPI description.
//!
//! `wire` holds the bodies the routes receive and send; `problem` is the one mapping of the use
//! cases' errors to problem documents (every handler's `?` goes through it).

mod problem;
pub mod wire;

use crate::app::Identity;
use crate::keys;
use crate::store;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use platform::authn::Introspection;
use platform::authz::{Access, RoutePolicy, perm};
use platform::caller::{Caller, ClientIp};
use platform::http::extract::{ApiJson, ApiQuery};
use platform::{ApiError, Problem};
use serde::Deserialize;
use std::sync::Arc;
use uuid::Uuid;
use wire::*;

/// What the identity handlers share.
#[derive(Clone)]
pub struct IdentityState {
    pub identity: Identity,
}

/// Who may call what. Every route of [`router`] is here: the tests check it.
pub fn policy() -> RoutePolicy {
    use Access::*;
    RoutePolicy::new()
        .route(Method::GET, "/.well-known/openid-configuration", Public)
        .route(Method::GET, "/.well-known/jwks.json", Public)
        .route(Method::POST, "/api/identity/customers", Public)
        .route(Method::POST, "/api/identity/sessions", Public)
        .route(Method::POST, "/api/identity/sessions/refresh", Public)
        .route(
            Method::DELETE,
            "/api/identity/sessions/current",
            Authenticated,
        )
        .route(Method::GET, "/api/identity/me", Permission(perm::ACCOUNT))
        .route(
            Method::PUT,
            "/api/identity/me/password",
            Permission(perm::ACCOUNT),
        )
        .route(Method::POST, "/api/identity/password-resets", Public)
        .route(
            Method::POST,
            "/api/identity/password-resets/confirm",
            Public,
        )
        .route(
            Method::GET,
            "/api/identity/users",
            Permission(perm::STAFF_READ),
        )
        .route(
            Method::POST,
            "/api/identity/users",
            Permission(perm::STAFF_MANAGE),
        )
        .route(Method::GET, "/api/identity/users/{id}", Authenticated)
        .route(
            Method::PATCH,
            "/api/identity/users/{id}",
            Permission(perm::STAFF_MANAGE),
        )
        .route(
            Method::GET,
            "/api/identity/api-keys",
            Permission(perm::API_KEYS_MANAGE),
        )
        .route(
            Method::POST,
            "/api/identity/api-keys",
            Permission(perm::API_KEYS_MANAGE),
        )
        .route(
            Method::GET,
            "/api/identity/api-keys/{id}",
            Permission(perm::API_KEYS_MANAGE),
        )
        .route(
            Method::DELETE,
            "/api/identity/api-keys/{id}",
            Permission(perm::API_KEYS_MANAGE),
        )
        .route(
            Method::POST,
            "/api/identity/signing-keys/rotate",
            Permission(perm::SIGNING_KEYS_ROTATE),
        )
}

/// The identity routes (paths include their prefixes).
pub fn router(state: IdentityState) -> Router {
    let policy = Arc::new(policy());
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/api/identity/customers", post(register))
        .route("/api/identity/sessions", post(sign_in))
        .route("/api/identity/sessions/refresh", post(refresh))
        .route(
            "/api/identity/sessions/current",
            axum::routing::delete(sign_out),
        )
        .route("/api/identity/me", get(me))
        .route("/api/identity/me/password", put(change_password))
        .route("/api/identity/password-resets", post(request_reset))
        .route("/api/identity/password-resets/confirm", post(confirm_reset))
        .route("/api/identity/users", get(list_users).post(create_staff))
        .route("/api/identity/users/{id}", get(get_user).patch(update_user))
        .route("/api/identity/api-keys", get(list_keys).post(create_key))
        .route(
            "/api/identity/api-keys/{id}",
            get(get_key).delete(revoke_key),
        )
        .route("/api/identity/signing-keys/rotate", post(rotate))
        .route_layer(axum::middleware::from_fn(move |req, next| {
            platform::authz::enforce(policy.clone(), req, next)
        }))
        .with_state(state)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        discovery, jwks, register, sign_in, refresh, sign_out, me, change_password,
        request_reset, confirm_reset, list_users, create_staff, get_user, update_user,
        list_keys, create_key, get_key, revoke_key, rotate
    ),
    components(schemas(Problem, platform::FieldError, keys::PublicJwk, keys::Jwks)),
    tags((name = "identity", description = "Accounts, sessions, staff, API keys and signing keys"))
)]
pub struct IdentityApi;

fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::not_found("object"))
}

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

/// The discovery document of our issuer: enough for a resource server to verify our tokens.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "identity",
    responses((status = 200, description = "Issuer metadata", body = serde_json::Value)))]
async fn discovery(State(st): State<IdentityState>) -> Response {
    let iss = st.identity.signer.issuer.trim_end_matches('/').to_string();
    Json(serde_json::json!({
        "issuer": st.identity.signer.issuer,
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "token_endpoint": format!("{iss}/api/identity/sessions"),
        "revocation_endpoint": format!("{iss}/api/identity/sessions/current"),
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_methods_supported": ["none"],
        "claims_supported": ["iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "role", "store", "organiser"],
    }))
    .into_response()
}

/// The public keys that verify our access tokens, including retired ones whose tokens may
/// still be alive.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "identity",
    responses((status = 200, description = "JSON Web Key Set", body = keys::Jwks)))]
async fn jwks(State(st): State<IdentityState>) -> Result<Response, ApiError> {
    let now = st.identity.clock.now().timestamp_millis();
    let rows = store::published_keys(&st.identity.db, now).await?;
    let mut r = Json(keys::jwks(&rows)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=60"),
    );
    Ok(r)
}

/// Create a customer account.
#[utoipa::path(post, path = "/api/identity/customers", tag = "identity", request_body = Registration,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 409, description = "E-mail taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (e-mail, name, password policy)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn register(
    State(st): State<IdentityState>,
    ApiJson(r): ApiJson<Registration>,
) -> Result<Response, ApiError> {
    Ok(created(st.identity.register(&r).await?))
}

/// Sign in: a new session with an access token and a refresh token.
#[utoipa::path(post, path = "/api/identity/sessions", tag = "identity", request_body = SignIn,
    responses(
        (status = 201, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong e-mail or password (same answer for both)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failures for this account from this address, for this address, or for this account; see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many sign-ins being checked; retry", body = Problem, content_type = "application/problem+json"),
    ))]
async fn sign_in(
    State(st): State<IdentityState>,
    ip: ClientIp,
    ApiJson(s): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    Ok(created(st.identity.sign_in(&s, ip.0).await?))
}

/// Trade a refresh token for a new pair (the old refresh token stops working).
#[utoipa::path(post, path = "/api/identity/sessions/refresh", tag = "identity", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Unknown or ended session (`invalid_grant`), or a reused token (`refresh_token_reused`, the session is ended)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn refresh(
    State(st): State<IdentityState>,
    ApiJson(r): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    Ok(Json(st.identity.refresh(&r).await?).into_response())
}

/// Sign out: ends the session of the access token.
#[utoipa::path(delete, path = "/api/identity/sessions/current", tag = "identity",
    responses((status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn sign_out(State(st): State<IdentityState>, caller: Caller) -> Result<StatusCode, ApiError> {
    st.identity.sign_out(caller.require()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/identity/me", tag = "identity",
    responses((status = 200, description = "The account", body = User),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn me(State(st): State<IdentityState>, caller: Caller) -> Result<Json<User>, ApiError> {
    Ok(Json(st.identity.me(caller.require()?).await?))
}

/// Change one's password; every session of the account ends.
#[utoipa::path(put, path = "/api/identity/me/password", tag = "identity", request_body = PasswordChange,
    responses((status = 204, description = "Changed; sign in again"),
        (status = 403, description = "The current password is wrong", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new password breaks the policy", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong current passwords; see Retry-After", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn change_password(
    State(st): State<IdentityState>,
    caller: Caller,
    ApiJson(c): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    st.identity.change_password(caller.require()?, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ask for a password reset link. Always 202, whether the account exists or not.
#[utoipa::path(post, path = "/api/identity/password-resets", tag = "identity", request_body = ResetRequest,
    responses((status = 202, description = "If the account exists, a link is on its way")))]
async fn request_reset(
    State(st): State<IdentityState>,
    ApiJson(r): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    st.identity.request_reset(&r).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with the token of a reset link (single use, time-limited).
#[utoipa::path(post, path = "/api/identity/password-resets/confirm", tag = "identity", request_body = ResetConfirm,
    responses((status = 204, description = "Changed; every session of the account ended"),
        (status = 400, description = "Unknown, used or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new password breaks the policy", body = Problem, content_type = "application/problem+json")))]
async fn confirm_reset(
    State(st): State<IdentityState>,
    ip: ClientIp,
    ApiJson(r): ApiJson<ResetConfirm>,
) -> Result<StatusCode, ApiError> {
    st.identity.confirm_reset(&r, ip.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UserQuery {
    /// Only this role.
    role: Option<String>,
    /// Only this store (store managers always see their own store only).
    store: Option<String>,
    cursor: Option<String>,
    /// 1 to 200, default 50.
    limit: Option<u32>,
}

/// List accounts: all for head office, their store's for a store manager.
#[utoipa::path(get, path = "/api/identity/users", tag = "identity", params(UserQuery),
    responses((status = 200, description = "A page of users", body = UserPage),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn list_users(
    State(st): State<IdentityState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<UserPage>, ApiError> {
    Ok(Json(
        st.identity
            .list_users(
                caller.require()?,
                q.role.as_deref(),
                q.store.as_deref(),
                q.cursor.as_deref(),
                q.limit,
            )
            .await?,
    ))
}

/// Create a staff account (head office: any staff role; store manager: clerks of their store).
#[utoipa::path(post, path = "/api/identity/users", tag = "identity", request_body = NewStaff,
    responses((status = 201, description = "Created", body = StaffCreated),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "E-mail taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn create_staff(
    State(st): State<IdentityState>,
    caller: Caller,
    ApiJson(s): ApiJson<NewStaff>,
) -> Result<Response, ApiError> {
    Ok(created(
        st.identity.create_staff(caller.require()?, &s).await?,
    ))
}

/// One account: one's own, or one a manager may see. Others are 404.
#[utoipa::path(get, path = "/api/identity/users/{id}", tag = "identity", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The user", body = User),
        (status = 404, description = "No such user visible to you", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn get_user(
    State(st): State<IdentityState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    let u = st
        .identity
        .get_user(caller.require()?, parse_id(&id)?)
        .await?;
    Ok(Json(user_view(&u)))
}

/// Change an account: name, status (disabling ends its sessions), role, store.
#[utoipa::path(patch, path = "/api/identity/users/{id}", tag = "identity", params(("id" = Uuid, Path)),
    request_body = UserPatch,
    responses((status = 200, description = "Changed", body = User),
        (status = 404, description = "No such user visible to you", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn update_user(
    State(st): State<IdentityState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(
        st.identity
            .update_user(caller.require()?, parse_id(&id)?, &patch)
            .await?,
    ))
}

/// API keys visible to the caller (a store manager: their store's).
#[utoipa::path(get, path = "/api/identity/api-keys", tag = "identity",
    responses((status = 200, description = "Keys (never their secrets)", body = ApiKeyList)),
    security(("bearer" = [])))]
async fn list_keys(
    State(st): State<IdentityState>,
    caller: Caller,
) -> Result<Json<ApiKeyList>, ApiError> {
    Ok(Json(st.identity.list_api_keys(caller.require()?).await?))
}

/// Create an API key. The key is in this answer only.
#[utoipa::path(post, path = "/api/identity/api-keys", tag = "identity", request_body = NewApiKey,
    responses((status = 201, description = "Created; keep the key now", body = ApiKeyCreated),
        (status = 422, description = "Unknown scope, or one the creator does not hold", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn create_key(
    State(st): State<IdentityState>,
    caller: Caller,
    ApiJson(k): ApiJson<NewApiKey>,
) -> Result<Response, ApiError> {
    Ok(created(
        st.identity.create_api_key(caller.require()?, &k).await?,
    ))
}

#[utoipa::path(get, path = "/api/identity/api-keys/{id}", tag = "identity", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The key (never its secret)", body = ApiKey),
        (status = 404, description = "No such key visible to you", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn get_key(
    State(st): State<IdentityState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    Ok(Json(
        st.identity
            .get_api_key(caller.require()?, parse_id(&id)?)
            .await?,
    ))
}

/// Revoke an API key: refused everywhere within `auth.revocation_seconds`.
#[utoipa::path(delete, path = "/api/identity/api-keys/{id}", tag = "identity", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Revoked"),
        (status = 404, description = "No such key visible to you", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
async fn revoke_key(
    State(st): State<IdentityState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.identity
        .revoke_api_key(caller.require()?, parse_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate the signing key. Tokens signed with the old key stay valid until they expire.
#[utoipa::path(post, path = "/api/identity/signing-keys/rotate", tag = "identity",
    responses((status = 200, description = "The new signing key", body = Rotated)),
    security(("bearer" = [])))]
async fn rotate(State(st): State<IdentityState>) -> Result<Json<Rotated>, ApiError> {
    let now = st.identity.clock.now().timestamp_millis();
    let kid = st
        .identity
        .signer
        .rotate(&st.identity.db, now)
        .await
        .map_err(crate::app::Error::from)?;
    tracing::info!(kid, "signing key rotated");
    Ok(Json(Rotated { kid }))
}

/// `/internal/identity/introspect`, for the edge (the gateway, the web) in another process:
/// [`platform::authn::RemoteDirectory`] asks it whether an API key or a session is valid. The
/// wiring puts it behind [`platform::caller::internal_calls_only`], like every internal route.
pub fn internal_router(identity: Identity) -> Router {
    Router::new()
        .route("/internal/identity/introspect", post(introspect))
        .with_state(IdentityState { identity })
}

/// Is this API key or session valid?
async fn introspect(
    State(st): State<IdentityState>,
    ApiJson(r): ApiJson<IntrospectRequest>,
) -> Result<Json<Introspection>, ApiError> {
    if let Some(k) = &r.api_key {
        let p = st.identity.verify_api_key(k).await?;
        return Ok(Json(Introspection {
            active: p.is_some(),
            principal: p,
        }));
    }
    if let Some(s) = &r.session_id {
        return Ok(Json(Introspection {
            active: st.identity.session_active(s).await?,
            principal: None,
        }));
    }
    Err(ApiError::bad_request(
        "invalid_request",
        "give api_key or session_id",
    ))
}
