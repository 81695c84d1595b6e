//! Inventory persistence: every SQL statement of the service, one text for SQLite and
//! PostgreSQL (run on either through `conn_run!` / `db_run!`). Functions take a [`Conn`] (a
//! transaction's or a pool connection's) for the steps of a use case, or the [`Db`] for reads
//! outside a transaction. Rows are mapped into the types of [`crate::domain`] here; the holds'
//! statements are in `store/holds.rs`.
//!
//! The guarded statements ([`take`], [`change_on_hand`]) are the ones that decide I1: each
//! changes its row only when the stock is there, and says whether it did.

use crate::domain::{Counters, Location, Movement, MovementKind, StockLevel};
use platform::db::{Conn, Db, Param, SqlBuilder};
use platform::{conn_run, db_run};
use uuid::Uuid;

mod holds;

pub use holds::{
    HoldRow, LineRow, expired_holds, expired_holds_of, hold_lines, hold_row, insert_hold,
    insert_hold_line, set_hold_state,
};

type Result<T> = std::result::Result<T, sqlx::Error>;

#[derive(sqlx::FromRow)]
struct LocationRow {
    code: String,
    name: String,
    kind: String,
    ships: bool,
    click_and_collect: bool,
}

impl From<LocationRow> for Location {
    fn from(r: LocationRow) -> Self {
        Location {
            code: r.code,
            name: r.name,
            kind: r.kind,
            ships: r.ships,
            click_and_collect: r.click_and_collect,
        }
    }
}

#[derive(sqlx::FromRow)]
struct LevelRow {
    location: String,
    sku: String,
    on_hand: i64,
    held: i64,
    available: i64,
    low_threshold: i64,
    low: bool,
}

impl From<LevelRow> for StockLevel {
    fn from(r: LevelRow) -> Self {
        StockLevel {
            location: r.location,
            sku: r.sku,
            on_hand: r.on_hand,
            held: r.held,
            available: r.available,
            low_threshold: r.low_threshold,
            low: r.low,
        }
    }
}

#[derive(sqlx::FromRow)]
struct MovementRow {
    id: Uuid,
    location: String,
    sku: String,
    kind: String,
    on_hand_delta: i64,
    held_delta: i64,
    reference: String,
    actor: String,
    created_at: i64,
}

impl From<MovementRow> for Movement {
    fn from(r: MovementRow) -> Self {
        Movement {
            id: r.id,
            location: r.location,
            sku: r.sku,
            kind: r.kind,
            on_hand_delta: r.on_hand_delta,
            held_delta: r.held_delta,
            reference: r.reference,
            actor: r.actor,
            created_at: r.created_at,
        }
    }
}

// --- locations ---

pub async fn locations(db: &Db) -> Result<Vec<Location>> {
    let rows: Vec<LocationRow> = db_run!(db, |p| sqlx::query_as(
        "SELECT code, name, kind, ships, click_and_collect FROM locations ORDER BY kind, code"
    )
    .fetch_all(p)
    .await)?;
    Ok(rows.into_iter().map(Location::from).collect())
}

pub async fn location(db: &Db, code: &str) -> Result<Option<Location>> {
    let row: Option<LocationRow> = db_run!(db, |p| sqlx::query_as(
        "SELECT code, name, kind, ships, click_and_collect FROM locations WHERE code = $1"
    )
    .bind(code)
    .fetch_optional(p)
    .await)?;
    Ok(row.map(Location::from))
}

/// Creates the location, or renames it and sets its kind and flags.
pub async fn upsert_location(db: &Db, l: &Location, now: i64) -> Result<()> {
    db_run!(db, |p| sqlx::query(
        "INSERT INTO locations (code, name, kind, ships, click_and_collect, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code) DO UPDATE SET name = $2, \
         kind = $3, ships = $4, click_and_collect = $5"
    )
    .bind(&l.code)
    .bind(&l.name)
    .bind(&l.kind)
    .bind(l.ships)
    .bind(l.click_and_collect)
    .bind(now)
    .execute(p)
    .await
    .map(|_| ()))
}

pub async fn location_exists(conn: Conn<'_>, code: &str) -> Result<bool> {
    conn_run!(conn, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM locations WHERE code = $1"
    )
    .bind(code)
    .fetch_one(&mut *c)
    .await
    .map(|n| n > 0))
}

// --- the ledger ---

/// Writes one row of the movement ledger (in the transaction of the counter change).
#[allow(clippy::too_many_arguments)]
pub async fn ledger(
    conn: Conn<'_>,
    location: &str,
    sku: &str,
    kind: MovementKind,
    on_hand_delta: i64,
    held_delta: i64,
    reference: &str,
    actor: &str,
    now: i64,
) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO movements (id, location, sku, kind, on_hand_delta, held_delta, reference, \
         actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )
    .bind(Uuid::now_v7())
    .bind(location)
    .bind(sku)
    .bind(kind.as_str())
    .bind(on_hand_delta)
    .bind(held_delta)
    .bind(reference)
    .bind(actor)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// The ledger, newest first, filtered (at most 500 rows).
