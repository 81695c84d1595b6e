//! Where carts live. One trait, two backends that pass the same suite:
//! - [`SqlCartStore`]: the service's own SQLite or PostgreSQL database (embedded default);
//! - [`crate::redis_store::RedisCartStore`]: Redis, for production (carts are hot, short-lived
//!   and need no joins).
//!
//! A cart is read and written whole. [`CartStore::save`] is a compare-and-set on the version, so
//! two concurrent changes never overwrite each other: the loser gets [`StoreError::Conflict`],
//! reloads and tries again (see [`crate::Carts`]). An expired cart is gone for every reader, even
//! before it is physically removed.
//!
//! The store also keeps the `Idempotency-Key`s of cart writes ([`crate::keyed`]): a save can carry
//! the answer of the keyed write it belongs to, and a guest cart it replaces (a merge), and
//! writes all of it or nothing.

use crate::domain::{Cart, Line};
use crate::keyed::{Answer, Begin, Claim, Held};
use futures_util::future::BoxFuture;
use kernel::CartId;
use kernel::Clock;
use platform::db::{Db, Tx};
use platform::idempotency::{self, Idempotency};
use platform::{ApiError, db_run, tx_run};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stored version is not the one the change was based on (or the owner already has
    /// another cart): reload and retry.
    #[error("the cart changed meanwhile")]
    Conflict,
    /// The backend does not answer.
    #[error("the cart store is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("corrupt cart: {0}")]
    Corrupt(String),
    #[error("cart store: {0}")]
    Backend(String),
}

/// What a save writes besides the cart, in the same transaction or script.
#[derive(Clone, Copy, Default)]
pub struct Commit<'a> {
    /// The answer of the keyed write the save belongs to, stored for its retries.
    pub answer: Option<(&'a Claim, &'a Answer)>,
    /// A cart this one replaces (a guest cart merged into it): removed.
    pub replaces: Option<CartId>,
}

/// Where carts are kept.
pub trait CartStore: Send + Sync {
    /// The cart, `None` when it does not exist or has expired.
    fn load(&self, id: CartId) -> BoxFuture<'_, Result<Option<Cart>, StoreError>>;
    /// Saves if the stored version equals `cart.version - 1` (or absent for version 1): optimistic
    /// concurrency; Err(StoreError::Conflict) otherwise. Also a conflict: giving an owner a second
    /// cart. The cart lives until `cart.expires_at`. What `with` names is written with the cart,
    /// atomically: on any error none of it is.
    fn save<'a>(
        &'a self,
        cart: &'a Cart,
        with: Commit<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Claims `key` (in the caller's `scope`) for the request `request_hash`, or says how to
    /// answer instead: the stored answer, or (as an error) 422 `idempotency_key_reused`, 409
    /// `idempotency_in_progress`.
    fn begin<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
        request_hash: &'a str,
    ) -> BoxFuture<'a, Result<Begin, ApiError>>;
    /// Stores the answer of a keyed write that saved nothing (the cart was already so).
    fn record<'a>(
        &'a self,
        claim: &'a Claim,
        answer: &'a Answer,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Gives a claim up after a failure, so that a retry runs again. A claim that was answered
    /// stays answered. Errors are logged: the claim is then taken over once stale.
    fn release(&self, claim: Claim) -> BoxFuture<'_, ()>;
    /// Removes the cart (nothing happens when it does not exist).
    fn delete(&self, id: CartId) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The id of the owner's unexpired cart.
    fn find_by_owner(&self, owner: &str) -> BoxFuture<'_, Result<Option<CartId>, StoreError>>;
    /// Removes expired carts (Redis: its TTL does it) and says how many of them still had
    /// lines, each once whichever instance purges.
    fn purge_expired(&self, now_ms: i64) -> BoxFuture<'_, Result<Purged, StoreError>>;
}

/// What [`CartStore::purge_expired`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Carts this purge deleted (0 on Redis, whose TTL deletes them).
    pub removed: u64,
    /// Expired carts that still had lines: abandoned, counted once.
    pub abandoned: u64,
}

pub(crate) fn now_ms(clock: &dyn Clock) -> i64 {
    clock.now().timestamp_millis()
}

// ---- SQL ------------------------------------------------------------------------------------------

