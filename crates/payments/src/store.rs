//! Payments persistence: one SQL text per query, run on SQLite or PostgreSQL. Times are
//! milliseconds since the epoch, passed from Rust.

use crate::domain::{AuthorizeRequest, Payment, PaymentStatus};
use crate::provider::Failure;
use chrono::{DateTime, TimeZone, Utc};
use kernel::{Currency, Money, PaymentId};
use platform::conn_run;
use platform::db::{Conn, Db};
use uuid::Uuid;

/// A payment with what only the service needs: the failure reason and the row version.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub payment: Payment,
    pub failure: Option<Failure>,
    pub version: i64,
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: Uuid,
    order_ref: String,
    provider: String,
    provider_ref: Option<String>,
    amount: i64,
    currency: String,
    status: String,
    captured: i64,
    refunded: i64,
    last4: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

/// `SELECT <every column> FROM payments WHERE <cond>`, as one static string.
macro_rules! select_payment {
    ($cond:literal) => {
        concat!(
            "SELECT id, order_ref, provider, provider_ref, amount, currency, status, captured, \
             refunded, last4, failure_code, failure_message, version, created_at, updated_at \
             FROM payments WHERE ",
            $cond
        )
    };
}

fn corrupt(what: String) -> sqlx::Error {
    sqlx::Error::Decode(what.into())
}

pub fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl TryFrom<PaymentRow> for Record {
    type Error = sqlx::Error;
    fn try_from(r: PaymentRow) -> Result<Self, sqlx::Error> {
        let status = PaymentStatus::parse(&r.status)
            .ok_or_else(|| corrupt(format!("payment {}: status {}", r.id, r.status)))?;
        let failure = r.failure_code.map(|code| Failure {
            code,
            message: r.failure_message.unwrap_or_default(),
        });
        let currency =
            Currency::parse(&r.currency).map_err(|e| corrupt(format!("payment {}: {e}", r.id)))?;
        let money = |a| Money::new(a, currency);
        Ok(Record {
            payment: Payment {
                id: PaymentId::from_uuid(r.id),
                order_ref: r.order_ref,
                provider: r.provider,
                provider_ref: r.provider_ref,
                currency,
                amount: money(r.amount),
                status,
                captured: money(r.captured),
                refunded: money(r.refunded),
                last4: r.last4,
                created_at: time(r.created_at),
                updated_at: time(r.updated_at),
            },
            failure,
            version: r.version,
        })
    }
}

pub async fn load(conn: Conn<'_>, id: PaymentId) -> Result<Option<Record>, sqlx::Error> {
    let row: Option<PaymentRow> = conn_run!(conn, |c| sqlx::query_as(select_payment!("id = $1"))
        .bind(id.uuid())
        .fetch_optional(&mut *c)
        .await)?;
    row.map(Record::try_from).transpose()
}

pub async fn load_db(db: &Db, id: PaymentId) -> Result<Option<Record>, sqlx::Error> {
    let mut c = db.acquire().await?;
    load(c.conn(), id).await
}

pub async fn find_by_ref(
    conn: Conn<'_>,
    provider: &str,
    provider_ref: &str,
) -> Result<Option<Record>, sqlx::Error> {
    let row: Option<PaymentRow> = conn_run!(conn, |c| sqlx::query_as(select_payment!(
        "provider = $1 AND provider_ref = $2"
    ))
    .bind(provider)
    .bind(provider_ref)
    .fetch_optional(&mut *c)
    .await)?;
    row.map(Record::try_from).transpose()
}

