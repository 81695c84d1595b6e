//! The edge cache: public answers to anonymous `GET`s kept as long as the service says
//! (`Cache-Control: public, max-age=N`), by path, query and the request headers that change an
//! answer (`Accept-Encoding`, `Accept-Language`). What makes an answer fresh again at once:
//! any unsafe request this gateway forwards to the service, and the events of the bus
//! (`product.changed`, `stock.changed`) for writes made elsewhere — another gateway instance,
//! the back office in another process.
//!
//! Never cached: a request with credentials (`Authorization`, `Cookie`, `X-Api-Key`) or
//! `Cache-Control: no-cache`/`no-store`; an answer that is not 200, is `private`/`no-store`/
//! `no-cache`, sets a cookie, varies on `*`, or is larger than the cache's body limit.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Entry {
    service: &'static str,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    stored: Instant,
    expires: Instant,
}

/// The cache of one gateway process.
pub struct EdgeCache {
    max_entries: usize,
    max_body: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

/// Whether an answer came from the cache (`x-comptoir-cache`).
pub const CACHE_HEADER: &str = "x-comptoir-cache";

impl EdgeCache {
    pub fn new(max_entries: usize, max_body: usize) -> EdgeCache {
        EdgeCache {
            max_entries,
            max_body,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key of a request that may be answered from the cache; `None` for one that may not.
    pub fn key(service: &str, method: &Method, pq: &str, h: &HeaderMap) -> Option<String> {
        if method != Method::GET {
            return None;
        }
        let credentials = [header::AUTHORIZATION, header::COOKIE];
        if credentials.iter().any(|c| h.contains_key(c)) || h.contains_key("x-api-key") {
            return None;
        }
        let directives = header_text(h, header::CACHE_CONTROL.as_str()).to_ascii_lowercase();
        if directives.contains("no-cache") || directives.contains("no-store") {
            return None;
        }
        Some(format!(
            "{service} {pq}\n{}\n{}",
            header_text(h, header::ACCEPT_ENCODING.as_str()),
            header_text(h, header::ACCEPT_LANGUAGE.as_str())
        ))
    }

    /// The cached answer, if fresh.
    pub fn get(&self, key: &str, now: Instant) -> Option<Response> {
        let entries = self.entries();
        let e = entries.get(key).filter(|e| now < e.expires)?;
        let mut res = Response::new(Body::from(e.body.clone()));
        *res.status_mut() = e.status;
        *res.headers_mut() = e.headers.clone();
        let age = now.saturating_duration_since(e.stored).as_secs();
        if let Ok(v) = HeaderValue::from_str(&age.to_string()) {
            res.headers_mut().insert(header::AGE, v);
        }
        res.headers_mut()
            .insert(CACHE_HEADER, HeaderValue::from_static("hit"));
        Some(res)
    }

    /// Keeps `res` if it may be cached, and gives it back to be answered.
    pub async fn store(
        &self,
        key: String,
        service: &'static str,
        res: Response,
        now: Instant,
    ) -> Response {
        let Some(ttl) = cacheable(&res, self.max_body) else {
            return res;
        };
        let (mut parts, body) = res.into_parts();
        // read up to the limit; a longer (streamed, compressed) answer is passed on whole,
        // the part already read first, and not kept
        let bytes = match read_up_to(body, self.max_body).await {
            Ok(b) => b,
            Err(whole) => return Response::from_parts(parts, whole),
        };
        {
            let mut entries = self.entries();
            if entries.len() >= self.max_entries {
                entries.retain(|_, e| now < e.expires);
            }
            if entries.len() >= self.max_entries
                && let Some(k) = entries.keys().next().cloned()
            {
                entries.remove(&k);
            }
            entries.insert(
                key,
                Entry {
                    service,
                    status: parts.status,
                    headers: parts.headers.clone(),
                    body: bytes.clone(),
                    stored: now,
                    expires: now + ttl,
                },
            );
        }
        parts
            .headers
            .insert(CACHE_HEADER, HeaderValue::from_static("miss"));
        Response::from_parts(parts, Body::from(bytes))
    }

    /// Forgets every answer of `service`.
    pub fn invalidate(&self, service: &str) {
        let mut entries = self.entries();
        let before = entries.len();
        entries.retain(|_, e| e.service != service);
        let dropped = before - entries.len();
        if dropped > 0 {
            metrics::counter!("comptoir_gateway_cache_invalidated_total", "upstream" => service.to_string())
                .increment(dropped as u64);
        }
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The body if it ends within `limit` bytes; otherwise the same body again (what was read,
/// then the rest), to be answered as it is.
async fn read_up_to(mut body: Body, limit: usize) -> Result<Bytes, Body> {
    use http_body_util::BodyExt;
    let mut read: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    total += data.len();
                    read.push(data);
                    if total > limit {
                        let head = futures_util::stream::iter(
                            read.into_iter().map(Ok::<Bytes, axum::Error>),
                        );
                        let rest = body.into_data_stream();
                        return Err(Body::from_stream(futures_util::StreamExt::chain(
                            head, rest,
                        )));
                    }
                }
            }
            Some(Err(e)) => {
                let head = futures_util::stream::iter(
                    read.into_iter()
                        .map(Ok::<Bytes, axum::Error>)
                        .chain(std::iter::once(Err(e))),
                );
                return Err(Body::from_stream(head));
            }
        }
    }
    Ok(read.concat().into())
}

fn header_text(h: &HeaderMap, name: &str) -> String {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
}

/// How long an answer may be kept, if at all.
fn cacheable(res: &Response, max_body: usize) -> Option<Duration> {
    let h = res.headers();
    if res.status() != StatusCode::OK || h.contains_key(header::SET_COOKIE) {
        return None;
    }
    if header_text(h, header::VARY.as_str()).contains('*') {
        return None;
    }
    // a length said up front is checked now; a streamed answer is read up to the limit
    let length: Option<usize> = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if length.is_some_and(|l| l > max_body) {
        return None;
    }
    let cc = header_text(h, header::CACHE_CONTROL.as_str()).to_ascii_lowercase();
    let directives: Vec<&str> = cc.split(',').map(str::trim).collect();
    if !directives.contains(&"public")
        || directives
            .iter()
            .any(|d| matches!(*d, "private" | "no-store" | "no-cache"))
    {
        return None;
    }
    let secs: u64 = directives
        .iter()
        .find_map(|d| {
            d.strip_prefix("s-maxage=")
                .or_else(|| d.strip_prefix("max-age="))
        })
        .and_then(|v| v.parse().ok())
        .filter(|s| *s > 0)?;
    Some(Duration::from_secs(secs.min(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(cc: &str, len: usize) -> Response {
        let mut r = Response::new(Body::from(vec![b'x'; len]));
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(cc).expect("value"),
        );
        r.headers_mut().insert(
            header::CONTENT_LENGTH,
            HeaderValue::from_str(&len.to_string()).expect("value"),
        );
        r
    }

    #[test]
    fn only_anonymous_gets_are_cached() {
        let h = HeaderMap::new();
        assert!(EdgeCache::key("catalog", &Method::GET, "/api/catalog/brands", &h).is_some());
        assert!(EdgeCache::key("catalog", &Method::POST, "/api/catalog/brands", &h).is_none());
        for (name, value) in [
            ("authorization", "Bearer x"),
            ("cookie", "s=1"),
            ("x-api-key", "k"),
            ("cache-control", "no-cache"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(
                axum::http::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
            assert!(
                EdgeCache::key("catalog", &Method::GET, "/api/catalog/brands", &h).is_none(),
                "{name}"
            );
        }
        let mut gz = HeaderMap::new();
        gz.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        assert_ne!(
            EdgeCache::key("catalog", &Method::GET, "/x", &gz),
            EdgeCache::key("catalog", &Method::GET, "/x", &HeaderMap::new()),
            "another encoding is another answer"
        );
    }

    #[tokio::test]
    async fn what_the_service_allows_is_kept_that_long_and_invalidation_drops_it() {
        let c = EdgeCache::new(100, 1024);
        let t = Instant::now();
        for (cc, len, kept) in [
            ("public, max-age=60", 10, true),
            ("public, max-age=0", 10, false),
            ("private, max-age=60", 10, false),
            ("no-store", 10, false),
            ("public, max-age=60, no-cache", 10, false),
            ("public, max-age=60", 2048, false),
        ] {
            let key = format!("{cc} {len}");
            let res = c.store(key.clone(), "catalog", answer(cc, len), t).await;
            assert_eq!(res.status(), StatusCode::OK);
            let body = axum::body::to_bytes(res.into_body(), 4096)
                .await
                .expect("body");
            assert_eq!(body.len(), len, "the answer is given back whole");
            assert_eq!(c.get(&key, t).is_some(), kept, "{cc} ({len} bytes)");
        }
        let key = "public, max-age=60 10";
        let hit = c.get(key, t + Duration::from_secs(5)).expect("hit");
        assert_eq!(hit.headers()[CACHE_HEADER], "hit");
        assert_eq!(hit.headers()[header::AGE], "5");
        assert!(c.get(key, t + Duration::from_secs(61)).is_none(), "expired");
        c.invalidate("inventory");
        assert!(
            c.get(key, t).is_some(),
            "another service's write changes nothing"
        );
        c.invalidate("catalog");
        assert!(c.get(key, t).is_none());
    }

    #[tokio::test]
    async fn a_streamed_answer_is_kept_when_short_and_passed_on_whole_when_long() {
        let c = EdgeCache::new(10, 1024);
        let t = Instant::now();
        for (len, kept) in [(600usize, true), (5000, false)] {
            let chunks: Vec<Result<Bytes, std::io::Error>> = (0..len / 100)
                .map(|_| Ok(Bytes::from(vec![b'y'; 100])))
                .collect();
            let mut r = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            let key = format!("s{len}");
            let res = c.store(key.clone(), "catalog", r, t).await;
            let body = axum::body::to_bytes(res.into_body(), 1 << 16)
                .await
                .expect("body");
            assert_eq!(body.len(), len, "the client gets every byte");
            assert_eq!(c.get(&key, t).is_some(), kept, "{len} bytes");
        }
    }

    #[tokio::test]
    async fn a_full_cache_stays_within_its_size() {
        let c = EdgeCache::new(3, 1024);
        let t = Instant::now();
        for k in 0..10 {
            c.store(
                format!("k{k}"),
                "catalog",
                answer("public, max-age=60", 1),
                t,
            )
            .await;
        }
        assert_eq!(c.len(), 3);
    }
}
