//! `Idempotency-Key` on unsafe requests (RELIABILITY.md D2), Stripe's semantics:
//! - the first request with a key runs; its response is stored **in the same transaction as its
//!   effect**, so a stored response always means the effect happened, and vice versa;
//! - a retry with the same key and the same request gets the stored response, byte for byte,
//!   with `Idempotent-Replayed: true`;
//! - the same key with a different request is refused (422 `idempotency_key_reused`);
//! - a retry while the first is still running gets 409 `idempotency_in_progress`;
//! - a claim left by a crashed process (no stored response after `stale_after`) is taken over:
//!   since response and effect commit together, nothing happened under it;
//! - keys are kept 24 hours, then pruned.
//!
//! Each service has the `idempotency_keys` table in its own migrations.

use crate::db::{Db, Tx};
use crate::http::problem::{ApiError, ApiResult};
use crate::{db_run, tx_run};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a key is kept.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug)]
pub struct Idempotency {
    db: Db,
    stale_after: Duration,
}

/// The outcome of [`Idempotency::begin`].
pub enum Begin {
    /// Run the request, then [`Claim::complete`] inside its transaction.
    Proceed(Claim),
    /// Answer this stored response.
    Replay(Response),
}

/// A key this request now holds.
#[must_use = "complete the claim in the effect's transaction, or release it"]
#[derive(Debug)]
pub struct Claim {
    scope: String,
    key: String,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Reads and checks the `Idempotency-Key` header: absent is fine, malformed is a 400.
pub fn key_from_headers(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get(HEADER) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("");
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces",
        ));
    }
    Ok(Some(s.to_string()))
}

#[derive(sqlx::FromRow)]
struct Row {
    request_hash: String,
    state: String,
    response_status: Option<i32>,
    response_body: Option<String>,
    response_content_type: Option<String>,
    response_location: Option<String>,
    locked_at: i64,
}

impl Idempotency {
    pub fn new(db: Db) -> Self {
        Idempotency {
            db,
            stale_after: Duration::from_secs(60),
        }
    }

    pub fn with_stale_after(mut self, d: Duration) -> Self {
        self.stale_after = d;
        self
    }

    /// Claims `key` for this request, or says how to answer instead.
    pub async fn begin(&self, scope: &str, key: &str, request_hash: &str) -> ApiResult<Begin> {
        for _ in 0..3 {
            let now = now_ms();
            let inserted = db_run!(&self.db, |p| {
                sqlx::query(
                "INSERT INTO idempotency_keys (scope, idem_key, request_hash, state, locked_at, created_at) \
                 VALUES ($1, $2, $3, 'in_progress', $4, $4) ON CONFLICT (scope, idem_key) DO NOTHING"
            )
            .bind(scope)
            .bind(key)
            .bind(request_hash)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            })?;
            if inserted == 1 {
                return Ok(Begin::Proceed(Claim {
                    scope: scope.to_string(),
                    key: key.to_string(),
                }));
            }
            let row: Option<Row> = db_run!(&self.db, |p| {
                sqlx::query_as(
                "SELECT request_hash, state, response_status, response_body, response_content_type, \
                 response_location, locked_at FROM idempotency_keys WHERE scope = $1 AND idem_key = $2"
            )
            .bind(scope)
            .bind(key)
            .fetch_optional(p)
            .await
            })?;
            let Some(row) = row else {
                continue; // released meanwhile: try to claim again
            };
            if row.request_hash != request_hash {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request; use a new key",
                ));
            }
            if row.state == "done" {
                return Ok(Begin::Replay(replay(&row)));
            }
            let stale_before = now - self.stale_after.as_millis() as i64;
            if row.locked_at < stale_before {
                let taken = db_run!(&self.db, |p| {
                    sqlx::query(
                    "UPDATE idempotency_keys SET locked_at = $1 \
                     WHERE scope = $2 AND idem_key = $3 AND state = 'in_progress' AND locked_at = $4"
                )
                .bind(now)
                .bind(scope)
                .bind(key)
                .bind(row.locked_at)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
                })?;
                if taken == 1 {
                    return Ok(Begin::Proceed(Claim {
                        scope: scope.to_string(),
                        key: key.to_string(),
                    }));
                }
            }
            let mut e = ApiError::conflict(
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            );
            e.retry_after = Some(1);
            return Err(e);
        }
        Err(ApiError::conflict(
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still being processed; retry shortly",
        ))
    }

    /// Deletes completed keys older than the retention, and never an in-progress one.
    pub async fn prune(&self) -> Result<u64, sqlx::Error> {
        let before = now_ms() - RETENTION.as_millis() as i64;
        Ok(db_run!(&self.db, |p| sqlx::query(
            "DELETE FROM idempotency_keys WHERE state = 'done' AND created_at < $1"
        )
        .bind(before)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }
}

impl Claim {
    /// Stores the response inside the transaction that holds the effect.
    pub async fn complete(
        &self,
        tx: &mut Tx,
        status: StatusCode,
        content_type: &str,
        body: &[u8],
        location: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let body = String::from_utf8_lossy(body).into_owned();
        tx_run!(tx, |c| sqlx::query(
            "UPDATE idempotency_keys SET state = 'done', response_status = $1, response_body = $2, \
             response_content_type = $3, response_location = $4 WHERE scope = $5 AND idem_key = $6"
        )
        .bind(i32::from(status.as_u16()))
        .bind(body)
        .bind(content_type)
        .bind(location)
        .bind(&self.scope)
        .bind(&self.key)
        .execute(c)
        .await
        .map(|_| ()))
    }

    /// Gives the key up after a failure, so that a retry runs again.
    pub async fn release(self, idem: &Idempotency) {
        let r = db_run!(&idem.db, |p| {
            sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND state = 'in_progress'"
        )
        .bind(&self.scope)
        .bind(&self.key)
        .execute(p)
        .await
        .map(|_| ())
        });
        if let Err(e) = r {
            // the claim goes stale and is taken over by a later retry
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
    }
}

fn replay(row: &Row) -> Response {
    let status = row
        .response_status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut res = (status, row.response_body.clone().unwrap_or_default()).into_response();
    let h = res.headers_mut();
    if let Some(ct) = row
        .response_content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert(header::CONTENT_TYPE, ct);
    }
    if let Some(l) = row
        .response_location
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert(header::LOCATION, l);
    }
    h.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    res
}

