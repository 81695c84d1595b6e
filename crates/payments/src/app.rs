//! The use cases: authorise, capture, void, refund, read, and reconcile with the provider.
//!
//! Every change to a payment goes through one path ([`Payments::change`]): read the row, merge
//! what we learnt ([`merge`]: status only moves forward, amounts only grow), write it back if
//! the row is still at the version read (optimistic concurrency, the same SQL on both engines),
//! and in the same transaction write a `payment.refunded` event for any growth of the refunded
//! total. Whoever learns of a refund first (our own refund call, a webhook, a poll) emits it,
//! once.

use crate::domain::*;
use crate::provider::{Failure, Provider, ProviderCharge, ProviderError};
use crate::store::{self, Record};
use kernel::Clock;
use kernel::{Money, PaymentId};
use platform::bus::{self, Event, Relay};
use platform::db::{Db, Tx};
use serde_json::json;
use std::sync::Arc;

/// How many times a change is retried when another writer changed the row meanwhile.
const MAX_ATTEMPTS: usize = 8;

/// How long an unanswered authorisation may be asked again with its key. PSPs keep keys for a
/// limited time (Stripe: 24 h); past it, asking again could authorise a second time, so the
/// attempt is closed as `attempt_expired` and the checkout starts a new payment.
const AUTHORIZE_RETRY_WINDOW_MS: i64 = 23 * 3600 * 1000;

/// Most payments [`Payments::holding_money`] lists in one call.
pub const MAX_HOLDING_LISTED: i64 = 1000;

/// The payments service.
#[derive(Clone)]
pub struct Payments {
    db: Db,
    provider: Arc<dyn Provider>,
    clock: Arc<dyn Clock>,
    relay: Option<Relay>,
}

/// What a provider (an answer, a webhook, a poll) told us about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub provider_ref: Option<String>,
    pub status: PaymentStatus,
    pub captured: i64,
    pub refunded: i64,
    pub last4: Option<String>,
    pub failure: Option<Failure>,
}

impl From<&ProviderCharge> for Observation {
    fn from(c: &ProviderCharge) -> Self {
        Observation {
            provider_ref: Some(c.provider_ref.clone()),
            status: c.status,
            captured: c.captured,
            refunded: c.refunded,
            last4: c.last4.clone(),
            failure: c.failure.clone(),
        }
    }
}

impl Observation {
    fn failed(provider_ref: Option<String>, code: String, message: String) -> Self {
        Observation {
            provider_ref,
            status: PaymentStatus::Failed,
            captured: 0,
            refunded: 0,
            last4: None,
            failure: Some(Failure { code, message }),
        }
    }
    fn voided() -> Self {
        Observation {
            provider_ref: None,
            status: PaymentStatus::Voided,
            captured: 0,
            refunded: 0,
            last4: None,
            failure: None,
        }
    }
}

/// The payment after learning `obs`: status only moves forward (rank order), captured and
/// refunded amounts only grow, the provider's id and the last 4 digits are set once. The
/// refunded states follow from the amounts. Idempotent and order-independent, so late,
/// duplicated and reordered news all end in the same state.
pub fn merge(cur: &Record, obs: &Observation) -> Record {
    use PaymentStatus::*;
    let mut next = cur.clone();
    let p = &mut next.payment;
    if p.provider_ref.is_none() {
        p.provider_ref.clone_from(&obs.provider_ref);
    }
    if p.last4.is_none() {
        p.last4.clone_from(&obs.last4);
    }
    p.captured = p.captured.with_minor(p.captured.minor().max(obs.captured));
    p.refunded = p.refunded.with_minor(p.refunded.minor().max(obs.refunded));
    let mut status = if obs.status.rank() > p.status.rank() {
        obs.status
    } else {
        p.status
    };
    if p.captured.minor() > 0 && !status.is_captured() {
        status = Captured;
    }
    if status.is_captured() && p.captured.is_zero() {
        // captured without an amount said: we only ever capture the whole authorisation
        p.captured = p.amount;
    }
    if status.is_captured() && p.refunded.minor() > 0 {
        let derived = if p.refunded.minor() >= p.captured.minor() {
            Refunded
        } else {
            PartiallyRefunded
        };
        if derived.rank() > status.rank() {
            status = derived;
        }
    }
    if status == Failed && p.status != Failed && obs.failure.is_some() {
        next.failure.clone_from(&obs.failure);
    }
    p.status = status;
    next
}

