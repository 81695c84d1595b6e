//! One's own account: sign-up, the account itself, password change and reset (the link goes
//! through the outbox to the notification service).

use super::{Error, Identity, Result, TOPIC_PASSWORD_RESET, ms, secret_token};
use crate::domain::{Counter, SigninKeys, check_email, check_name, email_key, iso};
use crate::http::wire::{
    PasswordChange, Registration, ResetConfirm, ResetRequest, User, user_view,
};
use crate::password;
use crate::store::{self, UserRow};
use platform::authz::{Principal, PrincipalKind, Role};
use platform::ratelimit::Quota;
use std::net::IpAddr;
use uuid::Uuid;

impl Identity {
    /// Signs up a customer.
    pub async fn register(&self, r: &Registration) -> Result<User> {
        let mut errors = Vec::new();
        check_email("email", &r.email, &mut errors);
        check_name("name", &r.name, &mut errors);
        if let Err(e) = password::check_policy("password", &r.password) {
            errors.push(e);
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
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
        metrics::counter!("comptoir_customers_registered_total").increment(1);
        Ok(user_view(&row))
    }

    pub async fn me(&self, p: &Principal) -> Result<User> {
        let id = Self::user_id_of(p)?;
        let mut conn = self.db.acquire().await?;
        let u = store::user_by_id(conn.conn(), id)
            .await?
            .ok_or_else(|| Error::NotFound("account"))?;
        Ok(user_view(&u))
    }

    fn user_id_of(p: &Principal) -> Result<Uuid> {
        if p.kind != PrincipalKind::User {
            return Err(Error::NotAnAccount);
        }
        Uuid::parse_str(&p.subject).map_err(|_| Error::NotFound("account"))
    }

    /// Changes one's own password; every session ends (sign in again).
    pub async fn change_password(&self, p: &Principal, c: &PasswordChange) -> Result<()> {
        let id = Self::user_id_of(p)?;
        if let Err(e) = password::check_policy("new_password", &c.new_password) {
            return Err(Error::Invalid(vec![e]));
        }
        let mut conn = self.db.acquire().await?;
        let user = store::user_by_id(conn.conn(), id)
            .await?
            .ok_or_else(|| Error::NotFound("account"))?;
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
            return Err(Error::WrongPassword);
        }
        self.limiter.clear_failures(&own).await;
        let hash = self.passwords.hash(&c.new_password).await?;
        self.set_password(id, hash, "password_changed").await
    }

    async fn set_password(&self, id: Uuid, hash: String, reason: &str) -> Result<()> {
        let now = self.now_ms();
        let mut tx = self.db.begin().await?;
        let mut user = store::user_by_id(tx.conn(), id)
            .await?
            .ok_or_else(|| Error::NotFound("account"))?;
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
    pub async fn request_reset(&self, r: &ResetRequest) -> Result<()> {
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
        if !self
            .limiter
            .hit(&format!("reset:{key}"), &[Quota::per_hour(5)])
            .await
            .allowed()
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
    pub async fn confirm_reset(&self, r: &ResetConfirm, ip: IpAddr) -> Result<()> {
        if let Err(e) = password::check_policy("new_password", &r.new_password) {
            return Err(Error::Invalid(vec![e]));
        }
        let hash = self.passwords.hash(&r.new_password).await?;
        let now = self.now_ms();
        let mut tx = self.db.begin().await?;
        let Some(user_id) =
            store::use_reset(tx.conn(), &platform::sha256_hex(r.token.trim()), now).await?
        else {
            return Err(Error::InvalidResetToken);
        };
        let mut user = store::user_by_id(tx.conn(), user_id)
            .await?
            .ok_or_else(|| Error::NotFound("account"))?;
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
}
