//! Passwords: the policy (8 to 128 characters, any Unicode, the most common passwords refused,
//! no composition rules: NIST SP 800-63B) and argon2id hashing with OWASP's parameters
//! (m = 19456 KiB, t = 2, p = 1) in PHC strings.
//!
//! Hashing is deliberately slow (tens of milliseconds of one core), so it runs on the blocking
//! pool behind a semaphore: at most `auth.max_concurrent_hashes` at once, the rest wait up to a
//! few seconds and are then answered 503. A flood of sign-ins thus queues instead of starving
//! every other request of CPU.

use crate::domain::{Violation, invalid};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::Semaphore;

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;
/// OWASP Password Storage Cheat Sheet, argon2id option 2.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// The most common passwords of 8 characters or more (zxcvbn's frequency list, MIT licence,
/// plus a few French ones), lower case.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

/// Checks a new password against the policy; the error names `field`.
pub fn check_policy(field: &str, password: &str) -> Result<(), Violation> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(invalid(
            field,
            "too_short",
            format!("at least {MIN_CHARS} characters"),
        ));
    }
    if n > MAX_CHARS {
        return Err(invalid(
            field,
            "too_long",
            format!("at most {MAX_CHARS} characters"),
        ));
    }
    if COMMON.contains(password.to_lowercase().as_str()) {
        return Err(invalid(
            field,
            "too_common",
            "this password is among the most used ones; choose another",
        ));
    }
    Ok(())
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every permit stayed taken for the queue timeout: retry in a moment.
    #[error("too many sign-ins are being checked right now; retry in a moment")]
    Busy,
    /// The hashing itself failed (a bug or a dying runtime).
    #[error("{0}")]
    Failed(String),
}

fn hasher() -> Argon2<'static> {
    // the constants are valid parameters
    #[allow(clippy::expect_used)]
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes and verifies passwords off the async threads, a bounded number at a time.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    /// Verified against when the account does not exist, so that an unknown e-mail costs the
    /// same time as a wrong password.
    dummy: Arc<String>,
    /// argon2id verifications run so far (real or dummy).
    verifications: Arc<std::sync::atomic::AtomicU64>,
}

impl Passwords {
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> Self {
        let dummy = hash_blocking(&platform::random_hex(16)).unwrap_or_default();
        Passwords {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            queue_timeout,
            dummy: Arc::new(dummy),
            verifications: Arc::default(),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                metrics::counter!("comptoir_password_hash_rejected_total").increment(1);
                PasswordError::Busy
            })?
            .map_err(|e| PasswordError::Failed(e.to_string()))?;
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| PasswordError::Failed(e.to_string()))?;
        Ok(out)
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let pw = password.to_string();
        self.run(move || hash_blocking(&pw))
            .await?
            .map_err(PasswordError::Failed)
    }

    /// Whether `password` matches `phc`; with no hash (unknown account) the dummy is checked
    /// and the answer is always no.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, PasswordError> {
        let pw = password.to_string();
        let (phc, real) = match phc {
            Some(h) => (h.to_string(), true),
            None => (self.dummy.as_str().to_string(), false),
        };
        let ok = self.run(move || verify_blocking(&pw, &phc)).await?;
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(ok && real)
    }

    /// How many argon2id verifications ran (an unknown account runs one too).
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

pub fn hash_blocking(password: &str) -> Result<String, String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_blocking(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_accepts_long_and_unicode_and_refuses_common() {
        assert!(check_policy("p", "short").is_err());
        assert_eq!(
            check_policy("p", "1234567").map_err(|e| e.code),
            Err("too_short")
        );
        assert!(check_policy("p", &"x".repeat(129)).is_err());
        assert!(
            check_policy("p", &"é".repeat(128)).is_ok(),
            "128 characters, 256 bytes"
        );
        assert!(check_policy("p", &"a".repeat(64)).is_ok());
        assert!(check_policy("p", "mot de passe ☕ breton").is_ok());
        assert!(check_policy("p", "Kouign-amann 1902").is_ok());
        for common in [
            "password",
            "PASSWORD",
            "12345678",
            "iloveyou",
            "azertyuiop",
            "trustno1",
        ] {
            assert_eq!(
                check_policy("p", common).map_err(|e| e.code),
                Err("too_common"),
                "{common}"
            );
        }
        assert!(COMMON.len() > 10_000);
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_with_owasp_parameters() {
        let h = hash_blocking("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("correct horse battery", &h));
        assert!(!verify_blocking("correct horse batterY", &h));
        assert!(!verify_blocking("x", "not a hash"));
        // salted: two hashes of one password differ
        assert_ne!(h, hash_blocking("correct horse battery").expect("hash"));
    }
}

#[cfg(test)]
mod dummy_tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_account_costs_a_real_verification() {
        let p = Passwords::new(1, Duration::from_secs(5));
        assert!(p.dummy.starts_with("$argon2id$"), "{}", p.dummy);
        let h = hash_blocking("some password").expect("hash");
        let t = std::time::Instant::now();
        assert!(!p.verify("x", None).await.expect("verify"));
        let unknown = t.elapsed();
        let t = std::time::Instant::now();
        assert!(!p.verify("x", Some(&h)).await.expect("verify"));
        let known = t.elapsed();
        eprintln!("unknown {unknown:?} known {known:?}");
    }
}
