//! SQL of the identity service: one text for SQLite and PostgreSQL, parameters only.

use crate::keys::KeyRow;
use platform::conn_run;
use platform::db::{Conn, Db};
use platform::db_run;
use uuid::Uuid;

pub type Result<T> = std::result::Result<T, sqlx::Error>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub email_key: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub role: String,
    pub store_id: Option<String>,
    pub organiser_id: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub password_changed_at: Option<i64>,
}

const USER_COLUMNS: &str = "id, email, email_key, name, password_hash, role, store_id, \
     organiser_id, status, created_at, updated_at, password_changed_at";

pub async fn insert_user(conn: Conn<'_>, u: &UserRow) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO users (id, email, email_key, name, password_hash, role, store_id, \
         organiser_id, status, created_at, updated_at, password_changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    )
    .bind(u.id)
    .bind(&u.email)
    .bind(&u.email_key)
    .bind(&u.name)
    .bind(&u.password_hash)
    .bind(&u.role)
    .bind(&u.store_id)
    .bind(&u.organiser_id)
    .bind(&u.status)
    .bind(u.created_at)
    .bind(u.updated_at)
    .bind(u.password_changed_at)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

pub async fn user_by_email_key(db: &Db, key: &str) -> Result<Option<UserRow>> {
    let sql = "SELECT id, email, email_key, name, password_hash, role, store_id, organiser_id, \
               status, created_at, updated_at, password_changed_at FROM users WHERE email_key = $1";
    debug_assert!(sql.contains(USER_COLUMNS));
    db_run!(db, |p| sqlx::query_as(sql)
        .bind(key)
        .fetch_optional(p)
        .await)
}

pub async fn user_by_id(conn: Conn<'_>, id: Uuid) -> Result<Option<UserRow>> {
    let sql = "SELECT id, email, email_key, name, password_hash, role, store_id, organiser_id, \
               status, created_at, updated_at, password_changed_at FROM users WHERE id = $1";
    conn_run!(conn, |c| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(&mut *c)
        .await)
}

/// Staff and customers, newest id order, optionally only one store's or one role's.
pub async fn list_users(
    db: &Db,
    store: Option<&str>,
    role: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<UserRow>> {
    let sql = "SELECT id, email, email_key, name, password_hash, role, store_id, organiser_id, \
               status, created_at, updated_at, password_changed_at FROM users \
               WHERE ($1 IS NULL OR store_id = $1) AND ($2 IS NULL OR role = $2) \
               AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4";
    db_run!(db, |p| sqlx::query_as(sql)
        .bind(store)
        .bind(role)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await)
}

pub async fn update_user(conn: Conn<'_>, u: &UserRow) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE users SET name = $2, role = $3, store_id = $4, organiser_id = $5, status = $6, \
         updated_at = $7, password_hash = $8, password_changed_at = $9 WHERE id = $1"
    )
    .bind(u.id)
    .bind(&u.name)
    .bind(&u.role)
    .bind(&u.store_id)
    .bind(&u.organiser_id)
    .bind(&u.status)
    .bind(u.updated_at)
    .bind(&u.password_hash)
    .bind(u.password_changed_at)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

// ---- sessions and refresh tokens ---------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

pub async fn insert_session(conn: Conn<'_>, s: &SessionRow) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, last_used_at, revoked_at, \
         revoked_reason) VALUES ($1, $2, $3, $4, $5, NULL, NULL)"
    )
    .bind(s.id)
    .bind(s.user_id)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.last_used_at)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

pub async fn session(conn: Conn<'_>, id: Uuid) -> Result<Option<SessionRow>> {
    conn_run!(conn, |c| sqlx::query_as(
        "SELECT id, user_id, created_at, expires_at, last_used_at, revoked_at, revoked_reason \
         FROM sessions WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await)
}

/// Whether the session exists, is neither revoked nor expired, and its user is active.
pub async fn session_active(db: &Db, id: Uuid, now_ms: i64) -> Result<bool> {
    let n: i64 = db_run!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.status = 'active'"
    )
    .bind(id)
    .bind(now_ms)
    .fetch_one(p)
    .await)?;
    Ok(n > 0)
}

pub async fn revoke_session(conn: Conn<'_>, id: Uuid, reason: &str, now_ms: i64) -> Result<u64> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
         WHERE id = $1 AND revoked_at IS NULL"
    )
    .bind(id)
    .bind(now_ms)
    .bind(reason)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))
}

