//! The web suite, on SQLite always and on PostgreSQL when `COMPTOIR_TEST_POSTGRES_URL` is set:
//! the storefront's read model against the catalogue API it mirrors.

use std::time::Duration;
use web::catalogue::{Catalogue, Query};

use testkit::TRICKY_SEARCH_QUERIES as TRICKY_QUERIES;

/// Every published product the catalogue API finds for `q`.
async fn api_search(db: &platform::db::Db, q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let query = catalog::model::ListQuery {
            category: None,
            brand: None,
            min_price: None,
            max_price: None,
            q: Some(q.to_string()),
            status: None,
            published: None,
            sort: None,
            lang: None,
            limit: Some(100),
            cursor: cursor.take(),
        };
        let spec = catalog::service::list_spec(db, &query, false)
            .await
            .expect("spec");
        let page = catalog::store::list_products(db, &spec)
            .await
            .expect("list");
        out.extend(page.items.into_iter().map(|i| i.slug));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_search_and_the_api_search_agree() {
    testkit::each_backend(catalog::migrations(), |t| {
        Box::pin(async move {
            catalog::demo::seed(&t.db)
                .await
                .expect("seed")
                .expect("empty database gets seeded");
            let shop = Catalogue::new(
                web::catalogue::Source::Local(t.db.clone()),
                None,
                Duration::from_secs(600),
            );
            let snap = shop.snapshot().await.expect("snapshot");
            let stock = shop.stock().await;
            let mut found_some = 0;
            for q in TRICKY_QUERIES {
                let mut page = 1;
                let mut in_shop = Vec::new();
                loop {
                    let listing = snap.list(
                        &Query {
                            text: Some(q.to_string()),
                            page,
                            ..Query::default()
                        },
                        &stock,
                    );
                    in_shop.extend(listing.items.iter().map(|e| e.product.slug.clone()));
                    if listing.page >= listing.pages {
                        break;
                    }
                    page += 1;
                }
                in_shop.sort();
                let in_api = api_search(&t.db, q).await;
                eprintln!("{}: {q:?}: {} products", t.backend, in_api.len());
                assert_eq!(in_shop, in_api, "{}: {q:?}", t.backend);
                if !in_api.is_empty() {
                    found_some += 1;
                }
            }
            assert!(found_some >= 3, "the queries find something");
            // nothing but punctuation: no product, in either
            assert!(api_search(&t.db, "' --").await.is_empty());
        })
    })
    .await;
}
