//! Whole-page cache for anonymous visitors of public pages (home, categories, search, product).
//!
//! Such a page depends only on its URL and on the visitor's CSRF token. It is rendered once with
//! a slot in place of the token; each visitor gets a copy with their own token written in. An
//! entry lives `TTL` (the stock shown is at most that much older than the read model's), and
//! every back-office write clears the cache with the read model. Signed-in visitors and visitors
//! with a cart always get a fresh render.

use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Stands for the visitor's CSRF token in a cached page.
pub const TOKEN_SLOT: &str =
    "csrf-slot-3f1c9a7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d";
pub const TTL: Duration = Duration::from_secs(2);
const MAX_ENTRIES: usize = 4096;
pub const MAX_PAGE_BYTES: usize = 512 * 1024;

/// A cached page, cut where the visitor's token goes.
pub struct Cached {
    parts: Vec<Bytes>,
    len: usize,
}

impl Cached {
    fn new(html: &str) -> Cached {
        let parts: Vec<Bytes> = html
            .split(TOKEN_SLOT)
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect();
        let len = parts.iter().map(Bytes::len).sum();
        Cached { parts, len }
    }

    /// The page with `token` in every slot.
    pub fn fill(&self, token: &str) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len + token.len() * self.parts.len());
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(token.as_bytes());
            }
            out.extend_from_slice(p);
        }
        out.freeze()
    }
}

type Entry = (Instant, Arc<Cached>);

#[derive(Default)]
pub struct PageCache {
    map: RwLock<HashMap<String, Entry>>,
}

impl PageCache {
    pub fn get(&self, key: &str) -> Option<Arc<Cached>> {
        let g = self.map.read().ok()?;
        let (at, page) = g.get(key)?;
        (at.elapsed() < TTL).then(|| page.clone())
    }

    pub fn put(&self, key: String, html: &str) {
        if html.len() > MAX_PAGE_BYTES {
            return;
        }
        let page = Arc::new(Cached::new(html));
        if let Ok(mut g) = self.map.write() {
            if g.len() >= MAX_ENTRIES {
                g.retain(|_, (at, _)| at.elapsed() < TTL);
                if g.len() >= MAX_ENTRIES {
                    g.clear();
                }
            }
            g.insert(key, (Instant::now(), page));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut g) = self.map.write() {
            g.clear();
        }
    }
}

/// Whether this GET shows a public page the same to every anonymous visitor.
pub fn cacheable_path(path: &str) -> bool {
    let rest = match path.get(..4) {
        Some("/fr/") | Some("/en/") => &path[3..],
        _ => return false,
    };
    rest == "/" || rest.starts_with("/c/") || rest.starts_with("/p/") || rest == "/search"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_pages_are_cached() {
        for p in ["/fr/", "/en/c/running", "/fr/p/x", "/fr/search"] {
            assert!(cacheable_path(p), "{p}");
        }
        for p in [
            "/fr/cart",
            "/fr/account",
            "/fr/admin",
            "/fr/checkout",
            "/fr/search/suggest",
            "/",
            "/api/x",
            "/fr/orders/1",
        ] {
            assert!(!cacheable_path(p), "{p}");
        }
    }

    #[test]
    fn each_visitor_gets_their_own_token() {
        let c = PageCache::default();
        c.put(
            "/fr/".into(),
            &format!("<meta content=\"{TOKEN_SLOT}\"><input value=\"{TOKEN_SLOT}\">"),
        );
        let page = c.get("/fr/").map(|h| h.fill("abc")).unwrap_or_default();
        assert_eq!(&page[..], b"<meta content=\"abc\"><input value=\"abc\">");
        c.clear();
        assert!(c.get("/fr/").is_none());
    }
}
