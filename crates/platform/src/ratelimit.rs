//! Rate limits and failure counters, in this process or shared through Redis.
//!
//! - [`Limiter::hit`] applies one or more quotas (e.g. 100/min and 1000/h) to a key with the
//!   generic cell rate algorithm (GCRA): a request is let through when every quota allows it,
//!   and only then counted. Denied requests learn how long to wait (`Retry-After`).
//! - [`Limiter::failures`] / [`Limiter::record_failure`] / [`Limiter::clear_failures`] count
//!   failures in a fixed window and remember when the last one happened (sign-in throttling
//!   with growing delays).
//!
//! The in-process limiter serves the one-process mode. With `rate_limit.redis_url` set, every
//! instance shares the counters through one Lua script per operation (atomic, Redis's clock).
//! If Redis stops answering, the limiter falls back to this process's counters and logs it:
//! limits get looser (per instance) but never vanish, and traffic keeps flowing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `limit` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub period: Duration,
}

impl Quota {
    pub fn per_minute(limit: u32) -> Self {
        Quota {
            limit,
            period: Duration::from_secs(60),
        }
    }
    pub fn per_hour(limit: u32) -> Self {
        Quota {
            limit,
            period: Duration::from_secs(3600),
        }
    }
    fn interval_ms(&self) -> u64 {
        (self.period.as_millis() as u64 / u64::from(self.limit.max(1))).max(1)
    }
    fn period_ms(&self) -> u64 {
        self.period.as_millis() as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny { retry_after: Duration },
}

impl Decision {
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Decision::Allow => None,
            Decision::Deny { retry_after } => {
                Some((retry_after.as_millis().div_ceil(1000) as u64).max(1))
            }
        }
    }
}

/// The failures counted under a key: how many in the current window, how long the window still
/// runs, and how long ago the last one was (all zero when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub count: u32,
    pub window_left: Duration,
    pub since_last: Duration,
}

/// A limiter: in-process, or shared through Redis.
#[derive(Clone)]
pub struct Limiter {
    local: Arc<Local>,
    redis: Option<RedisLimiter>,
}

impl Limiter {
    pub fn in_process() -> Self {
        Limiter {
            local: Arc::new(Local::default()),
            redis: None,
        }
    }

    /// A limiter shared through Redis at `url`. Connects lazily and reconnects by itself.
    pub async fn redis(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("rate_limit.redis_url: {e}"))?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| format!("cannot reach Redis for rate limits: {e}"))?;
        Ok(Limiter {
            local: Arc::new(Local::default()),
            redis: Some(RedisLimiter {
                conn,
                gcra: Arc::new(redis::Script::new(GCRA_LUA)),
                incr: Arc::new(redis::Script::new(INCR_LUA)),
                read: Arc::new(redis::Script::new(FAILURES_LUA)),
            }),
        })
    }

    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Counts one request against every quota; allowed only if all allow.
    pub async fn hit(&self, key: &str, quotas: &[Quota]) -> Decision {
        if quotas.is_empty() {
            return Decision::Allow;
        }
        if let Some(r) = &self.redis {
            match r.hit(key, quotas).await {
                Ok(d) => return d,
                Err(e) => fallback_warning(&e),
            }
        }
        self.local.hit(key, quotas, Instant::now())
    }

    /// Failures counted for `key` in the current window.
    pub async fn failures(&self, key: &str) -> Failures {
        if let Some(r) = &self.redis {
            match r.failures(key).await {
                Ok(x) => return x,
                Err(e) => fallback_warning(&e),
            }
        }
        self.local.failures(key, Instant::now())
    }

    /// Counts a failure; the window starts at the first failure and lasts `window`.
    pub async fn record_failure(&self, key: &str, window: Duration) -> u32 {
        if let Some(r) = &self.redis {
            match r.record_failure(key, window).await {
                Ok(n) => return n,
                Err(e) => fallback_warning(&e),
            }
        }
        self.local.record_failure(key, window, Instant::now())
    }

    /// Waits for the turn of `key` in this process: attempts on one key run one after the
    /// other, so that a burst of parallel attempts cannot all pass a check of failure counters
    /// before any of them records its failure. (Across instances the counters still bind, one
    /// in-flight attempt per instance.)
    pub async fn one_at_a_time(&self, key: &str) -> Turn {
        let lock = match self.local.turns.lock() {
            Ok(mut m) => m.entry(key.to_string()).or_default().clone(),
            // a poisoned map: no serialisation rather than no sign-in
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        };
        Turn {
            _guard: lock.lock_owned().await,
            key: key.to_string(),
            local: self.local.clone(),
        }
    }

    pub async fn clear_failures(&self, key: &str) {
        if let Some(r) = &self.redis {
            match r.clear(key).await {
                Ok(()) => return,
                Err(e) => fallback_warning(&e),
            }
        }
        self.local.clear(key);
    }
}

