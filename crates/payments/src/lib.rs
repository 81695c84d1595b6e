//! The payments service: authorises, captures, voids and refunds the money of orders through a
//! payment service provider (PSP), and keeps our view of each payment in step with the PSP's.
//!
//! The four rooms of a service crate, and the provider's side:
//! - `domain`: the types it exchanges: [`AuthorizeRequest`], [`AuthOutcome`],
//!   [`CaptureOutcome`], [`Payment`] with its [`PaymentStatus`], and [`PaymentError`]; no IO
//! - `provider`: the [`Provider`] port (boxed futures; every call carries an idempotency key)
//! - `test_provider`: [`TestProvider`], the embedded default: test card numbers only, its own
//!   books in the payments database, fault injection ([`Faults`]) and [`psp_ledger_totals`]
//! - `stripe`: [`StripeProvider`], our small PaymentIntents client on `reqwest`, and the
//!   webhook signature check ([`stripe::verify_signature`])
//! - `app`: [`Payments`], the use cases the checkout saga calls in process; errors are
//!   [`PaymentError`], never an HTTP type
//! - `webhook`: verified provider events, applied once; unverified ones trigger a poll
//! - `store`: SQL, one text for SQLite and PostgreSQL
//! - `contract`: this service's side of [`contracts::payments`]: [`Payments`] as a
//!   [`contracts::payments::PaymentsApi`], and the `/internal/payments/...` routes
//! - `http`: `GET /api/payments/{id}` and `POST /api/payments/webhooks/stripe`, their
//!   [`http::policy`] and OpenAPI ([`http::PaymentsApi`]), and the one mapping of
//!   [`PaymentError`] to problem documents
//! - `model` and `service`: the former paths of `domain` and `app`, kept for the wiring
//!
//! # Guarantees
//!
//! - **Never two authorisations, captures or refunds for one request.** The payment id chosen
//!   by the caller is the authorisation's idempotency key at the PSP; the capture's is
//!   `<id>:capture`, a refund's `<id>:refund:<key>`. A payment is recorded `pending` before
//!   the PSP is asked, so a crash or a lost answer is settled by asking again with the same
//!   key (a retry of the same call, or [`Payments::sync`] from the recovery worker).
//! - **Status only moves forward** ([`PaymentStatus::rank`]); amounts captured and refunded
//!   only grow. Answers, webhooks and polls are merged, so late, duplicated or reordered news
//!   cannot undo newer news.
//! - **Refunds are bounded**: at most captured − refunded − refunds in flight, idempotent on
//!   the caller's key. Every growth of the refunded total, whoever saw it first (our call, a
//!   webhook, a poll), writes one `payment.refunded` event to the outbox in the same
//!   transaction: `{payment_id, order_ref, amount, currency, refunded_total, captured, full}`.
//! - **Webhooks are believed only when signed** (HMAC-SHA256, constant-time, 300 s, secret
//!   rotation) and applied once per event id; an unverifiable one only makes us ask the PSP.
//! - **No card data**: the test provider takes its test numbers only; Stripe gets `pm_…`
//!   tokens. Only the last 4 digits are stored.
//!
//! Its database (a SQLite file, or the PostgreSQL schema `payments`) holds `payments`,
//! `refunds`, `webhook_events`, the test PSP's `test_psp_charges` and `test_psp_requests`, and
//! the shared `outbox`, `processed_events` and `idempotency_keys`.

pub mod app;
pub mod contract;
pub mod domain;
pub mod http;
pub mod provider;
pub mod store;
pub mod stripe;
pub mod test_provider;
pub mod webhook;

/// The use cases under their former name.
pub use app as service;
/// The types under their former path (`payments::model::…`).
pub use domain as model;

pub use app::{Payments, describe_metrics};
pub use domain::{
    AuthOutcome, AuthorizeRequest, CaptureOutcome, Payment, PaymentError, PaymentMethod,
    PaymentStatus,
};
pub use provider::{Failure, Provider, ProviderCharge, ProviderError};
pub use stripe::{StripeConfig, StripeProvider};
pub use test_provider::{Faults, PspLedgerTotals, TestProvider, psp_ledger_totals};
pub use webhook::WebhookOutcome;

use platform::db::MigrationSet;
use sqlx::migrate::Migrator;

static PG_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The payments schema, for both backends.
pub fn migrations() -> MigrationSet {
    MigrationSet {
        postgres: &PG_MIGRATIONS,
        sqlite: &SQLITE_MIGRATIONS,
    }
}

/// Name of the service: its target, its SQLite file (`payments.db`) and its PostgreSQL schema.
pub const SERVICE: &str = "payments";

#[cfg(test)]
mod tests {
    /// The two migration sets stay in step: files, versions, tables and columns.
    #[test]
    fn migration_sets_are_in_step() {
        testkit::assert_migrations_in_step(env!("CARGO_MANIFEST_DIR"), super::migrations());
    }
}
