//! Identity use cases: accounts, sessions, password resets, staff, API keys.

use crate::keys::Signer;
use crate::model::*;
use crate::password::{self, Passwords};
use crate::store::{self, ApiKeyRow, RefreshRow, SessionRow, UserRow};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use kernel::Clock;
use platform::authz::{Principal, PrincipalKind, Role, perm};
use platform::db::Db;
use platform::ratelimit::{Decision, Failures, Limiter, Quota};
use platform::{ApiError, FieldError};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Topic of the message asking the notification service to send a reset link.
pub const TOPIC_PASSWORD_RESET: &str = platform::bus::topic::PASSWORD_RESET_REQUESTED;

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
struct Counter<'a> {
    key: &'a str,
    /// Failures before each further attempt waits (`u32::MAX`: never a delay, only refusal).
    before_delay: u32,
    max: u32,
}

/// The limiter keys of a sign-in to the account `email_key` from `ip`.
struct SigninKeys {
    pair: String,
    ip: String,
    account: String,
}

impl SigninKeys {
    fn new(email_key: &str, ip: IpAddr) -> Self {
        SigninKeys {
            pair: format!("signin:pair:{ip}:{email_key}"),
            ip: format!("signin:ip:{ip}"),
            account: Self::account_key(email_key),
        }
    }

    fn account_key(email_key: &str) -> String {
        format!("signin:acct:{email_key}")
    }
}

/// Everything the identity handlers share.
#[derive(Clone)]
pub struct Identity {
    pub db: Db,
    pub passwords: Passwords,
    pub signer: Arc<Signer>,
    pub limiter: Limiter,
    pub clock: Arc<dyn Clock>,
    pub policy: Arc<Policy>,
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The key an e-mail is unique under: trimmed, lower case.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

fn check_email(field: &str, email: &str, errors: &mut Vec<FieldError>) {
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
        errors.push(FieldError::new(
            field,
            "invalid_format",
            "not an e-mail address",
        ));
    }
}

fn check_name(field: &str, name: &str, errors: &mut Vec<FieldError>) {
    let n = name.trim().chars().count();
    if n == 0 {
        errors.push(FieldError::new(field, "required", "must not be empty"));
    } else if n > 100 {
        errors.push(FieldError::new(field, "too_long", "at most 100 characters"));
    } else if name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "invalid_format",
            "no control characters",
        ));
    }
}

/// Store and organiser codes: lower-case letters, digits and dashes, up to 40.
fn check_code(field: &str, code: &str, errors: &mut Vec<FieldError>) {
    let ok = !code.is_empty()
        && code.len() <= 40
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        errors.push(FieldError::new(
            field,
            "invalid_format",
            "lower-case letters, digits and dashes, at most 40",
        ));
    }
}

