//! What other services may ask of inventory: hold stock for a checkout, then commit, release or
//! return it; the state of a hold; a location. Every call is idempotent on the hold's id (the
//! checkout saga's id), so a retry after a lost answer has one effect.
//!
//! Internal routes (answered with [`crate::rpc::answer`]):
//! - `PUT /internal/inventory/holds/{id}` with [`HoldRequest`] → the expiry (ms since epoch)
//! - `POST /internal/inventory/holds/{id}/commit` → `null`
//! - `POST /internal/inventory/holds/{id}/release` → whether it was active
//! - `POST /internal/inventory/holds/{id}/restock` with [`RestockRequest`] → whether it was sold
//! - `GET /internal/inventory/holds/{id}` → its [`HoldState`] or `null`
//! - `GET /internal/inventory/locations/{code}` → the [`LocationInfo`] or `null`
//! - `GET /internal/inventory/locations` → every [`LocationInfo`]
//! - `GET /internal/inventory/available` → every [`Available`] level (the storefront's read model)

use crate::rpc::{Peer, Retry, WireError};
use axum::http::Method;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// One SKU of a hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HoldLine {
    pub sku: String,
    pub quantity: i64,
}

/// A SKU that a request could not get enough of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Shortage {
    pub sku: String,
    pub requested: i64,
    pub available: i64,
}

/// The field errors of a 409 `out_of_stock`: one per SKU short, named by the SKU.
pub fn shortage_errors(s: &[Shortage]) -> Vec<platform::FieldError> {
    s.iter()
        .map(|x| {
            platform::FieldError::new(
                x.sku.clone(),
                "out_of_stock",
                format!("requested {}, available {}", x.requested, x.available),
            )
        })
        .collect()
}

/// Where a hold is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Units set aside until the hold expires.
    Active,
    /// Sold: the units left the shelf.
    Committed,
    /// Given back before it was sold.
    Released,
    /// Ran out of time before it was committed.
    Expired,
    /// Sold, then put back on the shelf (cancellation, compensation).
    Returned,
}

impl HoldState {
    pub const ALL: &'static [HoldState] = &[
        HoldState::Active,
        HoldState::Committed,
        HoldState::Released,
        HoldState::Expired,
        HoldState::Returned,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            HoldState::Active => "active",
            HoldState::Committed => "committed",
            HoldState::Released => "released",
            HoldState::Expired => "expired",
            HoldState::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<HoldState> {
        Self::ALL.iter().copied().find(|h| h.as_str() == s)
    }
}

/// A place that keeps stock, as checkout needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationInfo {
    pub code: String,
    pub name: String,
    /// `head_office`, `store` or `warehouse`.
    pub kind: String,
    pub ships: bool,
    pub click_and_collect: bool,
}

/// Units that can be sold now of one SKU at one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Available {
    pub location: String,
    pub sku: String,
    pub available: i64,
}

/// The body of `PUT /internal/inventory/holds/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoldRequest {
    pub location: String,
    pub lines: Vec<HoldLine>,
    /// How long the hold lasts; the service's default when absent.
    pub ttl_ms: Option<u64>,
}

/// The body of `POST /internal/inventory/holds/{id}/restock`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestockRequest {
    /// Who puts the units back (`cancellation`, `compensation`, a staff subject).
    pub actor: String,
}

/// Why inventory did not do what was asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum StockError {
    #[error("unknown location `{location}`")]
    UnknownLocation { location: String },
    /// The request cannot succeed as sent (bad quantity, a SKU that is not one or that the
    /// catalogue does not know).
    #[error("{message}")]
    Invalid { message: String },
    #[error("not enough stock")]
    OutOfStock { shortages: Vec<Shortage> },
    #[error("the hold {hold} is no longer active")]
    HoldLost { hold: Uuid },
    /// Inventory (or the catalogue behind it) could not answer: the outcome is not known.
    #[error("inventory is unavailable: {detail}")]
    Unavailable { detail: String },
}

impl WireError for StockError {
    fn status(&self) -> u16 {
        match self {
            StockError::UnknownLocation { .. } | StockError::Invalid { .. } => 422,
            StockError::OutOfStock { .. } | StockError::HoldLost { .. } => 409,
            StockError::Unavailable { .. } => 503,
        }
    }
    fn unavailable(detail: String) -> Self {
        StockError::Unavailable { detail }
    }
}

pub type StockResult<T> = Result<T, StockError>;

