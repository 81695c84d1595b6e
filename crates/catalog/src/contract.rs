//! This service's side of [`contracts::catalog`]: [`CatalogPrices`] implements
//! [`PriceLookup`] (hence `PriceBook` and `SkuCatalog`) over the catalogue's database (the in-process
//! implementation), and [`internal_router`] serves them to other processes.

use crate::store;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use contracts::catalog::{
    CatalogUnavailable, MAX_SKUS_PER_CALL, PriceInfo, PriceLookup, PricesQuery,
};
use contracts::rpc::answer;
use futures_util::future::BoxFuture;
use platform::db::Db;

/// Prices and SKUs from the catalogue's database.
#[derive(Clone)]
pub struct CatalogPrices(pub Db);

impl PriceLookup for CatalogPrices {
    /// What the catalogue knows of `skus`, published or not.
    fn lookup<'a>(&'a self, skus: &'a [String]) -> BoxFuture<'a, Result<Vec<PriceInfo>, String>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(skus.len());
            for chunk in skus.chunks(MAX_SKUS_PER_CALL) {
                let rows = store::prices_by_sku(&self.0, chunk)
                    .await
                    .map_err(|e| e.to_string())?;
                for r in rows {
                    let currency = kernel::Currency::parse(&r.currency)
                        .map_err(|e| format!("the price of {}: {e}", r.sku))?;
                    let mut name = r.name_fr;
                    for extra in [r.size, r.colour].into_iter().flatten() {
                        name.push_str(" — ");
                        name.push_str(&extra);
                    }
                    out.push(PriceInfo {
                        sku: r.sku,
                        name,
                        unit_price: kernel::Money::new(r.price_minor, currency),
                        active: r.sellable,
                    });
                }
            }
            Ok(out)
        })
    }
}

/// Every published product, whole, with the categories and brands: what a read model (the
/// storefront's in-memory catalogue) loads. `GET /internal/catalog/published`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Published {
    pub products: Vec<crate::http::wire::Product>,
    pub categories: Vec<crate::http::wire::Category>,
    pub brands: Vec<crate::http::wire::Brand>,
}

impl Published {
    pub async fn load(db: &Db) -> Result<Published, crate::store::StoreError> {
        Ok(Published {
            products: store::load_published(db).await?,
            categories: store::list_categories(db).await?,
            brands: store::list_brands(db).await?,
        })
    }

    /// From the catalogue in another process.
    pub async fn fetch(peer: &contracts::Peer) -> Result<Published, CatalogUnavailable> {
        peer.call::<(), _, _>(
            axum::http::Method::GET,
            "/internal/catalog/published",
            None,
            contracts::rpc::Retry::Safe,
        )
        .await
    }
}

/// `/internal/catalog/...`, for carts and inventory in other processes (the body limit of the
/// server bounds a query). The wiring puts it behind [`platform::caller::internal_calls_only`].
pub fn internal_router(db: Db) -> Router {
    Router::new()
        .route("/internal/catalog/prices", post(prices))
        .route("/internal/catalog/published", axum::routing::get(published))
        .with_state(CatalogPrices(db))
}

async fn prices(
    State(c): State<CatalogPrices>,
    axum::Json(q): axum::Json<PricesQuery>,
) -> Response {
    answer(c.lookup(&q.skus).await.map_err(CatalogUnavailable))
}

async fn published(State(c): State<CatalogPrices>) -> Response {
    answer(
        Published::load(&c.0)
            .await
            .map_err(|e| CatalogUnavailable(e.to_string())),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use contracts::catalog::{CatalogClient, PriceBook, SkuCatalog};
    use platform::caller::InternalKey;

    /// The in-process implementation and the HTTP client answer the same, SKU for SKU.
    #[tokio::test]
    async fn both_sides_of_the_contract_agree() {
        let t = testkit::TestDb::sqlite(crate::migrations()).await;
        crate::demo::seed(&t.db).await.expect("demo");
        let key = InternalKey::new(b"catalog-contract-test-secret");
        let k = key.clone();
        let app =
            internal_router(t.db.clone()).layer(axum::middleware::from_fn(move |req, next| {
                platform::caller::internal_calls_only(k.clone(), req, next)
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let local = CatalogPrices(t.db.clone());
        let peer = contracts::Peer::new("catalog", "test", &url, key, Default::default()).unwrap();
        let remote = CatalogClient(peer.clone());

        let mut skus = store::all_skus(&t.db).await.unwrap();
        assert!(
            skus.len() > MAX_SKUS_PER_CALL,
            "enough SKUs to need two calls"
        );
        skus.push("NO-SUCH-SKU".into());
        let (a, b) = (
            local.prices(&skus).await.unwrap(),
            remote.prices(&skus).await.unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), skus.len() - 1, "unknown SKUs are absent");
        assert_eq!(
            local.known(&skus).await.unwrap(),
            remote.known(&skus).await.unwrap()
        );
        let (p, q) = (
            Published::load(&t.db).await.unwrap(),
            Published::fetch(&peer).await.unwrap(),
        );
        assert_eq!(p.products, q.products);
        assert_eq!(p.categories, q.categories);
        assert_eq!(p.brands, q.brands);
        // a caller without the secret is refused
        let stranger = CatalogClient(
            contracts::Peer::new(
                "catalog",
                "test",
                &url,
                InternalKey::new(b"another-secret"),
                Default::default(),
            )
            .unwrap(),
        );
        assert!(stranger.prices(&skus).await.is_err());
        t.cleanup().await;
    }
}
