//! The failure counters that slow, then refuse, repeated wrong passwords.

use super::{Error, Identity};
use crate::domain::{Counter, wait_of};
use std::time::Duration;

impl Identity {
    /// Refuses with [`Error::TooManyAttempts`] while any of the counters imposes a wait. Called
    /// before any password is verified: a throttled attempt costs no hashing and counts nothing.
    pub(super) async fn throttled(&self, counters: &[Counter<'_>]) -> Option<Error> {
        let mut wait = Duration::ZERO;
        for c in counters {
            let f = self.limiter.failures(c.key).await;
            wait = wait.max(wait_of(&self.policy, f, c.before_delay, c.max));
        }
        if wait == Duration::ZERO {
            return None;
        }
        metrics::counter!("comptoir_signin_throttled_total").increment(1);
        Some(Error::TooManyAttempts {
            retry_after: wait.as_millis().div_ceil(1000).max(1) as u64,
        })
    }

    pub(super) async fn record_failures(&self, keys: &[&str]) {
        for k in keys {
            self.limiter
                .record_failure(k, self.policy.failure_window)
                .await;
        }
    }
}