fn fallback_warning(e: &redis::RedisError) {
    metrics::counter!("comptoir_rate_limit_fallback_total").increment(1);
    tracing::warn!(error = %e, "Redis rate limiter unavailable: using this process's counters");
}

// ---- in process ------------------------------------------------------------------------------

#[derive(Default)]
struct Local {
    /// GCRA: theoretical arrival time per (key, quota index).
    tat: Mutex<HashMap<(String, usize), Instant>>,
    /// Failures: (count, end of the window, time of the last failure).
    fails: Mutex<HashMap<String, (u32, Instant, Instant)>>,
    /// One turn at a time per key (see [`Limiter::one_at_a_time`]).
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The turn of one attempt on a key: the next attempt on that key waits until it is dropped.
pub struct Turn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    key: String,
    local: Arc<Local>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Ok(mut m) = self.local.turns.lock()
            && m.get(&self.key).is_some_and(|a| Arc::strong_count(a) <= 2)
        {
            // only the map and this guard hold it: nobody waits, forget the key
            m.remove(&self.key);
        }
    }
}

const LOCAL_MAX_KEYS: usize = 100_000;

impl Local {
    fn hit(&self, key: &str, quotas: &[Quota], now: Instant) -> Decision {
        let Ok(mut map) = self.tat.lock() else {
            return Decision::Allow;
        };
        if map.len() > LOCAL_MAX_KEYS {
            map.retain(|_, tat| *tat > now);
        }
        let mut worst = Duration::ZERO;
        let mut news = Vec::with_capacity(quotas.len());
        for (i, q) in quotas.iter().enumerate() {
            let interval = Duration::from_millis(q.interval_ms());
            let tat = map
                .get(&(key.to_string(), i))
                .copied()
                .unwrap_or(now)
                .max(now);
            let new_tat = tat + interval;
            let allow_at = new_tat.checked_sub(q.period).unwrap_or(now);
            if allow_at > now {
                worst = worst.max(allow_at - now);
            }
            news.push(new_tat);
        }
        if worst > Duration::ZERO {
            return Decision::Deny { retry_after: worst };
        }
        for (i, t) in news.into_iter().enumerate() {
            map.insert((key.to_string(), i), t);
        }
        Decision::Allow
    }

    fn failures(&self, key: &str, now: Instant) -> Failures {
        let Ok(map) = self.fails.lock() else {
            return Failures::default();
        };
        match map.get(key) {
            Some((n, until, last)) if *until > now => Failures {
                count: *n,
                window_left: *until - now,
                since_last: now.saturating_duration_since(*last),
            },
            _ => Failures::default(),
        }
    }

    fn record_failure(&self, key: &str, window: Duration, now: Instant) -> u32 {
        let Ok(mut map) = self.fails.lock() else {
            return 0;
        };
        if map.len() > LOCAL_MAX_KEYS {
            map.retain(|_, (_, until, _)| *until > now);
        }
        let e = map.entry(key.to_string()).or_insert((0, now + window, now));
        if e.1 <= now {
            *e = (0, now + window, now);
        }
        e.0 += 1;
        e.2 = now;
        e.0
    }

    fn clear(&self, key: &str) {
        if let Ok(mut map) = self.fails.lock() {
            map.remove(key);
        }
    }
}

// ---- Redis -----------------------------------------------------------------------------------

/// KEYS: one per quota. ARGV: pairs (interval_ms, period_ms). Uses Redis's clock so that
/// instances with skewed clocks agree. Returns {allowed (1/0), retry_after_ms}.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local news = {}
local worst = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - period
  if allow_at > now then
    if allow_at - now > worst then worst = allow_at - now end
  end
  news[i] = {key, new_tat, period}
end
if worst > 0 then return {0, worst} end
for _, v in ipairs(news) do
  redis.call('SET', v[1], v[2], 'PX', v[3] + 1000)
end
return {1, 0}
";

/// KEYS[1]: the counter, a hash {n, last}. ARGV[1]: window in ms. Counts one failure at Redis's
/// time; the window starts with the first. Returns the new count.
const INCR_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'last', now)
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// KEYS[1]: the counter. Returns {count, window left in ms, ms since the last failure}.
const FAILURES_LUA: &str = r"
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then return {0, 0, 0} end
local v = redis.call('HMGET', KEYS[1], 'n', 'last')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local since = now - tonumber(v[2] or now)
if since < 0 then since = 0 end
return {tonumber(v[1] or 0), ttl, since}
";

