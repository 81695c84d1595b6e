//! A small in-process cache of rendered read responses. Entries expire after a TTL; every write
//! through this process bumps a generation that invalidates all entries at once, so a writer
//! always reads its own writes. Other instances see a change after at most the TTL.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MAX_ENTRIES: usize = 20_000;

#[derive(Debug)]
pub struct ResponseCache {
    ttl: Duration,
    generation: AtomicU64,
    entries: RwLock<HashMap<String, Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    generation: u64,
    at: Instant,
    body: Bytes,
}

impl ResponseCache {
    pub fn new(ttl: Duration) -> Self {
        ResponseCache {
            ttl,
            generation: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        if !self.enabled() {
            return None;
        }
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.read().ok()?;
        let e = entries.get(key)?;
        (e.generation == generation && e.at.elapsed() < self.ttl).then(|| e.body.clone())
    }

    /// Stores `body` if no write happened since `generation` was read.
    pub fn put(&self, key: String, generation: u64, body: Bytes) {
        if !self.enabled() || generation != self.generation.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                let ttl = self.ttl;
                entries.retain(|_, e| e.generation == generation && e.at.elapsed() < ttl);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(
                key,
                Entry {
                    generation,
                    at: Instant::now(),
                    body,
                },
            );
        }
    }

    /// The generation to pass to [`put`](Self::put), read before the data is loaded.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Forgets everything; called after every write.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_between_load_and_put_is_not_cached() {
        let c = ResponseCache::new(Duration::from_secs(60));
        let g = c.generation();
        c.invalidate(); // a write lands while the reader was loading
        c.put("k".into(), g, Bytes::from_static(b"stale"));
        assert_eq!(c.get("k"), None);
        let g = c.generation();
        c.put("k".into(), g, Bytes::from_static(b"fresh"));
        assert_eq!(c.get("k"), Some(Bytes::from_static(b"fresh")));
        c.invalidate();
        assert_eq!(c.get("k"), None);
    }

    #[test]
    fn zero_ttl_disables() {
        let c = ResponseCache::new(Duration::ZERO);
        c.put("k".into(), c.generation(), Bytes::from_static(b"x"));
        assert_eq!(c.get("k"), None);
    }
}
