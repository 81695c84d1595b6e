//! Stock per location and SKU, changed only through movements.
//!
//! Rules that keep I1 (no oversell) true on both backends:
//! - every change is one guarded statement (`… WHERE on_hand - held >= $q`) inside a write
//!   transaction, and every counter change writes its row in the `movements` ledger in the same
//!   transaction, so the counters can always be rebuilt from the ledger ([`Inventory::check`]);
//! - the lines of one hold are summed per SKU before any check (a cart with the same SKU twice
//!   needs the sum), and touched in SKU order so two holds never wait on each other in a cycle;
//! - the database refuses what the code must never do (`CHECK (held <= on_hand)`, `>= 0`).

use kernel::Clock;
use platform::bus::{self, Event, Relay, topic};
use platform::conn_run;
use platform::db::{Conn, Db, Tx};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use crate::SERVICE;

#[derive(Debug, thiserror::Error)]
pub enum InvError {
    #[error("unknown location `{0}`")]
    UnknownLocation(String),
    #[error("{0}")]
    Invalid(String),
    #[error("not enough stock")]
    OutOfStock(Vec<Shortage>),
    #[error("the hold {0} is no longer active")]
    HoldLost(Uuid),
    #[error("`{field}` is not a SKU: {}", error.message())]
    InvalidSku {
        field: String,
        error: kernel::sku::SkuError,
    },
    #[error("the catalogue has no SKU `{sku}`")]
    UnknownSku { field: String, sku: String },
    #[error("the catalogue cannot be asked: {0}")]
    CatalogUnavailable(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub use contracts::inventory::{HoldLine, Shortage};

/// Kinds of movement, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    Receipt,
    Sale,
    Return,
    Hold,
    Release,
    Adjustment,
    TransferOut,
    TransferIn,
}

impl MovementKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            MovementKind::Receipt => "receipt",
            MovementKind::Sale => "sale",
            MovementKind::Return => "return",
            MovementKind::Hold => "hold",
            MovementKind::Release => "release",
            MovementKind::Adjustment => "adjustment",
            MovementKind::TransferOut => "transfer_out",
            MovementKind::TransferIn => "transfer_in",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Location {
    pub code: String,
    pub name: String,
    /// `head_office`, `store` or `warehouse`.
    pub kind: String,
    /// Ships parcels (online orders are served from here).
    pub ships: bool,
    pub click_and_collect: bool,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StockLevel {
    pub location: String,
    pub sku: String,
    pub on_hand: i64,
    pub held: i64,
    pub available: i64,
    pub low_threshold: i64,
    /// Available stock is at or under a (non-zero) threshold, now: computed from the counters,
    /// so a new threshold or a checkout's hold shows at once.
    pub low: bool,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Movement {
    pub id: Uuid,
    pub location: String,
    pub sku: String,
    pub kind: String,
    pub on_hand_delta: i64,
    pub held_delta: i64,
    pub reference: String,
    pub actor: String,
    pub created_at: i64,
}

/// A counter that disagrees with its ledger or with the active holds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Mismatch {
    pub location: String,
    pub sku: String,
    pub what: String,
    pub counter: i64,
    pub expected: i64,
}

#[derive(Clone)]
pub struct Inventory {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// Wakes the outbox relay after a commit (when one runs in this process).
    pub relay: Option<Relay>,
    /// How long a checkout hold lasts.
    pub hold_ttl: Duration,
    /// The SKUs that exist (I10).
    pub skus: Arc<dyn crate::SkuCatalog>,
}

/// Largest quantity one movement may carry: keeps every sum far from overflow.
pub const MAX_QUANTITY: i64 = 1_000_000;

fn check_qty(q: i64) -> Result<(), InvError> {
    if q <= 0 || q > MAX_QUANTITY {
        return Err(InvError::Invalid(format!(
            "quantity must be between 1 and {MAX_QUANTITY}"
        )));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn ledger(
    conn: Conn<'_>,
    location: &str,
    sku: &str,
    kind: MovementKind,
    on_hand_delta: i64,
    held_delta: i64,
    reference: &str,
    actor: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
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

async fn location_exists(conn: Conn<'_>, code: &str) -> Result<bool, sqlx::Error> {
    conn_run!(conn, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM locations WHERE code = $1"
    )
    .bind(code)
    .fetch_one(&mut *c)
    .await
    .map(|n| n > 0))
}

async fn available(conn: Conn<'_>, location: &str, sku: &str) -> Result<i64, sqlx::Error> {
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
async fn take(
    conn: Conn<'_>,
    location: &str,
    sku: &str,
    q: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
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

/// Sums the lines per SKU (a cart may name one SKU twice) and sorts them by SKU.
pub fn sum_lines(lines: &[HoldLine]) -> Result<BTreeMap<String, i64>, InvError> {
    if lines.is_empty() {
        return Err(InvError::Invalid("a hold needs at least one line".into()));
    }
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for l in lines {
        check_qty(l.quantity)?;
        if l.sku.is_empty() || l.sku.len() > 64 {
            return Err(InvError::Invalid("a SKU has 1 to 64 characters".into()));
        }
        let e = out.entry(l.sku.clone()).or_insert(0);
        *e = e
            .checked_add(l.quantity)
            .filter(|v| *v <= MAX_QUANTITY)
            .ok_or_else(|| InvError::Invalid("quantity too large".into()))?;
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct HoldRow {
    location: String,
    state: String,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    sku: String,
    quantity: i64,
}

async fn hold_row(conn: Conn<'_>, id: Uuid) -> Result<Option<HoldRow>, sqlx::Error> {
    conn_run!(conn, |c| sqlx::query_as(
        "SELECT location, state FROM holds WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await)
}

async fn hold_lines(conn: Conn<'_>, id: Uuid) -> Result<Vec<LineRow>, sqlx::Error> {
    conn_run!(conn, |c| sqlx::query_as(
        "SELECT sku, quantity FROM hold_lines WHERE hold_id = $1 ORDER BY sku"
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await)
}

/// Moves a hold from `from` to `to`; false when it was not in `from`.
async fn set_hold_state(
    conn: Conn<'_>,
    id: Uuid,
    from: &str,
    to: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
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

/// Gives back the held units of an active hold (state → `to`), with its ledger rows.
async fn release_in(
    tx: &mut Tx,
    id: Uuid,
    to: &str,
    actor: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let Some(h) = hold_row(tx.conn(), id).await? else {
        return Ok(false);
    };
    if !set_hold_state(tx.conn(), id, "active", to, now).await? {
        return Ok(false);
    }
    for l in hold_lines(tx.conn(), id).await? {
        conn_run!(tx.conn(), |c| sqlx::query(
            "UPDATE stock SET held = held - $1, updated_at = $2 WHERE location = $3 AND sku = $4"
        )
        .bind(l.quantity)
        .bind(now)
        .bind(&h.location)
        .bind(&l.sku)
        .execute(&mut *c)
        .await
        .map(|_| ()))?;
        ledger(
            tx.conn(),
            &h.location,
            &l.sku,
            MovementKind::Release,
            0,
            -l.quantity,
            &id.to_string(),
            actor,
            now,
        )
        .await?;
    }
    Ok(true)
}

#[derive(sqlx::FromRow)]
struct StockRow {
    on_hand: i64,
    held: i64,
    low_threshold: i64,
    low_alerted: bool,
}

/// After `on_hand` changed: `stock.changed`, and `stock.low` once when available stock falls to
/// the threshold (re-armed when it rises above).
async fn after_change(tx: &mut Tx, location: &str, sku: &str, now: i64) -> Result<(), sqlx::Error> {
    let row: Option<StockRow> = conn_run!(tx.conn(), |c| {
        sqlx::query_as(
        "SELECT on_hand, held, low_threshold, low_alerted FROM stock WHERE location = $1 AND sku = $2"
    )
    .bind(location)
    .bind(sku)
    .fetch_optional(&mut *c)
    .await
    })?;
    let Some(r) = row else { return Ok(()) };
    let available = r.on_hand - r.held;
    let payload = serde_json::json!({
        "location": location, "sku": sku, "on_hand": r.on_hand, "held": r.held,
        "available": available,
    });
    bus::enqueue(
        tx.conn(),
        &Event::new(SERVICE, topic::STOCK_CHANGED, &payload, now),
    )
    .await?;
    let low = r.low_threshold > 0 && available <= r.low_threshold;
    if low != r.low_alerted {
        conn_run!(tx.conn(), |c| sqlx::query(
            "UPDATE stock SET low_alerted = $1 WHERE location = $2 AND sku = $3"
        )
        .bind(low)
        .bind(location)
        .bind(sku)
        .execute(&mut *c)
        .await
        .map(|_| ()))?;
        if low {
            let payload = serde_json::json!({
                "location": location, "sku": sku, "available": available,
                "threshold": r.low_threshold,
            });
            bus::enqueue(
                tx.conn(),
                &Event::new(SERVICE, topic::STOCK_LOW, &payload, now),
            )
            .await?;
        }
    }
    Ok(())
}

/// Adds `delta` to on_hand (creating the row), refusing to go below what is held or zero.
async fn change_on_hand(
    tx: &mut Tx,
    location: &str,
    sku: &str,
    delta: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    if delta >= 0 {
        conn_run!(tx.conn(), |c| {
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
        conn_run!(tx.conn(), |c| sqlx::query(
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

impl Inventory {
    fn now(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub fn wake(&self) {
        if let Some(r) = &self.relay {
            r.wake();
        }
    }

    pub async fn locations(&self) -> Result<Vec<Location>, InvError> {
        Ok(platform::db_run!(&self.db, |p| sqlx::query_as(
            "SELECT code, name, kind, ships, click_and_collect FROM locations ORDER BY kind, code"
        )
        .fetch_all(p)
        .await)?)
    }

    pub async fn location(&self, code: &str) -> Result<Option<Location>, InvError> {
        Ok(platform::db_run!(&self.db, |p| sqlx::query_as(
            "SELECT code, name, kind, ships, click_and_collect FROM locations WHERE code = $1"
        )
        .bind(code)
        .fetch_optional(p)
        .await)?)
    }

    /// Creates or renames a location.
    pub async fn upsert_location(&self, l: &Location) -> Result<(), InvError> {
        if !matches!(l.kind.as_str(), "head_office" | "store" | "warehouse") {
            return Err(InvError::Invalid(
                "kind is head_office, store or warehouse".into(),
            ));
        }
        if l.code.is_empty()
            || l.code.len() > 32
            || !l
                .code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(InvError::Invalid(
                "a location code has 1 to 32 characters among a-z, 0-9 and -".into(),
            ));
        }
        let now = self.now();
        platform::db_run!(&self.db, |p| sqlx::query(
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
        .map(|_| ()))?;
        Ok(())
    }

    /// Holds stock for a checkout: all lines or none. Idempotent on `hold_id`: holding again an
    /// active or committed hold succeeds without taking more.
    pub async fn hold(
        &self,
        hold_id: Uuid,
        location: &str,
        lines: &[HoldLine],
        ttl: Option<Duration>,
    ) -> Result<i64, InvError> {
        let wanted = sum_lines(lines)?;
        let now = self.now();
        let expires = now + ttl.unwrap_or(self.hold_ttl).as_millis() as i64;
        let mut tx = self.db.begin().await?;
        if let Some(h) = hold_row(tx.conn(), hold_id).await? {
            tx.rollback().await?;
            return match h.state.as_str() {
                "active" | "committed" => Ok(expires),
                _ => Err(InvError::HoldLost(hold_id)),
            };
        }
        let mut short = Vec::new();
        for (sku, q) in &wanted {
            if take(tx.conn(), location, sku, *q, now).await? {
                continue;
            }
            // Not enough: reclaim expired holds on this SKU here, then try once more.
            if self.reclaim_expired(&mut tx, location, sku, now).await? > 0
                && take(tx.conn(), location, sku, *q, now).await?
            {
                continue;
            }
            short.push(Shortage {
                sku: sku.clone(),
                requested: *q,
                available: available(tx.conn(), location, sku).await?.max(0),
            });
        }
        if !short.is_empty() {
            // an unknown location has no stock at all: say which it is
            if !location_exists(tx.conn(), location).await? {
                tx.rollback().await?;
                return Err(InvError::UnknownLocation(location.to_string()));
            }
            tx.rollback().await?;
            metrics::counter!("comptoir_stock_holds_refused_total").increment(1);
            return Err(InvError::OutOfStock(short));
        }
        conn_run!(tx.conn(), |c| sqlx::query(
            "INSERT INTO holds (id, location, state, created_at, expires_at, updated_at) \
             VALUES ($1, $2, 'active', $3, $4, $3)"
        )
        .bind(hold_id)
        .bind(location)
        .bind(now)
        .bind(expires)
        .execute(&mut *c)
        .await
        .map(|_| ()))?;
        let reference = hold_id.to_string();
        for (sku, q) in &wanted {
            conn_run!(tx.conn(), |c| sqlx::query(
                "INSERT INTO hold_lines (hold_id, sku, quantity) VALUES ($1, $2, $3)"
            )
            .bind(hold_id)
            .bind(sku)
            .bind(*q)
            .execute(&mut *c)
            .await
            .map(|_| ()))?;
            ledger(
                tx.conn(),
                location,
                sku,
                MovementKind::Hold,
                0,
                *q,
                &reference,
                "checkout",
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(expires)
    }

    /// Releases the expired active holds that name `sku` at `location` (lazy reclaim).
    async fn reclaim_expired(
        &self,
        tx: &mut Tx,
        location: &str,
        sku: &str,
        now: i64,
    ) -> Result<u64, sqlx::Error> {
        let ids: Vec<Uuid> = conn_run!(tx.conn(), |c| sqlx::query_scalar(
            "SELECT h.id FROM holds h JOIN hold_lines l ON l.hold_id = h.id \
             WHERE h.state = 'active' AND h.expires_at <= $1 AND h.location = $2 AND l.sku = $3 \
             ORDER BY h.id LIMIT 1000"
        )
        .bind(now)
        .bind(location)
        .bind(sku)
        .fetch_all(&mut *c)
        .await)?;
        let mut n = 0;
        for id in ids {
            if release_in(tx, id, "expired", "expiry", now).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Turns a hold into a sale: on_hand and held both drop. Idempotent; an expired or
    /// released hold is [`InvError::HoldLost`].
    pub async fn commit(&self, hold_id: Uuid) -> Result<(), InvError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let Some(h) = hold_row(tx.conn(), hold_id).await? else {
            tx.rollback().await?;
            return Err(InvError::HoldLost(hold_id));
        };
        match h.state.as_str() {
            "committed" => {
                tx.rollback().await?;
                return Ok(());
            }
            "active" => {}
            _ => {
                tx.rollback().await?;
                return Err(InvError::HoldLost(hold_id));
            }
        }
        if !set_hold_state(tx.conn(), hold_id, "active", "committed", now).await? {
            tx.rollback().await?;
            return Err(InvError::HoldLost(hold_id));
        }
        let reference = hold_id.to_string();
        for l in hold_lines(tx.conn(), hold_id).await? {
            conn_run!(tx.conn(), |c| sqlx::query(
                "UPDATE stock SET on_hand = on_hand - $1, held = held - $1, updated_at = $2 \
                 WHERE location = $3 AND sku = $4"
            )
            .bind(l.quantity)
            .bind(now)
            .bind(&h.location)
            .bind(&l.sku)
            .execute(&mut *c)
            .await
            .map(|_| ()))?;
            ledger(
                tx.conn(),
                &h.location,
                &l.sku,
                MovementKind::Sale,
                -l.quantity,
                -l.quantity,
                &reference,
                "checkout",
                now,
            )
            .await?;
            after_change(&mut tx, &h.location, &l.sku, now).await?;
        }
        tx.commit().await?;
        self.wake();
        Ok(())
    }

    /// Gives back an active hold. Idempotent; a hold that is not active is left as it is.
    pub async fn release(&self, hold_id: Uuid) -> Result<bool, InvError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let done = release_in(&mut tx, hold_id, "released", "checkout", now).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Undoes a committed sale (compensation, or a cancelled order): the units come back on
    /// hand. Idempotent.
    pub async fn restock(&self, hold_id: Uuid, actor: &str) -> Result<bool, InvError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let Some(h) = hold_row(tx.conn(), hold_id).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        if !set_hold_state(tx.conn(), hold_id, "committed", "returned", now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let reference = hold_id.to_string();
        for l in hold_lines(tx.conn(), hold_id).await? {
            change_on_hand(&mut tx, &h.location, &l.sku, l.quantity, now).await?;
            ledger(
                tx.conn(),
                &h.location,
                &l.sku,
                MovementKind::Return,
                l.quantity,
                0,
                &reference,
                actor,
                now,
            )
            .await?;
            after_change(&mut tx, &h.location, &l.sku, now).await?;
        }
        tx.commit().await?;
        self.wake();
        Ok(true)
    }

    /// Releases every expired hold; returns how many. Run by the sweeper.
    pub async fn sweep(&self) -> Result<u64, InvError> {
        let now = self.now();
        let ids: Vec<Uuid> = platform::db_run!(&self.db, |p| {
            sqlx::query_scalar(
            "SELECT id FROM holds WHERE state = 'active' AND expires_at <= $1 ORDER BY expires_at \
             LIMIT 500"
        )
        .bind(now)
        .fetch_all(p)
        .await
        })?;
        let mut n = 0;
        for chunk in ids.chunks(50) {
            let mut tx = self.db.begin().await?;
            for id in chunk {
                if release_in(&mut tx, *id, "expired", "expiry", now).await? {
                    n += 1;
                }
            }
            tx.commit().await?;
        }
        if n > 0 {
            metrics::counter!("comptoir_stock_holds_expired_total").increment(n);
        }
        Ok(n)
    }

    /// Runs [`Inventory::sweep`] every `every` until the task is dropped.
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if me.db.is_closed() {
                    return;
                }
                if let Err(e) = me.sweep().await {
                    tracing::warn!(error = %e, "hold sweeper");
                }
            }
        })
    }

    /// Receipt (positive), adjustment (either sign) at one location, with the ledger row.
    pub async fn record(
        &self,
        location: &str,
        sku: &str,
        kind: MovementKind,
        delta: i64,
        reason: &str,
        actor: &str,
    ) -> Result<StockLevel, InvError> {
        self.ensure_sku("sku", sku).await?;
        let mut tx = self.db.begin().await?;
        match self
            .record_in(&mut tx, location, sku, kind, delta, reason, actor)
            .await
        {
            Ok(l) => {
                tx.commit().await?;
                self.wake();
                Ok(l)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    /// [`Inventory::record`] inside the caller's transaction (the caller commits, then wakes
    /// the relay with [`Inventory::wake`]). The caller has checked the SKU with
    /// [`Inventory::ensure_sku`] before opening the transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_in(
        &self,
        tx: &mut Tx,
        location: &str,
        sku: &str,
        kind: MovementKind,
        delta: i64,
        reason: &str,
        actor: &str,
    ) -> Result<StockLevel, InvError> {
        match kind {
            MovementKind::Receipt => check_qty(delta)?,
            MovementKind::Adjustment => {
                if delta == 0 {
                    return Err(InvError::Invalid(
                        "an adjustment changes the quantity".into(),
                    ));
                }
                check_qty(delta.saturating_abs())?;
            }
            _ => {
                return Err(InvError::Invalid(
                    "only receipts and adjustments are recorded by hand".into(),
                ));
            }
        }
        crate::skus::check_shape("sku", sku)?;
        let now = self.now();
        if !location_exists(tx.conn(), location).await? {
            return Err(InvError::UnknownLocation(location.to_string()));
        }
        if !change_on_hand(tx, location, sku, delta, now).await? {
            let avail = available(tx.conn(), location, sku).await?;
            return Err(InvError::OutOfStock(vec![Shortage {
                sku: sku.to_string(),
                requested: -delta,
                available: avail.max(0),
            }]));
        }
        ledger(tx.conn(), location, sku, kind, delta, 0, reason, actor, now).await?;
        after_change(tx, location, sku, now).await?;
        let level = level_in(tx.conn(), location, sku).await?;
        level.ok_or_else(|| InvError::Invalid("stock row missing".into()))
    }

    /// Moves units between two locations in one transaction.
    pub async fn transfer(
        &self,
        from: &str,
        to: &str,
        sku: &str,
        quantity: i64,
        reason: &str,
        actor: &str,
    ) -> Result<(), InvError> {
        self.ensure_sku("sku", sku).await?;
        let mut tx = self.db.begin().await?;
        match self
            .transfer_in(&mut tx, from, to, sku, quantity, reason, actor)
            .await
        {
            Ok(()) => {
                tx.commit().await?;
                self.wake();
                Ok(())
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn transfer_in(
        &self,
        tx: &mut Tx,
        from: &str,
        to: &str,
        sku: &str,
        quantity: i64,
        reason: &str,
        actor: &str,
    ) -> Result<(), InvError> {
        check_qty(quantity)?;
        crate::skus::check_shape("sku", sku)?;
        if from == to {
            return Err(InvError::Invalid(
                "a transfer goes between two locations".into(),
            ));
        }
        let now = self.now();
        for l in [from, to] {
            if !location_exists(tx.conn(), l).await? {
                return Err(InvError::UnknownLocation(l.to_string()));
            }
        }
        if !change_on_hand(tx, from, sku, -quantity, now).await? {
            let avail = available(tx.conn(), from, sku).await?;
            return Err(InvError::OutOfStock(vec![Shortage {
                sku: sku.to_string(),
                requested: quantity,
                available: avail.max(0),
            }]));
        }
        change_on_hand(tx, to, sku, quantity, now).await?;
        ledger(
            tx.conn(),
            from,
            sku,
            MovementKind::TransferOut,
            -quantity,
            0,
            reason,
            actor,
            now,
        )
        .await?;
        ledger(
            tx.conn(),
            to,
            sku,
            MovementKind::TransferIn,
            quantity,
            0,
            reason,
            actor,
            now,
        )
        .await?;
        after_change(tx, from, sku, now).await?;
        after_change(tx, to, sku, now).await?;
        Ok(())
    }

    pub async fn set_threshold(
        &self,
        location: &str,
        sku: &str,
        threshold: i64,
    ) -> Result<(), InvError> {
        if !(0..=MAX_QUANTITY).contains(&threshold) {
            return Err(InvError::Invalid(
                "threshold must be between 0 and 1000000".into(),
            ));
        }
        self.ensure_sku("sku", sku).await?;
        let now = self.now();
        let mut tx = self.db.begin().await?;
        if !location_exists(tx.conn(), location).await? {
            tx.rollback().await?;
            return Err(InvError::UnknownLocation(location.to_string()));
        }
        conn_run!(tx.conn(), |c| {
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
        })?;
        tx.commit().await?;
        Ok(())
    }

    /// Stock levels, filtered.
    pub async fn levels(
        &self,
        location: Option<&str>,
        sku: Option<&str>,
        low_only: bool,
        limit: i64,
    ) -> Result<Vec<StockLevel>, InvError> {
        let mut q = platform::db::SqlBuilder::new(
            "SELECT location, sku, on_hand, held, on_hand - held AS available, low_threshold, \
             (low_threshold > 0 AND on_hand - held <= low_threshold) AS low FROM stock WHERE 1 = 1",
        );
        if let Some(l) = location {
            q.push(" AND location = ")
                .bind(platform::db::Param::Text(l.to_string()));
        }
        if let Some(s) = sku {
            q.push(" AND sku = ")
                .bind(platform::db::Param::Text(s.to_string()));
        }
        if low_only {
            q.push(" AND low_threshold > 0 AND on_hand - held <= low_threshold");
        }
        q.push(" ORDER BY location, sku LIMIT ")
            .bind(platform::db::Param::I64(limit.clamp(1, 1000)));
        Ok(q.fetch_all(&self.db).await?)
    }

    /// Units available of every SKU at every location, with no limit: what a read model (the
    /// storefront's stock per store) loads in one query.
    pub async fn all_available(&self) -> Result<Vec<(String, String, i64)>, InvError> {
        Ok(platform::db_run!(&self.db, |p| sqlx::query_as(
            "SELECT location, sku, on_hand - held FROM stock"
        )
        .fetch_all(p)
        .await)?)
    }

    /// Units available per location for some SKUs (the storefront's "3 left at Rennes").
    pub async fn availability(&self, skus: &[String]) -> Result<Vec<StockLevel>, InvError> {
        let mut out = Vec::new();
        for s in skus.iter().take(100) {
            out.extend(self.levels(None, Some(s), false, 100).await?);
        }
        Ok(out)
    }

    pub async fn movements(
        &self,
        location: Option<&str>,
        sku: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Movement>, InvError> {
        let mut q = platform::db::SqlBuilder::new(
            "SELECT id, location, sku, kind, on_hand_delta, held_delta, reference, actor, created_at \
             FROM movements WHERE 1 = 1",
        );
        if let Some(l) = location {
            q.push(" AND location = ")
                .bind(platform::db::Param::Text(l.to_string()));
        }
        if let Some(s) = sku {
            q.push(" AND sku = ")
                .bind(platform::db::Param::Text(s.to_string()));
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(platform::db::Param::I64(limit.clamp(1, 500)));
        Ok(q.fetch_all(&self.db).await?)
    }

    /// Rebuilds every counter from the ledger and the active holds and lists what disagrees
    /// (an empty list proves the counters). Also flags negative counters.
    pub async fn check(&self) -> Result<Vec<Mismatch>, InvError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            location: String,
            sku: String,
            on_hand: i64,
            held: i64,
            ledger_on_hand: i64,
            ledger_held: i64,
            active_held: i64,
        }
        let rows: Vec<Row> = platform::db_run!(&self.db, |p| {
            sqlx::query_as(
            "SELECT s.location, s.sku, s.on_hand, s.held, \
               CAST(COALESCE((SELECT SUM(m.on_hand_delta) FROM movements m \
                 WHERE m.location = s.location AND m.sku = s.sku), 0) AS BIGINT) AS ledger_on_hand, \
               CAST(COALESCE((SELECT SUM(m.held_delta) FROM movements m \
                 WHERE m.location = s.location AND m.sku = s.sku), 0) AS BIGINT) AS ledger_held, \
               CAST(COALESCE((SELECT SUM(l.quantity) FROM hold_lines l JOIN holds h ON h.id = l.hold_id \
                 WHERE h.state = 'active' AND h.location = s.location AND l.sku = s.sku), 0) AS BIGINT) AS active_held \
             FROM stock s ORDER BY s.location, s.sku"
        )
        .fetch_all(p)
        .await
        })?;
        let mut out = Vec::new();
        for r in rows {
            let mut push = |what: &str, counter: i64, expected: i64| {
                if counter != expected {
                    out.push(Mismatch {
                        location: r.location.clone(),
                        sku: r.sku.clone(),
                        what: what.to_string(),
                        counter,
                        expected,
                    });
                }
            };
            push("on_hand vs ledger", r.on_hand, r.ledger_on_hand);
            push("held vs ledger", r.held, r.ledger_held);
            push("held vs active holds", r.held, r.active_held);
            if r.on_hand < 0 || r.held < 0 || r.held > r.on_hand {
                out.push(Mismatch {
                    location: r.location.clone(),
                    sku: r.sku.clone(),
                    what: "0 <= held <= on_hand".into(),
                    counter: r.held,
                    expected: r.on_hand,
                });
            }
        }
        Ok(out)
    }

    /// Σ of `sale` minus `return` movements for a SKU at a location (units sold).
    pub async fn sold(&self, location: &str, sku: &str) -> Result<i64, InvError> {
        Ok(platform::db_run!(&self.db, |p| {
            sqlx::query_scalar::<_, i64>(
                "SELECT CAST(COALESCE(-SUM(on_hand_delta), 0) AS BIGINT) FROM movements \
             WHERE location = $1 AND sku = $2 AND kind IN ('sale', 'return')",
            )
            .bind(location)
            .bind(sku)
            .fetch_one(p)
            .await
        })?)
    }

    pub async fn level(&self, location: &str, sku: &str) -> Result<Option<StockLevel>, InvError> {
        let mut c = self.db.acquire().await?;
        Ok(level_in(c.conn(), location, sku).await?)
    }

    /// The state of a hold (`active`, `committed`, `released`, `expired`, `returned`).
    pub async fn hold_state(&self, hold_id: Uuid) -> Result<Option<String>, InvError> {
        let mut c = self.db.acquire().await?;
        Ok(hold_row(c.conn(), hold_id).await?.map(|h| h.state))
    }
}

async fn level_in(
    conn: Conn<'_>,
    location: &str,
    sku: &str,
) -> Result<Option<StockLevel>, sqlx::Error> {
    conn_run!(conn, |c| sqlx::query_as(
        "SELECT location, sku, on_hand, held, on_hand - held AS available, low_threshold, \
         (low_threshold > 0 AND on_hand - held <= low_threshold) AS low FROM stock \
         WHERE location = $1 AND sku = $2"
    )
    .bind(location)
    .bind(sku)
    .fetch_optional(&mut *c)
    .await)
}
