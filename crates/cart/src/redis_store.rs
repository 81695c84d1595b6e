//! Carts in Redis: one JSON value per cart under `<prefix>cart:<id>`, expiring with the cart
//! (`PX` = `expires_at` − now, refreshed on every save), and an owner index
//! `<prefix>owner:<subject>` → cart id with the same TTL. Saves are a Lua compare-and-set on the
//! version (and on the owner having no other live cart), so they are atomic on the server.
//!
//! Carts that have lines are also members of the sorted set `<prefix>expiring`, scored by their
//! `expires_at` (moved by every save, left by a save without lines and by a delete): Redis's
//! TTL removes the cart itself without a word, and this set is how a purge learns that a cart
//! with lines expired (abandoned), once (`ZREMRANGEBYSCORE` is atomic across instances).
//!
//! The `Idempotency-Key`s of cart writes are hashes under
//! `<prefix>idem:<length of the scope>:<scope>:<key>` (fields `request_hash`, `state`,
//! `locked_at`, then `status`, `body`, `location`), kept 24 hours. The save script writes the
//! answer of its keyed write in the same script as the cart: both or neither.
//!
//! The scripts read the other cart of an owner by a key built from the prefix: fine on a single
//! Redis (or a primary with replicas), not on Redis Cluster.

use crate::domain::Cart;
use crate::keyed::{self, Answer, Begin, Claim, Held};
use crate::store::{CartStore, Commit, Purged, StoreError, now_ms};
use axum::http::StatusCode;
use futures_util::future::BoxFuture;
use kernel::CartId;
use kernel::Clock;
use platform::ApiError;
use redis::aio::ConnectionManager;
use std::sync::Arc;

/// A Lua function shared by the scripts that answer a keyed write: `answer(key, request hash,
/// status, body, location or '', retention ms)` marks the key done with its answer.
const ANSWER_FN: &str = r#"
local function answer(key, hash, status, body, location, retention)
  redis.call('HSET', key, 'request_hash', hash, 'state', 'done', 'status', status, 'body', body)
  if location ~= '' then
    redis.call('HSET', key, 'location', location)
  else
    redis.call('HDEL', key, 'location')
  end
  redis.call('PEXPIRE', key, retention)
end
"#;

/// KEYS: 1 cart key, 2 the set of expiring carts with lines, then the owner key (when the cart
/// has an owner), the replaced cart's key (when there is one) and the idempotency key (when the
/// save answers a keyed write), in that order. ARGV: 1 JSON, 2 expected stored version
/// (0 = absent), 3 TTL ms, 4 cart id, 5 prefix of cart keys, 6 now ms, 7 '1' when there is an
/// owner key, 8 '1' when there is a replaced cart, 9 '1' when there is an answer, 10 '1' when
/// the cart has lines, then for the answer 11 request hash, 12 status, 13 body, 14 location or
/// '', 15 retention ms.
/// Returns 1 when saved, 0 on a version conflict, -1 when the owner has another live cart; only
/// when 1 is anything written.
const SAVE_LUA: &str = r#"
local now = tonumber(ARGV[6])
local function live(raw)
  if not raw then return nil end
  local ok, doc = pcall(cjson.decode, raw)
  if not ok or type(doc) ~= 'table' then return nil end
  local exp = tonumber(doc['expires_at'])
  if not exp or exp <= now then return nil end
  return doc
end
local n = 3
local okey, rkey, ikey
if ARGV[7] == '1' then okey = KEYS[n]; n = n + 1 end
if ARGV[8] == '1' then rkey = KEYS[n]; n = n + 1 end
if ARGV[9] == '1' then ikey = KEYS[n] end
local cur = live(redis.call('GET', KEYS[1]))
local expected = tonumber(ARGV[2])
if cur then
  if tonumber(cur['version']) ~= expected then return 0 end
elseif expected ~= 0 then
  return 0
end
if okey then
  local other = redis.call('GET', okey)
  if other and other ~= ARGV[4] and live(redis.call('GET', ARGV[5] .. other)) then
    return -1
  end
  redis.call('SET', okey, ARGV[4], 'PX', ARGV[3])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
if ARGV[10] == '1' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
else
  redis.call('ZREM', KEYS[2], ARGV[4])
