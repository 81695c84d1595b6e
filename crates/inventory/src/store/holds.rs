//! The statements on holds and their lines.

use super::Result;
use platform::conn_run;
use platform::db::{Conn, Db};
use platform::db_run;
use uuid::Uuid;

/// A hold's location, state (`active`, `committed`, `released`, `expired`, `returned`) and
/// expiry (ms since the epoch).
#[derive(sqlx::FromRow)]
pub struct HoldRow {
    pub location: String,
    pub state: String,
    pub expires_at: i64,
}

/// One SKU of a hold, as stored.
#[derive(sqlx::FromRow)]
pub struct LineRow {
    pub sku: String,
    pub quantity: i64,
}

pub async fn hold_row(conn: Conn<'_>, id: Uuid) -> Result<Option<HoldRow>> {
    conn_run!(conn, |c| sqlx::query_as(
        "SELECT location, state, expires_at FROM holds WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await)
}

/// The lines of a hold, in SKU order.
pub async fn hold_lines(conn: Conn<'_>, id: Uuid) -> Result<Vec<LineRow>> {
    conn_run!(conn, |c| sqlx::query_as(
        "SELECT sku, quantity FROM hold_lines WHERE hold_id = $1 ORDER BY sku"
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await)
}

/// Moves a hold from `from` to `to`; false when it was not in `from`.
pub async fn set_hold_state(
    conn: Conn<'_>,
    id: Uuid,
    from: &str,
    to: &str,
    now: i64,
) -> Result<bool> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE holds SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4"
    )
    .bind(to)
    .bind(now)
    .bind(id)
    .bind(from)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// A new active hold (its lines follow with [`insert_hold_line`]).
pub async fn insert_hold(
    conn: Conn<'_>,
    id: Uuid,
    location: &str,
    now: i64,
    expires: i64,
) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO holds (id, location, state, created_at, expires_at, updated_at) \
         VALUES ($1, $2, 'active', $3, $4, $3)"
    )
    .bind(id)
    .bind(location)
    .bind(now)
    .bind(expires)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

pub async fn insert_hold_line(conn: Conn<'_>, id: Uuid, sku: &str, q: i64) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO hold_lines (hold_id, sku, quantity) VALUES ($1, $2, $3)"
    )
    .bind(id)
    .bind(sku)
    .bind(q)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// Expired active holds that name `sku` at `location` (at most 1000).
pub async fn expired_holds_of(
    conn: Conn<'_>,
    location: &str,
    sku: &str,
    now: i64,
) -> Result<Vec<Uuid>> {
    conn_run!(conn, |c| sqlx::query_scalar(
        "SELECT h.id FROM holds h JOIN hold_lines l ON l.hold_id = h.id \
         WHERE h.state = 'active' AND h.expires_at <= $1 AND h.location = $2 AND l.sku = $3 \
         ORDER BY h.id LIMIT 1000"
    )
    .bind(now)
    .bind(location)
    .bind(sku)
    .fetch_all(&mut *c)
    .await)
}

/// Expired active holds, oldest expiry first (at most 500).
pub async fn expired_holds(db: &Db, now: i64) -> Result<Vec<Uuid>> {
    db_run!(db, |p| {
        sqlx::query_scalar(
            "SELECT id FROM holds WHERE state = 'active' AND expires_at <= $1 ORDER BY expires_at \
             LIMIT 500",
        )
        .bind(now)
        .fetch_all(p)
        .await
    })
}
