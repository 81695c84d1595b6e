//! SQL of the orders service, one text for SQLite and PostgreSQL.

use crate::domain::*;
use kernel::{CartId, Currency, Money, OrderId};
use platform::db::{Conn, Db, Tx};
use platform::{conn_run, db_run};
use uuid::Uuid;

type Result<T> = std::result::Result<T, sqlx::Error>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckoutRow {
    #[sqlx(try_from = "Uuid")]
    pub id: OrderId,
    pub request_hash: String,
    pub state: String,
    pub plan: String,
    pub error_code: Option<String>,
    pub error_detail: Option<String>,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub attempts: i32,
    pub locked_until: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const CHECKOUT_COLS: &str = "id, request_hash, state, plan, error_code, error_detail, \
    response_status, response_body, attempts, locked_until, created_at, updated_at";

pub async fn checkout_by_key(db: &Db, scope: &str, key: &str) -> Result<Option<CheckoutRow>> {
    let sql = format!("SELECT {CHECKOUT_COLS} FROM checkouts WHERE scope = $1 AND idem_key = $2");
    db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope)
        .bind(key)
        .fetch_optional(p)
        .await)
}

/// The checkout that holds a cart (I9): running, or ended with an order. `None` when the cart is
/// free (never checked out, or every attempt ended without an order).
pub async fn checkout_holding_cart(db: &Db, cart_id: CartId) -> Result<Option<CheckoutRow>> {
    let sql = format!(
        "SELECT {CHECKOUT_COLS} FROM checkouts WHERE cart_id = $1 \
         AND state NOT IN ('compensated', 'failed')"
    );
    db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(cart_id.uuid())
        .fetch_optional(p)
        .await)
}

pub async fn checkout(db: &Db, id: OrderId) -> Result<Option<CheckoutRow>> {
    let sql = format!("SELECT {CHECKOUT_COLS} FROM checkouts WHERE id = $1");
    db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id.uuid())
        .fetch_optional(p)
        .await)
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_checkout(
    tx: &mut Tx,
    id: OrderId,
    scope: &str,
    key: &str,
    request_hash: &str,
    cart_id: CartId,
    plan: &str,
    locked_until: i64,
    now: i64,
) -> Result<()> {
    conn_run!(tx.conn(), |c| {
        sqlx::query(
        "INSERT INTO checkouts (id, scope, idem_key, request_hash, cart_id, state, plan, attempts, \
         locked_until, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'started', $6, 0, $7, $8, $8)"
    )
    .bind(id.uuid())
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(cart_id.uuid())
    .bind(plan)
    .bind(locked_until)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ())
    })
}

/// Guarded state change: true when the saga was in `from`.
pub async fn advance(
    tx: &mut Tx,
    id: OrderId,
    from: SagaState,
    to: SagaState,
    now: i64,
    locked_until: i64,
) -> Result<bool> {
    conn_run!(tx.conn(), |c| sqlx::query(
        "UPDATE checkouts SET state = $1, updated_at = $2, locked_until = $3 \
         WHERE id = $4 AND state = $5"
    )
    .bind(to.as_str())
    .bind(now)
    .bind(locked_until)
    .bind(id.uuid())
    .bind(from.as_str())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected() == 1))
}