/// The authorisation's answer for a payment in this state.
fn outcome(rec: &Record) -> AuthOutcome {
    let p = &rec.payment;
    match p.status {
        PaymentStatus::Pending => AuthOutcome::Pending(p.clone()),
        PaymentStatus::Failed => {
            let f = rec.failure.clone().unwrap_or(Failure {
                code: "declined".into(),
                message: "the payment was declined".into(),
            });
            AuthOutcome::Declined {
                code: f.code,
                message: f.message,
            }
        }
        PaymentStatus::Voided => AuthOutcome::Declined {
            code: "voided".into(),
            message: "the authorisation was cancelled".into(),
        },
        _ => AuthOutcome::Authorized(p.clone()),
    }
}

fn validate(req: &AuthorizeRequest) -> Result<(), PaymentError> {
    if req.amount.minor() <= 0 || req.amount.minor() > kernel::MAX_AMOUNT_MINOR {
        return Err(PaymentError::invalid(
            "invalid_amount",
            format!(
                "the amount must be between 1 and {} minor units",
                kernel::MAX_AMOUNT_MINOR
            ),
        ));
    }
    let r = &req.order_ref;
    if r.is_empty() || r.chars().count() > 200 || r.chars().any(char::is_control) {
        return Err(PaymentError::invalid(
            "invalid_order_ref",
            "the order reference must be 1 to 200 printable characters",
        ));
    }
    if let Some(e) = &req.customer_email
        && (e.len() > 254 || !e.contains('@') || e.chars().any(char::is_control))
    {
        return Err(PaymentError::invalid(
            "invalid_email",
            "the customer e-mail is not an address",
        ));
    }
    Ok(())
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn unknown(id: PaymentId) -> PaymentError {
    PaymentError::invalid("unknown_payment", format!("payment {id} not found"))
}

/// Describes the metrics of payments and starts the series of `provider` at 0 (a process with
/// payments calls this once).
pub fn describe_metrics(provider: &'static str) {
    metrics::describe_counter!(
        "comptoir_payments_authorizations_total",
        "Answers of the payment provider to authorisations, by provider and status (authorized, pending, failed: declined)"
    );
    metrics::describe_counter!(
        "comptoir_payments_webhooks_total",
        "Provider webhooks received, by provider and result (applied, recorded, ignored, duplicate, invalid_signature)"
    );
    for status in ["authorized", "pending", "failed"] {
        metrics::counter!("comptoir_payments_authorizations_total",
            "provider" => provider, "status" => status)
        .increment(0);
    }
    // the Stripe webhook's route is served whichever provider takes the payments
    for result in [
        "applied",
        "recorded",
        "ignored",
        "duplicate",
        "invalid_signature",
    ] {
        metrics::counter!("comptoir_payments_webhooks_total",
            "provider" => "stripe", "result" => result)
        .increment(0);
    }
}

impl Payments {
    pub fn new(db: Db, provider: Arc<dyn Provider>, clock: Arc<dyn Clock>) -> Payments {
        Payments {
            db,
            provider,
            clock,
            relay: None,
        }
    }

    /// Wakes this outbox relay after committing events (optional: the relay polls anyway).
    pub fn with_relay(mut self, relay: Relay) -> Payments {
        self.relay = Some(relay);
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    async fn load(&self, id: PaymentId) -> Result<Option<Record>, PaymentError> {
        Ok(store::load_db(&self.db, id).await?)
    }

    fn check_provider(&self, p: &Payment) -> Result<(), PaymentError> {
        if p.provider != self.provider.name() {
            return Err(PaymentError::invalid(
                "provider_mismatch",
                format!(
                    "payment {} was made with the `{}` provider, this service uses `{}`",
                    p.id,
                    p.provider,
                    self.provider.name()
                ),
            ));
        }
        Ok(())
    }

    /// Idempotent on `payment_id`: a second call returns the stored outcome, or (when the first
    /// call's answer was lost) asks the provider again with the same idempotency key, so that
    /// there is never a second authorisation.
    pub async fn authorize(&self, req: &AuthorizeRequest) -> Result<AuthOutcome, PaymentError> {
        validate(req)?;
        self.provider.accepts(&req.method)?;
        let id = req.payment_id;
        // recorded before the provider is asked: a crash leaves a pending payment that a retry
        // or the recovery worker settles
        store::insert_pending(&self.db, req, self.provider.name(), self.now_ms()).await?;
        let rec = self.load(id).await?.ok_or_else(|| unknown(id))?;
        let p = &rec.payment;
        if p.amount != req.amount || p.order_ref != req.order_ref {
            return Err(PaymentError::invalid(
                "payment_id_reused",
                "this payment id was used for another amount, currency or order",
            ));
        }
        self.check_provider(p)?;
        if p.status != PaymentStatus::Pending {
            return Ok(outcome(&rec));
        }
        let rec = if p.provider_ref.is_some() {
            // the provider answered before: ask how it stands, never authorise again
            self.sync_record(rec).await?
        } else if self.now_ms() - p.created_at.timestamp_millis() > AUTHORIZE_RETRY_WINDOW_MS {
            let obs = Observation::failed(
                None,
                "attempt_expired".into(),
                "this attempt went unanswered for too long; start a new payment".into(),
            );
            self.change(id, |r| merge(r, &obs), None)
                .await?
                .ok_or_else(|| unknown(id))?
        } else {
            let key = id.to_string();
            let obs = match self.provider.authorize(req, &key).await {
                Ok(charge) => Observation::from(&charge),
                Err(ProviderError::Declined {
                    code,
                    message,
                    provider_ref,
                }) => Observation::failed(provider_ref, code, message),
                // a request the provider refuses (unknown payment method…) cannot succeed
                // either: recorded as a decline, so that a retry gets the same answer
                Err(ProviderError::Invalid { code, message }) => {
                    Observation::failed(None, code.to_string(), message)
                }
                Err(ProviderError::Unavailable(m)) => return Err(PaymentError::Provider(m)),
            };
            metrics::counter!("comptoir_payments_authorizations_total",
                "provider" => self.provider.name(), "status" => obs.status.as_str())
            .increment(1);
            self.change(id, |r| merge(r, &obs), None)
                .await?
                .ok_or_else(|| unknown(id))?
        };
        let rec = self.apply_pending_webhooks(rec).await?;
        Ok(outcome(&rec))
    }

    /// Captures the whole authorised amount, once: a retry after a lost answer finds the
    /// capture that happened (the provider key is `<payment_id>:capture`).
    pub async fn capture(&self, payment_id: PaymentId) -> Result<CaptureOutcome, PaymentError> {
        let mut rec = self
            .load(payment_id)
            .await?
            .ok_or_else(|| unknown(payment_id))?;
        self.check_provider(&rec.payment)?;
        if rec.payment.status == PaymentStatus::Pending {
            rec = self.sync_record(rec).await?;
        }
        let p = &rec.payment;
        match p.status {
            s if s.is_captured() => return Ok(CaptureOutcome::Captured(p.clone())),
            PaymentStatus::Authorized => {}
            PaymentStatus::Pending => {
                return Err(PaymentError::invalid(
                    "not_authorized",
                    "the payment is not authorised yet",
                ));
            }
            _ => {
                return Err(PaymentError::invalid(
                    "not_capturable",
                    format!("a {} payment cannot be captured", p.status.as_str()),
                ));
            }
        }
        let Some(pref) = p.provider_ref.clone() else {
            return Err(PaymentError::invalid(
                "not_authorized",
                "the provider's reference of the authorisation is unknown",
            ));
        };
        let key = format!("{payment_id}:capture");
        match self.provider.capture(&pref, p.amount.minor(), &key).await {
            Ok(charge) => {
                let obs = Observation::from(&charge);
                let rec = self
                    .change(payment_id, |r| merge(r, &obs), None)
                    .await?
                    .ok_or_else(|| unknown(payment_id))?;
                if rec.payment.status.is_captured() {
                    Ok(CaptureOutcome::Captured(rec.payment))
                } else {
                    Err(PaymentError::Provider(format!(
                        "the provider has not confirmed the capture yet ({})",
                        charge.status.as_str()
                    )))
                }
            }
            Err(ProviderError::Declined { code, message, .. }) => {
                let f = Failure {
                    code: code.clone(),
                    message: message.clone(),
                };
                self.change(
                    payment_id,
                    |r| {
                        let mut n = r.clone();
                        n.failure = Some(f.clone());
                        n
                    },
                    None,
                )
                .await?;
                Ok(CaptureOutcome::Failed { code, message })
            }
            Err(ProviderError::Invalid { code, message }) => {
                // the charge moved at the provider (captured or cancelled elsewhere): see how
                let rec = self.sync_record(rec).await?;
                if rec.payment.status.is_captured() {
                    Ok(CaptureOutcome::Captured(rec.payment))
                } else {
                    Err(PaymentError::Invalid { code, message })
                }
            }
            Err(ProviderError::Unavailable(m)) => Err(PaymentError::Provider(m)),
        }
    }

    /// Cancels an authorisation. `Ok` without effect when the payment is unknown, already
    /// voided or failed; `Invalid` (`already_captured`) once money was taken: refund instead.
    pub async fn void(&self, payment_id: PaymentId) -> Result<(), PaymentError> {
        let Some(mut rec) = self.load(payment_id).await? else {
            return Ok(());
        };
        self.check_provider(&rec.payment)?;
        if rec.payment.status == PaymentStatus::Pending && rec.payment.provider_ref.is_none() {
            // the authorisation's answer was lost: find the charge if the provider can
            rec = self.sync_record(rec).await?;
        }
        let done = |rec: &Record| -> Option<Result<(), PaymentError>> {
            match rec.payment.status {
                PaymentStatus::Voided | PaymentStatus::Failed => Some(Ok(())),
                s if s.is_captured() => Some(Err(PaymentError::invalid(
                    "already_captured",
                    "the payment is captured: refund it instead",
                ))),
                _ => None,
            }
        };
        if let Some(r) = done(&rec) {
            return r;
        }
        let Some(pref) = rec.payment.provider_ref.clone() else {
            // nothing known at the provider: mark it void so that a late retry of the
            // authorisation answers "voided" instead of asking again
            self.change(payment_id, |r| merge(r, &Observation::voided()), None)
                .await?;
            return Ok(());
        };
        match self
            .provider
            .cancel(&pref, &format!("{payment_id}:cancel"))
            .await
        {
            Ok(charge) => {
                let obs = Observation::from(&charge);
                let rec = self
                    .change(payment_id, |r| merge(r, &obs), None)
                    .await?
                    .ok_or_else(|| unknown(payment_id))?;
                done(&rec).unwrap_or(Ok(()))
            }
            Err(ProviderError::Unavailable(m)) => Err(PaymentError::Provider(m)),
            Err(e) => {
                let rec = self.sync_record(rec).await?;
                done(&rec).unwrap_or(Err(e.into()))
            }
        }
    }

    /// Refunds `amount` (≤ captured − refunded − refunds in flight); idempotent on `key` (the
    /// same key and amount answer the payment again without a second refund). The growth of
    /// the refunded total is announced as `payment.refunded` in the same transaction.
    pub async fn refund(
        &self,
        payment_id: PaymentId,
        amount: Money,
        key: &str,
    ) -> Result<Payment, PaymentError> {
        if !valid_key(key) {
            return Err(PaymentError::invalid(
                "invalid_refund_key",
                "the refund key must be 1 to 255 printable ASCII characters without spaces",
            ));
        }
        if amount.minor() <= 0 || amount.minor() > kernel::MAX_AMOUNT_MINOR {
            return Err(PaymentError::invalid(
                "invalid_amount",
                "the refund amount must be positive",
            ));
        }
        let rec = self
            .load(payment_id)
            .await?
            .ok_or_else(|| unknown(payment_id))?;
        self.check_provider(&rec.payment)?;
        if amount.currency() != rec.payment.currency {
            return Err(PaymentError::invalid(
                "currency_mismatch",
                format!(
                    "the payment is in {}; the refund is in {}",
                    rec.payment.currency,
                    amount.currency()
                ),
            ));
        }
        let amount = amount.minor();
        let mut reserved = false;
        for _ in 0..MAX_ATTEMPTS {
            match self.reserve_refund(payment_id, amount, key).await? {
                Reservation::Conflict => continue,
                Reservation::Done(p) => return Ok(p),
                Reservation::Go => {
                    reserved = true;
                    break;
                }
            }
        }
        if !reserved {
            return Err(PaymentError::Provider(
                "the payment is changing too often; retry".into(),
            ));
        }
        let rec = self
            .load(payment_id)
            .await?
            .ok_or_else(|| unknown(payment_id))?;
        let Some(pref) = rec.payment.provider_ref.clone() else {
            store::delete_pending_refund(&self.db, payment_id, key).await?;
            return Err(PaymentError::invalid(
                "not_captured",
                "the provider's reference of the payment is unknown",
            ));
        };
        let pkey = format!("{payment_id}:refund:{key}");
        match self.provider.refund(&pref, amount, &pkey).await {
            Ok(charge) => {
                let obs = Observation::from(&charge);
                let rec = self
                    .change(payment_id, |r| merge(r, &obs), Some(key))
                    .await?
                    .ok_or_else(|| unknown(payment_id))?;
                Ok(rec.payment)
            }
            Err(ProviderError::Unavailable(m)) => Err(PaymentError::Provider(m)),
            Err(ProviderError::Declined { code, message, .. }) => {
                store::delete_pending_refund(&self.db, payment_id, key).await?;
                Err(PaymentError::invalid(
                    "refund_refused",
                    format!("{code}: {message}"),
                ))
            }
            Err(ProviderError::Invalid { code, message }) => {
                store::delete_pending_refund(&self.db, payment_id, key).await?;
                Err(PaymentError::Invalid { code, message })
            }
        }
    }

    async fn reserve_refund(
        &self,
        id: PaymentId,
        amount: i64,
        key: &str,
    ) -> Result<Reservation, PaymentError> {
        let now = self.now_ms();
        let mut tx = self.db.begin().await?;
        let r = self.reserve_in(&mut tx, id, amount, key, now).await;
        match r {
            Ok(Reservation::Go) => {
                tx.commit().await?;
                Ok(Reservation::Go)
            }
            other => {
                tx.rollback().await?;
                other
            }
        }
    }

    async fn reserve_in(
        &self,
        tx: &mut Tx,
        id: PaymentId,
        amount: i64,
        key: &str,
        now: i64,
    ) -> Result<Reservation, PaymentError> {
        let rec = store::load(tx.conn(), id)
            .await?
            .ok_or_else(|| unknown(id))?;
        let rows = store::refunds_of(tx.conn(), id).await?;
        if let Some(row) = rows.iter().find(|r| r.idem_key == key) {
            if row.amount != amount {
                return Err(PaymentError::invalid(
                    "refund_key_reused",
                    "this refund key was used for another amount",
                ));
            }
            return Ok(if row.state == "done" {
                Reservation::Done(rec.payment)
            } else {
                Reservation::Go // in flight or interrupted: ask the provider again, same key
            });
        }
        let p = &rec.payment;
        if !p.status.is_captured() {
            return Err(PaymentError::invalid(
                "not_captured",
                format!("a {} payment has nothing to refund", p.status.as_str()),
            ));
        }
        let in_flight: i64 = rows
            .iter()
            .filter(|r| r.state == "pending")
            .map(|r| r.amount)
            .sum();
        let available = p.captured.minor() - p.refunded.minor() - in_flight;
        if amount > available {
            return Err(PaymentError::invalid(
                "refund_exceeds_captured",
                format!(
                    "at most {} can be refunded (captured {}, refunded {}, in flight {})",
                    p.captured.with_minor(available.max(0)),
                    p.captured,
                    p.refunded,
                    p.captured.with_minor(in_flight)
                ),
            ));
        }
        store::insert_refund(tx.conn(), id, key, amount, now).await?;
        if !store::touch(tx.conn(), id, rec.version, now).await? {
            return Ok(Reservation::Conflict);
        }
        Ok(Reservation::Go)
    }

    pub async fn get(&self, payment_id: PaymentId) -> Result<Option<Payment>, PaymentError> {
        Ok(self.load(payment_id).await?.map(|r| r.payment))
    }

    /// Asks the provider for the current state and records it (the recovery worker; webhooks
    /// that do not verify). `None` for an unknown payment.
    pub async fn sync(&self, payment_id: PaymentId) -> Result<Option<Payment>, PaymentError> {
        let Some(rec) = self.load(payment_id).await? else {
            return Ok(None);
        };
        if rec.payment.provider != self.provider.name() {
            return Ok(Some(rec.payment));
        }
        Ok(Some(self.sync_record(rec).await?.payment))
    }

    /// Payments that still keep captured money and were last changed before `older_than`
    /// (oldest first, at most `limit`, itself at most [`MAX_HOLDING_LISTED`]; none for a
    /// `limit` of 0 or less): what reconciliation checks against orders.
    pub async fn holding_money(
        &self,
        older_than: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<Payment>, PaymentError> {
        let limit = limit.clamp(0, MAX_HOLDING_LISTED);
        let before = self.now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let ids: Vec<uuid::Uuid> = platform::db_run!(&self.db, |p| sqlx::query_scalar(
            "SELECT id FROM payments WHERE captured > refunded AND updated_at <= $1 \
             ORDER BY updated_at LIMIT $2"
        )
        .bind(before)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = self.get(PaymentId::from_uuid(id)).await? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Payments still pending after `older_than` (oldest first): what the recovery worker
    /// should [`Payments::sync`].
    pub async fn stale_pending(
        &self,
        older_than: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<PaymentId>, PaymentError> {
        let before = self.now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        Ok(store::pending_before(&self.db, before, limit).await?)
    }

    pub(crate) async fn sync_record(&self, rec: Record) -> Result<Record, PaymentError> {
        let id = rec.payment.id;
        let charge = self
            .provider
            .retrieve(rec.payment.provider_ref.as_deref(), &id.to_string())
            .await?;
        let Some(charge) = charge else {
            return Ok(rec);
        };
        let obs = Observation::from(&charge);
        let rec = self
            .change(id, |r| merge(r, &obs), None)
            .await?
            .ok_or_else(|| unknown(id))?;
        self.apply_pending_webhooks(rec).await
    }

    /// Applies the webhooks that arrived before this payment was known.
    async fn apply_pending_webhooks(&self, rec: Record) -> Result<Record, PaymentError> {
        let id = rec.payment.id;
        let rows =
            store::unapplied_webhooks(&self.db, rec.payment.provider_ref.as_deref(), id).await?;
        let mut rec = rec;
        for row in rows {
            let Some(facts) = crate::stripe::event_facts(&row.event_type, &row.payload) else {
                continue;
            };
            if let Some(r) = self
                .change_marking(id, |r| merge(r, &facts.observation), None, Some(&row.id))
                .await?
            {
                rec = r;
            }
        }
        Ok(rec)
    }

    /// Reads, transforms and writes one payment (see the module doc); `None` when unknown.
    pub(crate) async fn change(
        &self,
        id: PaymentId,
        f: impl Fn(&Record) -> Record,
        complete_refund: Option<&str>,
    ) -> Result<Option<Record>, PaymentError> {
        self.change_marking(id, f, complete_refund, None).await
    }

    async fn change_marking(
        &self,
        id: PaymentId,
        f: impl Fn(&Record) -> Record,
        complete_refund: Option<&str>,
        webhook_applied: Option<&str>,
    ) -> Result<Option<Record>, PaymentError> {
        for _ in 0..MAX_ATTEMPTS {
            let now = self.now_ms();
            let mut tx = self.db.begin().await?;
            let Some(cur) = store::load(tx.conn(), id).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            let next = f(&cur);
            let Some(next) = self.write(&mut tx, &cur, next, now).await? else {
                tx.rollback().await?;
                continue;
            };
            if let Some(k) = complete_refund {
                store::complete_refund(tx.conn(), id, k, now).await?;
            }
            if let Some(e) = webhook_applied {
                store::mark_webhook_applied(tx.conn(), e, now).await?;
            }
            tx.commit().await?;
            self.after_commit(&cur, &next);
            return Ok(Some(next));
        }
        Err(PaymentError::Provider(
            "the payment is changing too often; retry".into(),
        ))
    }

    /// Writes `next` over `cur` inside `tx`, with the `payment.refunded` event of any refund
    /// growth. `None`: someone else changed the row (roll back and retry).
    pub(crate) async fn write(
        &self,
        tx: &mut Tx,
        cur: &Record,
        mut next: Record,
        now: i64,
    ) -> Result<Option<Record>, PaymentError> {
        if next == *cur {
            return Ok(Some(next));
        }
        next.payment.updated_at = store::time(now);
        if !store::update(tx.conn(), cur.version, &next, now).await? {
            return Ok(None);
        }
        next.version = cur.version + 1;
        let p = &next.payment;
        if p.refunded.minor() > cur.payment.refunded.minor() {
            let payload = json!({
                "payment_id": p.id,
                "order_ref": p.order_ref,
                "amount": p.refunded.minor() - cur.payment.refunded.minor(),
                "currency": p.currency,
                "refunded_total": p.refunded.minor(),
                "captured": p.captured.minor(),
                "full": p.refunded.minor() >= p.captured.minor(),
            });
            bus::enqueue(
                tx.conn(),
                &Event::new(crate::SERVICE, bus::topic::PAYMENT_REFUNDED, &payload, now),
            )
            .await?;
        }
        Ok(Some(next))
    }

    pub(crate) fn after_commit(&self, cur: &Record, next: &Record) {
        if next.payment.status != cur.payment.status {
            tracing::info!(payment = %next.payment.id, from = cur.payment.status.as_str(),
                to = next.payment.status.as_str(), "payment status changed");
        }
        if next.payment.refunded.minor() > cur.payment.refunded.minor()
            && let Some(r) = &self.relay
        {
            r.wake();
        }
    }
}

enum Reservation {
    /// Ask the provider (a new refund, or one interrupted before its answer).
    Go,
    /// This key's refund is done: here is the payment.
    Done(Payment),
    /// The row changed under us: try again.
    Conflict,
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;

    fn rec(status: PaymentStatus, captured: i64, refunded: i64) -> Record {
        Record {
            payment: Payment {
                id: PaymentId::from_uuid(uuid::Uuid::nil()),
                order_ref: "o".into(),
                provider: "test".into(),
                provider_ref: Some("x".into()),
                currency: kernel::Currency::EUR,
                amount: Money::new(1000, kernel::Currency::EUR),
                status,
                captured: Money::new(captured, kernel::Currency::EUR),
                refunded: Money::new(refunded, kernel::Currency::EUR),
                last4: None,
                created_at: store::time(0),
                updated_at: store::time(0),
            },
            failure: None,
            version: 1,
        }
    }

    fn obs(status: PaymentStatus, captured: i64, refunded: i64) -> Observation {
        Observation {
            provider_ref: Some("x".into()),
            status,
            captured,
            refunded,
            last4: None,
            failure: None,
        }
    }

    #[test]
    fn status_only_moves_forward() {
        // a late "authorised" or "cancelled" never undoes a capture
        let c = rec(Captured, 1000, 0);
        assert_eq!(merge(&c, &obs(Authorized, 0, 0)), c);
        assert_eq!(merge(&c, &obs(Voided, 0, 0)), c);
        assert_eq!(merge(&c, &obs(Pending, 0, 0)), c);
        // a refund seen before the capture: captured follows
        let a = rec(Authorized, 0, 0);
        let m = merge(&a, &obs(Captured, 1000, 300));
        assert_eq!(m.payment.status, PartiallyRefunded);
        assert_eq!(
            (m.payment.captured.minor(), m.payment.refunded.minor()),
            (1000, 300)
        );
        // then the older "succeeded" changes nothing
        assert_eq!(merge(&m, &obs(Captured, 1000, 0)), m);
        // full refund
        let f = merge(&m, &obs(Captured, 1000, 1000));
        assert_eq!(f.payment.status, Refunded);
        // failed and voided do not replace each other, and older news do not undo them
        let v = rec(Voided, 0, 0);
        assert_eq!(merge(&v, &obs(Failed, 0, 0)), v);
        assert_eq!(merge(&v, &obs(Authorized, 0, 0)), v);
        assert_eq!(merge(&v, &obs(Pending, 0, 0)), v);
        let a = rec(Authorized, 0, 0);
        assert_eq!(merge(&a, &obs(Pending, 0, 0)), a);
        assert_eq!(merge(&a, &obs(Voided, 0, 0)).payment.status, Voided);
        // merging is idempotent
        assert_eq!(merge(&f, &obs(Captured, 1000, 1000)), f);
        // every status has a rank and round-trips
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(*s));
        }
    }
}
