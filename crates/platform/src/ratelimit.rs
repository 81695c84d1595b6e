//! Rate limits and failure counters, in this process or shared through Redis.
//!
//! - [`Limiter::hit`] applies one or more quotas (e.g. 100/min and 1000/h) to a key with the
//!   generic cell rate algorithm (GCRA): a request is let through when every quota allows it,
//!   and only then counted. Denied requests learn how long to wait (`Retry-After`), and every
//!   [`Decision`] tells what is left of the quota closest to exhaustion (the `RateLimit-*`
//!   headers). [`Limiter::hit_each`] does the same over several keys at once (a consumer's
//!   plan and a route's own quota).
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

    /// What is left of this quota when its theoretical arrival time is `ahead_ms` past now
    /// (after the request when it was counted, before it when it was refused).
    fn standing(&self, ahead_ms: i64) -> Standing {
        let interval = self.interval_ms() as i64;
        let period = self.period_ms() as i64;
        let ahead = ahead_ms.clamp(0, period.saturating_add(interval));
        let remaining = ((period - ahead).max(0) / interval).min(i64::from(self.limit)) as u32;
        let reset_ms = if remaining == 0 {
            // nothing left: until the next request fits
            (ahead + interval - period).max(0)
        } else {
            // until the quota is whole again
            ahead
        };
        Standing {
            quota: *self,
            remaining,
            reset: Duration::from_millis(reset_ms as u64),
        }
    }
}

/// What one quota still allows a key after a [`Limiter::hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub quota: Quota,
    /// Requests that fit now.
    pub remaining: u32,
    /// Until the quota is whole again; when nothing remains, until the next request fits.
    pub reset: Duration,
}

impl Standing {
    /// `reset` in whole seconds, rounded up.
    pub fn reset_secs(&self) -> u64 {
        self.reset.as_millis().div_ceil(1000) as u64
    }
}

/// The answer of [`Limiter::hit`]: let through or not, and the quota closest to exhaustion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// How long to wait before a request fits; `None` when this one was let through.
    pub retry_after: Option<Duration>,
    /// The quota with the fewest requests left (of two with as few, the one that takes longer
    /// to reset); for a refusal, the one that refused longest. `None` when no quota applied.
    pub tightest: Option<Standing>,
}

impl Decision {
    /// Let through, with nothing known of the quotas (none applied, or none could be read).
    pub const ALLOW: Decision = Decision {
        retry_after: None,
        tightest: None,
    };

    pub fn allowed(&self) -> bool {
        self.retry_after.is_none()
    }

