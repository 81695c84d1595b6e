//! The business metrics of orders: what is counted, where, and the gauges of open sagas.
//!
//! Every counter moves once per fact: after the transaction that records the fact committed,
//! and only when this runner's guarded update moved the saga (`store::advance` returned true).
//! A replayed answer runs nothing; a saga resumed by recovery, or run by two runners at once,
//! finds its step already moved and counts nothing again. (A crash between the commit and the
//! count loses that one count: at most once, never twice.)
//!
//! Labels are bounded: a channel, a currency of the kernel's table, a saga step, an outcome.

use crate::domain::{Channel, Failure, SagaState};
use crate::{Orders, store};
use kernel::{Currency, Money};

/// The steps of the saga, as `saga_steps` logs them and the metrics label them.
pub const STEPS: &[&str] = &[
    "hold_stock",
    "authorize_payment",
    "confirm_order",
    "commit_stock",
    "capture_payment",
    "compensate",
];

/// The `outcome`s of `comptoir_checkout_duration_seconds`.
pub const DURATION_OUTCOMES: &[&str] = &["paid", "refused", "failed"];

/// Describes the metrics of orders and starts every series of a known label at 0, so that
/// rates and alerts see them before the first event (a process with orders calls this once).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "comptoir_checkouts_started_total",
        "Checkout sagas started (a new Idempotency-Key on a free cart)"
    );
    describe_counter!(
        "comptoir_checkouts_total",
        "Checkout sagas ended, by outcome: paid, or the failure code (payment_declined, out_of_stock…)"
    );
    describe_counter!(
        "comptoir_checkouts_refused_cart_taken_total",
        "Checkouts refused because another checkout holds the cart (I9)"
    );
    describe_counter!(
        "comptoir_orphan_captures_refunded_total",
        "Captured payments with no paid order, refunded by reconciliation (I4)"
    );
    describe_counter!(
        "comptoir_notifications_total",
        "Messages written by the notifications sink, by kind"
    );
    for kind in [
        "order_received",
        "order_confirmation",
        "order_cancelled",
        "refund",
        "stock_alert",
        "password_reset",
    ] {
        metrics::counter!("comptoir_notifications_total", "kind" => kind).increment(0);
    }
    describe_counter!(
        "comptoir_orders_placed_total",
        "Orders created by a checkout, by channel (web, pos, api)"
    );
    describe_counter!(
        "comptoir_orders_paid_total",
        "Orders whose payment was captured, by currency"
    );
    describe_counter!(
        "comptoir_orders_revenue_minor_units_total",
        "Amount captured by checkouts, in minor units of the currency (cents), by currency"
    );
    describe_histogram!(
        "comptoir_checkout_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer a checkout attempt (POST /api/checkout, not its replays), by outcome: paid, refused (4xx), failed (5xx)"
    );
    describe_counter!(
        "comptoir_saga_steps_total",
        "Checkout saga steps finished, by step and outcome (ok, failed)"
    );
    describe_counter!(
        "comptoir_saga_compensations_total",
        "Checkout sagas that started compensating, by the step that failed"
    );
    describe_gauge!(
        "comptoir_sagas_in_flight",
        "Checkout sagas not finished (every orders instance reports the whole database: use max)"
    );
    describe_gauge!(
        "comptoir_saga_oldest_in_flight_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest unfinished checkout saga, 0 when none"
    );
    for name in [
        "comptoir_checkouts_started_total",
        "comptoir_checkouts_refused_cart_taken_total",
        "comptoir_orphan_captures_refunded_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    metrics::counter!("comptoir_checkouts_total", "outcome" => "paid").increment(0);
    for f in Failure::ALL {
        metrics::counter!("comptoir_checkouts_total", "outcome" => f.code()).increment(0);
    }
    for c in Channel::ALL {
        metrics::counter!("comptoir_orders_placed_total", "channel" => c.as_str()).increment(0);
    }
    for code in Currency::all_codes() {
        metrics::counter!("comptoir_orders_paid_total", "currency" => code).increment(0);
        metrics::counter!("comptoir_orders_revenue_minor_units_total", "currency" => code)
            .increment(0);
    }
    for outcome in DURATION_OUTCOMES {
        // registered: the histogram's series exist (empty) before the first checkout
        let _ = metrics::histogram!("comptoir_checkout_duration_seconds", "outcome" => *outcome);
    }
    for step in STEPS {
        for outcome in ["ok", "failed"] {
            metrics::counter!("comptoir_saga_steps_total", "step" => *step, "outcome" => outcome)
                .increment(0);
        }
        metrics::counter!("comptoir_saga_compensations_total", "step" => *step).increment(0);
    }
    metrics::gauge!("comptoir_sagas_in_flight").set(0.0);
    metrics::gauge!("comptoir_saga_oldest_in_flight_seconds").set(0.0);
}

/// A step of the saga finished (`ok`) or failed for good (`failed`).
pub(crate) fn step(step: &str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::counter!("comptoir_saga_steps_total", "step" => step.to_string(), "outcome" => outcome)
        .increment(1);
}

/// `step` failed and the saga starts compensating.
pub(crate) fn compensation(step: &str) {
    self::step(step, false);
    metrics::counter!("comptoir_saga_compensations_total", "step" => step.to_string()).increment(1);
}

/// How a saga ended (`paid`, or its failure's code).
pub(crate) fn checkout_ended(outcome: &'static str) {
    metrics::counter!("comptoir_checkouts_total", "outcome" => outcome).increment(1);
}

pub(crate) fn order_placed(channel: Channel) {
    metrics::counter!("comptoir_orders_placed_total", "channel" => channel.as_str()).increment(1);
}

/// The capture of `captured` was recorded.
pub(crate) fn order_paid(captured: Money) {
    let currency = captured.currency().code();
    metrics::counter!("comptoir_orders_paid_total", "currency" => currency).increment(1);
    metrics::counter!("comptoir_orders_revenue_minor_units_total", "currency" => currency)
        .increment(u64::try_from(captured.minor()).unwrap_or(0));
}

/// The step a saga in `state` is trying (for a forward step that gives up).
pub(crate) fn step_of(state: SagaState) -> &'static str {
    match state {
        SagaState::Started => "hold_stock",
        SagaState::StockHeld | SagaState::AwaitingAuthorization => "authorize_payment",
        SagaState::PaymentAuthorized => "confirm_order",
        SagaState::OrderConfirmed => "commit_stock",
        SagaState::StockCommitted => "capture_payment",
        _ => "compensate",
    }
}

impl Orders {
    /// Sets `comptoir_sagas_in_flight` and `comptoir_saga_oldest_in_flight_seconds` from the
    /// database (one count over the index of open sagas). Returns the count.
    pub async fn refresh_gauges(&self) -> Result<i64, sqlx::Error> {
        let (n, oldest) = store::sagas_in_flight(&self.db).await?;
        let age_ms = oldest.map(|t| (self.now() - t).max(0)).unwrap_or(0);
        metrics::gauge!("comptoir_sagas_in_flight").set(n as f64);
        metrics::gauge!("comptoir_saga_oldest_in_flight_seconds").set(age_ms as f64 / 1000.0);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::SagaState;

    /// The gauge's query lists exactly the states that are not terminal.
    #[test]
    fn in_flight_means_every_open_state() {
        for s in SagaState::ALL {
            let listed = crate::store::IN_FLIGHT_SQL.contains(&format!("'{}'", s.as_str()));
            assert_eq!(listed, !s.is_terminal(), "{s:?}");
        }
    }
}
