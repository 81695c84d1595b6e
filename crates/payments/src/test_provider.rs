//! The built-in test provider: the embedded default, so that a shop runs end to end without a
//! PSP account. It behaves like a real PSP where it matters:
//!
//! - it accepts **only** its test card numbers (never real card data) and keeps only their
//!   last 4 digits:
//!
//!   | number | behaviour |
//!   |---|---|
//!   | `4242424242424242` | succeeds |
//!   | `4000000000000002` | declined at authorisation (`card_declined`) |
//!   | `4000000000009995` | declined at authorisation (`insufficient_funds`) |
//!   | `4000000000000341` | authorises, then the capture fails (`capture_failed`) |
//!
//! - it keeps its own books (`test_psp_charges`, in the payments database) and applies
//!   idempotency keys (`test_psp_requests`): the same key gets the same answer and never a
//!   second capture or refund. [`psp_ledger_totals`] sums those books for invariant checks;
//! - [`Faults`] make it lose answers after the effect happened (RELIABILITY.md F8), so that
//!   tests prove a retry finds the effect through the idempotency key.

use crate::domain::{AuthorizeRequest, PaymentMethod, PaymentStatus};
use crate::provider::{Failure, Provider, ProviderCharge, ProviderError, ProviderFuture};
use platform::conn_run;
use platform::db::{Db, Tx};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// What a test card does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    Succeeds,
    Declined(&'static str),
    FailsCapture,
    /// Asks for the shopper's confirmation (3-D Secure): pending until
    /// [`TestProvider::complete_action`].
    NeedsAction,
}

const TEST_CARDS: &[(&str, Card)] = &[
    ("4242424242424242", Card::Succeeds),
    ("4000000000000002", Card::Declined("card_declined")),
    ("4000000000009995", Card::Declined("insufficient_funds")),
    ("4000000000000341", Card::FailsCapture),
    ("4000002500003155", Card::NeedsAction),
];

fn card(number: &str) -> Option<Card> {
    TEST_CARDS
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, c)| *c)
}

fn card_by_last4(last4: &str) -> Option<Card> {
    TEST_CARDS
        .iter()
        .find(|(n, _)| n.ends_with(last4))
        .map(|(_, c)| *c)
}

/// Injected failures, shared by clones: arm them at any time.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<FaultCounters>,
}

#[derive(Debug, Default)]
struct FaultCounters {
    lost_authorizations: AtomicU32,
    lost_captures: AtomicU32,
    lost_refunds: AtomicU32,
    lost_cancels: AtomicU32,
}

fn take(c: &AtomicU32) -> bool {
    c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }
    /// The next `n` authorisations happen, but their answers are lost.
    pub fn lose_authorize_responses(&self, n: u32) -> &Self {
        self.inner.lost_authorizations.store(n, Ordering::SeqCst);
        self
    }
    /// The next `n` captures happen, but their answers are lost.
    pub fn lose_capture_responses(&self, n: u32) -> &Self {
        self.inner.lost_captures.store(n, Ordering::SeqCst);
        self
    }
    /// The next `n` refunds happen, but their answers are lost.
    pub fn lose_refund_responses(&self, n: u32) -> &Self {
        self.inner.lost_refunds.store(n, Ordering::SeqCst);
        self
    }
    /// The next `n` cancellations happen, but their answers are lost.
    pub fn lose_cancel_responses(&self, n: u32) -> &Self {
        self.inner.lost_cancels.store(n, Ordering::SeqCst);
        self
    }
}

fn lost() -> ProviderError {
    ProviderError::Unavailable("the test provider's answer was lost (injected fault)".into())
}

/// The built-in test PSP, with its books in `db` (the payments database).
#[derive(Clone)]
pub struct TestProvider {
    db: Db,
    faults: Faults,
    /// Simulated network time of each call (a real PSP answers in 0.3–2 s): 0 by default.
    latency: std::time::Duration,
}

#[derive(sqlx::FromRow)]
struct ChargeRow {
    id: String,
    amount: i64,
    last4: String,
    status: String,
    decline_code: Option<String>,
    captured: i64,
    refunded: i64,
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    charge_id: String,
    operation: String,
    amount: i64,
    error_code: Option<String>,
    error_message: Option<String>,
}

