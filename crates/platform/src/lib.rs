//! Platform: what every Comptoir service shares and none of them owns. Configuration,
//! telemetry, HTTP glue, the SQLite/PostgreSQL store, idempotency keys,
//! authentication (edge), authorisation (policy), rate limits and the read cache.
//!
//! `authn` proves who is calling (credentials, tokens, keys); `authz` decides what they may do
//! (roles, permissions, the route policy); `caller` carries the verified caller to the service
//! (in process, or signed between processes).

pub mod authn;
pub mod authz;
pub mod bus;
pub mod cache;
pub mod caller;
pub mod config;
pub mod db;
pub mod fail;
pub mod http;
pub mod idempotency;
pub mod rabbit;
pub mod ratelimit;
pub mod telemetry;
pub mod tls;

pub use http::problem::{ApiError, ApiResult, FieldError, Problem};

/// Random bytes from the operating system, hex-encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // getrandom only fails when the OS has no entropy source at all; then nothing is safe.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system's random source is available");
    hex::encode(buf)
}

/// SHA-256 of a string, hex-encoded.
pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}
