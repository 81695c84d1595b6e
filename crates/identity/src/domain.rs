//! The identity rules, without IO: what a valid e-mail, name and store code are, the key an
//! e-mail is unique under, the service's knobs, and how failed sign-ins slow and then refuse
//! further attempts.

use platform::ratelimit::Failures;
use std::net::IpAddr;
use std::time::Duration;

/// One field of a request that breaks a rule: its path, a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

/// The violation of a rule by `field`.
pub fn invalid(
    field: impl Into<String>,
    code: &'static str,
    message: impl Into<String>,
) -> Violation {
    Violation {
        field: field.into(),
        code,
        message: message.into(),
    }
}

/// The knobs of the identity service (from `[auth]`).
#[derive(Debug, Clone)]
pub struct Policy {
    pub refresh_ttl: Duration,
    pub reset_ttl: Duration,
    /// Failures of one (account, address) before each further attempt waits a delay.
    pub failures_before_delay: u32,
    /// The first of those delays; each next one doubles.
    pub first_delay: Duration,
    /// Failures of one (account, address) after which it is refused for the window.
    pub max_failures_per_pair: u32,
    /// Failures of one address, on any accounts, after which it is refused for the window.
    pub max_failures_per_ip: u32,
    /// Failures of one account, from every address, after which it is refused for the window.
    pub max_failures_per_account: u32,
    pub failure_window: Duration,
    /// Base URL of the storefront, for the link in reset messages.
    pub public_url: String,
}

/// One failure counter and when it slows or refuses attempts.
pub struct Counter<'a> {
    pub key: &'a str,
    /// Failures before each further attempt waits (`u32::MAX`: never a delay, only refusal).
    pub before_delay: u32,
    pub max: u32,
}

/// The limiter keys of a sign-in to the account `email_key` from `ip`.
pub struct SigninKeys {
    pub pair: String,
    pub ip: String,
    pub account: String,
}

impl SigninKeys {
    pub fn new(email_key: &str, ip: IpAddr) -> Self {
        SigninKeys {
            pair: format!("signin:pair:{ip}:{email_key}"),
            ip: format!("signin:ip:{ip}"),
            account: Self::account_key(email_key),
        }
    }

    pub fn account_key(email_key: &str) -> String {
        format!("signin:acct:{email_key}")
    }

    /// The sign-in counters of an account seen from one address: the (account, address) pair
    /// (delays, then refusal), the address (password spraying) and the account (every address
    /// together: the cap on distributed guessing).
    pub fn counters<'a>(&'a self, p: &Policy) -> [Counter<'a>; 3] {
        [
            Counter {
                key: &self.pair,
                before_delay: p.failures_before_delay,
                max: p.max_failures_per_pair,
            },
            Counter {
                key: &self.ip,
                before_delay: u32::MAX,
                max: p.max_failures_per_ip,
            },
            Counter {
                key: &self.account,
                before_delay: u32::MAX,
                max: p.max_failures_per_account,
            },
        ]
    }
}

/// The wait a counter imposes now: none, a growing delay after `before_delay` failures
/// (`first_delay`, doubling), or the rest of the window after `max` failures.
pub fn wait_of(p: &Policy, f: Failures, before_delay: u32, max: u32) -> Duration {
    if f.count >= max {
        return f.window_left;
    }
    if f.count < before_delay || f.count == 0 {
        return Duration::ZERO;
    }
    let doublings = (f.count - before_delay).min(20);
    let delay = p
        .first_delay
        .saturating_mul(1 << doublings)
        .min(p.failure_window);
    delay.saturating_sub(f.since_last)
}

/// A time in milliseconds since the epoch as RFC 3339, to the second.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The key an e-mail is unique under: trimmed, lower case.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

pub fn check_email(field: &str, email: &str, errors: &mut Vec<Violation>) {
    let e = email.trim();
    let ok = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !ok {
        errors.push(invalid(field, "invalid_format", "not an e-mail address"));
    }
}

pub fn check_name(field: &str, name: &str, errors: &mut Vec<Violation>) {
    let n = name.trim().chars().count();
    if n == 0 {
        errors.push(invalid(field, "required", "must not be empty"));
    } else if n > 100 {
        errors.push(invalid(field, "too_long", "at most 100 characters"));
    } else if name.chars().any(char::is_control) {
        errors.push(invalid(field, "invalid_format", "no control characters"));
    }
}

/// Store and organiser codes: lower-case letters, digits and dashes, up to 40.
pub fn check_code(field: &str, code: &str, errors: &mut Vec<Violation>) {
    let ok = !code.is_empty()
        && code.len() <= 40
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        errors.push(invalid(
            field,
            "invalid_format",
            "lower-case letters, digits and dashes, at most 40",
        ));
    }
}

/// API-key scopes as stored: space-separated.
pub fn scopes_from(stored: &str) -> Vec<String> {
    stored
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            refresh_ttl: Duration::from_secs(3600),
            reset_ttl: Duration::from_secs(3600),
            failures_before_delay: 3,
            first_delay: Duration::from_secs(1),
            max_failures_per_pair: 10,
            max_failures_per_ip: 100,
            max_failures_per_account: 50,
            failure_window: Duration::from_secs(60),
            public_url: String::new(),
        }
    }

    fn after(count: u32, since_last_secs: u64) -> Failures {
        Failures {
            count,
            window_left: Duration::from_secs(40),
            since_last: Duration::from_secs(since_last_secs),
        }
    }

    #[test]
    fn delays_start_after_a_few_failures_double_and_end_in_refusal() {
        let p = policy();
        let wait = |count, since| wait_of(&p, after(count, since), 3, 10);
        assert_eq!(wait(2, 0), Duration::ZERO, "under the threshold");
        assert_eq!(wait(3, 0), Duration::from_secs(1));
        assert_eq!(wait(5, 0), Duration::from_secs(4), "doubling");
        assert_eq!(
            wait(5, 3),
            Duration::from_secs(1),
            "time already waited counts"
        );
        assert_eq!(wait(9, 0), Duration::from_secs(60), "capped at the window");
        assert_eq!(
            wait(10, 0),
            Duration::from_secs(40),
            "refused for the rest of the window"
        );
        assert_eq!(
            wait_of(&p, after(99, 0), u32::MAX, 100),
            Duration::ZERO,
            "a refusal-only counter never delays"
        );
    }

    #[test]
    fn e_mails_are_unique_trimmed_and_in_lower_case() {
        assert_eq!(email_key("  Anne@Example.ORG "), "anne@example.org");
        let mut errors = Vec::new();
        check_email("email", "anne@example.org", &mut errors);
        check_email("email", "anne@localhost", &mut errors);
        check_email("email", "an ne@example.org", &mut errors);
        assert_eq!(errors.len(), 2);
    }
}