pub async fn movements(
    db: &Db,
    location: Option<&str>,
    sku: Option<&str>,
    limit: i64,
) -> Result<Vec<Movement>> {
    let mut q = SqlBuilder::new(
        "SELECT id, location, sku, kind, on_hand_delta, held_delta, reference, actor, created_at \
         FROM movements WHERE 1 = 1",
    );
    if let Some(l) = location {
        q.push(" AND location = ").bind(Param::Text(l.to_string()));
    }
    if let Some(s) = sku {
        q.push(" AND sku = ").bind(Param::Text(s.to_string()));
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(Param::I64(limit.clamp(1, 500)));
    let rows: Vec<MovementRow> = q.fetch_all(db).await?;
    Ok(rows.into_iter().map(Movement::from).collect())
}

/// Σ of `sale` minus `return` movements for a SKU at a location (units sold).
pub async fn sold(db: &Db, location: &str, sku: &str) -> Result<i64> {
    db_run!(db, |p| {
        sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(-SUM(on_hand_delta), 0) AS BIGINT) FROM movements \
             WHERE location = $1 AND sku = $2 AND kind IN ('sale', 'return')",
        )
        .bind(location)
        .bind(sku)
        .fetch_one(p)
        .await
    })
}

// --- stock counters ---

pub async fn available(conn: Conn<'_>, location: &str, sku: &str) -> Result<i64> {
    conn_run!(conn, |c| sqlx::query_scalar::<_, i64>(
        "SELECT on_hand - held FROM stock WHERE location = $1 AND sku = $2"
    )
    .bind(location)
    .bind(sku)
    .fetch_optional(&mut *c)
    .await
    .map(|v| v.unwrap_or(0)))
}

/// `held += q` if `q` is available: the one statement that decides a sale.
pub async fn take(conn: Conn<'_>, location: &str, sku: &str, q: i64, now: i64) -> Result<bool> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE stock SET held = held + $1, updated_at = $2 \
         WHERE location = $3 AND sku = $4 AND on_hand - held >= $1"
    )
    .bind(q)
    .bind(now)
    .bind(location)
    .bind(sku)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// `held -= q`: gives back units of a hold.
pub async fn unhold(conn: Conn<'_>, location: &str, sku: &str, q: i64, now: i64) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE stock SET held = held - $1, updated_at = $2 WHERE location = $3 AND sku = $4"
    )
    .bind(q)
    .bind(now)
    .bind(location)
    .bind(sku)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// `on_hand -= q, held -= q`: held units leave as a sale.
pub async fn sell(conn: Conn<'_>, location: &str, sku: &str, q: i64, now: i64) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE stock SET on_hand = on_hand - $1, held = held - $1, updated_at = $2 \
         WHERE location = $3 AND sku = $4"
    )
    .bind(q)
    .bind(now)
    .bind(location)
    .bind(sku)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// Adds `delta` to on_hand (creating the row), refusing to go below what is held or zero.
pub async fn change_on_hand(
    conn: Conn<'_>,
    location: &str,
    sku: &str,
    delta: i64,
    now: i64,
) -> Result<bool> {
    if delta >= 0 {
        conn_run!(conn, |c| {
            sqlx::query(
            "INSERT INTO stock (location, sku, on_hand, held, updated_at) VALUES ($1, $2, $3, 0, $4) \
             ON CONFLICT (location, sku) DO UPDATE SET on_hand = stock.on_hand + $3, updated_at = $4"
        )
        .bind(location)
        .bind(sku)
        .bind(delta)
        .bind(now)
        .execute(&mut *c)
        .await.map(|_| ())
        })?;
        Ok(true)
    } else {
        conn_run!(conn, |c| sqlx::query(
            "UPDATE stock SET on_hand = on_hand + $1, updated_at = $2 \
             WHERE location = $3 AND sku = $4 AND on_hand - held + $1 >= 0"
        )
        .bind(delta)
        .bind(now)
        .bind(location)
        .bind(sku)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected() == 1))
    }
}

/// The counters of a stock row and whether `stock.low` was sent for the current crossing.
#[derive(sqlx::FromRow)]
pub struct StockRow {
    pub on_hand: i64,
    pub held: i64,
    pub low_threshold: i64,
    pub low_alerted: bool,
}

pub async fn stock_row(conn: Conn<'_>, location: &str, sku: &str) -> Result<Option<StockRow>> {
    conn_run!(conn, |c| {
        sqlx::query_as(
        "SELECT on_hand, held, low_threshold, low_alerted FROM stock WHERE location = $1 AND sku = $2"
    )
    .bind(location)
    .bind(sku)
    .fetch_optional(&mut *c)
    .await
    })
}