pub async fn revoke_user_sessions(
    conn: Conn<'_>,
    user: Uuid,
    reason: &str,
    now_ms: i64,
) -> Result<u64> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
         WHERE user_id = $1 AND revoked_at IS NULL"
    )
    .bind(user)
    .bind(now_ms)
    .bind(reason)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))
}

pub async fn touch_session(conn: Conn<'_>, id: Uuid, now_ms: i64) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE sessions SET last_used_at = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(now_ms)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    pub token_hash: String,
    pub session_id: Uuid,
    pub generation: i32,
    pub created_at: i64,
    pub used_at: Option<i64>,
}

pub async fn insert_refresh(conn: Conn<'_>, r: &RefreshRow) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, used_at) \
         VALUES ($1, $2, $3, $4, NULL)"
    )
    .bind(&r.token_hash)
    .bind(r.session_id)
    .bind(r.generation)
    .bind(r.created_at)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

pub async fn refresh_by_hash(conn: Conn<'_>, hash: &str) -> Result<Option<RefreshRow>> {
    conn_run!(conn, |c| sqlx::query_as(
        "SELECT token_hash, session_id, generation, created_at, used_at FROM refresh_tokens \
         WHERE token_hash = $1"
    )
    .bind(hash)
    .fetch_optional(&mut *c)
    .await)
}

/// Marks a refresh token used; 0 rows when someone used it first (a reuse).
pub async fn use_refresh(conn: Conn<'_>, hash: &str, now_ms: i64) -> Result<u64> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL"
    )
    .bind(hash)
    .bind(now_ms)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))
}

// ---- signing keys ------------------------------------------------------------------------------

pub async fn active_key(db: &Db) -> Result<Option<KeyRow>> {
    db_run!(db, |p| sqlx::query_as(
        "SELECT kid, alg, private_pkcs8, public_x, created_at, retired_at, expires_at \
         FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1"
    )
    .fetch_optional(p)
    .await)
}

pub async fn insert_key(db: &Db, k: &KeyRow) -> Result<()> {
    db_run!(db, |p| sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_pkcs8, public_x, created_at, retired_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, NULL, NULL)"
    )
    .bind(&k.kid)
    .bind(&k.alg)
    .bind(&k.private_pkcs8)
    .bind(&k.public_x)
    .bind(k.created_at)
    .execute(p)
    .await
    .map(|_| ()))
}

/// Retires every signing key (they verify until `expires_at`) and adds the new one, atomically.
pub async fn rotate_keys(db: &Db, new: &KeyRow, now_ms: i64, old_expire_ms: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    platform::tx_run!(&mut tx, |c| sqlx::query(
        "UPDATE signing_keys SET retired_at = $1, expires_at = $2 WHERE retired_at IS NULL"
    )
    .bind(now_ms)
    .bind(old_expire_ms)
    .execute(&mut *c)
    .await
    .map(|_| ()))?;
    platform::tx_run!(&mut tx, |c| sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_pkcs8, public_x, created_at, retired_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, NULL, NULL)"
    )
    .bind(&new.kid)
    .bind(&new.alg)
    .bind(&new.private_pkcs8)
    .bind(&new.public_x)
    .bind(new.created_at)
    .execute(&mut *c)
    .await
    .map(|_| ()))?;
    tx.commit().await
}

/// The keys that still verify: the signer and retired keys whose tokens may be alive.
pub async fn published_keys(db: &Db, now_ms: i64) -> Result<Vec<KeyRow>> {
    db_run!(db, |p| sqlx::query_as(
        "SELECT kid, alg, private_pkcs8, public_x, created_at, retired_at, expires_at \
         FROM signing_keys WHERE expires_at IS NULL OR expires_at > $1 \
         ORDER BY created_at DESC, kid"
    )
    .bind(now_ms)
    .fetch_all(p)
    .await)
}

// ---- API keys ----------------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub prefix: String,
    pub secret_sha256: String,
    pub name: String,
    pub scopes: String,
    pub store_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const KEY_SELECT: &str = "SELECT id, prefix, secret_sha256, name, scopes, store_id, created_by, \
     created_at, expires_at, last_used_at, revoked_at FROM api_keys";

pub async fn insert_api_key(db: &Db, k: &ApiKeyRow) -> Result<()> {
    db_run!(db, |p| sqlx::query(
        "INSERT INTO api_keys (id, prefix, secret_sha256, name, scopes, store_id, created_by, \
         created_at, expires_at, last_used_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL)"
    )
    .bind(k.id)
    .bind(&k.prefix)
    .bind(&k.secret_sha256)
    .bind(&k.name)
    .bind(&k.scopes)
    .bind(&k.store_id)
    .bind(&k.created_by)
    .bind(k.created_at)
    .bind(k.expires_at)
    .execute(p)
    .await
    .map(|_| ()))
}