/// Records a new attempt before the provider is asked; `false` when the id exists already.
pub async fn insert_pending(
    db: &Db,
    req: &AuthorizeRequest,
    provider: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    platform::db_run!(db, |p| sqlx::query(
        "INSERT INTO payments (id, order_ref, provider, provider_ref, amount, currency, status, \
         captured, refunded, last4, failure_code, failure_message, customer_email, version, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, NULL, $4, $5, 'pending', 0, 0, NULL, NULL, NULL, $6, 1, $7, $7) \
         ON CONFLICT (id) DO NOTHING"
    )
    .bind(req.payment_id.uuid())
    .bind(&req.order_ref)
    .bind(provider)
    .bind(req.amount.minor())
    .bind(req.amount.currency().code())
    .bind(req.customer_email.as_deref())
    .bind(now)
    .execute(p)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Writes `next` over the row if it is still at `version`; `false` when someone else changed
/// it meanwhile (read again and retry).
pub async fn update(
    conn: Conn<'_>,
    version: i64,
    next: &Record,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let p = &next.payment;
    conn_run!(conn, |c| sqlx::query(
        "UPDATE payments SET provider_ref = $1, status = $2, captured = $3, refunded = $4, \
         last4 = $5, failure_code = $6, failure_message = $7, version = version + 1, \
         updated_at = $8 WHERE id = $9 AND version = $10"
    )
    .bind(p.provider_ref.as_deref())
    .bind(p.status.as_str())
    .bind(p.captured.minor())
    .bind(p.refunded.minor())
    .bind(p.last4.as_deref())
    .bind(next.failure.as_ref().map(|f| f.code.as_str()))
    .bind(next.failure.as_ref().map(|f| f.message.as_str()))
    .bind(now)
    .bind(p.id.uuid())
    .bind(version)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Bumps the version only: serialises a decision taken on the row (a refund reservation).
pub async fn touch(
    conn: Conn<'_>,
    id: PaymentId,
    version: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE payments SET version = version + 1, updated_at = $1 WHERE id = $2 AND version = $3"
    )
    .bind(now)
    .bind(id.uuid())
    .bind(version)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Payments still pending since before `before` (for the recovery worker).
pub async fn pending_before(
    db: &Db,
    before: i64,
    limit: i64,
) -> Result<Vec<PaymentId>, sqlx::Error> {
    let ids: Vec<Uuid> = platform::db_run!(db, |p| sqlx::query_scalar(
        "SELECT id FROM payments WHERE status = 'pending' AND updated_at < $1 \
         ORDER BY updated_at, id LIMIT $2"
    )
    .bind(before)
    .bind(limit)
    .fetch_all(p)
    .await)?;
    Ok(ids.into_iter().map(PaymentId::from_uuid).collect())
}

// ---- refunds ------------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefundRow {
    pub idem_key: String,
    pub amount: i64,
    pub state: String,
}

pub async fn refunds_of(conn: Conn<'_>, id: PaymentId) -> Result<Vec<RefundRow>, sqlx::Error> {
    conn_run!(conn, |c| sqlx::query_as(
        "SELECT idem_key, amount, state FROM refunds WHERE payment_id = $1"
    )
    .bind(id.uuid())
    .fetch_all(&mut *c)
    .await)
}

pub async fn insert_refund(
    conn: Conn<'_>,
    id: PaymentId,
    key: &str,
    amount: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO refunds (payment_id, idem_key, amount, state, created_at, completed_at) \
         VALUES ($1, $2, $3, 'pending', $4, NULL)"
    )
    .bind(id.uuid())
    .bind(key)
    .bind(amount)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

pub async fn complete_refund(
    conn: Conn<'_>,
    id: PaymentId,
    key: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE refunds SET state = 'done', completed_at = $1 \
         WHERE payment_id = $2 AND idem_key = $3 AND state = 'pending'"
    )
    .bind(now)
    .bind(id.uuid())
    .bind(key)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// Forgets a refund the provider refused, so that its amount is available again.
pub async fn delete_pending_refund(db: &Db, id: PaymentId, key: &str) -> Result<(), sqlx::Error> {
    platform::db_run!(db, |p| sqlx::query(
        "DELETE FROM refunds WHERE payment_id = $1 AND idem_key = $2 AND state = 'pending'"
    )
    .bind(id.uuid())
    .bind(key)
    .execute(p)
    .await
    .map(|_| ()))
}

// ---- webhook events -----------------------------------------------------------------------

/// A verified provider event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: String,
    pub event_type: String,
    pub payload: String,
}

pub struct NewWebhook<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub event_type: &'a str,
    pub intent_ref: Option<&'a str>,
    pub payment_id: Option<PaymentId>,
    /// The event's object (JSON).
    pub payload: &'a str,
}

/// Records an event; `false` when its id was seen before (a replay).
pub async fn insert_webhook(
    conn: Conn<'_>,
    e: &NewWebhook<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO webhook_events (id, provider, event_type, intent_ref, payment_id, payload, \
         received_at, applied_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) \
         ON CONFLICT (id) DO NOTHING"
    )
    .bind(e.id)
    .bind(e.provider)
    .bind(e.event_type)
    .bind(e.intent_ref)
    .bind(e.payment_id.map(|i| i.uuid()))
    .bind(e.payload)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected() == 1))
}

pub async fn mark_webhook_applied(conn: Conn<'_>, id: &str, now: i64) -> Result<(), sqlx::Error> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE webhook_events SET applied_at = $1 WHERE id = $2 AND applied_at IS NULL"
    )
    .bind(now)
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// Events received before their payment was known, oldest first.
pub async fn unapplied_webhooks(
    db: &Db,
    intent_ref: Option<&str>,
    payment_id: PaymentId,
) -> Result<Vec<WebhookRow>, sqlx::Error> {
    platform::db_run!(db, |p| sqlx::query_as(
        "SELECT id, event_type, payload FROM webhook_events WHERE applied_at IS NULL \
         AND (payment_id = $1 OR intent_ref = $2) ORDER BY received_at, id"
    )
    .bind(payment_id.uuid())
    .bind(intent_ref)
    .fetch_all(p)
    .await)
}

/// Whether an event is recorded and applied (for tests and the operators).
pub async fn webhook_state(db: &Db, id: &str) -> Result<Option<Option<i64>>, sqlx::Error> {
    platform::db_run!(db, |p| sqlx::query_scalar(
        "SELECT applied_at FROM webhook_events WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await)
}