pub async fn set_low_alerted(conn: Conn<'_>, location: &str, sku: &str, low: bool) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE stock SET low_alerted = $1 WHERE location = $2 AND sku = $3"
    )
    .bind(low)
    .bind(location)
    .bind(sku)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// Sets the low-stock threshold (creating an empty row).
pub async fn set_threshold(
    conn: Conn<'_>,
    location: &str,
    sku: &str,
    threshold: i64,
    now: i64,
) -> Result<()> {
    conn_run!(conn, |c| {
        sqlx::query(
        "INSERT INTO stock (location, sku, on_hand, held, low_threshold, updated_at) \
         VALUES ($1, $2, 0, 0, $3, $4) ON CONFLICT (location, sku) DO UPDATE SET low_threshold = $3"
    )
    .bind(location)
    .bind(sku)
    .bind(threshold)
    .bind(now)
    .execute(&mut *c)
    .await.map(|_| ())
    })
}

pub async fn level(conn: Conn<'_>, location: &str, sku: &str) -> Result<Option<StockLevel>> {
    let row: Option<LevelRow> = conn_run!(conn, |c| sqlx::query_as(
        "SELECT location, sku, on_hand, held, on_hand - held AS available, low_threshold, \
         (low_threshold > 0 AND on_hand - held <= low_threshold) AS low FROM stock \
         WHERE location = $1 AND sku = $2"
    )
    .bind(location)
    .bind(sku)
    .fetch_optional(&mut *c)
    .await)?;
    Ok(row.map(StockLevel::from))
}

/// Stock levels, filtered, by location and SKU (at most 1000 rows).
pub async fn levels(
    db: &Db,
    location: Option<&str>,
    sku: Option<&str>,
    low_only: bool,
    limit: i64,
) -> Result<Vec<StockLevel>> {
    let mut q = SqlBuilder::new(
        "SELECT location, sku, on_hand, held, on_hand - held AS available, low_threshold, \
         (low_threshold > 0 AND on_hand - held <= low_threshold) AS low FROM stock WHERE 1 = 1",
    );
    if let Some(l) = location {
        q.push(" AND location = ").bind(Param::Text(l.to_string()));
    }
    if let Some(s) = sku {
        q.push(" AND sku = ").bind(Param::Text(s.to_string()));
    }
    if low_only {
        q.push(" AND low_threshold > 0 AND on_hand - held <= low_threshold");
    }
    q.push(" ORDER BY location, sku LIMIT ")
        .bind(Param::I64(limit.clamp(1, 1000)));
    let rows: Vec<LevelRow> = q.fetch_all(db).await?;
    Ok(rows.into_iter().map(StockLevel::from).collect())
}

/// (location, SKU, available) of every stock row.
pub async fn all_available(db: &Db) -> Result<Vec<(String, String, i64)>> {
    db_run!(db, |p| sqlx::query_as(
        "SELECT location, sku, on_hand - held FROM stock"
    )
    .fetch_all(p)
    .await)
}

/// Every SKU that has a stock row, sorted.
pub async fn stocked_skus(db: &Db) -> Result<Vec<String>> {
    db_run!(db, |p| sqlx::query_scalar(
        "SELECT DISTINCT sku FROM stock ORDER BY sku"
    )
    .fetch_all(p)
    .await)
}

#[derive(sqlx::FromRow)]
struct CountersRow {
    location: String,
    sku: String,
    on_hand: i64,
    held: i64,
    ledger_on_hand: i64,
    ledger_held: i64,
    active_held: i64,
}

/// Every stock row with its rebuild from the ledger and from the active holds.
pub async fn counters(db: &Db) -> Result<Vec<Counters>> {
    let rows: Vec<CountersRow> = db_run!(db, |p| {
        sqlx::query_as(
            "SELECT s.location, s.sku, s.on_hand, s.held, \
               CAST(COALESCE((SELECT SUM(m.on_hand_delta) FROM movements m \
                 WHERE m.location = s.location AND m.sku = s.sku), 0) AS BIGINT) AS ledger_on_hand, \
               CAST(COALESCE((SELECT SUM(m.held_delta) FROM movements m \
                 WHERE m.location = s.location AND m.sku = s.sku), 0) AS BIGINT) AS ledger_held, \
               CAST(COALESCE((SELECT SUM(l.quantity) FROM hold_lines l JOIN holds h ON h.id = l.hold_id \
                 WHERE h.state = 'active' AND h.location = s.location AND l.sku = s.sku), 0) AS BIGINT) AS active_held \
             FROM stock s ORDER BY s.location, s.sku",
        )
        .fetch_all(p)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|r| Counters {
            location: r.location,
            sku: r.sku,
            on_hand: r.on_hand,
            held: r.held,
            ledger_on_hand: r.ledger_on_hand,
            ledger_held: r.ledger_held,
            active_held: r.active_held,
        })
        .collect())
}