/// What the checkout (and order cancellation) asks of inventory.
pub trait StockApi: Send + Sync {
    /// Holds stock for a checkout: all lines or none. Idempotent on `hold_id`. Answers when the
    /// hold expires (ms since the epoch).
    fn hold<'a>(
        &'a self,
        hold_id: Uuid,
        location: &'a str,
        lines: &'a [HoldLine],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, StockResult<i64>>;
    /// The held units are sold. Idempotent; `HoldLost` when the hold expired or was released.
    fn commit(&self, hold_id: Uuid) -> BoxFuture<'_, StockResult<()>>;
    /// Gives an active hold back; whether it was active.
    fn release(&self, hold_id: Uuid) -> BoxFuture<'_, StockResult<bool>>;
    /// Puts the units of a committed hold back on hand; whether it was committed.
    fn restock<'a>(&'a self, hold_id: Uuid, actor: &'a str) -> BoxFuture<'a, StockResult<bool>>;
    /// The state of a hold, `None` when there is none with this id.
    fn hold_state(&self, hold_id: Uuid) -> BoxFuture<'_, StockResult<Option<HoldState>>>;
    /// A location by code.
    fn location<'a>(&'a self, code: &'a str) -> BoxFuture<'a, StockResult<Option<LocationInfo>>>;
    /// Every location.
    fn locations(&self) -> BoxFuture<'_, StockResult<Vec<LocationInfo>>>;
    /// Every (location, SKU) level that has stock recorded, as available now.
    fn available(&self) -> BoxFuture<'_, StockResult<Vec<Available>>>;
}

/// Inventory over HTTP.
#[derive(Clone, Debug)]
pub struct StockClient(pub Peer);

fn seg(s: &str) -> String {
    crate::rpc::encode_segment(s)
}

impl StockApi for StockClient {
    fn hold<'a>(
        &'a self,
        hold_id: Uuid,
        location: &'a str,
        lines: &'a [HoldLine],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, StockResult<i64>> {
        Box::pin(async move {
            let body = HoldRequest {
                location: location.to_string(),
                lines: lines.to_vec(),
                ttl_ms: ttl.map(|t| t.as_millis() as u64),
            };
            self.0
                .call(
                    Method::PUT,
                    &format!("/internal/inventory/holds/{hold_id}"),
                    Some(&body),
                    Retry::Safe,
                )
                .await
        })
    }

    fn commit(&self, hold_id: Uuid) -> BoxFuture<'_, StockResult<()>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::POST,
                    &format!("/internal/inventory/holds/{hold_id}/commit"),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }

    fn release(&self, hold_id: Uuid) -> BoxFuture<'_, StockResult<bool>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::POST,
                    &format!("/internal/inventory/holds/{hold_id}/release"),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }

    fn restock<'a>(&'a self, hold_id: Uuid, actor: &'a str) -> BoxFuture<'a, StockResult<bool>> {
        Box::pin(async move {
            self.0
                .call(
                    Method::POST,
                    &format!("/internal/inventory/holds/{hold_id}/restock"),
                    Some(&RestockRequest {
                        actor: actor.to_string(),
                    }),
                    Retry::Safe,
                )
                .await
        })
    }

    fn hold_state(&self, hold_id: Uuid) -> BoxFuture<'_, StockResult<Option<HoldState>>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::GET,
                    &format!("/internal/inventory/holds/{hold_id}"),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }

    fn location<'a>(&'a self, code: &'a str) -> BoxFuture<'a, StockResult<Option<LocationInfo>>> {
        Box::pin(async move {
            // `""`, `.` and `..` cannot travel as one path segment (a URL drops or resolves them,
            // and the call no longer matches its signature); no location has such a code
            if matches!(code, "" | "." | "..") {
                return Ok(None);
            }
            self.0
                .call::<(), _, _>(
                    Method::GET,
                    &format!("/internal/inventory/locations/{}", seg(code)),
                    None,
                    Retry::Safe,
                )
                .await
        })
    }

    fn locations(&self) -> BoxFuture<'_, StockResult<Vec<LocationInfo>>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::GET,
                    "/internal/inventory/locations",
                    None,
                    Retry::Safe,
                )
                .await
        })
    }

    fn available(&self) -> BoxFuture<'_, StockResult<Vec<Available>>> {
        Box::pin(async move {
            self.0
                .call::<(), _, _>(
                    Method::GET,
                    "/internal/inventory/available",
                    None,
                    Retry::Safe,
                )
                .await
        })
    }
}