pub async fn api_key_by_prefix(db: &Db, prefix: &str) -> Result<Option<ApiKeyRow>> {
    let sql = "SELECT id, prefix, secret_sha256, name, scopes, store_id, created_by, \
               created_at, expires_at, last_used_at, revoked_at FROM api_keys WHERE prefix = $1";
    debug_assert!(sql.starts_with(KEY_SELECT));
    db_run!(db, |p| sqlx::query_as(sql)
        .bind(prefix)
        .fetch_optional(p)
        .await)
}

pub async fn api_key_by_id(db: &Db, id: Uuid) -> Result<Option<ApiKeyRow>> {
    let sql = "SELECT id, prefix, secret_sha256, name, scopes, store_id, created_by, \
               created_at, expires_at, last_used_at, revoked_at FROM api_keys WHERE id = $1";
    db_run!(db, |p| sqlx::query_as(sql).bind(id).fetch_optional(p).await)
}

pub async fn list_api_keys(db: &Db, store: Option<&str>) -> Result<Vec<ApiKeyRow>> {
    let sql = "SELECT id, prefix, secret_sha256, name, scopes, store_id, created_by, \
               created_at, expires_at, last_used_at, revoked_at FROM api_keys \
               WHERE ($1 IS NULL OR store_id = $1) ORDER BY created_at DESC, id LIMIT 500";
    db_run!(db, |p| sqlx::query_as(sql).bind(store).fetch_all(p).await)
}

pub async fn revoke_api_key(db: &Db, id: Uuid, now_ms: i64) -> Result<u64> {
    db_run!(db, |p| sqlx::query(
        "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
    )
    .bind(id)
    .bind(now_ms)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
}

/// Records use, at most once a minute per key (a write per request would serialise SQLite).
pub async fn touch_api_key(db: &Db, id: Uuid, now_ms: i64) -> Result<()> {
    db_run!(db, |p| sqlx::query(
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 \
         AND (last_used_at IS NULL OR last_used_at < $3)"
    )
    .bind(id)
    .bind(now_ms)
    .bind(now_ms - 60_000)
    .execute(p)
    .await
    .map(|_| ()))
}

// ---- password resets and the outbox ------------------------------------------------------------

pub async fn insert_reset(
    conn: Conn<'_>,
    hash: &str,
    user: Uuid,
    now_ms: i64,
    expires_ms: i64,
) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at, used_at) \
         VALUES ($1, $2, $3, $4, NULL)"
    )
    .bind(hash)
    .bind(user)
    .bind(now_ms)
    .bind(expires_ms)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// Consumes a reset token: its user, if it exists, is unused and not expired. Single use even
/// under concurrency (guarded update).
pub async fn use_reset(conn: Conn<'_>, hash: &str, now_ms: i64) -> Result<Option<Uuid>> {
    conn_run!(conn, |c| {
        let user: Option<Uuid> = sqlx::query_scalar(
            "SELECT user_id FROM password_resets WHERE token_hash = $1 AND used_at IS NULL \
             AND expires_at > $2",
        )
        .bind(hash)
        .bind(now_ms)
        .fetch_optional(&mut *c)
        .await?;
        match user {
            None => Ok(None),
            Some(u) => {
                let n = sqlx::query(
                    "UPDATE password_resets SET used_at = $2 WHERE token_hash = $1 \
                     AND used_at IS NULL",
                )
                .bind(hash)
                .bind(now_ms)
                .execute(&mut *c)
                .await?
                .rows_affected();
                Ok(if n == 1 { Some(u) } else { None })
            }
        }
    })
}

/// Any earlier reset token of the user stops working when a new one is issued or one is used.
pub async fn expire_resets(conn: Conn<'_>, user: Uuid, now_ms: i64) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL"
    )
    .bind(user)
    .bind(now_ms)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: Uuid,
    pub topic: String,
    pub payload: String,
    pub created_at: i64,
}

/// Messages not yet published, oldest first.
pub async fn pending_outbox(db: &Db, topic: &str) -> Result<Vec<OutboxRow>> {
    db_run!(db, |p| sqlx::query_as(
        "SELECT id, topic, payload, created_at FROM outbox \
         WHERE published_at IS NULL AND topic = $1 ORDER BY id"
    )
    .bind(topic)
    .fetch_all(p)
    .await)
}

pub async fn count_users(db: &Db) -> Result<i64> {
    db_run!(db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(p)
        .await)
}