pub async fn set_error(tx: &mut Tx, id: OrderId, code: &str, detail: &str) -> Result<()> {
    conn_run!(tx.conn(), |c| sqlx::query(
        "UPDATE checkouts SET error_code = $1, error_detail = $2 WHERE id = $3"
    )
    .bind(code)
    .bind(detail)
    .bind(id.uuid())
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

pub async fn set_response(tx: &mut Tx, id: OrderId, status: u16, body: &str) -> Result<()> {
    conn_run!(tx.conn(), |c| sqlx::query(
        "UPDATE checkouts SET response_status = $1, response_body = $2 WHERE id = $3"
    )
    .bind(i32::from(status))
    .bind(body)
    .bind(id.uuid())
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

pub async fn bump_attempts(tx: &mut Tx, id: OrderId, locked_until: i64, now: i64) -> Result<()> {
    conn_run!(tx.conn(), |c| {
        sqlx::query(
        "UPDATE checkouts SET attempts = attempts + 1, locked_until = $1, updated_at = $2 WHERE id = $3"
    )
    .bind(locked_until)
    .bind(now)
    .bind(id.uuid())
    .execute(&mut *c)
    .await
    .map(|_| ())
    })
}

pub async fn log_step(
    tx: &mut Tx,
    id: OrderId,
    step: &str,
    outcome: &str,
    detail: &str,
    now: i64,
) -> Result<()> {
    conn_run!(tx.conn(), |c| sqlx::query(
        "INSERT INTO saga_steps (saga_id, seq, step, outcome, detail, at) VALUES ($1, \
         (SELECT COALESCE(MAX(seq), 0) + 1 FROM saga_steps WHERE saga_id = $1), $2, $3, $4, $5)"
    )
    .bind(id.uuid())
    .bind(step)
    .bind(outcome)
    .bind(detail.chars().take(1000).collect::<String>())
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

// One logged step of a saga (`saga_steps`); no doc comment: it would become the schema's
// description on the wire.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SagaStep {
    pub seq: i32,
    pub step: String,
    /// `done`, `failed`, `retry` or `compensated`.
    pub outcome: String,
    pub detail: String,
    pub at: i64,
}

pub async fn steps(db: &Db, id: OrderId) -> Result<Vec<SagaStep>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        seq: i32,
        step: String,
        outcome: String,
        detail: String,
        at: i64,
    }
    let rows: Vec<Row> = db_run!(db, |p| sqlx::query_as(
        "SELECT seq, step, outcome, detail, at FROM saga_steps WHERE saga_id = $1 ORDER BY seq"
    )
    .bind(id.uuid())
    .fetch_all(p)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|r| SagaStep {
            seq: r.seq,
            step: r.step,
            outcome: r.outcome,
            detail: r.detail,
            at: r.at,
        })
        .collect())
}

/// Unfinished sagas whose lease ran out, oldest first.
pub async fn due_checkouts(db: &Db, now: i64, limit: i64) -> Result<Vec<(OrderId, i64)>> {
    let rows: Vec<(Uuid, i64)> = db_run!(db, |p| {
        sqlx::query_as(
        "SELECT id, locked_until FROM checkouts WHERE state NOT IN ('completed', 'compensated', 'failed') \
         AND locked_until <= $1 ORDER BY locked_until LIMIT $2"
    )
    .bind(now)
    .bind(limit)
    .fetch_all(p)
    .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, until)| (OrderId::from_uuid(id), until))
        .collect())
}

/// How many sagas are not finished, and when the oldest of them started (the `checkouts_open`
/// index: the open states are listed rather than the terminal ones excluded).
pub async fn sagas_in_flight(db: &Db) -> Result<(i64, Option<i64>)> {
    db_run!(db, |p| sqlx::query_as(IN_FLIGHT_SQL).fetch_one(p).await)
}

pub(crate) const IN_FLIGHT_SQL: &str = "SELECT COUNT(*), MIN(created_at) FROM checkouts WHERE \
     state IN ('started', 'stock_held', 'awaiting_authorization', 'payment_authorized', \
     'order_confirmed', 'stock_committed', 'compensating')";

/// Takes a saga's lease if nobody took it since it was read.
pub async fn claim(db: &Db, id: OrderId, seen: i64, until: i64) -> Result<bool> {
    db_run!(db, |p| sqlx::query(
        "UPDATE checkouts SET locked_until = $1 WHERE id = $2 AND locked_until = $3"
    )
    .bind(until)
    .bind(id.uuid())
    .bind(seen)
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Sagas by state (for the admin view and the invariant checker).
pub async fn checkouts_in(db: &Db, states: &[&str], limit: i64) -> Result<Vec<CheckoutRow>> {
    let mut out = Vec::new();
    for s in states {
        let sql = format!(
            "SELECT {CHECKOUT_COLS} FROM checkouts WHERE state = $1 ORDER BY created_at DESC LIMIT $2"
        );
        let rows: Vec<CheckoutRow> = db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(*s)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        out.extend(rows);
    }
    Ok(out)
}

// ---- orders -----------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    number: String,
    customer: Option<String>,
    email: String,
    status: String,
    fulfilment: String,
    location: String,
    address: Option<String>,
    currency: String,
    subtotal: i64,
    shipping: i64,
    total: i64,
    refunded: i64,
    lines: String,
    created_at: i64,
    updated_at: i64,
}

const ORDER_COLS: &str = "id, number, customer, email, status, fulfilment, location, address, \
    currency, subtotal, shipping, total, refunded, lines, created_at, updated_at";

fn corrupt(what: String) -> sqlx::Error {
    sqlx::Error::Decode(what.into())
}

impl TryFrom<OrderRow> for Order {
    type Error = sqlx::Error;
    fn try_from(r: OrderRow) -> Result<Order> {
        let currency =
            Currency::parse(&r.currency).map_err(|e| corrupt(format!("order {}: {e}", r.id)))?;
        let status = OrderStatus::parse(&r.status)
            .ok_or_else(|| corrupt(format!("order {}: status {}", r.id, r.status)))?;
        let lines = lines_from_json(&r.lines, currency)
            .map_err(|e| corrupt(format!("order {}: lines: {e}", r.id)))?;
        let address = r
            .address
            .map(|a| serde_json::from_str(&a))
            .transpose()
            .map_err(|e| corrupt(format!("order {}: address: {e}", r.id)))?;
        let money = |a| Money::new(a, currency);
        Ok(Order {
            id: OrderId::from_uuid(r.id),
            number: r.number,
            customer: r.customer,
            email: r.email,
            status,
            fulfilment: r.fulfilment,
            location: r.location,
            address,
            currency,
            subtotal: money(r.subtotal),
            shipping: money(r.shipping),
            total: money(r.total),
            refunded: money(r.refunded),
            lines,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub async fn order(conn: Conn<'_>, id: OrderId) -> Result<Option<Order>> {
    let sql = format!("SELECT {ORDER_COLS} FROM orders WHERE id = $1");
    let row: Option<OrderRow> = conn_run!(conn, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id.uuid())
        .fetch_optional(&mut *c)
        .await)?;
    row.map(Order::try_from).transpose()
}

pub async fn get_order(db: &Db, id: OrderId) -> Result<Option<Order>> {
    let mut c = db.acquire().await?;
    order(c.conn(), id).await
}

pub async fn insert_order(tx: &mut Tx, o: &Order) -> Result<()> {
    let address = o
        .address
        .as_ref()
        .and_then(|a| serde_json::to_string(a).ok());
    let lines = serde_json::to_string(&o.lines).unwrap_or_else(|_| "[]".into());
    conn_run!(tx.conn(), |c| sqlx::query(
        "INSERT INTO orders (id, number, customer, email, status, fulfilment, location, address, \
         currency, subtotal, shipping, total, refunded, lines, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)"
    )
    .bind(o.id.uuid())
    .bind(&o.number)
    .bind(&o.customer)
    .bind(&o.email)
    .bind(o.status.as_str())
    .bind(&o.fulfilment)
    .bind(&o.location)
    .bind(address)
    .bind(o.currency.code())
    .bind(o.subtotal.minor())
    .bind(o.shipping.minor())
    .bind(o.total.minor())
    .bind(o.refunded.minor())
    .bind(lines)
    .bind(o.created_at)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// Appends to an order's history.
pub async fn history(
    tx: &mut Tx,
    id: OrderId,
    from: Option<OrderStatus>,
    to: OrderStatus,
    actor: &str,
    note: &str,
    now: i64,
) -> Result<()> {
    conn_run!(tx.conn(), |c| {
        sqlx::query(
        "INSERT INTO order_history (order_id, seq, from_status, to_status, actor, note, at) VALUES \
         ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM order_history WHERE order_id = $1), $2, $3, $4, $5, $6)"
    )
    .bind(id.uuid())
    .bind(from.map(|f| f.as_str()))
    .bind(to.as_str())
    .bind(actor)
    .bind(note.chars().take(500).collect::<String>())
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ())
    })
}

/// Moves an order along the state machine (guarded on its current status); false when the
/// transition is not allowed or the order was not in `from` any more.
pub async fn transition(
    tx: &mut Tx,
    id: OrderId,
    from: OrderStatus,
    to: OrderStatus,
    actor: &str,
    note: &str,
    now: i64,
) -> Result<bool> {
    if !from.can_become(to) {
        return Ok(false);
    }
    let n = conn_run!(tx.conn(), |c| sqlx::query(
        "UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4"
    )
    .bind(to.as_str())
    .bind(now)
    .bind(id.uuid())
    .bind(from.as_str())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    if n == 1 {
        history(tx, id, Some(from), to, actor, note, now).await?;
    }
    Ok(n == 1)
}

/// Raises the refunded amount to `refunded` (never lowers it) and sets the status to match.
pub async fn set_refunded(
    tx: &mut Tx,
    id: OrderId,
    refunded: Money,
    actor: &str,
    now: i64,
) -> Result<bool> {
    let Some(o) = order(tx.conn(), id).await? else {
        return Ok(false);
    };
    if refunded.currency() != o.currency
        || refunded.minor() <= o.refunded.minor()
        || refunded.minor() > o.total.minor()
    {
        return Ok(false);
    }
    let to = if refunded.minor() == o.total.minor() {
        OrderStatus::Refunded
    } else {
        OrderStatus::PartiallyRefunded
    };
    let allowed = o.status.can_become(to) || (o.status == OrderStatus::Cancelled);
    conn_run!(tx.conn(), |c| sqlx::query(
        "UPDATE orders SET refunded = $1, updated_at = $2 WHERE id = $3 AND refunded < $1"
    )
    .bind(refunded.minor())
    .bind(now)
    .bind(id.uuid())
    .execute(&mut *c)
    .await
    .map(|_| ()))?;
    if allowed && o.status != OrderStatus::Cancelled {
        transition(
            tx,
            id,
            o.status,
            to,
            actor,
            &format!("refunded {refunded}"),
            now,
        )
        .await?;
    }
    Ok(true)
}

/// Cancels a paid order refunded in full (guarded on `paid`, or `refunded` when the refund's
/// event got there first); false when it was in neither.
pub async fn cancel_paid(
    tx: &mut Tx,
    id: OrderId,
    actor: &str,
    note: &str,
    now: i64,
) -> Result<bool> {
    // read, then update guarded on what was read; the refund consumer may move the order
    // from `paid` to `refunded` in between, so look again when the guard misses
    for _ in 0..3 {
        let Some(o) = order(tx.conn(), id).await? else {
            return Ok(false);
        };
        if !matches!(o.status, OrderStatus::Paid | OrderStatus::Refunded) {
            return Ok(false);
        }
        let n = conn_run!(tx.conn(), |c| sqlx::query(
            "UPDATE orders SET status = 'cancelled', refunded = total, updated_at = $1 \
             WHERE id = $2 AND status = $3"
        )
        .bind(now)
        .bind(id.uuid())
        .bind(o.status.as_str())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        if n == 1 {
            history(
                tx,
                id,
                Some(o.status),
                OrderStatus::Cancelled,
                actor,
                note,
                now,
            )
            .await?;
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Debug, Default)]
pub struct OrderFilter {
    pub customer: Option<String>,
    pub location: Option<String>,
    pub status: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

pub async fn list_orders(db: &Db, f: &OrderFilter) -> Result<Vec<Order>> {
    use platform::db::{Param, SqlBuilder};
    let mut q = SqlBuilder::new(
        "SELECT id, number, customer, email, status, fulfilment, location, address, currency, \
         subtotal, shipping, total, refunded, lines, created_at, updated_at FROM orders WHERE 1 = 1",
    );
    if let Some(c) = &f.customer {
        q.push(" AND customer = ").bind(Param::Text(c.clone()));
    }
    if let Some(l) = &f.location {
        q.push(" AND location = ").bind(Param::Text(l.clone()));
    }
    if let Some(s) = &f.status {
        q.push(" AND status = ").bind(Param::Text(s.clone()));
    }
    if let Some(b) = f.before {
        q.push(" AND created_at < ").bind(Param::I64(b));
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(Param::I64(f.limit.clamp(1, 200)));
    let rows: Vec<OrderRow> = q.fetch_all(db).await?;
    rows.into_iter().map(Order::try_from).collect()
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub seq: i32,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub note: String,
    pub at: i64,
}

pub async fn order_history(db: &Db, id: OrderId) -> Result<Vec<HistoryEntry>> {
    db_run!(db, |p| sqlx::query_as(
        "SELECT seq, from_status, to_status, actor, note, at FROM order_history \
         WHERE order_id = $1 ORDER BY seq"
    )
    .bind(id.uuid())
    .fetch_all(p)
    .await)
}

// ---- notifications (the mail sink) -----------------------------------------------------------

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Notification {
    pub id: Uuid,
    pub event_id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_notification(
    tx: &mut Tx,
    event_id: Uuid,
    kind: &str,
    recipient: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<()> {
    conn_run!(tx.conn(), |c| sqlx::query(
        "INSERT INTO notifications (id, event_id, kind, recipient, subject, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .bind(Uuid::now_v7())
    .bind(event_id)
    .bind(kind)
    .bind(recipient)
    .bind(subject)
    .bind(body)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

pub async fn notifications(db: &Db, limit: i64) -> Result<Vec<Notification>> {
    db_run!(db, |p| sqlx::query_as(
        "SELECT id, event_id, kind, recipient, subject, body, created_at FROM notifications \
         ORDER BY created_at DESC, id DESC LIMIT $1"
    )
    .bind(limit)
    .fetch_all(p)
    .await)
}
