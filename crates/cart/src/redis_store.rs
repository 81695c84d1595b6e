//! Carts in Redis: one JSON value per cart under `<prefix>cart:<id>`, expiring with the cart
//! (`PX` = `expires_at` − now, refreshed on every save), and an owner index
//! `<prefix>owner:<subject>` → cart id with the same TTL. Saves are a Lua compare-and-set on the
//! version (and on the owner having no other live cart), so they are atomic on the server.
//!
//! The scripts read the other cart of an owner by a key built from the prefix: fine on a single
//! Redis (or a primary with replicas), not on Redis Cluster.

use crate::model::Cart;
use crate::store::{CartStore, StoreError, now_ms};
use futures_util::future::BoxFuture;
use kernel::Clock;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use uuid::Uuid;

/// KEYS[1] cart key, KEYS[2] owner key (only when the cart has an owner).
/// ARGV: 1 JSON, 2 expected stored version (0 = absent), 3 TTL ms, 4 cart id,
/// 5 prefix of cart keys, 6 now ms.
/// Returns 1 when saved, 0 on a version conflict, -1 when the owner has another live cart.
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
local cur = live(redis.call('GET', KEYS[1]))
local expected = tonumber(ARGV[2])
if cur then
  if tonumber(cur['version']) ~= expected then return 0 end
elseif expected ~= 0 then
  return 0
end
if #KEYS > 1 then
  local other = redis.call('GET', KEYS[2])
  if other and other ~= ARGV[4] and live(redis.call('GET', ARGV[5] .. other)) then
    return -1
  end
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"#;

/// KEYS[1] cart key. ARGV: 1 prefix of owner keys, 2 cart id.
/// Deletes the cart and its owner index entry if that still points to it.
const DELETE_LUA: &str = r#"
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

/// Carts in Redis.
#[derive(Clone)]
pub struct RedisCartStore {
    conn: ConnectionManager,
    prefix: String,
    clock: Arc<dyn Clock>,
    save: Arc<redis::Script>,
    delete: Arc<redis::Script>,
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
            save: Arc::new(redis::Script::new(SAVE_LUA)),
            delete: Arc::new(redis::Script::new(DELETE_LUA)),
        }
    }

    /// Connects to `url` (`redis://host:port/db`).
    pub async fn connect(
        url: &str,
        prefix: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Backend(e.to_string()))?;
        let conn = ConnectionManager::new(client).await.map_err(redis_err)?;
        Ok(Self::new(conn, prefix, clock))
    }

    /// The key of a cart's JSON value.
    pub fn cart_key(&self, id: Uuid) -> String {
        format!("{}cart:{id}", self.prefix)
    }

    /// The key of an owner's index entry.
    pub fn owner_key(&self, owner: &str) -> String {
        format!("{}owner:{owner}", self.prefix)
    }

    /// What every key of this store starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A connection, for readiness checks and tests.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn load_impl(&self, id: Uuid) -> Result<Option<Cart>, StoreError> {
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

    async fn save_impl(&self, cart: &Cart) -> Result<(), StoreError> {
        let now = now_ms(&*self.clock);
        let json =
            serde_json::to_string(cart).map_err(|e| StoreError::Corrupt(format!("cart: {e}")))?;
        let ttl = cart.expires_at.saturating_sub(now).max(1);
        let mut inv = self.save.prepare_invoke();
        inv.key(self.cart_key(cart.id));
        if let Some(o) = &cart.owner {
            inv.key(self.owner_key(o));
        }
        inv.arg(json)
            .arg(cart.version - 1)
            .arg(ttl)
            .arg(cart.id.to_string())
            .arg(format!("{}cart:", self.prefix))
            .arg(now);
        let mut conn = self.conn.clone();
        let r: i64 = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
        if r == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn delete_impl(&self, id: Uuid) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        self.delete
            .key(self.cart_key(id))
            .arg(format!("{}owner:", self.prefix))
            .arg(id.to_string())
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn find_by_owner_impl(&self, owner: &str) -> Result<Option<Uuid>, StoreError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.owner_key(owner))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let Some(id) = raw.and_then(|s| Uuid::parse_str(&s).ok()) else {
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
    fn load(&self, id: Uuid) -> BoxFuture<'_, Result<Option<Cart>, StoreError>> {
        Box::pin(self.load_impl(id))
    }
    fn save(&self, cart: &Cart) -> BoxFuture<'_, Result<(), StoreError>> {
        let cart = cart.clone();
        Box::pin(async move { self.save_impl(&cart).await })
    }
    fn delete(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.delete_impl(id))
    }
    fn find_by_owner(&self, owner: &str) -> BoxFuture<'_, Result<Option<Uuid>, StoreError>> {
        let owner = owner.to_string();
        Box::pin(async move { self.find_by_owner_impl(&owner).await })
    }
    fn purge_expired(&self, _now_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        // Redis removes expired carts itself (TTL)
        Box::pin(async { Ok(0) })
    }
}
