//! Provider webhooks, after the HTTP layer has checked their signature.
//!
//! A verified event is recorded once by its id (`webhook_events`): a replay changes nothing.
//! Its news is merged into the payment in the same transaction (status only moves forward, so
//! reordered events are harmless). An event about a payment we do not know yet stays recorded
//! and is applied when the payment appears (its authorisation's answer, or a sync).
//!
//! An event that does not verify is never believed: if it names a payment we know, we ask the
//! provider how that payment stands ([`Payments::sync`]) instead.

use crate::app::{Payments, merge};
use crate::domain::PaymentError;
use crate::store::{self, NewWebhook};
use crate::stripe;
use kernel::PaymentId;
use serde_json::Value;

/// What happened to a verified event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Merged into its payment.
    Applied,
    /// Its payment is not known yet: kept, applied when it appears.
    Recorded,
    /// A type we do not act on (recorded, so that a replay is recognised).
    Ignored,
    /// Seen before: nothing done.
    Duplicate,
}

impl WebhookOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            WebhookOutcome::Applied => "applied",
            WebhookOutcome::Recorded => "recorded",
            WebhookOutcome::Ignored => "ignored",
            WebhookOutcome::Duplicate => "duplicate",
        }
    }
}

const STRIPE: &str = "stripe";

impl Payments {
    /// Handles a Stripe event whose signature was verified (the raw body).
    pub async fn handle_stripe_event(&self, body: &[u8]) -> Result<WebhookOutcome, PaymentError> {
        let event: Value = serde_json::from_slice(body)
            .map_err(|_| PaymentError::invalid("malformed_event", "the event is not JSON"))?;
        let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
            return Err(PaymentError::invalid(
                "malformed_event",
                "the event has no id or type",
            ));
        };
        if id.is_empty() || id.len() > 255 || kind.len() > 255 {
            return Err(PaymentError::invalid(
                "malformed_event",
                "the event id or type is not plausible",
            ));
        }
        let object = event["data"]["object"].to_string();
        let facts = stripe::event_facts(kind, &object);
        let row = NewWebhook {
            id,
            provider: STRIPE,
            event_type: kind,
            intent_ref: facts.as_ref().and_then(|f| f.intent_ref.as_deref()),
            payment_id: facts.as_ref().and_then(|f| f.payment_id),
            payload: &object,
        };
        for _ in 0..8 {
            let now = self.now_ms();
            let mut tx = self.db().begin().await?;
            if !store::insert_webhook(tx.conn(), &row, now).await? {
                tx.rollback().await?;
                return Ok(WebhookOutcome::Duplicate);
            }
            let Some(facts) = &facts else {
                store::mark_webhook_applied(tx.conn(), id, now).await?;
                tx.commit().await?;
                return Ok(WebhookOutcome::Ignored);
            };
            // our payment: by the id in the intent's metadata, else by the intent's id
            let mut found = None;
            if let Some(pid) = facts.payment_id
                && let Some(r) = store::load(tx.conn(), pid).await?
                && r.payment.provider == STRIPE
                && (r.payment.provider_ref.is_none()
                    || r.payment.provider_ref.as_deref() == facts.intent_ref.as_deref())
            {
                found = Some(r);
            }
            if found.is_none()
                && let Some(iref) = facts.intent_ref.as_deref()
            {
                found = store::find_by_ref(tx.conn(), STRIPE, iref).await?;
            }
            let Some(cur) = found else {
                tx.commit().await?;
                return Ok(WebhookOutcome::Recorded);
            };
            let next = merge(&cur, &facts.observation);
            let Some(next) = self.write(&mut tx, &cur, next, now).await? else {
                tx.rollback().await?;
                continue;
            };
            store::mark_webhook_applied(tx.conn(), id, now).await?;
            tx.commit().await?;
            self.after_commit(&cur, &next);
            return Ok(WebhookOutcome::Applied);
        }
        Err(PaymentError::Provider(
            "the payment is changing too often; retry".into(),
        ))
    }

    /// For a webhook that did not verify: if its body names a payment we know (the intent's
    /// `metadata.payment_id`, or the intent's id), asks the provider how it stands. Nothing in
    /// the body is believed. Returns the payment polled, if any.
    pub async fn poll_unverified(&self, body: &[u8]) -> Result<Option<PaymentId>, PaymentError> {
        let Ok(event) = serde_json::from_slice::<Value>(body) else {
            return Ok(None);
        };
        let obj = &event["data"]["object"];
        let mut target = None;
        if let Some(pid) = obj["metadata"]["payment_id"]
            .as_str()
            .and_then(|s| s.parse::<PaymentId>().ok())
            && let Some(p) = self.get(pid).await?
            && p.provider == self.provider().name()
        {
            target = Some(pid);
        }
        if target.is_none() {
            let intent = obj["payment_intent"]
                .as_str()
                .or_else(|| obj["id"].as_str().filter(|s| s.starts_with("pi_")));
            if let Some(iref) = intent.filter(|s| s.len() <= 255) {
                let mut c = self.db().acquire().await?;
                target = store::find_by_ref(c.conn(), self.provider().name(), iref)
                    .await?
                    .map(|r| r.payment.id);
            }
        }
        let Some(id) = target else {
            return Ok(None);
        };
        self.sync(id).await?;
        Ok(Some(id))
    }
}