    /// The wait in whole seconds, never 0.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|r| (r.as_millis().div_ceil(1000) as u64).max(1))
    }

    /// The decision over `quotas`, given how far ahead of now each one's arrival time is.
    fn from_ahead(quotas: &[Quota], ahead_ms: &[i64], retry_after: Option<Duration>) -> Decision {
        let tightest = quotas
            .iter()
            .zip(ahead_ms)
            .map(|(q, a)| q.standing(*a))
            .min_by(|a, b| a.remaining.cmp(&b.remaining).then(b.reset.cmp(&a.reset)));
        Decision {
            retry_after,
            tightest,
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
    clock: Option<Arc<ManualTime>>,
}

/// A clock given to the limiter ([`Limiter::with_clock`]), read as an `Instant` in process.
struct ManualTime {
    clock: Arc<dyn kernel::Clock>,
    origin: chrono::DateTime<chrono::Utc>,
    origin_instant: Instant,
}

impl Limiter {
    pub fn in_process() -> Self {
        Limiter {
            local: Arc::new(Local::default()),
            redis: None,
            clock: None,
        }
    }

    /// Counts the quotas of [`Limiter::hit`] on `clock` rather than on this process's clock
    /// and, shared, rather than on Redis's: every limiter sharing the counters must then be
    /// given the same clock. For tests, which move time forward by hand; failure windows keep
    /// the real clocks.
    pub fn with_clock(mut self, clock: Arc<dyn kernel::Clock>) -> Self {
        self.clock = Some(Arc::new(ManualTime {
            origin: clock.now(),
            origin_instant: Instant::now(),
            clock,
        }));
        self
    }

    fn now(&self) -> Instant {
        match &self.clock {
            None => Instant::now(),
            Some(t) => {
                let since = (t.clock.now() - t.origin).to_std().unwrap_or_default();
                t.origin_instant + since
            }
        }
    }

    /// A limiter shared through Redis at `url`. Connects lazily and reconnects by itself.
    /// `rediss://` is TLS, verified against the process's trust store ([`crate::tls::current`]).
    pub async fn redis(url: &str) -> Result<Self, String> {
        Limiter::redis_with(url, &crate::tls::current()).await
    }

    /// [`Limiter::redis`] with the trust store given.
    pub async fn redis_with(url: &str, tls: &crate::tls::TlsClient) -> Result<Self, String> {
        const SETTING: &str = "rate_limit.redis_url";
        let client = tls.redis_client(url, SETTING)?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| match crate::tls::redis_tls_failure(SETTING, url, &e) {
                Some(m) => m,
                None => format!("cannot reach Redis for rate limits ({SETTING}): {e}"),
            })?;
        Ok(Limiter {
            local: Arc::new(Local::default()),
            redis: Some(RedisLimiter {
                conn,
                gcra: Arc::new(redis::Script::new(GCRA_LUA)),
                incr: Arc::new(redis::Script::new(INCR_LUA)),
                read: Arc::new(redis::Script::new(FAILURES_LUA)),
            }),
            clock: None,
        })
    }

    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Counts one request against every quota; allowed only if all allow.
    pub async fn hit(&self, key: &str, quotas: &[Quota]) -> Decision {
        self.hit_each(&[(key, quotas)]).await
    }

    /// Counts one request against the quotas of several keys at once, each key with its own
    /// counters: allowed only if every quota of every key allows it, and only then counted
    /// under every key (atomically, in process and in Redis).
    pub async fn hit_each(&self, limits: &[(&str, &[Quota])]) -> Decision {
        let counters: Vec<Counter> = limits
            .iter()
            .flat_map(|(key, quotas)| {
                quotas.iter().enumerate().map(move |(i, q)| Counter {
                    key,
                    index: i,
                    quota: *q,
                })
            })
            .collect();
        if counters.is_empty() {
            return Decision::ALLOW;
        }
        let now_ms = self
            .clock
            .as_ref()
            .map(|t| t.clock.now().timestamp_millis());
        if let Some(r) = &self.redis {
            match r.hit(&counters, now_ms).await {
                Ok(d) => return d,
                Err(e) => fallback_warning(&e),
            }
        }
        self.local.hit(&counters, self.now())
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

    /// Whether the shared counters' Redis answers (readiness); in process: always.
    pub async fn ping(&self) -> Result<(), String> {
        let Some(r) = &self.redis else {
            return Ok(());
        };
        let mut conn = r.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
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

/// One quota of one key.
struct Counter<'a> {
    key: &'a str,
    /// Its place among the key's quotas: names its counter.
    index: usize,
    quota: Quota,
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
    fn hit(&self, counters: &[Counter<'_>], now: Instant) -> Decision {
        let Ok(mut map) = self.tat.lock() else {
            return Decision::ALLOW;
        };
        if map.len() > LOCAL_MAX_KEYS {
            map.retain(|_, tat| *tat > now);
        }
        let mut worst = Duration::ZERO;
        let mut tats = Vec::with_capacity(counters.len());
        for c in counters {
            let interval = Duration::from_millis(c.quota.interval_ms());
            let tat = map
                .get(&(c.key.to_string(), c.index))
                .copied()
                .unwrap_or(now)
                .max(now);
            let allow_at = (tat + interval).checked_sub(c.quota.period).unwrap_or(now);
            if allow_at > now {
                worst = worst.max(allow_at - now);
            }
            tats.push(tat);
        }
        let allowed = worst == Duration::ZERO;
        if allowed {
            for (c, tat) in counters.iter().zip(tats.iter_mut()) {
                *tat += Duration::from_millis(c.quota.interval_ms());
                map.insert((c.key.to_string(), c.index), *tat);
            }
        }
        let ahead: Vec<i64> = tats
            .iter()
            .map(|t| t.saturating_duration_since(now).as_millis() as i64)
            .collect();
        let quotas: Vec<Quota> = counters.iter().map(|c| c.quota).collect();
        Decision::from_ahead(&quotas, &ahead, (!allowed).then_some(worst))
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

/// KEYS: one per quota. ARGV[1]: now in ms, or empty for Redis's clock (so that instances
/// with skewed clocks agree); then pairs (interval_ms, period_ms). Returns {allowed (1/0),
/// retry_after_ms, then per quota how far its arrival time is ahead of now, in ms}.
const GCRA_LUA: &str = r"
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local tats = {}
local worst = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local period = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  tats[i] = tat
  local allow_at = tat + interval - period
  if allow_at - now > worst then worst = allow_at - now end
end
local out = {0, worst}
if worst == 0 then out[1] = 1 end
for i, key in ipairs(KEYS) do
  local tat = tats[i]
  if worst == 0 then
    tat = tat + tonumber(ARGV[2 * i])
    redis.call('SET', key, tat, 'PX', tonumber(ARGV[2 * i + 1]) + 1000)
  end
  out[2 + i] = tat - now
end
return out
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
    async fn hit(
        &self,
        counters: &[Counter<'_>],
        now_ms: Option<i64>,
    ) -> Result<Decision, redis::RedisError> {
        let mut inv = self.gcra.prepare_invoke();
        inv.arg(now_ms.map(|n| n.to_string()).unwrap_or_default());
        for c in counters {
            inv.key(redis_key(&format!("rl{}", c.index), c.key));
            inv.arg(c.quota.interval_ms()).arg(c.quota.period_ms());
        }
        let mut conn = self.conn.clone();
        let out: Vec<i64> = inv.invoke_async(&mut conn).await?;
        let (Some(&allowed), Some(&retry_ms), ahead) = (out.first(), out.get(1), out.get(2..))
        else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "the rate-limit script answered too little",
            )));
        };
        let quotas: Vec<Quota> = counters.iter().map(|c| c.quota).collect();
        let retry_after = (allowed != 1).then(|| Duration::from_millis(retry_ms.max(1) as u64));
        Ok(Decision::from_ahead(
            &quotas,
            ahead.unwrap_or_default(),
            retry_after,
        ))
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

    fn hit(l: &Local, key: &str, quotas: &[Quota], now: Instant) -> Decision {
        let counters: Vec<Counter> = quotas
            .iter()
            .enumerate()
            .map(|(index, quota)| Counter {
                key,
                index,
                quota: *quota,
            })
            .collect();
        l.hit(&counters, now)
    }

    #[test]
    fn a_refusal_never_says_retry_after_zero() {
        for ms in [0, 1, 999, 1000, 1001] {
            let d = Decision {
                retry_after: Some(Duration::from_millis(ms)),
                tightest: None,
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
            assert!(hit(&l, "k", &q, t0).allowed(), "request {i}");
        }
        let d = hit(&l, "k", &q, t0);
        let retry_after = d.retry_after.expect("the 101st is refused");
        assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
        // another key is untouched
        assert!(hit(&l, "other", &q, t0).allowed());
        // after 0.6 s one more request fits (100/min = one per 600 ms)
        assert!(hit(&l, "k", &q, t0 + Duration::from_millis(600)).allowed());
        // at exactly the per-minute rate for 20 minutes, the hourly quota binds: its burst of
        // 1000, then one every 3.6 s
        let mut allowed = 0;
        for i in 0..2000u64 {
            if hit(&l, "h", &q, t0 + Duration::from_millis(600 * i)).allowed() {
                allowed += 1;
            }
        }
        assert!((1300..=1340).contains(&allowed), "hourly quota: {allowed}");
    }

    #[test]
    fn the_decision_tells_what_is_left_of_the_tightest_quota() {
        let l = Local::default();
        let t0 = Instant::now();
        let q = [Quota::per_minute(100), Quota::per_hour(1000)];
        let first = hit(&l, "k", &q, t0).tightest.expect("a quota");
        assert_eq!(first.quota, q[0], "99 of the minute < 999 of the hour");
        assert_eq!(first.remaining, 99);
        assert_eq!(
            first.reset,
            Duration::from_millis(600),
            "whole again in 0.6 s"
        );
        for _ in 1..99 {
            hit(&l, "k", &q, t0);
        }
        let last = hit(&l, "k", &q, t0);
        assert!(last.allowed());
        let s = last.tightest.expect("a quota");
        assert_eq!((s.remaining, s.reset), (0, Duration::from_millis(600)));
        let refused = hit(&l, "k", &q, t0);
        let s = refused.tightest.expect("a quota");
        assert_eq!(s.remaining, 0);
        assert_eq!(
            Some(s.reset),
            refused.retry_after,
            "reset = when one more fits"
        );
        // 30 s later: half the minute has come back, and the hour still counts 100
        let d = hit(&l, "k", &q, t0 + Duration::from_secs(30));
        let s = d.tightest.expect("a quota");
        assert_eq!((s.quota, s.remaining), (q[0], 49));
        assert_eq!(
            s.reset,
            Duration::from_secs(30) + Duration::from_millis(600)
        );
        // a limit that does not divide the period: never more than the limit left
        let odd = [Quota {
            limit: 7,
            period: Duration::from_secs(60),
        }];
        let s = hit(&l, "odd", &odd, t0).tightest.expect("a quota");
        assert_eq!(s.remaining, 6);
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