/// What [`claim`] found.
pub enum Pre {
    /// Go on (holding the key when one was given); finish with [`finish`].
    Go(Option<Claim>),
    /// Answer this (a replay, or why the key cannot be used now).
    Done(Response),
}

/// First half of an unsafe request: reads `Idempotency-Key` and claims it, or says how to
/// answer instead. A handler that must call another service before its transaction (a payment
/// provider) claims first, calls, then [`finish`]es; on an early error it releases the claim.
pub async fn claim(
    idem: &Idempotency,
    scope: &str,
    headers: &HeaderMap,
    request_hash: &str,
) -> Pre {
    match key_from_headers(headers) {
        Err(e) => Pre::Done(e.into_response()),
        Ok(None) => Pre::Go(None),
        Ok(Some(key)) => match idem.begin(scope, &key, request_hash).await {
            Err(e) => Pre::Done(e.into_response()),
            Ok(Begin::Replay(r)) => Pre::Done(r),
            Ok(Begin::Proceed(c)) => Pre::Go(Some(c)),
        },
    }
}

/// Releases a claim after an error, and turns the error into the response.
pub async fn abandon(idem: &Idempotency, claim: Option<Claim>, e: ApiError) -> Response {
    if let Some(c) = claim {
        c.release(idem).await;
    }
    e.into_response()
}

/// The whole flow of an unsafe request in one call: [`claim`], then [`finish`].
#[allow(clippy::too_many_arguments)]
pub async fn write<T, F>(
    idem: &Idempotency,
    db: &Db,
    scope: &str,
    headers: &HeaderMap,
    request_hash: &str,
    status: StatusCode,
    location: Option<String>,
    effect: F,
) -> Response
where
    T: serde::Serialize,
    F: for<'t> FnOnce(&'t mut Tx) -> futures_util::future::BoxFuture<'t, ApiResult<T>>,
{
    match claim(idem, scope, headers, request_hash).await {
        Pre::Done(r) => r,
        Pre::Go(c) => finish(idem, db, c, status, location, effect).await,
    }
}

/// Second half: opens a write transaction, runs `effect` in it, stores the JSON response in the
/// same transaction when a key is held, and commits. Any error rolls back and frees the key, so
/// a retry runs again.
pub async fn finish<T, F>(
    idem: &Idempotency,
    db: &Db,
    claim: Option<Claim>,
    status: StatusCode,
    location: Option<String>,
    effect: F,
) -> Response
where
    T: serde::Serialize,
    F: for<'t> FnOnce(&'t mut Tx) -> futures_util::future::BoxFuture<'t, ApiResult<T>>,
{
    let mut tx = match db.begin().await {
        Ok(t) => t,
        Err(e) => return abandon(idem, claim, e.into()).await,
    };
    let value = match effect(&mut tx).await {
        Ok(v) => v,
        Err(e) => {
            let _ = tx.rollback().await;
            return abandon(idem, claim, e).await;
        }
    };
    let body = match serde_json::to_vec(&value) {
        Ok(b) => b,
        Err(e) => {
            let _ = tx.rollback().await;
            return abandon(idem, claim, ApiError::internal(e)).await;
        }
    };
    if let Some(c) = &claim
        && let Err(e) = c
            .complete(
                &mut tx,
                status,
                "application/json",
                &body,
                location.as_deref(),
            )
            .await
    {
        let _ = tx.rollback().await;
        return abandon(idem, claim, e.into()).await;
    }
    if let Err(e) = tx.commit().await {
        return abandon(idem, claim, e.into()).await;
    }
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        res.headers_mut().insert(header::LOCATION, l);
    }
    res
}