#[derive(Clone)]
struct RedisLimiter {
    conn: redis::aio::ConnectionManager,
    gcra: Arc<redis::Script>,
    incr: Arc<redis::Script>,
    read: Arc<redis::Script>,
}

/// Failure counters are hashes (count and time of the last failure); the older string counters
/// lived under `fail`, so a rolling upgrade never reads one with the wrong type.
const FAIL_KIND: &str = "failh";

fn redis_key(kind: &str, key: &str) -> String {
    // keys may hold e-mail addresses: store only a digest
    format!("comptoir:{kind}:{}", &crate::sha256_hex(key)[..32])
}

impl RedisLimiter {
    async fn hit(&self, key: &str, quotas: &[Quota]) -> Result<Decision, redis::RedisError> {
        let mut inv = self.gcra.prepare_invoke();
        for (i, q) in quotas.iter().enumerate() {
            inv.key(redis_key(&format!("rl{i}"), key));
            inv.arg(q.interval_ms()).arg(q.period_ms());
        }
        let mut conn = self.conn.clone();
        let (allowed, retry_ms): (i64, i64) = inv.invoke_async(&mut conn).await?;
        Ok(if allowed == 1 {
            Decision::Allow
        } else {
            Decision::Deny {
                retry_after: Duration::from_millis(retry_ms.max(1) as u64),
            }
        })
    }

    async fn failures(&self, key: &str) -> Result<Failures, redis::RedisError> {
        let mut conn = self.conn.clone();
        let (n, ttl, since): (i64, i64, i64) = self
            .read
            .key(redis_key(FAIL_KIND, key))
            .invoke_async(&mut conn)
            .await?;
        Ok(Failures {
            count: n.clamp(0, i64::from(u32::MAX)) as u32,
            window_left: Duration::from_millis(ttl.max(0) as u64),
            since_last: Duration::from_millis(since.max(0) as u64),
        })
    }

    async fn record_failure(&self, key: &str, window: Duration) -> Result<u32, redis::RedisError> {
        let mut conn = self.conn.clone();
        self.incr
            .key(redis_key(FAIL_KIND, key))
            .arg(window.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
    }

    async fn clear(&self, key: &str) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(redis_key(FAIL_KIND, key))
            .query_async::<()>(&mut conn)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_never_says_retry_after_zero() {
        for ms in [0, 1, 999, 1000, 1001] {
            let d = Decision::Deny {
                retry_after: Duration::from_millis(ms),
            };
            let s = d.retry_after_secs().expect("a wait");
            assert!(s >= 1 && s >= ms.div_ceil(1000), "{ms} ms → {s} s");
        }
    }

    #[test]
    fn gcra_allows_the_quota_then_refuses_with_a_wait() {
        let l = Local::default();
        let t0 = Instant::now();
        let q = [Quota::per_minute(100), Quota::per_hour(1000)];
        for i in 0..100 {
            assert_eq!(l.hit("k", &q, t0), Decision::Allow, "request {i}");
        }
        match l.hit("k", &q, t0) {
            Decision::Deny { retry_after } => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1))
            }
            d => panic!("101st allowed: {d:?}"),
        }
        // another key is untouched
        assert_eq!(l.hit("other", &q, t0), Decision::Allow);
        // after 0.6 s one more request fits (100/min = one per 600 ms)
        assert_eq!(
            l.hit("k", &q, t0 + Duration::from_millis(600)),
            Decision::Allow
        );
        // at exactly the per-minute rate for 20 minutes, the hourly quota binds: its burst of
        // 1000, then one every 3.6 s
        let mut allowed = 0;
        for i in 0..2000u64 {
            if l.hit("h", &q, t0 + Duration::from_millis(600 * i)) == Decision::Allow {
                allowed += 1;
            }
        }
        assert!((1300..=1340).contains(&allowed), "hourly quota: {allowed}");
    }

    #[test]
    fn failures_count_within_a_window() {
        let l = Local::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(900);
        for i in 0..3 {
            l.record_failure("a", w, t0 + Duration::from_secs(i));
        }
        let f = l.failures("a", t0 + Duration::from_secs(5));
        assert_eq!(f.count, 3);
        assert_eq!(
            f.window_left,
            w - Duration::from_secs(5),
            "from the first failure"
        );
        assert_eq!(
            f.since_last,
            Duration::from_secs(3),
            "since the last failure"
        );
        assert_eq!(l.failures("a", t0 + w), Failures::default(), "window over");
        l.clear("a");
        assert_eq!(l.failures("a", t0).count, 0);
    }
}
