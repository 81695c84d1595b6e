//! This service's side of [`contracts::inventory`]: [`Inventory`] implements [`StockApi`] (the
//! in-process implementation), and [`internal_router`] serves it to other processes.

use crate::app::{InvError, Inventory};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use contracts::inventory::{
    Available, HoldLine, HoldRequest, HoldState, LocationInfo, RestockRequest, StockApi,
    StockError, StockResult,
};
use contracts::rpc::answer;
use futures_util::future::BoxFuture;
use std::time::Duration;
use uuid::Uuid;

impl From<InvError> for StockError {
    fn from(e: InvError) -> Self {
        match e {
            InvError::UnknownLocation(location) => StockError::UnknownLocation { location },
            InvError::Invalid(message) => StockError::Invalid { message },
            e @ (InvError::InvalidSku { .. } | InvError::UnknownSku { .. }) => {
                StockError::Invalid {
                    message: e.to_string(),
                }
            }
            InvError::OutOfStock(shortages) => StockError::OutOfStock { shortages },
            InvError::HoldLost(hold) => StockError::HoldLost { hold },
            InvError::CatalogUnavailable(m) => StockError::Unavailable {
                detail: format!("catalogue: {m}"),
            },
            InvError::Db(e) => StockError::Unavailable {
                detail: format!("inventory database: {e}"),
            },
        }
    }
}

impl StockApi for Inventory {
    fn hold<'a>(
        &'a self,
        hold_id: Uuid,
        location: &'a str,
        lines: &'a [HoldLine],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, StockResult<i64>> {
        Box::pin(async move { Ok(Inventory::hold(self, hold_id, location, lines, ttl).await?) })
    }
    fn commit(&self, hold_id: Uuid) -> BoxFuture<'_, StockResult<()>> {
        Box::pin(async move { Ok(Inventory::commit(self, hold_id).await?) })
    }
    fn release(&self, hold_id: Uuid) -> BoxFuture<'_, StockResult<bool>> {
        Box::pin(async move { Ok(Inventory::release(self, hold_id).await?) })
    }
    fn restock<'a>(&'a self, hold_id: Uuid, actor: &'a str) -> BoxFuture<'a, StockResult<bool>> {
        Box::pin(async move { Ok(Inventory::restock(self, hold_id, actor).await?) })
    }
    fn hold_state(&self, hold_id: Uuid) -> BoxFuture<'_, StockResult<Option<HoldState>>> {
        Box::pin(async move {
            match Inventory::hold_state(self, hold_id).await? {
                None => Ok(None),
                Some(s) => HoldState::parse(&s)
                    .map(Some)
                    .ok_or_else(|| StockError::Unavailable {
                        detail: format!("hold {hold_id} has an unknown state `{s}`"),
                    }),
            }
        })
    }
    fn location<'a>(&'a self, code: &'a str) -> BoxFuture<'a, StockResult<Option<LocationInfo>>> {
        Box::pin(async move { Ok(Inventory::location(self, code).await?.map(info)) })
    }
    fn locations(&self) -> BoxFuture<'_, StockResult<Vec<LocationInfo>>> {
        Box::pin(async move {
            Ok(Inventory::locations(self)
                .await?
                .into_iter()
                .map(info)
                .collect())
        })
    }
    fn available(&self) -> BoxFuture<'_, StockResult<Vec<Available>>> {
        Box::pin(async move {
            Ok(Inventory::all_available(self)
                .await?
                .into_iter()
                .map(|(location, sku, available)| Available {
                    location,
                    sku,
                    available,
                })
                .collect())
        })
    }
}

fn info(l: crate::Location) -> LocationInfo {
    LocationInfo {
        code: l.code,
        name: l.name,
        kind: l.kind,
        ships: l.ships,
        click_and_collect: l.click_and_collect,
    }
}

/// `/internal/inventory/...`, for the orders service in another process. The wiring puts it
/// behind [`platform::caller::internal_calls_only`].
pub fn internal_router(inventory: Inventory) -> Router {
    Router::new()
        .route("/internal/inventory/holds/{id}", get(hold_state).put(hold))
        .route("/internal/inventory/holds/{id}/commit", post(commit))
        .route("/internal/inventory/holds/{id}/release", post(release))
        .route("/internal/inventory/holds/{id}/restock", post(restock))
        .route("/internal/inventory/locations", get(locations))
        .route("/internal/inventory/locations/{code}", get(location))
        .route("/internal/inventory/available", get(available))
        .with_state(inventory)
}

async fn hold(
    State(i): State<Inventory>,
    Path(id): Path<Uuid>,
    axum::Json(r): axum::Json<HoldRequest>,
) -> Response {
    let ttl = r.ttl_ms.map(Duration::from_millis);
    answer(StockApi::hold(&i, id, &r.location, &r.lines, ttl).await)
}

async fn commit(State(i): State<Inventory>, Path(id): Path<Uuid>) -> Response {
    answer(StockApi::commit(&i, id).await)
}

async fn release(State(i): State<Inventory>, Path(id): Path<Uuid>) -> Response {
    answer(StockApi::release(&i, id).await)
}

async fn restock(
    State(i): State<Inventory>,
    Path(id): Path<Uuid>,
    axum::Json(r): axum::Json<RestockRequest>,
) -> Response {
    answer(StockApi::restock(&i, id, &r.actor).await)
}

async fn hold_state(State(i): State<Inventory>, Path(id): Path<Uuid>) -> Response {
    answer(StockApi::hold_state(&i, id).await)
}

async fn location(State(i): State<Inventory>, Path(code): Path<String>) -> Response {
    answer(StockApi::location(&i, &code).await)
}

async fn locations(State(i): State<Inventory>) -> Response {
    answer(StockApi::locations(&i).await)
}

async fn available(State(i): State<Inventory>) -> Response {
    answer(StockApi::available(&i).await)
}
