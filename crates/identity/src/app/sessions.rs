//! Sessions: sign-in with e-mail and password (throttled per account and address), the tokens of a
//! session, refresh rotation with reuse detection, sign-out.

use super::{Error, Identity, Result, ms, principal_of, secret_token};
use crate::domain::{SigninKeys, email_key};
use crate::http::wire::{RefreshRequest, SignIn, TokenResponse, user_view};
use crate::password;
use crate::store::{self, RefreshRow, SessionRow, UserRow};
use platform::authz::Principal;
use std::net::IpAddr;
use uuid::Uuid;

impl Identity {
    /// Signs in with e-mail and password: a new session.
    ///
    /// Throttled per (account, address), per address and per account (see [`Policy`](crate::domain::Policy)), all
    /// checked before the password is, with the same answers whether the account exists or not.
    pub async fn sign_in(&self, s: &SignIn, ip: IpAddr) -> Result<TokenResponse> {
        let key = email_key(&s.email);
        if key.len() > 254 || s.password.chars().count() > password::MAX_CHARS {
            return Err(Error::InvalidCredentials);
        }
        let keys = SigninKeys::new(&key, ip);
        // parallel attempts of one (account, address) take turns: each sees the failures of
        // the ones before it
        let _turn = self.limiter.one_at_a_time(&keys.pair).await;
        if let Some(e) = self.throttled(&keys.counters(&self.policy)).await {
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
                return Err(Error::InvalidCredentials);
            }
        };
        // the holder of the password: their address starts afresh, and the account's run of
        // failures is over (the address's count stays: it may be spraying other accounts)
        self.limiter.clear_failures(&keys.pair).await;
        self.limiter.clear_failures(&keys.account).await;
        let tokens = self.new_session(&user).await?;
        metrics::counter!("comptoir_signins_total").increment(1);
        Ok(tokens)
    }

    /// Opens a session for a user whose credentials were checked.
    pub async fn new_session(&self, user: &UserRow) -> Result<TokenResponse> {
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
    ) -> Result<TokenResponse> {
        let issued = self
            .signer
            .issue(&principal_of(user), &session.to_string(), now)?;
        Ok(TokenResponse {
            access_token: issued.token,
            token_type: "Bearer".into(),
            expires_in: issued.expires_in,
            refresh_token: refresh,
            session_id: session,
            user: user_view(user),
        })
    }

    /// Trades a refresh token for a new pair. A token used twice ends its whole session
    /// (RFC 9700 §4.14.2): whoever holds the other copy is locked out too.
    pub async fn refresh(&self, r: &RefreshRequest) -> Result<TokenResponse> {
        let hash = platform::sha256_hex(r.refresh_token.trim());
        let now = self.now_ms();
        let mut tx = self.db.begin().await?;
        let Some(row) = store::refresh_by_hash(tx.conn(), &hash).await? else {
            return Err(Error::InvalidGrant("unknown refresh token"));
        };
        let session = store::session(tx.conn(), row.session_id)
            .await?
            .ok_or_else(|| Error::InvalidGrant("unknown session"))?;
        if store::use_refresh(tx.conn(), &hash, now).await? == 0 {
            store::revoke_session(tx.conn(), session.id, "refresh_token_reused", now).await?;
            tx.commit().await?;
            metrics::counter!("comptoir_refresh_reuse_total").increment(1);
            tracing::warn!(session = %session.id, "a rotated refresh token was reused: session ended");
            return Err(Error::RefreshTokenReused);
        }
        if session.revoked_at.is_some() || session.expires_at <= now {
            return Err(Error::InvalidGrant("the session has ended; sign in again"));
        }
        let user = store::user_by_id(tx.conn(), session.user_id)
            .await?
            .filter(|u| u.status == "active")
            .ok_or_else(|| Error::InvalidGrant("the session has ended; sign in again"))?;
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
    pub async fn sign_out(&self, p: &Principal) -> Result<()> {
        let Some(sid) = p.session.as_deref().and_then(|s| Uuid::parse_str(s).ok()) else {
            return Err(Error::NoSession);
        };
        let now = self.now_ms();
        let mut tx = self.db.begin().await?;
        store::revoke_session(tx.conn(), sid, "signed_out", now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn session_active(&self, sid: &str) -> Result<bool> {
        let Ok(id) = Uuid::parse_str(sid) else {
            return Ok(false);
        };
        Ok(store::session_active(&self.db, id, self.now_ms()).await?)
    }
}
