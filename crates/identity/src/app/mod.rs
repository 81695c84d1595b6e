//! The identity use cases: the account and sign-in flows the API and the web pages call.
//! Each returns an [`Error`] that says what went wrong in the service's terms; `http` is the one
//! place that turns it into a problem document.
//!
//! - `sessions`: sign-in (throttled), sessions, refresh rotation with reuse detection, sign-out
//! - `accounts`: sign-up, one's own account, password change and reset
//! - `staff`: staff accounts, listed, read and changed by the managers who may
//! - `api_keys`: API keys and their verification
//! - `throttle`: the failure counters behind sign-in and password change

mod accounts;
mod api_keys;
mod sessions;
mod staff;
mod throttle;

pub use crate::domain::Policy;

use crate::domain::Violation;
use crate::keys::{KeyError, Signer};
use crate::password::{PasswordError, Passwords};
use crate::store::{self, UserRow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use kernel::Clock;
use platform::authz::{Principal, PrincipalKind, Role};
use platform::db::Db;
use platform::ratelimit::Limiter;
use std::sync::Arc;
use std::time::Duration;

/// Topic of the message asking the notification service to send a reset link.
pub const TOPIC_PASSWORD_RESET: &str = platform::bus::topic::PASSWORD_RESET_REQUESTED;

/// Everything the identity use cases share.
#[derive(Clone)]
pub struct Identity {
    pub db: Db,
    pub passwords: Passwords,
    pub signer: Arc<Signer>,
    pub limiter: Limiter,
    pub clock: Arc<dyn Clock>,
    pub policy: Arc<Policy>,
}

/// Why a use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fields break the rules (the request is well formed).
    #[error("{} fields are invalid", .0.len())]
    Invalid(Vec<Violation>),
    /// Query parameters break the rules.
    #[error("{} parameters are invalid", .0.len())]
    InvalidParameters(Vec<Violation>),
    #[error("an account already uses this e-mail address")]
    EmailTaken,
    /// The same answer whether the account exists or not.
    #[error("the e-mail address or the password is wrong")]
    InvalidCredentials,
    /// Too many failures; `retry_after` in seconds (at least 1).
    #[error("too many failed sign-ins; wait before trying again")]
    TooManyAttempts { retry_after: u64 },
    /// A refresh token that does not open a live session.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// A rotated refresh token came back: its session has been ended.
    #[error("this refresh token was already used; the session has been ended for safety")]
    RefreshTokenReused,
    #[error("only a session token can sign out")]
    NoSession,
    /// The caller is not a Comptoir account (an API key, an external token).
    #[error("this needs a Comptoir account")]
    NotAnAccount,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("this reset link is unknown, used or expired; ask for a new one")]
    InvalidResetToken,
    /// The caller lacks this permission for what they asked.
    #[error("this needs the `{0}` permission")]
    Forbidden(&'static str),
    /// Nothing of this kind that the caller may see (ids are not confirmed).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Signing(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Identity {
    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    async fn insert_user(&self, row: &UserRow) -> Result<()> {
        let mut tx = self.db.begin().await?;
        match store::insert_user(tx.conn(), row).await {
            Ok(()) => {}
            Err(e) if platform::db::is_unique_violation(&e) => return Err(Error::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Describes the metrics of identity and starts them at 0 (a process with identity calls this
/// once).
pub fn describe_metrics() {
    for (name, help) in [
        (
            "comptoir_customers_registered_total",
            "Customer accounts signed up",
        ),
        (
            "comptoir_signins_total",
            "Successful sign-ins with e-mail and password",
        ),
        (
            "comptoir_signin_failed_total",
            "Sign-ins refused: unknown account, wrong password or inactive account",
        ),
        (
            "comptoir_signin_throttled_total",
            "Sign-ins refused by the throttle before the password was checked",
        ),
        (
            "comptoir_refresh_reuse_total",
            "Refresh tokens used twice (the whole session was ended)",
        ),
        (
            "comptoir_password_hash_rejected_total",
            "Password checks refused: no hashing turn within auth.hash_queue_seconds",
        ),
    ] {
        metrics::describe_counter!(name, help);
        metrics::counter!(name).increment(0);
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

pub fn principal_of(u: &UserRow) -> Principal {
    Principal {
        subject: u.id.to_string(),
        kind: PrincipalKind::User,
        role: Role::parse(&u.role).unwrap_or(Role::Customer),
        store: u.store_id.clone(),
        organiser: u.organiser_id.clone(),
        scopes: vec![],
        session: None,
    }
}

/// 32 random bytes, base64url: the secret part of refresh tokens, reset tokens and API keys.
fn secret_token() -> String {
    let mut b = [0u8; 32];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the operating system's random source is available");
    B64.encode(b)
}

/// A generated password: 20 characters from an unambiguous alphabet (~118 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 20];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the operating system's random source is available");
    b.iter()
        .map(|x| ALPHABET[usize::from(*x) % ALPHABET.len()] as char)
        .collect()
}