fn message(code: &str) -> String {
    match code {
        "card_declined" => "the card was declined",
        "insufficient_funds" => "the card has insufficient funds",
        "capture_failed" => "the capture was refused by the issuer",
        "authentication_failed" => "the cardholder did not confirm the payment",
        _ => "the operation was refused",
    }
    .to_string()
}

impl ChargeRow {
    fn snapshot(&self) -> ProviderCharge {
        let status = match self.status.as_str() {
            "authorized" => PaymentStatus::Authorized,
            "requires_action" => PaymentStatus::Pending,
            "captured" => PaymentStatus::Captured,
            "canceled" => PaymentStatus::Voided,
            _ => PaymentStatus::Failed,
        };
        ProviderCharge {
            provider_ref: self.id.clone(),
            status,
            amount: self.amount,
            captured: self.captured,
            refunded: self.refunded,
            last4: Some(self.last4.clone()),
            failure: self.decline_code.as_ref().map(|c| Failure {
                code: c.clone(),
                message: message(c),
            }),
        }
    }
}

type Result<T> = std::result::Result<T, ProviderError>;

fn db_err(e: sqlx::Error) -> ProviderError {
    ProviderError::Unavailable(format!("test provider storage: {e}"))
}

macro_rules! select_charge {
    ($cond:literal) => {
        concat!(
            "SELECT id, amount, last4, status, decline_code, captured, refunded \
             FROM test_psp_charges WHERE ",
            $cond
        )
    };
}

async fn charge_by_id(tx: &mut Tx, id: &str) -> Result<Option<ChargeRow>> {
    conn_run!(tx.conn(), |c| sqlx::query_as(select_charge!("id = $1"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await)
    .map_err(db_err)
}

async fn charge_by_key(tx: &mut Tx, key: &str) -> Result<Option<ChargeRow>> {
    conn_run!(tx.conn(), |c| sqlx::query_as(select_charge!(
        "auth_key = $1"
    ))
    .bind(key)
    .fetch_optional(&mut *c)
    .await)
    .map_err(db_err)
}

/// What an operation on an existing charge does, applied once per idempotency key.
#[derive(Clone, Copy)]
enum Op {
    Capture(i64),
    Cancel,
    Refund(i64),
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Capture(_) => "capture",
            Op::Cancel => "cancel",
            Op::Refund(_) => "refund",
        }
    }
    fn amount(&self) -> i64 {
        match self {
            Op::Capture(a) | Op::Refund(a) => *a,
            Op::Cancel => 0,
        }
    }
}

impl TestProvider {
    pub fn new(db: Db) -> Self {
        TestProvider {
            db,
            faults: Faults::default(),
            latency: std::time::Duration::ZERO,
        }
    }

    /// Makes every authorisation and capture take `latency` longer, like a PSP across the
    /// internet: the checkout must hold no database lock meanwhile (PERFORMANCE.md G12).
    pub fn with_latency(mut self, latency: std::time::Duration) -> Self {
        self.latency = latency;
        self
    }

    async fn network(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The shopper finishes (or fails) the confirmation the card `4000002500003155` asks for:
    /// what the provider's 3-D Secure page does. `payment_id` is our payment's id (the
    /// authorisation key). Returns whether a pending charge was found.
    pub async fn complete_action(
        db: &Db,
        payment_id: kernel::PaymentId,
        approved: bool,
    ) -> std::result::Result<bool, sqlx::Error> {
        let (status, code) = if approved {
            ("authorized", None)
        } else {
            ("declined", Some("authentication_failed"))
        };
        platform::db_run!(db, |p| sqlx::query(
            "UPDATE test_psp_charges SET status = $1, decline_code = $2, updated_at = $3 \
             WHERE auth_key = $4 AND status = 'requires_action'"
        )
        .bind(status)
        .bind(code)
        .bind(chrono::Utc::now().timestamp_millis())
        .bind(payment_id.to_string())
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1))
    }

    /// Whether this number is one of the test cards.
    pub fn is_test_card(number: &str) -> bool {
        card(number).is_some()
    }

