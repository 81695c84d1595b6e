//! The port to a payment service provider (PSP). Two adapters: the built-in
//! [`crate::TestProvider`] and [`crate::StripeProvider`].
//!
//! Every call that changes something carries an idempotency key, and a PSP applies it like
//! Stripe does: the same key gets the same answer and never a second effect. That is what makes
//! a retry after a lost response safe (the payment service derives the keys from the payment
//! id: `<id>` to authorise, `<id>:capture`, `<id>:cancel`, `<id>:refund:<key>`).

use crate::domain::{AuthorizeRequest, PaymentError, PaymentMethod, PaymentStatus};
use futures_util::future::BoxFuture;

/// What a provider says about one charge (a Stripe PaymentIntent, a test-provider charge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCharge {
    /// The provider's id of the charge.
    pub provider_ref: String,
    /// Its state in our vocabulary (`captured` for any captured charge: the refunded states
    /// are derived from the amounts).
    pub status: PaymentStatus,
    pub amount: i64,
    pub captured: i64,
    /// Total refunded so far (0 when the provider did not say).
    pub refunded: i64,
    pub last4: Option<String>,
    /// Why it failed, when `status` is `failed`.
    pub failure: Option<Failure>,
}

/// A provider's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// How a provider call went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The card or the bank said no (authorisation), or the capture was refused.
    #[error("declined: {code}: {message}")]
    Declined {
        code: String,
        message: String,
        /// The provider's id of the declined charge, when it made one.
        provider_ref: Option<String>,
    },
    /// The request is wrong (not a test card, unknown charge, over-refund…): retrying the same
    /// request gives the same answer.
    #[error("refused: {code}: {message}")]
    Invalid { code: &'static str, message: String },
    /// No answer or a server error: the outcome is unknown, retry with the same key.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<ProviderError> for PaymentError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Declined { code, message, .. } => PaymentError::Invalid {
                code: "declined",
                message: format!("{code}: {message}"),
            },
            ProviderError::Invalid { code, message } => PaymentError::Invalid { code, message },
            ProviderError::Unavailable(m) => PaymentError::Provider(m),
        }
    }
}

pub type ProviderFuture<'a, T> = BoxFuture<'a, Result<T, ProviderError>>;

/// A payment service provider.
pub trait Provider: Send + Sync {
    /// `test` or `stripe`: stored with each payment.
    fn name(&self) -> &'static str;

    /// Checks a method before anything is recorded (`Invalid` when this provider cannot use it).
    fn accepts(&self, method: &PaymentMethod) -> Result<(), ProviderError>;

    /// Holds `req.amount` (manual capture). The same key returns the same charge.
    fn authorize<'a>(
        &'a self,
        req: &'a AuthorizeRequest,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge>;

    /// Captures `amount` of an authorised charge.
    fn capture<'a>(
        &'a self,
        provider_ref: &'a str,
        amount: i64,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge>;

    /// Cancels an authorisation.
    fn cancel<'a>(
        &'a self,
        provider_ref: &'a str,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge>;

    /// Refunds `amount` of a captured charge; answers the charge with its new refund total.
    fn refund<'a>(
        &'a self,
        provider_ref: &'a str,
        amount: i64,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderCharge>;

    /// The charge as the provider sees it now. Without `provider_ref` (the authorisation's
    /// answer was lost), a provider that can find a charge by the idempotency key of its
    /// authorisation does; the others answer `None`.
    fn retrieve<'a>(
        &'a self,
        provider_ref: Option<&'a str>,
        authorize_key: &'a str,
    ) -> ProviderFuture<'a, Option<ProviderCharge>>;
}