end
if rkey then
  redis.call('DEL', rkey)
  redis.call('ZREM', KEYS[2], string.sub(rkey, #ARGV[5] + 1))
end
if ikey then answer(ikey, ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15]) end
return 1
"#;

/// KEYS[1] idempotency key. ARGV: 1 request hash, 2 status, 3 body, 4 location or '',
/// 5 retention ms. The answer of a keyed write that saved nothing.
const RECORD_LUA: &str = r#"
answer(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
"#;

/// KEYS[1] idempotency key. ARGV: 1 request hash, 2 now ms, 3 claims locked before this are
/// stale (ms), 4 retention ms.
/// Returns {'proceed'} (claimed or taken over), {'done', status, body, location or nil},
/// {'reused'} or {'in_progress'}.
const BEGIN_LUA: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'request_hash', 'state', 'locked_at', 'status', 'body', 'location')
if not cur[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'request_hash', ARGV[1], 'state', 'in_progress', 'locked_at', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {'proceed'}
end
if cur[1] ~= ARGV[1] then return {'reused'} end
if cur[2] == 'done' then return {'done', cur[4], cur[5], cur[6]} end
if (tonumber(cur[3]) or 0) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'locked_at', ARGV[2])
  return {'proceed'}
end
return {'in_progress'}
"#;

/// KEYS[1] idempotency key. Deletes it unless it was answered.
const RELEASE_LUA: &str = r#"
if redis.call('HGET', KEYS[1], 'state') == 'in_progress' then redis.call('DEL', KEYS[1]) end
return 1
"#;

/// KEYS[1] cart key, KEYS[2] the set of expiring carts. ARGV: 1 prefix of owner keys, 2 cart
/// id. Deletes the cart, its place in the set and its owner index entry if that still points to
/// it.
const DELETE_LUA: &str = r#"
redis.call('ZREM', KEYS[2], ARGV[2])
local raw = redis.call('GET', KEYS[1])
if raw then
  local ok, doc = pcall(cjson.decode, raw)
  if ok and type(doc) == 'table' and type(doc['owner']) == 'string' then
    local okey = ARGV[1] .. doc['owner']
    if redis.call('GET', okey) == ARGV[2] then redis.call('DEL', okey) end
  end
  redis.call('DEL', KEYS[1])
end
return 1
"#;

fn retention_ms() -> u64 {
    u64::try_from(platform::idempotency::RETENTION.as_millis()).unwrap_or(u64::MAX)
}

fn redis_claim(claim: &Claim) -> Result<(&str, &str), StoreError> {
    match &claim.held {
        Held::Redis { key, request_hash } => Ok((key, request_hash)),
        Held::Sql(_) => Err(StoreError::Backend(
            "an idempotency claim made by another store".into(),
        )),
    }
}

/// Carts in Redis.
#[derive(Clone)]
pub struct RedisCartStore {
    conn: ConnectionManager,
    prefix: String,
    clock: Arc<dyn Clock>,
    save: Arc<redis::Script>,
    delete: Arc<redis::Script>,
    begin: Arc<redis::Script>,
    record: Arc<redis::Script>,
    release: Arc<redis::Script>,
}

fn redis_err(e: redis::RedisError) -> StoreError {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

impl RedisCartStore {
    /// `prefix` starts every key (e.g. `comptoir:`); `clock` is the service's clock: TTLs are
    /// `expires_at` minus its now.
    pub fn new(conn: ConnectionManager, prefix: &str, clock: Arc<dyn Clock>) -> Self {
        RedisCartStore {
            conn,
            prefix: prefix.to_string(),
            clock,
            save: Arc::new(redis::Script::new(&format!("{ANSWER_FN}{SAVE_LUA}"))),
            delete: Arc::new(redis::Script::new(DELETE_LUA)),
            begin: Arc::new(redis::Script::new(BEGIN_LUA)),
            record: Arc::new(redis::Script::new(&format!("{ANSWER_FN}{RECORD_LUA}"))),
            release: Arc::new(redis::Script::new(RELEASE_LUA)),
        }
    }

    /// Connects to `url` (`redis://host:port/db`).
    pub async fn connect(
        url: &str,
        prefix: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let client = platform::tls::current()
            .redis_client(url, "cart.redis_url")
            .map_err(StoreError::Backend)?;
        let conn =
            ConnectionManager::new(client).await.map_err(
                |e| match platform::tls::redis_tls_failure("cart.redis_url", url, &e) {
                    Some(m) => StoreError::Backend(m),
                    None => redis_err(e),
                },
            )?;
        Ok(Self::new(conn, prefix, clock))
    }

    /// The key of a cart's JSON value.
    pub fn cart_key(&self, id: CartId) -> String {
        format!("{}cart:{id}", self.prefix)
    }

    /// The sorted set of carts with lines, by expiry.
    pub fn expiring_key(&self) -> String {
        format!("{}expiring", self.prefix)
    }

    /// The key of an owner's index entry.
    pub fn owner_key(&self, owner: &str) -> String {
        format!("{}owner:{owner}", self.prefix)
    }

    /// The key of an `Idempotency-Key`'s hash: the scope's length first, so that no two
    /// (scope, key) pairs share one.
    pub fn idempotency_key(&self, scope: &str, key: &str) -> String {
        format!("{}idem:{}:{scope}:{key}", self.prefix, scope.len())
    }

    /// What every key of this store starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether Redis answers (readiness).
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// A connection, for readiness checks and tests.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn load_impl(&self, id: CartId) -> Result<Option<Cart>, StoreError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.cart_key(id))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let Some(raw) = raw else { return Ok(None) };
        let cart: Cart = serde_json::from_str(&raw)
            .map_err(|e| StoreError::Corrupt(format!("cart {id}: {e}")))?;
        // the TTL removes it a moment later; the clock decides now
        Ok((cart.expires_at > now_ms(&*self.clock)).then_some(cart))
    }

    async fn save_impl(&self, cart: &Cart, with: Commit<'_>) -> Result<(), StoreError> {
        let now = now_ms(&*self.clock);
        let json =
            serde_json::to_string(cart).map_err(|e| StoreError::Corrupt(format!("cart: {e}")))?;
        let ttl = cart.expires_at.saturating_sub(now).max(1);
        let answer = with
            .answer
            .map(|(c, a)| redis_claim(c).map(|(key, hash)| (key, hash, a)))
            .transpose()?;
        let flag = |b: bool| if b { "1" } else { "0" };
        let mut inv = self.save.prepare_invoke();
        inv.key(self.cart_key(cart.id));
        inv.key(self.expiring_key());
        if let Some(o) = &cart.owner {
            inv.key(self.owner_key(o));
        }
        if let Some(id) = with.replaces {
            inv.key(self.cart_key(id));
        }
        if let Some((key, _, _)) = answer {
            inv.key(key);
        }
        inv.arg(json)
            .arg(cart.version - 1)
            .arg(ttl)
            .arg(cart.id.to_string())
            .arg(format!("{}cart:", self.prefix))
            .arg(now)
            .arg(flag(cart.owner.is_some()))
            .arg(flag(with.replaces.is_some()))
            .arg(flag(answer.is_some()))
            .arg(flag(!cart.lines.is_empty()));
        if let Some((_, hash, a)) = answer {
            inv.arg(hash)
                .arg(a.status.as_u16())
                .arg(&a.body)
                .arg(a.location.as_deref().unwrap_or(""))
                .arg(retention_ms());
        }
        let mut conn = self.conn.clone();
        let r: i64 = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
        if r == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn begin_impl(&self, scope: &str, key: &str, hash: &str) -> Result<Begin, ApiError> {
        let now = now_ms(&*self.clock);
        let stale_ms = i64::try_from(keyed::STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
        let ikey = self.idempotency_key(scope, key);
        let mut conn = self.conn.clone();
        let found: Vec<Option<String>> = self
            .begin
            .key(&ikey)
            .arg(hash)
            .arg(now)
            .arg(now.saturating_sub(stale_ms))
            .arg(retention_ms())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let mut found = found.into_iter();
        match found.next().flatten().as_deref() {
            Some("proceed") => Ok(Begin::Proceed(Claim {
                held: Held::Redis {
                    key: ikey,
                    request_hash: hash.to_string(),
                },
            })),
            Some("done") => {
                let status = found
                    .next()
                    .flatten()
                    .and_then(|s| s.parse::<u16>().ok())
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::OK);
                let body = found.next().flatten().unwrap_or_default();
                let location = found.next().flatten();
                Ok(Begin::Replay(
                    Answer {
                        status,
                        body,
                        location,
                    }
                    .replay(),
                ))
            }
            Some("reused") => Err(keyed::reused()),
            Some("in_progress") => Err(keyed::in_progress()),
            other => Err(ApiError::internal(format!(
                "unexpected answer of the idempotency script: {other:?}"
            ))),
        }
    }

    async fn record_impl(&self, claim: &Claim, answer: &Answer) -> Result<(), StoreError> {
        let (key, hash) = redis_claim(claim)?;
        let mut conn = self.conn.clone();
        self.record
            .key(key)
            .arg(hash)
            .arg(answer.status.as_u16())
            .arg(&answer.body)
            .arg(answer.location.as_deref().unwrap_or(""))
            .arg(retention_ms())
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn release_impl(&self, claim: Claim) {
        let Held::Redis { key, .. } = claim.held else {
            tracing::warn!("cannot release an idempotency claim made by another store");
            return;
        };
        let mut conn = self.conn.clone();
        if let Err(e) = self.release.key(key).invoke_async::<i64>(&mut conn).await {
            // the claim goes stale and is taken over by a later retry
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
    }

    async fn delete_impl(&self, id: CartId) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        self.delete
            .key(self.cart_key(id))
            .key(self.expiring_key())
            .arg(format!("{}owner:", self.prefix))
            .arg(id.to_string())
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn find_by_owner_impl(&self, owner: &str) -> Result<Option<CartId>, StoreError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.owner_key(owner))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let Some(id) = raw.and_then(|s| s.parse::<CartId>().ok()) else {
            return Ok(None);
        };
        Ok(self
            .load_impl(id)
            .await?
            .filter(|c| c.owner.as_deref() == Some(owner))
            .map(|c| c.id))
    }
}

impl CartStore for RedisCartStore {
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
        // Redis removes expired carts itself (TTL); the set says which of them had lines
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let abandoned: u64 = redis::cmd("ZREMRANGEBYSCORE")
                .arg(self.expiring_key())
                .arg("-inf")
                .arg(now_ms)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            Ok(Purged {
                removed: 0,
                abandoned,
            })
        })
    }
}
