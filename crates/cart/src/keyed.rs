//! Keyed writes (`Idempotency-Key`): what the cart stores keep about them.
//!
//! The wire behaviour is [`platform::idempotency`]'s: a retry with the same key and the same
//! request gets the first answer with `Idempotent-Replayed: true`, another request with the key
//! 422 `idempotency_key_reused`, a retry while the first runs 409 `idempotency_in_progress`, a
//! claim left without an answer (a crash) is taken over after [`STALE_AFTER`]. What differs is
//! where the key lives: in the cart store, so that the answer is written with the change it
//! answers — in the same transaction ([`crate::SqlCartStore`], the service's `idempotency_keys`
//! table, through [`platform::idempotency`]) or in the same Lua script
//! ([`crate::RedisCartStore`], one hash per key with a 24-hour TTL). A stored answer therefore
//! means the change happened, and a claim without one means it did not.

use crate::app::CartError;
use crate::domain::Cart;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::ApiError;
use std::time::Duration;

/// After this long without an answer, a claim is taken to be a crashed request's and taken over.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// The answer of a keyed write (always JSON): sent to the first request, replayed to retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
    pub location: Option<String>,
}

impl Answer {
    /// The HTTP response.
    pub fn response(&self) -> Response {
        let mut res = (self.status, self.body.clone()).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(l) = self
            .location
            .as_deref()
            .and_then(|l| HeaderValue::from_str(l).ok())
        {
            h.insert(header::LOCATION, l);
        }
        res
    }

    /// The response to a retry: the same, marked as a replay.
    pub fn replay(&self) -> Response {
        let mut res = self.response();
        res.headers_mut().insert(
            platform::idempotency::REPLAYED_HEADER,
            HeaderValue::from_static("true"),
        );
        res
    }
}

/// What [`crate::CartStore::begin`] found.
pub enum Begin {
    /// The key is this request's now: run it, and store its answer with its change.
    Proceed(Claim),
    /// A retry of a request that was answered: send this.
    Replay(Response),
}

/// A key held by a running request. It ends answered (with the change,
/// [`crate::store::Commit::answer`], or by [`crate::CartStore::record`] when nothing changed) or
/// released ([`crate::CartStore::release`]). Only the store that made it can use it.
#[must_use = "answer the claim with the change, or release it"]
#[derive(Debug)]
pub struct Claim {
    pub(crate) held: Held,
}

#[derive(Debug)]
pub(crate) enum Held {
    /// A row of the service database's `idempotency_keys`.
    Sql(platform::idempotency::Claim),
    /// A Redis hash.
    Redis { key: String, request_hash: String },
}

/// A keyed write on its way through [`crate::Carts`]: the key it holds, and how its answer is
/// made from the cart it leaves (`true`: the write created that cart).
pub struct Keyed<'a> {
    pub claim: &'a Claim,
    pub answer: &'a (dyn Fn(&Cart, bool) -> Result<Answer, CartError> + Send + Sync),
}

/// The same key with another request.
pub(crate) fn reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different request; use a new key",
    )
}

/// The same key while its first request runs.
pub(crate) fn in_progress() -> ApiError {
    let mut e = ApiError::conflict(
        "idempotency_in_progress",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    );
    e.retry_after = Some(1);
    e
}
