//! What other services may ask of the catalogue: current prices, and which SKUs exist.
//!
//! Internal route: `POST /internal/catalog/prices` with `{"skus": [...]}` (at most
//! [`MAX_SKUS_PER_CALL`]) answers the [`PriceInfo`] of every SKU the catalogue knows, published or
//! not (unknown SKUs are absent).

use crate::rpc::{Peer, Retry, WireError};
use axum::http::Method;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// SKUs per call; the client splits longer lists.
pub const MAX_SKUS_PER_CALL: usize = 200;

/// What the catalogue says about a SKU now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceInfo {
    pub sku: String,
    /// The product's name, with the variant's size and colour.
    pub name: String,
    /// The price of one unit, in the variant's currency.
    pub unit_price: kernel::Money,
    /// Sold now (variant active, product published).
    pub active: bool,
}

/// Current prices (carts and checkout).
pub trait PriceBook: Send + Sync {
    /// What the catalogue says about each SKU it knows; unknown SKUs are absent from the map.
    /// `Err` when the catalogue cannot be asked.
    fn prices<'a>(
        &'a self,
        skus: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, PriceInfo>, String>>;
}

/// Which SKUs exist (I10: stock only for SKUs the catalogue knows, published or not: goods are
/// received before a product goes on sale).
pub trait SkuCatalog: Send + Sync {
    /// The subset of `skus` that the catalogue knows. `Err` when it cannot be asked.
    fn known<'a>(&'a self, skus: &'a [String]) -> BoxFuture<'a, Result<HashSet<String>, String>>;
}

/// What the catalogue knows of some SKUs, published or not: both sides of the contract (the
/// catalogue in process, its client) implement this one call, and get [`PriceBook`] and
/// [`SkuCatalog`] from it.
pub trait PriceLookup: Send + Sync {
    fn lookup<'a>(&'a self, skus: &'a [String]) -> BoxFuture<'a, Result<Vec<PriceInfo>, String>>;
}

impl<T: PriceLookup> PriceBook for T {
    fn prices<'a>(
        &'a self,
        skus: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, PriceInfo>, String>> {
        Box::pin(async move {
            Ok(self
                .lookup(skus)
                .await?
                .into_iter()
                .map(|p| (p.sku.clone(), p))
                .collect())
        })
    }
}

impl<T: PriceLookup> SkuCatalog for T {
    fn known<'a>(&'a self, skus: &'a [String]) -> BoxFuture<'a, Result<HashSet<String>, String>> {
        Box::pin(async move {
            Ok(self
                .lookup(skus)
                .await?
                .into_iter()
                .map(|p| p.sku)
                .collect())
        })
    }
}

/// The body of `POST /internal/catalog/prices`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PricesQuery {
    pub skus: Vec<String>,
}

/// The catalogue's one error on this contract: it could not answer.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct CatalogUnavailable(pub String);

impl WireError for CatalogUnavailable {
    fn status(&self) -> u16 {
        503
    }
    fn unavailable(detail: String) -> Self {
        CatalogUnavailable(detail)
    }
}

/// The catalogue over HTTP.
#[derive(Clone, Debug)]
pub struct CatalogClient(pub Peer);

impl PriceLookup for CatalogClient {
    fn lookup<'a>(&'a self, skus: &'a [String]) -> BoxFuture<'a, Result<Vec<PriceInfo>, String>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(skus.len());
            for chunk in skus.chunks(MAX_SKUS_PER_CALL) {
                let q = PricesQuery {
                    skus: chunk.to_vec(),
                };
                let rows: Vec<PriceInfo> = self
                    .0
                    .call::<_, _, CatalogUnavailable>(
                        Method::POST,
                        "/internal/catalog/prices",
                        Some(&q),
                        Retry::Safe,
                    )
                    .await
                    .map_err(|e| e.0)?;
                out.extend(rows);
            }
            Ok(out)
        })
    }
}