pub fn user_view(u: &UserRow) -> User {
    User {
        id: u.id,
        email: u.email.clone(),
        name: u.name.clone(),
        role: Role::parse(&u.role).unwrap_or(Role::Customer),
        store: u.store_id.clone(),
        organiser: u.organiser_id.clone(),
        status: u.status.clone(),
        created_at: iso(u.created_at),
    }
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

/// A key's scopes, stored space-separated.
fn scopes_of(k: &ApiKeyRow) -> Vec<String> {
    k.scopes
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn key_view(k: &ApiKeyRow) -> ApiKey {
    ApiKey {
        id: k.id,
        name: k.name.clone(),
        prefix: format!("ck_{}", k.prefix),
        scopes: scopes_of(k),
        store: k.store_id.clone(),
        created_by: k.created_by.clone(),
        created_at: iso(k.created_at),
        expires_at: k.expires_at.map(iso),
        last_used_at: k.last_used_at.map(iso),
        revoked_at: k.revoked_at.map(iso),
    }
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the e-mail address or the password is wrong",
    )
}

fn invalid_grant(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_grant", detail)
}

/// 32 random bytes, base64url: the secret part of refresh tokens, reset tokens and API keys.
fn secret_token() -> String {
    let mut b = [0u8; 32];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the operating system's random source is available");
    B64.encode(b)
}

impl Identity {
    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Signs up a customer.
    pub async fn register(&self, r: &Registration) -> Result<User, ApiError> {
        let mut errors = Vec::new();
        check_email("email", &r.email, &mut errors);
        check_name("name", &r.name, &mut errors);
        if let Err(e) = password::check_policy("password", &r.password) {
            errors.push(e);
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let hash = self.passwords.hash(&r.password).await?;
        let now = self.now_ms();
        let row = UserRow {
            id: Uuid::now_v7(),
            email: r.email.trim().to_string(),
            email_key: email_key(&r.email),
            name: r.name.trim().to_string(),
            password_hash: Some(hash),
            role: Role::Customer.as_str().into(),
            store_id: None,
            organiser_id: None,
            status: "active".into(),
            created_at: now,
            updated_at: now,
            password_changed_at: Some(now),
        };
        self.insert_user(&row).await?;
        Ok(user_view(&row))
    }

    async fn insert_user(&self, row: &UserRow) -> Result<(), ApiError> {
        let mut tx = self.db.begin().await?;
        match store::insert_user(tx.conn(), row).await {
            Ok(()) => {}
            Err(e) if platform::db::is_unique_violation(&e) => {
                return Err(ApiError::conflict(
                    "email_taken",
                    "an account already uses this e-mail address",
                )
                .with_field(FieldError::new("email", "taken", "already in use")));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(())
    }

    /// The wait a counter imposes now: none, a growing delay after `before_delay` failures
    /// (`first_delay`, doubling), or the rest of the window after `max` failures.
    fn wait_of(&self, f: Failures, before_delay: u32, max: u32) -> Duration {
        if f.count >= max {
            return f.window_left;
        }
        if f.count < before_delay || f.count == 0 {
            return Duration::ZERO;
        }
        let doublings = (f.count - before_delay).min(20);
        let delay = self
            .policy
            .first_delay
            .saturating_mul(1 << doublings)
            .min(self.policy.failure_window);
        delay.saturating_sub(f.since_last)
    }

    /// Refuses with 429 `too_many_attempts` while any of the counters imposes a wait. Called
    /// before any password is verified: a throttled attempt costs no hashing and counts nothing.
    async fn throttled(&self, counters: &[Counter<'_>]) -> Option<ApiError> {
        let mut wait = Duration::ZERO;
        for c in counters {
            let f = self.limiter.failures(c.key).await;
            wait = wait.max(self.wait_of(f, c.before_delay, c.max));
        }
        if wait == Duration::ZERO {
            return None;
        }
        metrics::counter!("comptoir_signin_throttled_total").increment(1);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed sign-ins; wait before trying again",
        );
        e.retry_after = Some(wait.as_millis().div_ceil(1000).max(1) as u64);
        Some(e)
    }

    /// The sign-in counters of an account seen from one address: the (account, address) pair
    /// (delays, then refusal), the address (password spraying) and the account (every address
    /// together: the cap on distributed guessing).
    fn signin_counters<'a>(&self, keys: &'a SigninKeys) -> [Counter<'a>; 3] {
        let p = &self.policy;
        [
            Counter {
                key: &keys.pair,
                before_delay: p.failures_before_delay,
                max: p.max_failures_per_pair,
            },
            Counter {
                key: &keys.ip,
                before_delay: u32::MAX,
                max: p.max_failures_per_ip,
            },
            Counter {
                key: &keys.account,
                before_delay: u32::MAX,
                max: p.max_failures_per_account,
            },
        ]
    }

    async fn record_failures(&self, keys: &[&str]) {
        for k in keys {
            self.limiter
                .record_failure(k, self.policy.failure_window)
                .await;
        }
    }

    /// Signs in with e-mail and password: a new session.
    ///
    /// Throttled per (account, address), per address and per account (see [`Policy`]), all
    /// checked before the password is, with the same answers whether the account exists or not.
    pub async fn sign_in(&self, s: &SignIn, ip: IpAddr) -> Result<TokenResponse, ApiError> {
        let key = email_key(&s.email);
        if key.len() > 254 || s.password.chars().count() > password::MAX_CHARS {
            return Err(invalid_credentials());
        }
        let keys = SigninKeys::new(&key, ip);
        // parallel attempts of one (account, address) take turns: each sees the failures of
        // the ones before it
        let _turn = self.limiter.one_at_a_time(&keys.pair).await;
        if let Some(e) = self.throttled(&self.signin_counters(&keys)).await {
            return Err(e);
        }
        let user = store::user_by_email_key(&self.db, &key).await?;
        let ok = self
            .passwords
            .verify(
                &s.password,
                user.as_ref().and_then(|u| u.password_hash.as_deref()),
            )
            .await?;
        let user = match user {
            Some(u) if ok && u.status == "active" => u,
            _ => {
                metrics::counter!("comptoir_signin_failed_total").increment(1);
                self.record_failures(&[&keys.pair, &keys.ip, &keys.account])
                    .await;
                return Err(invalid_credentials());
            }
        };
        // the holder of the password: their address starts afresh, and the account's run of
        // failures is over (the address's count stays: it may be spraying other accounts)
        self.limiter.clear_failures(&keys.pair).await;
        self.limiter.clear_failures(&keys.account).await;
        self.new_session(&user).await
    }

    /// Opens a session for a user whose credentials were checked.
    pub async fn new_session(&self, user: &UserRow) -> Result<TokenResponse, ApiError> {
        let now = self.now_ms();
        let session = SessionRow {
            id: Uuid::new_v4(),
            user_id: user.id,
            created_at: now,
            expires_at: now + ms(self.policy.refresh_ttl),
            last_used_at: now,
            revoked_at: None,
            revoked_reason: None,
        };
        let refresh = format!("crt_{}", secret_token());
        let mut tx = self.db.begin().await?;
        store::insert_session(tx.conn(), &session).await?;
        store::insert_refresh(
            tx.conn(),
            &RefreshRow {
                token_hash: platform::sha256_hex(&refresh),
                session_id: session.id,
                generation: 0,
                created_at: now,
                used_at: None,
            },
        )
        .await?;
        tx.commit().await?;
        self.tokens(user, session.id, refresh, now)
    }

    fn tokens(
        &self,
        user: &UserRow,
        session: Uuid,
        refresh: String,
        now: i64,
    ) -> Result<TokenResponse, ApiError> {
        let issued = self
            .signer
            .issue(&principal_of(user), &session.to_string(), now)?;
        Ok(TokenResponse {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: refresh,
            session_id: session,
            user: user_view(user),
        })
    }

    /// Trades a refresh token for a new pair. A token used twice ends its whole session
    /// (RFC 9700 §4.14.2): whoever holds the other copy is locked out too.
    pub async fn refresh(&self, r: &RefreshRequest) -> Result<TokenResponse, ApiError> {
        let hash = platform::sha256_hex(r.refresh_token.trim());
        let now = self.now_ms();
        let mut tx = self.db.begin().await?;
        let Some(row) = store::refresh_by_hash(tx.conn(), &hash).await? else {
            return Err(invalid_grant("unknown refresh token"));
        };
        let session = store::session(tx.conn(), row.session_id)
            .await?
            .ok_or_else(|| invalid_grant("unknown session"))?;
        if store::use_refresh(tx.conn(), &hash, now).await? == 0 {
            store::revoke_session(tx.conn(), session.id, "refresh_token_reused", now).await?;
            tx.commit().await?;
            metrics::counter!("comptoir_refresh_reuse_total").increment(1);
            tracing::warn!(session = %session.id, "a rotated refresh token was reused: session ended");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "refresh_token_reused",
                "this refresh token was already used; the session has been ended for safety",
            ));
        }
        if session.revoked_at.is_some() || session.expires_at <= now {
            return Err(invalid_grant("the session has ended; sign in again"));
        }
        let user = store::user_by_id(tx.conn(), session.user_id)
            .await?
            .filter(|u| u.status == "active")
            .ok_or_else(|| invalid_grant("the session has ended; sign in again"))?;
        let refresh = format!("crt_{}", secret_token());
        store::insert_refresh(
            tx.conn(),
            &RefreshRow {
                token_hash: platform::sha256_hex(&refresh),
                session_id: session.id,
                generation: row.generation + 1,
                created_at: now,
                used_at: None,
            },
        )
        .await?;
        store::touch_session(tx.conn(), session.id, now).await?;
        tx.commit().await?;
        self.tokens(&user, session.id, refresh, now)
    }

    /// Ends the caller's session.
    pub async fn sign_out(&self, p: &Principal) -> Result<(), ApiError> {
        let Some(sid) = p.session.as_deref().and_then(|s| Uuid::parse_str(s).ok()) else {
            return Err(ApiError::bad_request(
                "no_session",
                "only a session token can sign out",
            ));
        };
        let now = self.now_ms();
        let mut tx = self.db.begin().await?;
        store::revoke_session(tx.conn(), sid, "signed_out", now).await?;
        tx.commit().await?;
        Ok(())
    }

    fn user_id_of(p: &Principal) -> Result<Uuid, ApiError> {
        if p.kind != PrincipalKind::User {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs a Comptoir account",
            ));
        }
        Uuid::parse_str(&p.subject).map_err(|_| ApiError::not_found("account"))
    }

    pub async fn me(&self, p: &Principal) -> Result<User, ApiError> {
        let id = Self::user_id_of(p)?;
        let mut conn = self.db.acquire().await?;
        let u = store::user_by_id(conn.conn(), id)
            .await?
            .ok_or_else(|| ApiError::not_found("account"))?;
        Ok(user_view(&u))
    }

    /// Changes one's own password; every session ends (sign in again).
    pub async fn change_password(&self, p: &Principal, c: &PasswordChange) -> Result<(), ApiError> {
        let id = Self::user_id_of(p)?;
        if let Err(e) = password::check_policy("new_password", &c.new_password) {
            return Err(ApiError::validation(vec![e]));
        }
        let mut conn = self.db.acquire().await?;
        let user = store::user_by_id(conn.conn(), id)
            .await?
            .ok_or_else(|| ApiError::not_found("account"))?;
        drop(conn);
        // only the session's holder gets here: its own counter, with the delays and the maximum
        // of an (account, address) pair, so strangers' sign-in failures never block it; its
        // failures also count towards the account's ceiling, which it respects
        let own = format!("pwchange:{id}");
        let account = SigninKeys::account_key(&user.email_key);
        let p = &self.policy;
        let counters = [
            Counter {
                key: &own,
                before_delay: p.failures_before_delay,
                max: p.max_failures_per_pair,
            },
            Counter {
                key: &account,
                before_delay: u32::MAX,
                max: p.max_failures_per_account,
            },
        ];
        if let Some(e) = self.throttled(&counters).await {
            return Err(e);
        }
        if !self
            .passwords
            .verify(&c.current_password, user.password_hash.as_deref())
            .await?
        {
            self.record_failures(&[&own, &account]).await;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_password",
                "the current password is wrong",
            )
            .with_field(FieldError::new(
                "current_password",
                "wrong",
                "does not match",
            )));
        }
        self.limiter.clear_failures(&own).await;
        let hash = self.passwords.hash(&c.new_password).await?;
        self.set_password(id, hash, "password_changed").await
    }

    async fn set_password(&self, id: Uuid, hash: String, reason: &str) -> Result<(), ApiError> {
        let now = self.now_ms();
        let mut tx = self.db.begin().await?;
        let mut user = store::user_by_id(tx.conn(), id)
            .await?
            .ok_or_else(|| ApiError::not_found("account"))?;
        user.password_hash = Some(hash);
        user.password_changed_at = Some(now);
        user.updated_at = now;
        store::update_user(tx.conn(), &user).await?;
        store::revoke_user_sessions(tx.conn(), id, reason, now).await?;
        store::expire_resets(tx.conn(), id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Asks for a reset link. The answer never says whether the account exists; at most a few
    /// messages per address and hour are recorded.
    pub async fn request_reset(&self, r: &ResetRequest) -> Result<(), ApiError> {
        let key = email_key(&r.email);
        if key.len() > 254 {
            return Ok(());
        }
        let Some(user) = store::user_by_email_key(&self.db, &key).await? else {
            return Ok(());
        };
        if user.status != "active" {
            return Ok(());
        }
        if self
            .limiter
            .hit(&format!("reset:{key}"), &[Quota::per_hour(5)])
            .await
            != Decision::Allow
        {
            tracing::info!("password reset requests for one address over the hourly limit");
            return Ok(());
        }
        let token = secret_token();
        let now = self.now_ms();
        let expires = now + ms(self.policy.reset_ttl);
        let payload = serde_json::json!({
            "user_id": user.id,
            "email": user.email,
            "name": user.name,
            "token": token,
            "reset_url": format!(
                "{}/account/password-reset?token={token}",
                self.policy.public_url.trim_end_matches('/')
            ),
            "expires_at": iso(expires),
        });
        let mut tx = self.db.begin().await?;
        store::expire_resets(tx.conn(), user.id, now).await?;
        store::insert_reset(
            tx.conn(),
            &platform::sha256_hex(&token),
            user.id,
            now,
            expires,
        )
        .await?;
        platform::bus::enqueue(
            tx.conn(),
            &platform::bus::Event::new(crate::SERVICE, TOPIC_PASSWORD_RESET, &payload, now),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a new password with a reset token: single use, time-limited, bound to its account.
    /// The holder of the link proved they own the address: the account's counter, its password
    /// change counter and the counter of (account, `ip`) start afresh.
    pub async fn confirm_reset(&self, r: &ResetConfirm, ip: IpAddr) -> Result<(), ApiError> {
        if let Err(e) = password::check_policy("new_password", &r.new_password) {
            return Err(ApiError::validation(vec![e]));
        }
        let hash = self.passwords.hash(&r.new_password).await?;
        let now = self.now_ms();
        let mut tx = self.db.begin().await?;
        let Some(user_id) =
            store::use_reset(tx.conn(), &platform::sha256_hex(r.token.trim()), now).await?
        else {
            return Err(ApiError::bad_request(
                "invalid_reset_token",
                "this reset link is unknown, used or expired; ask for a new one",
            ));
        };
        let mut user = store::user_by_id(tx.conn(), user_id)
            .await?
            .ok_or_else(|| ApiError::not_found("account"))?;
        user.password_hash = Some(hash);
        user.password_changed_at = Some(now);
        user.updated_at = now;
        store::update_user(tx.conn(), &user).await?;
        store::revoke_user_sessions(tx.conn(), user_id, "password_reset", now).await?;
        store::expire_resets(tx.conn(), user_id, now).await?;
        tx.commit().await?;
        let keys = SigninKeys::new(&user.email_key, ip);
        self.limiter.clear_failures(&keys.account).await;
        self.limiter.clear_failures(&keys.pair).await;
        self.limiter
            .clear_failures(&format!("pwchange:{user_id}"))
            .await;
        Ok(())
    }

    // ---- staff ---------------------------------------------------------------------------

    /// Head office creates any staff account; a store manager creates clerks of their store.
    pub async fn create_staff(
        &self,
        p: &Principal,
        s: &NewStaff,
    ) -> Result<StaffCreated, ApiError> {
        let mut errors = Vec::new();
        check_email("email", &s.email, &mut errors);
        check_name("name", &s.name, &mut errors);
        if !s.role.is_staff() {
            errors.push(FieldError::new(
                "role",
                "not_staff",
                "customers sign up themselves; integrators are API keys",
            ));
        }
        let mut store_id = s.store.clone();
        if !p.is_head_office() {
            // a store manager: clerks of their own store only
            if s.role != Role::Clerk {
                return Err(platform::authz::forbidden(perm::STAFF_MANAGE));
            }
            match (&store_id, &p.store) {
                (None, own) => store_id = own.clone(),
                (Some(x), Some(own)) if x == own => {}
                _ => return Err(ApiError::not_found("store")),
            }
        }
        if s.role.needs_store() {
            match &store_id {
                Some(code) => check_code("store", code, &mut errors),
                None => errors.push(FieldError::new(
                    "store",
                    "required",
                    "this role needs a store",
                )),
            }
        } else if store_id.is_some() && s.store.is_some() {
            errors.push(FieldError::new(
                "store",
                "not_allowed",
                "this role has no store",
            ));
        }
        let organiser = if s.role.needs_organiser() {
            match &s.organiser {
                Some(o) => {
                    check_code("organiser", o, &mut errors);
                    Some(o.clone())
                }
                None => {
                    errors.push(FieldError::new(
                        "organiser",
                        "required",
                        "this role needs an organiser",
                    ));
                    None
                }
            }
        } else {
            if s.organiser.is_some() {
                errors.push(FieldError::new(
                    "organiser",
                    "not_allowed",
                    "this role has no organiser",
                ));
            }
            None
        };
        let (password, generated) = match &s.password {
            Some(pw) => {
                if let Err(e) = password::check_policy("password", pw) {
                    errors.push(e);
                }
                (pw.clone(), false)
            }
            None => (generate_password(), true),
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let hash = self.passwords.hash(&password).await?;
        let now = self.now_ms();
        let row = UserRow {
            id: Uuid::now_v7(),
            email: s.email.trim().to_string(),
            email_key: email_key(&s.email),
            name: s.name.trim().to_string(),
            password_hash: Some(hash),
            role: s.role.as_str().into(),
            store_id: if s.role.needs_store() { store_id } else { None },
            organiser_id: organiser,
            status: "active".into(),
            created_at: now,
            updated_at: now,
            password_changed_at: Some(now),
        };
        self.insert_user(&row).await?;
        Ok(StaffCreated {
            user: user_view(&row),
            initial_password: generated.then_some(password),
        })
    }

    /// Users visible to `p`: everyone for head office, their store's for a store manager.
    pub async fn list_users(
        &self,
        p: &Principal,
        role: Option<&str>,
        store: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<UserPage, ApiError> {
        let mut errors = Vec::new();
        if let Some(r) = role
            && Role::parse(r).is_none()
        {
            errors.push(FieldError::new("role", "unknown", "not a role"));
        }
        let after = match cursor {
            Some(c) => match Uuid::parse_str(c) {
                Ok(u) => Some(u),
                Err(_) => {
                    errors.push(FieldError::new("cursor", "invalid_format", "not a cursor"));
                    None
                }
            },
            None => None,
        };
        let limit = i64::from(limit.unwrap_or(50));
        if !(1..=200).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                "out_of_range",
                "between 1 and 200",
            ));
        }
        if !errors.is_empty() {
            let mut e = ApiError::validation(errors);
            e.status = StatusCode::BAD_REQUEST;
            e.code = "invalid_query";
            return Err(e);
        }
        let store = if p.is_head_office() {
            store.map(str::to_string)
        } else {
            match (&p.store, store) {
                (Some(own), None) => Some(own.clone()),
                (Some(own), Some(s)) if s == own => Some(own.clone()),
                // another store's staff, or a manager without a store: nothing to see
                _ => {
                    return Ok(UserPage {
                        items: vec![],
                        next_cursor: None,
                    });
                }
            }
        };
        let rows = store::list_users(&self.db, store.as_deref(), role, after, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        let items: Vec<User> = rows.iter().take(limit as usize).map(user_view).collect();
        let next_cursor = if more {
            items.last().map(|u| u.id.to_string())
        } else {
            None
        };
        Ok(UserPage { items, next_cursor })
    }

    /// One user, if `p` may see them: themselves, head office, or their store's manager.
    /// Anything else is "not found", so that ids are not confirmed.
    pub async fn get_user(&self, p: &Principal, id: Uuid) -> Result<UserRow, ApiError> {
        let mut conn = self.db.acquire().await?;
        let u = store::user_by_id(conn.conn(), id)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        let visible = p.kind == PrincipalKind::User && p.subject == u.id.to_string()
            || p.is_head_office()
            || (p.has(perm::STAFF_READ)
                && u.store_id
                    .as_deref()
                    .is_some_and(|s| p.may_act_for_store(s)));
        if !visible {
            return Err(ApiError::not_found("user"));
        }
        Ok(u)
    }

    pub async fn update_user(
        &self,
        p: &Principal,
        id: Uuid,
        patch: &UserPatch,
    ) -> Result<User, ApiError> {
        let mut user = self.get_user(p, id).await?;
        let is_self = p.subject == user.id.to_string();
        if !p.is_head_office() {
            // a store manager: their store's clerks, name and status only
            let mine = user.role == Role::Clerk.as_str()
                && user
                    .store_id
                    .as_deref()
                    .is_some_and(|s| p.may_act_for_store(s));
            if !mine || is_self {
                return Err(ApiError::not_found("user"));
            }
            if patch.role.is_some() || patch.store.is_some() || patch.organiser.is_some() {
                return Err(platform::authz::forbidden(perm::STAFF_MANAGE));
            }
        }
        let mut errors = Vec::new();
        let before = (
            user.role.clone(),
            user.store_id.clone(),
            user.organiser_id.clone(),
            user.status.clone(),
        );
        if let Some(n) = &patch.name {
            check_name("name", n, &mut errors);
            user.name = n.trim().to_string();
        }
        if let Some(s) = &patch.status {
            if s != "active" && s != "disabled" {
                errors.push(FieldError::new(
                    "status",
                    "unknown",
                    "`active` or `disabled`",
                ));
            } else if is_self && s == "disabled" {
                errors.push(FieldError::new(
                    "status",
                    "self",
                    "you cannot disable yourself",
                ));
            }
            user.status = s.clone();
        }
        if let Some(r) = patch.role {
            if is_self {
                errors.push(FieldError::new(
                    "role",
                    "self",
                    "you cannot change your own role",
                ));
            }
            if !r.is_staff() && user.role != r.as_str() {
                errors.push(FieldError::new("role", "not_staff", "staff roles only"));
            }
            user.role = r.as_str().into();
        }
        if let Some(s) = &patch.store {
            check_code("store", s, &mut errors);
            user.store_id = Some(s.clone());
        }
        if let Some(o) = &patch.organiser {
            check_code("organiser", o, &mut errors);
            user.organiser_id = Some(o.clone());
        }
        let role = Role::parse(&user.role).unwrap_or(Role::Customer);
        if role.needs_store() && user.store_id.is_none() {
            errors.push(FieldError::new(
                "store",
                "required",
                "this role needs a store",
            ));
        }
        if !role.needs_store() {
            user.store_id = None;
        }
        if role.needs_organiser() && user.organiser_id.is_none() {
            errors.push(FieldError::new(
                "organiser",
                "required",
                "this role needs an organiser",
            ));
        }
        if !role.needs_organiser() {
            user.organiser_id = None;
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let now = self.now_ms();
        user.updated_at = now;
        let after = (
            user.role.clone(),
            user.store_id.clone(),
            user.organiser_id.clone(),
            user.status.clone(),
        );
        let mut tx = self.db.begin().await?;
        store::update_user(tx.conn(), &user).await?;
        if before != after {
            // tokens carry role and store: old ones must not outlive the change
            let reason = if user.status == "disabled" {
                "disabled"
            } else {
                "access_changed"
            };
            store::revoke_user_sessions(tx.conn(), user.id, reason, now).await?;
        }
        tx.commit().await?;
        Ok(user_view(&user))
    }

    // ---- API keys ------------------------------------------------------------------------

    pub async fn create_api_key(
        &self,
        p: &Principal,
        k: &NewApiKey,
    ) -> Result<ApiKeyCreated, ApiError> {
        let mut errors = Vec::new();
        check_name("name", &k.name, &mut errors);
        if k.scopes.is_empty() {
            errors.push(FieldError::new("scopes", "required", "at least one scope"));
        }
        let mut scopes: Vec<String> = Vec::new();
        for (i, s) in k.scopes.iter().enumerate() {
            if !perm::KEY_SCOPES.contains(&s.as_str()) {
                errors.push(FieldError::new(
                    format!("scopes[{i}]"),
                    "unknown",
                    format!("not a key scope; one of: {}", perm::KEY_SCOPES.join(", ")),
                ));
            } else if !p.has(s) {
                errors.push(FieldError::new(
                    format!("scopes[{i}]"),
                    "not_yours",
                    "you cannot grant a permission you do not hold",
                ));
            } else if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let store = if p.is_head_office() {
            k.store.clone()
        } else {
            match (&k.store, &p.store) {
                (None, Some(own)) => Some(own.clone()),
                (Some(x), Some(own)) if x == own => Some(own.clone()),
                _ => return Err(ApiError::not_found("store")),
            }
        };
        if let Some(s) = &store {
            check_code("store", s, &mut errors);
        }
        if let Some(d) = k.expires_in_days
            && !(1..=3650).contains(&d)
        {
            errors.push(FieldError::new(
                "expires_in_days",
                "out_of_range",
                "1 to 3650",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let now = self.now_ms();
        let prefix = platform::random_hex(8);
        let key = format!("ck_{prefix}_{}", secret_token());
        let row = ApiKeyRow {
            id: Uuid::now_v7(),
            prefix,
            secret_sha256: platform::sha256_hex(&key),
            name: k.name.trim().to_string(),
            scopes: scopes.join(" "),
            store_id: store,
            created_by: p.subject.clone(),
            created_at: now,
            expires_at: k.expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
            last_used_at: None,
            revoked_at: None,
        };
        store::insert_api_key(&self.db, &row).await?;
        Ok(ApiKeyCreated {
            key,
            api_key: key_view(&row),
        })
    }

    fn key_visible(p: &Principal, k: &ApiKeyRow) -> bool {
        p.is_head_office()
            || (p.has(perm::API_KEYS_MANAGE)
                && k.store_id
                    .as_deref()
                    .is_some_and(|s| p.may_act_for_store(s)))
    }

    pub async fn list_api_keys(&self, p: &Principal) -> Result<ApiKeyList, ApiError> {
        let rows = if p.is_head_office() {
            store::list_api_keys(&self.db, None).await?
        } else {
            match &p.store {
                Some(s) => store::list_api_keys(&self.db, Some(s)).await?,
                None => vec![],
            }
        };
        Ok(ApiKeyList {
            items: rows
                .iter()
                .filter(|k| Self::key_visible(p, k))
                .map(key_view)
                .collect(),
        })
    }

    pub async fn get_api_key(&self, p: &Principal, id: Uuid) -> Result<ApiKey, ApiError> {
        match store::api_key_by_id(&self.db, id).await? {
            Some(k) if Self::key_visible(p, &k) => Ok(key_view(&k)),
            _ => Err(ApiError::not_found("API key")),
        }
    }

    pub async fn revoke_api_key(&self, p: &Principal, id: Uuid) -> Result<(), ApiError> {
        match store::api_key_by_id(&self.db, id).await? {
            Some(k) if Self::key_visible(p, &k) => {
                store::revoke_api_key(&self.db, id, self.now_ms()).await?;
                Ok(())
            }
            _ => Err(ApiError::not_found("API key")),
        }
    }

    /// The principal of a presented API key, if it is valid now.
    pub async fn verify_api_key(&self, presented: &str) -> Result<Option<Principal>, ApiError> {
        let Some(rest) = presented.strip_prefix("ck_") else {
            return Ok(None);
        };
        let Some((prefix, _)) = rest.split_once('_') else {
            return Ok(None);
        };
        if prefix.len() != 16 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(k) = store::api_key_by_prefix(&self.db, prefix).await? else {
            return Ok(None);
        };
        let digest = platform::sha256_hex(presented);
        let same = digest.len() == k.secret_sha256.len()
            && digest
                .bytes()
                .zip(k.secret_sha256.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        let now = self.now_ms();
        if !same || k.revoked_at.is_some() || k.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        store::touch_api_key(&self.db, k.id, now).await?;
        Ok(Some(Principal {
            subject: k.id.to_string(),
            kind: PrincipalKind::ApiKey,
            role: Role::Integrator,
            store: k.store_id.clone(),
            organiser: None,
            scopes: scopes_of(&k),
            session: None,
        }))
    }

    pub async fn session_active(&self, sid: &str) -> Result<bool, ApiError> {
        let Ok(id) = Uuid::parse_str(sid) else {
            return Ok(false);
        };
        Ok(store::session_active(&self.db, id, self.now_ms()).await?)
    }
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
