//! The catalogue's suite, run on SQLite always and on PostgreSQL when
//! `COMPTOIR_TEST_POSTGRES_URL` is set: the same behaviour on both backends, through the real
//! HTTP router (in process, as the gateway reaches it: `testkit::TestApp`) and the real store.
//!
//! - `listing`: the demo data, pagination, filters, text search, bad list parameters;
//! - `writes`: creating and changing products and variants, refused writes, permissions, what
//!   the public sees;
//! - `protocol`: idempotency keys, concurrent duplicates, the response cache, problems everywhere.

use axum::http::{Method, StatusCode};
use catalog::http::CatalogState;
use platform::authz::Principal;
use platform::cache::ResponseCache;
use platform::idempotency::Idempotency;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use testkit::principal;
use testkit::{Res, TestApp, TestDb};

/// The back office's principal in these tests.
fn head_office() -> Principal {
    principal::head_office()
}

struct H {
    app: TestApp,
    db: platform::db::Db,
    backend: &'static str,
}

impl H {
    fn new(t: &TestDb, cache_ttl: u64) -> H {
        let state = CatalogState {
            db: t.db.clone(),
            cache: Arc::new(ResponseCache::new(Duration::from_secs(cache_ttl))),
            idempotency: Idempotency::new(t.db.clone()),
            clock: Arc::new(kernel::SystemClock),
        };
        H {
            app: TestApp::new(catalog::http::router(state)).with_common_layers(64 * 1024),
            db: t.db.clone(),
            backend: t.backend,
        }
    }

    async fn get(&self, uri: &str) -> Res {
        self.app.get(uri).await
    }

    async fn get_bo(&self, uri: &str) -> Res {
        self.app.get(uri).as_(&head_office()).await
    }

    /// A JSON write as head office.
    async fn write(&self, method: &str, uri: &str, body: &Value, extra: &[(&str, &str)]) -> Res {
        self.app
            .request(method.parse().expect("method"), uri)
            .as_(&head_office())
            .json(body)
            .headers(extra)
            .await
    }

    /// A raw body with exactly `headers`, anonymous unless `who` says otherwise.
    async fn raw(&self, method: &str, uri: &str, body: &str, headers: &[(&str, &str)]) -> Res {
        self.raw_as(None, method, uri, body, headers).await
    }

    async fn raw_as(
        &self,
        who: Option<&Principal>,
        method: &str,
        uri: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Res {
        let method: Method = method.parse().expect("method");
        self.app
            .request(method, uri)
            .as_opt(who)
            .headers(headers)
            .body(body)
            .await
    }

    async fn count(&self, table: &str) -> i64 {
        let sql: &'static str = match table {
            "products" => "SELECT COUNT(*) FROM products",
            "variants" => "SELECT COUNT(*) FROM variants",
            "published" => "SELECT COUNT(*) FROM products WHERE status = 'published'",
            "events" => "SELECT COUNT(*) FROM outbox WHERE topic = 'product.changed'",
            _ => panic!("unknown table"),
        };
        platform::db_run!(&self.db, |p| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(p)
            .await)
        .expect("count")
    }
}

/// Runs a scenario on every backend, each on a fresh database.
macro_rules! on_all_backends {
    ($name:ident, $ttl:expr, $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            testkit::each_backend(catalog::migrations(), |t| {
                Box::pin(async move {
                    let h = H::new(t, $ttl);
                    let f: fn(&H) -> futures_util::future::BoxFuture<'_, ()> = $body;
                    f(&h).await;
                })
            })
            .await;
        }
    };
}

#[path = "suite/listing.rs"]
mod listing;
#[path = "suite/protocol.rs"]
mod protocol;
#[path = "suite/writes.rs"]
mod writes;

async fn seeded(h: &H) -> catalog::demo::Seeded {
    catalog::demo::seed(&h.db)
        .await
        .expect("seed")
        .expect("empty database gets seeded")
}

fn new_product(slug: &str, sku: &str, price: i64) -> Value {
    json!({
        "slug": slug,
        "name": {"fr": "Veste de pluie Glaz", "en": "Glaz rain jacket"},
        "description": {"fr": "Imperméable.", "en": "Waterproof."},
        "status": "published",
        "attributes": [{"code": "waterproof", "type": "boolean", "value": true}],
        "variants": [
            {"sku": sku, "size": "M", "colour": "Navy", "barcode": "4006381333931",
             "price": {"amount_minor": price, "currency": "EUR"}, "vat_rate": 2000},
            {"sku": format!("{sku}-L"), "size": "L", "colour": "Navy",
             "price": {"amount_minor": price + 500, "currency": "EUR"}, "vat_rate": 2000}
        ]
    })
}