    async fn authorize_in(&self, req: &AuthorizeRequest, key: &str) -> Result<ChargeRow> {
        let PaymentMethod::TestCard { number } = &req.method else {
            return Err(not_supported());
        };
        let behaviour = card(number).ok_or_else(not_a_test_card)?;
        let last4 = &number[number.len() - 4..];
        let now = chrono::Utc::now().timestamp_millis();
        let mut tx = self.db.begin().await.map_err(db_err)?;
        if let Some(existing) = charge_by_key(&mut tx, key).await? {
            tx.rollback().await.map_err(db_err)?;
            if existing.amount != req.amount.minor() {
                return Err(ProviderError::Invalid {
                    code: "idempotency_key_reused",
                    message: "this idempotency key was used for another amount".into(),
                });
            }
            return Ok(existing);
        }
        let (status, decline) = match behaviour {
            Card::Declined(code) => ("declined", Some(code)),
            Card::Succeeds | Card::FailsCapture => ("authorized", None),
            Card::NeedsAction => ("requires_action", None),
        };
        let id = format!("tch_{}", uuid::Uuid::now_v7().simple());
        conn_run!(tx.conn(), |c| sqlx::query(
            "INSERT INTO test_psp_charges (id, auth_key, amount, currency, last4, status, \
             decline_code, captured, refunded, captures, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 0, $8, $8) \
             ON CONFLICT (auth_key) DO NOTHING"
        )
        .bind(&id)
        .bind(key)
        .bind(req.amount.minor())
        .bind(req.amount.currency().code())
        .bind(last4)
        .bind(status)
        .bind(decline)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ()))
        .map_err(db_err)?;
        // on a concurrent first use of the key, the other request's charge is the one
        let row = charge_by_key(&mut tx, key)
            .await?
            .ok_or_else(|| ProviderError::Unavailable("test charge vanished".into()))?;
        tx.commit().await.map_err(db_err)?;
        Ok(row)
    }

    /// Applies `op` to a charge once per key; a repeated key answers like the first time.
    async fn operate(&self, charge_id: &str, op: Op, key: &str) -> Result<ChargeRow> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut tx = self.db.begin().await.map_err(db_err)?;
        // claim the key first: a concurrent twin waits here, then sees the first one's answer
        let claimed = conn_run!(tx.conn(), |c| {
            sqlx::query(
            "INSERT INTO test_psp_requests (idem_key, charge_id, operation, amount, error_code, \
             error_message, created_at) VALUES ($1, $2, $3, $4, NULL, NULL, $5) \
             ON CONFLICT (idem_key) DO NOTHING"
        )
        .bind(key)
        .bind(charge_id)
        .bind(op.name())
        .bind(op.amount())
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected() == 1)
        })
        .map_err(db_err)?;
        if !claimed {
            let prev: Option<RequestRow> = conn_run!(tx.conn(), |c| sqlx::query_as(
                "SELECT charge_id, operation, amount, error_code, error_message \
                 FROM test_psp_requests WHERE idem_key = $1"
            )
            .bind(key)
            .fetch_optional(&mut *c)
            .await)
            .map_err(db_err)?;
            let charge = charge_by_id(&mut tx, charge_id).await?;
            tx.rollback().await.map_err(db_err)?;
            let (Some(prev), Some(charge)) = (prev, charge) else {
                return Err(ProviderError::Unavailable("test request vanished".into()));
            };
            if prev.charge_id != charge_id
                || prev.operation != op.name()
                || prev.amount != op.amount()
            {
                return Err(ProviderError::Invalid {
                    code: "idempotency_key_reused",
                    message: "this idempotency key was used for another request".into(),
                });
            }
            return match prev.error_code {
                Some(code) if code == "capture_failed" => Err(ProviderError::Declined {
                    message: prev.error_message.unwrap_or_else(|| message(&code)),
                    code,
                    provider_ref: Some(charge_id.to_string()),
                }),
                Some(code) => Err(ProviderError::Invalid {
                    code: static_code(&code),
                    message: prev.error_message.unwrap_or_default(),
                }),
                None => Ok(charge),
            };
        }
        let Some(charge) = charge_by_id(&mut tx, charge_id).await? else {
            tx.rollback().await.map_err(db_err)?;
            return Err(ProviderError::Invalid {
                code: "unknown_charge",
                message: format!("no test charge {charge_id}"),
            });
        };
        let refused = self.apply(&mut tx, &charge, op, now).await?;
        if let Some((code, msg)) = &refused {
            conn_run!(tx.conn(), |c| sqlx::query(
                "UPDATE test_psp_requests SET error_code = $1, error_message = $2 WHERE idem_key = $3"
            )
            .bind(*code)
            .bind(msg)
            .bind(key)
            .execute(&mut *c)
            .await
            .map(|_| ()))
            .map_err(db_err)?;
        }
        let after = charge_by_id(&mut tx, charge_id).await?;
        tx.commit().await.map_err(db_err)?;
        match (refused, after) {
            (Some(("capture_failed", msg)), _) => Err(ProviderError::Declined {
                code: "capture_failed".into(),
                message: msg,
                provider_ref: Some(charge_id.to_string()),
            }),
            (Some((code, msg)), _) => Err(ProviderError::Invalid { code, message: msg }),
            (None, Some(after)) => Ok(after),
            (None, None) => Err(ProviderError::Unavailable("test charge vanished".into())),
        }
    }

    /// The effect of `op`; `Some((code, message))` when the PSP refuses it.
    async fn apply(
        &self,
        tx: &mut Tx,
        charge: &ChargeRow,
        op: Op,
        now: i64,
    ) -> Result<Option<(&'static str, String)>> {
        let st = charge.status.as_str();
        let refuse = |code: &'static str, m: &str| Ok(Some((code, m.to_string())));
        match op {
            Op::Capture(amount) => {
                if st == "captured" {
                    return refuse("already_captured", "the charge is already captured");
                }
                if st != "authorized" {
                    return refuse("charge_not_capturable", "the charge is not authorised");
                }
                if amount != charge.amount {
                    return refuse("invalid_amount", "only the full amount can be captured");
                }
                if card_by_last4(&charge.last4) == Some(Card::FailsCapture) {
                    return Ok(Some(("capture_failed", message("capture_failed"))));
                }
                conn_run!(tx.conn(), |c| sqlx::query(
                    "UPDATE test_psp_charges SET status = 'captured', captured = $1, \
                     captures = captures + 1, updated_at = $2 WHERE id = $3 AND status = 'authorized'"
                )
                .bind(amount)
                .bind(now)
                .bind(&charge.id)
                .execute(&mut *c)
                .await
                .map(|_| ()))
                .map_err(db_err)?;
            }
            Op::Cancel => {
                if st == "canceled" {
                    return Ok(None);
                }
                // like Stripe, an intent still waiting for the shopper can be cancelled too
                if st != "authorized" && st != "requires_action" {
                    return refuse(
                        "charge_not_cancelable",
                        "only an authorisation can be cancelled",
                    );
                }
                conn_run!(tx.conn(), |c| sqlx::query(
                    "UPDATE test_psp_charges SET status = 'canceled', updated_at = $1 \
                     WHERE id = $2 AND status IN ('authorized', 'requires_action')"
                )
                .bind(now)
                .bind(&charge.id)
                .execute(&mut *c)
                .await
                .map(|_| ()))
                .map_err(db_err)?;
            }
            Op::Refund(amount) => {
                if st != "captured" {
                    return refuse(
                        "charge_not_captured",
                        "only a captured charge can be refunded",
                    );
                }
                if amount <= 0 || charge.refunded + amount > charge.captured {
                    return refuse(
                        "amount_too_large",
                        "the refund exceeds what is left of the charge",
                    );
                }
                conn_run!(tx.conn(), |c| sqlx::query(
                    "UPDATE test_psp_charges SET refunded = refunded + $1, updated_at = $2 \
                     WHERE id = $3 AND refunded + $1 <= captured"
                )
                .bind(amount)
                .bind(now)
                .bind(&charge.id)
                .execute(&mut *c)
                .await
                .map(|_| ()))
                .map_err(db_err)?;
            }
        }
        Ok(None)
    }
}