/// Carts in the service's SQL database (table `carts`, lines as a JSON text column), and the
/// keys of keyed cart writes in its `idempotency_keys` table ([`platform::idempotency`]).
#[derive(Clone)]
pub struct SqlCartStore {
    pub db: Db,
    clock: Arc<dyn Clock>,
    idempotency: Idempotency,
}

fn sql_claim(claim: &Claim) -> Result<&idempotency::Claim, StoreError> {
    match &claim.held {
        Held::Sql(c) => Ok(c),
        Held::Redis { .. } => Err(StoreError::Backend(
            "an idempotency claim made by another store".into(),
        )),
    }
}

/// Stores `answer` for `claim` inside `tx`.
async fn complete(tx: &mut Tx, claim: &Claim, answer: &Answer) -> Result<(), StoreError> {
    sql_claim(claim)?
        .complete(
            tx,
            answer.status,
            "application/json",
            answer.body.as_bytes(),
            answer.location.as_deref(),
        )
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct CartRow {
    id: uuid::Uuid,
    owner: Option<String>,
    currency: String,
    lines: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
}

impl CartRow {
    fn into_cart(self) -> Result<Cart, StoreError> {
        let lines: Vec<Line> = serde_json::from_str(&self.lines)
            .map_err(|e| StoreError::Corrupt(format!("lines of {}: {e}", self.id)))?;
        let currency = kernel::Currency::parse(&self.currency)
            .map_err(|e| StoreError::Corrupt(format!("currency of {}: {e}", self.id)))?;
        Ok(Cart {
            id: CartId::from_uuid(self.id),
            owner: self.owner,
            currency,
            lines,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
        })
    }
}

impl SqlCartStore {
    /// `clock` decides what has expired; give the service's clock.
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        SqlCartStore {
            idempotency: Idempotency::new(db.clone()).with_stale_after(crate::keyed::STALE_AFTER),
            db,
            clock,
        }
    }

    async fn load_impl(&self, id: CartId) -> Result<Option<Cart>, StoreError> {
        let now = now_ms(&*self.clock);
        let row: Option<CartRow> = db_run!(&self.db, |p| sqlx::query_as(
            "SELECT id, owner, currency, lines, version, created_at, updated_at, expires_at \
             FROM carts WHERE id = $1 AND expires_at > $2"
        )
        .bind(id.uuid())
        .bind(now)
        .fetch_optional(p)
        .await)?;
        row.map(CartRow::into_cart).transpose()
    }

    async fn save_impl(&self, cart: &Cart, with: Commit<'_>) -> Result<(), StoreError> {
        let now = now_ms(&*self.clock);
        let lines = serde_json::to_string(&cart.lines)
            .map_err(|e| StoreError::Corrupt(format!("lines: {e}")))?;
        let mut tx = self.db.begin().await?;
        // An expired cart is gone: clear what is left of it, and of the owner's expired cart,
        // so that neither blocks this write.
        tx_run!(&mut tx, |c| sqlx::query(
            "DELETE FROM carts WHERE (id = $1 OR owner = $2) AND expires_at <= $3"
        )
        .bind(cart.id.uuid())
        .bind(cart.owner.as_deref())
        .bind(now)
        .execute(c)
        .await
        .map(|_| ()))?;
        let written = if cart.version == 1 {
            tx_run!(&mut tx, |c| sqlx::query(
                "INSERT INTO carts (id, owner, currency, lines, version, created_at, updated_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            )
            .bind(cart.id.uuid())
            .bind(cart.owner.as_deref())
            .bind(cart.currency.code())
            .bind(&lines)
            .bind(cart.version)
            .bind(cart.created_at)
            .bind(cart.updated_at)
            .bind(cart.expires_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        } else {
            tx_run!(&mut tx, |c| sqlx::query(
                "UPDATE carts SET owner = $1, currency = $2, lines = $3, version = $4, \
                 updated_at = $5, expires_at = $6 WHERE id = $7 AND version = $8"
            )
            .bind(cart.owner.as_deref())
            .bind(cart.currency.code())
            .bind(&lines)
            .bind(cart.version)
            .bind(cart.updated_at)
            .bind(cart.expires_at)
            .bind(cart.id.uuid())
            .bind(cart.version - 1)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        };
        match written {
            Ok(1) => {
                if let Err(e) = self.commit_with(&mut tx, with).await {
                    let _ = tx.rollback().await;
                    return Err(e);
                }
                tx.commit().await?;
                Ok(())
            }
            Ok(_) => {
                let _ = tx.rollback().await;
                Err(StoreError::Conflict)
            }
            Err(e) if platform::db::is_unique_violation(&e) => {
                let _ = tx.rollback().await;
                Err(StoreError::Conflict)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e.into())
            }
        }
    }

    /// The rest of a save, in its transaction.
    async fn commit_with(&self, tx: &mut Tx, with: Commit<'_>) -> Result<(), StoreError> {
        if let Some(id) = with.replaces {
            tx_run!(tx, |c| sqlx::query("DELETE FROM carts WHERE id = $1")
                .bind(id.uuid())
                .execute(c)
                .await
                .map(|_| ()))?;
        }
        if let Some((claim, answer)) = with.answer {
            complete(tx, claim, answer).await?;
        }
        Ok(())
    }

    async fn begin_impl(&self, scope: &str, key: &str, hash: &str) -> Result<Begin, ApiError> {
        Ok(match self.idempotency.begin(scope, key, hash).await? {
            idempotency::Begin::Proceed(c) => Begin::Proceed(Claim { held: Held::Sql(c) }),
            idempotency::Begin::Replay(r) => Begin::Replay(r),
        })
    }

    async fn record_impl(&self, claim: &Claim, answer: &Answer) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        if let Err(e) = complete(&mut tx, claim, answer).await {
            let _ = tx.rollback().await;
            return Err(e);
        }
        Ok(tx.commit().await?)
    }

    async fn release_impl(&self, claim: Claim) {
        match claim.held {
            Held::Sql(c) => c.release(&self.idempotency).await,
            Held::Redis { .. } => {
                tracing::warn!("cannot release an idempotency claim made by another store")
            }
        }
    }

    async fn delete_impl(&self, id: CartId) -> Result<(), StoreError> {
        db_run!(&self.db, |p| sqlx::query("DELETE FROM carts WHERE id = $1")
            .bind(id.uuid())
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    async fn find_by_owner_impl(&self, owner: &str) -> Result<Option<CartId>, StoreError> {
        let now = now_ms(&*self.clock);
        Ok(db_run!(&self.db, |p| sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT id FROM carts WHERE owner = $1 AND expires_at > $2"
        )
        .bind(owner)
        .bind(now)
        .fetch_optional(p)
        .await)?
        .map(CartId::from_uuid))
    }

    async fn purge_impl(&self, now_ms: i64) -> Result<Purged, StoreError> {
        // one statement: a cart is deleted and judged by the same row version
        let had_lines: Vec<i32> = db_run!(&self.db, |p| sqlx::query_scalar(
            "DELETE FROM carts WHERE expires_at <= $1 \
             RETURNING CASE WHEN lines = '[]' THEN 0 ELSE 1 END"
        )
        .bind(now_ms)
        .fetch_all(p)
        .await)?;
        Ok(Purged {
            removed: had_lines.len() as u64,
            abandoned: had_lines.iter().filter(|x| **x == 1).count() as u64,
        })
    }
}

impl CartStore for SqlCartStore {
    fn load(&self, id: CartId) -> BoxFuture<'_, Result<Option<Cart>, StoreError>> {
        Box::pin(self.load_impl(id))
    }
    fn save<'a>(
        &'a self,
        cart: &'a Cart,
        with: Commit<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.save_impl(cart, with))
    }
    fn begin<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
        request_hash: &'a str,
    ) -> BoxFuture<'a, Result<Begin, ApiError>> {
        Box::pin(self.begin_impl(scope, key, request_hash))
    }
    fn record<'a>(
        &'a self,
        claim: &'a Claim,
        answer: &'a Answer,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.record_impl(claim, answer))
    }
    fn release(&self, claim: Claim) -> BoxFuture<'_, ()> {
        Box::pin(self.release_impl(claim))
    }
    fn delete(&self, id: CartId) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.delete_impl(id))
    }
    fn find_by_owner(&self, owner: &str) -> BoxFuture<'_, Result<Option<CartId>, StoreError>> {
        let owner = owner.to_string();
        Box::pin(async move { self.find_by_owner_impl(&owner).await })
    }
    fn purge_expired(&self, now_ms: i64) -> BoxFuture<'_, Result<Purged, StoreError>> {
        Box::pin(self.purge_impl(now_ms))
    }
}