/// Provider codes the test PSP stores, as the static codes of [`ProviderError::Invalid`].
fn static_code(code: &str) -> &'static str {
    [
        "already_captured",
        "charge_not_capturable",
        "invalid_amount",
        "charge_not_cancelable",
        "charge_not_captured",
        "amount_too_large",
    ]
    .into_iter()
    .find(|c| *c == code)
    .unwrap_or("refused")
}

fn not_a_test_card() -> ProviderError {
    ProviderError::Invalid {
        code: "not_a_test_card",
        message: "the test provider accepts only its test card numbers (4242424242424242, \
                  4000000000000002, 4000000000009995, 4000000000000341); never real card data"
            .into(),
    }
}

fn not_supported() -> ProviderError {
    ProviderError::Invalid {
        code: "method_not_supported",
        message: "the test provider takes `test_card` payment methods only".into(),
    }
}

impl Provider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }

    fn accepts(&self, method: &PaymentMethod) -> Result<()> {
        match method {
            PaymentMethod::TestCard { number } if card(number).is_some() => Ok(()),
            PaymentMethod::TestCard { .. } => Err(not_a_test_card()),
            PaymentMethod::Stripe { .. } => Err(not_supported()),
        }
    }

    fn authorize<'a>(
        &'a self,
        req: &'a AuthorizeRequest,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge> {
        Box::pin(async move {
            self.network().await;
            let row = self.authorize_in(req, idempotency_key).await?;
            if take(&self.faults.inner.lost_authorizations) {
                return Err(lost());
            }
            if row.status == "declined" {
                let code = row
                    .decline_code
                    .clone()
                    .unwrap_or_else(|| "card_declined".into());
                return Err(ProviderError::Declined {
                    message: message(&code),
                    code,
                    provider_ref: Some(row.id),
                });
            }
            Ok(row.snapshot())
        })
    }

    fn capture<'a>(
        &'a self,
        provider_ref: &'a str,
        amount: i64,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge> {
        Box::pin(async move {
            self.network().await;
            let r = self
                .operate(provider_ref, Op::Capture(amount), idempotency_key)
                .await;
            if r.is_ok() && take(&self.faults.inner.lost_captures) {
                return Err(lost());
            }
            r.map(|c| c.snapshot())
        })
    }

    fn cancel<'a>(
        &'a self,
        provider_ref: &'a str,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge> {
        Box::pin(async move {
            let r = self
                .operate(provider_ref, Op::Cancel, idempotency_key)
                .await;
            if r.is_ok() && take(&self.faults.inner.lost_cancels) {
                return Err(lost());
            }
            r.map(|c| c.snapshot())
        })
    }

    fn refund<'a>(
        &'a self,
        provider_ref: &'a str,
        amount: i64,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge> {
        Box::pin(async move {
            let r = self
                .operate(provider_ref, Op::Refund(amount), idempotency_key)
                .await;
            if r.is_ok() && take(&self.faults.inner.lost_refunds) {
                return Err(lost());
            }
            r.map(|c| c.snapshot())
        })
    }

    fn retrieve<'a>(
        &'a self,
        provider_ref: Option<&'a str>,
        authorize_key: &'a str,
    ) -> ProviderFuture<'a, Option<ProviderCharge>> {
        Box::pin(async move {
            let mut tx = self.db.begin().await.map_err(db_err)?;
            let row = match provider_ref {
                Some(r) => charge_by_id(&mut tx, r).await?,
                None => charge_by_key(&mut tx, authorize_key).await?,
            };
            tx.rollback().await.map_err(db_err)?;
            Ok(row.map(|r| r.snapshot()))
        })
    }
}

/// The test PSP's books, summed: what it captured and refunded, how many charges it holds, and
/// the most captures any one charge received (1 at most, or money was taken twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PspLedgerTotals {
    pub captured: i64,
    pub refunded: i64,
    pub charges: i64,
    pub max_captures_per_charge: i64,
}

/// Sums the test provider's books (for the invariant checker: Σ captured − Σ refunded must
/// equal what the orders say was paid).
pub async fn psp_ledger_totals(db: &Db) -> std::result::Result<PspLedgerTotals, sqlx::Error> {
    let rows: Vec<(i64, i64, i64)> = platform::db_run!(db, |p| sqlx::query_as(
        "SELECT captured, refunded, captures FROM test_psp_charges"
    )
    .fetch_all(p)
    .await)?;
    Ok(rows
        .into_iter()
        .fold(PspLedgerTotals::default(), |t, (c, r, n)| PspLedgerTotals {
            captured: t.captured + c,
            refunded: t.refunded + r,
            charges: t.charges + 1,
            max_captures_per_charge: t.max_captures_per_charge.max(n),
        }))
}
