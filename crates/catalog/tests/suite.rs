//! The catalogue's suite, run on SQLite always and on PostgreSQL when
//! `COMPTOIR_TEST_POSTGRES_URL` is set: the same behaviour on both backends, through the real
//! HTTP router (in process) and the real store.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use catalog::http::CatalogState;
use http_body_util::BodyExt;
use platform::auth::{InternalKey, accept_internal_identity};
use platform::authz::{Principal, PrincipalKind, Role};
use platform::cache::ResponseCache;
use platform::http::{EdgeOptions, with_common_layers};
use platform::idempotency::Idempotency;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use testkit::TRICKY_SEARCH_QUERIES as TRICKY_QUERIES;
use testkit::TestDb;
use tower::ServiceExt;

const TOKEN: &str = "test-token-test-token-test-token";
const CUSTOMER_TOKEN: &str = "customer-token";

/// Plays the gateway: turns the test tokens into the signed identity header the catalogue
/// verifies (the real edge is tested in the identity and e2e suites). Any other token becomes
/// a header that does not verify.
async fn as_gateway(
    key: InternalKey,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let who = |role: Role| Principal {
        subject: format!("{role:?}"),
        kind: PrincipalKind::User,
        role,
        store: None,
        organiser: None,
        scopes: vec![],
        session: None,
    };
    let ip = "127.0.0.1".parse().expect("ip");
    let now = chrono::Utc::now().timestamp();
    if let Some(v) = req.headers_mut().remove("authorization") {
        let header = match v.to_str().unwrap_or("") {
            x if x == format!("Bearer {TOKEN}") => key.sign(ip, Some(&who(Role::HeadOffice)), now),
            x if x == format!("Bearer {CUSTOMER_TOKEN}") => {
                key.sign(ip, Some(&who(Role::Customer)), now)
            }
            _ => InternalKey::new(b"not the key").sign(ip, Some(&who(Role::HeadOffice)), now),
        };
        req.headers_mut()
            .insert(platform::auth::IDENTITY_HEADER, header);
    }
    next.run(req).await
}

struct H {
    router: Router,
    db: platform::db::Db,
    backend: &'static str,
}

struct Res {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl H {
    fn new(t: &TestDb, cache_ttl: u64) -> H {
        let state = CatalogState {
            db: t.db.clone(),
            cache: Arc::new(ResponseCache::new(Duration::from_secs(cache_ttl))),
            idempotency: Idempotency::new(t.db.clone()),
            clock: Arc::new(kernel::SystemClock),
        };
        let key = InternalKey::new(b"catalog-suite-secret");
        let k2 = key.clone();
        let service = catalog::http::router(state)
            .layer(axum::middleware::from_fn(move |req, next| {
                accept_internal_identity(Some(key.clone()), req, next)
            }))
            .layer(axum::middleware::from_fn(move |req, next| {
                as_gateway(k2.clone(), req, next)
            }));
        let router = with_common_layers(
            service,
            &EdgeOptions {
                request_timeout: Duration::from_secs(30),
                max_body_bytes: 64 * 1024,
            },
        );
        H {
            router,
            db: t.db.clone(),
            backend: t.backend,
        }
    }

    async fn send(&self, req: Request<Body>) -> Res {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Res {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Res {
        self.send(Request::get(uri).body(Body::empty()).expect("request"))
            .await
    }

    async fn get_bo(&self, uri: &str) -> Res {
        self.send(
            Request::get(uri)
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    async fn write(&self, method: &str, uri: &str, body: &Value, extra: &[(&str, &str)]) -> Res {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {TOKEN}"));
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::from(body.to_string())).expect("request"))
            .await
    }

    async fn raw(&self, method: &str, uri: &str, body: &str, headers: &[(&str, &str)]) -> Res {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::from(body.to_string())).expect("request"))
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
            for t in TestDb::all(catalog::migrations()).await {
                {
                    let h = H::new(&t, $ttl);
                    let f: fn(&H) -> futures_util::future::BoxFuture<'_, ()> = $body;
                    f(&h).await;
                }
                t.cleanup().await;
            }
        }
    };
}

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

on_all_backends!(demo_data_is_big_enough_and_seeded_once, 0, |h| Box::pin(
    async move {
        let s = seeded(h).await;
        assert!(s.products >= 300, "{s:?}");
        assert!(s.variants >= 1000, "{s:?}");
        assert!(s.categories >= 12, "{s:?}");
        assert_eq!(s.brands, 15);
        assert_eq!(h.count("products").await, s.products as i64);
        assert_eq!(
            catalog::demo::seed(&h.db).await.expect("second seed"),
            None,
            "a catalogue with products is never seeded again"
        );
        let cats = h.get("/api/catalog/categories").await;
        assert_eq!(cats.status, StatusCode::OK);
        let running = cats
            .body
            .as_array()
            .expect("tree")
            .iter()
            .find(|c| c["slug"] == "running")
            .expect("running root");
        assert_eq!(running["name"]["en"], "Running");
        assert!(running["children"].as_array().expect("children").len() >= 3);
        let brands = h.get("/api/catalog/brands").await;
        assert_eq!(brands.body.as_array().expect("brands").len(), 15);
    }
));

on_all_backends!(pagination_walks_every_published_product_once, 0, |h| {
    Box::pin(async move {
        seeded(h).await;
        for sort in ["newest", "price", "-price", "name", "-name"] {
            let mut seen = std::collections::HashSet::new();
            let mut cursor: Option<String> = None;
            let mut last_price = if sort == "-price" { i64::MAX } else { i64::MIN };
            loop {
                let mut uri = format!("/api/catalog/products?limit=37&sort={sort}&lang=en");
                if let Some(c) = &cursor {
                    uri.push_str(&format!("&cursor={c}"));
                }
                let r = h.get(&uri).await;
                assert_eq!(r.status, StatusCode::OK, "{}: {:?}", h.backend, r.body);
                for item in r.body["items"].as_array().expect("items") {
                    assert_eq!(item["status"], "published");
                    assert!(
                        seen.insert(item["id"].as_str().expect("id").to_string()),
                        "duplicate in {sort}"
                    );
                    let p = item["price_range"]["min"]["amount_minor"]
                        .as_i64()
                        .expect("price");
                    if sort == "price" {
                        assert!(p >= last_price);
                        last_price = p;
                    }
                    if sort == "-price" {
                        assert!(p <= last_price);
                        last_price = p;
                    }
                }
                match r.body["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
            assert_eq!(
                seen.len() as i64,
                h.count("published").await,
                "{} sort {sort}",
                h.backend
            );
        }
    })
});

on_all_backends!(filters_select_what_they_say, 0, |h| Box::pin(async move {
    seeded(h).await;
    let all = |uri: String| async move {
        let r = h.get(&uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {:?}", r.body);
        r.body["items"].as_array().expect("items").clone()
    };
    // a parent category includes its sub-categories
    let running = all("/api/catalog/products?category=running&limit=100".into()).await;
    let subs: std::collections::HashSet<_> = running
        .iter()
        .map(|i| i["category"]["slug"].as_str().expect("slug").to_string())
        .collect();
    assert!(
        subs.contains("chaussures-trail") && subs.contains("chaussures-running"),
        "{subs:?}"
    );
    // brand by slug
    let armorik = all("/api/catalog/products?brand=armorik&limit=100".into()).await;
    assert!(!armorik.is_empty());
    assert!(armorik.iter().all(|i| i["brand"]["slug"] == "armorik"));
    // price range
    let mid = all("/api/catalog/products?min_price=5000&max_price=8000&limit=100".into()).await;
    assert!(!mid.is_empty());
    for i in &mid {
        let min = i["price_range"]["min"]["amount_minor"]
            .as_i64()
            .expect("min");
        let max = i["price_range"]["max"]["amount_minor"]
            .as_i64()
            .expect("max");
        assert!(max >= 5000 && min <= 8000, "{i}");
    }
    // text: accents and case do not matter; every word must match
    let jackets = all("/api/catalog/products?q=VESTE%20impermeable&limit=100".into()).await;
    assert!(!jackets.is_empty());
    assert!(jackets.iter().all(|i| {
        i["name"]["fr"]
            .as_str()
            .expect("name")
            .to_lowercase()
            .contains("imperméable")
    }));
    let none = all("/api/catalog/products?q=zzzqqq".into()).await;
    assert!(none.is_empty());
    // unknown references are named
    let r = h.get("/api/catalog/products?category=nope").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0]["field"], "category");
}));

// the SQL search agrees with the kernel's rule, which the shop's read model applies too
on_all_backends!(text_search_follows_the_kernel_rule, 0, |h| Box::pin(
    async move {
        seeded(h).await;
        // every published product and its searchable text, as the kernel folds it
        let mut texts = std::collections::HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let uri = match &cursor {
                Some(c) => format!("/api/catalog/products?limit=100&cursor={}", urlencode(c)),
                None => "/api/catalog/products?limit=100".into(),
            };
            let r = h.get(&uri).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            for i in r.body["items"].as_array().expect("items") {
                let slug = i["slug"].as_str().expect("slug").to_string();
                let full = h.get(&format!("/api/catalog/products/{slug}")).await.body;
                let mut parts = vec![
                    full["name"]["fr"].as_str().unwrap_or("").to_string(),
                    full["name"]["en"].as_str().unwrap_or("").to_string(),
                    full["brand"]["name"].as_str().unwrap_or("").to_string(),
                    full["category"]["name"]["fr"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    full["category"]["name"]["en"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                ];
                for v in full["variants"].as_array().expect("variants") {
                    parts.push(v["sku"].as_str().expect("sku").to_string());
                }
                texts.insert(
                    slug,
                    kernel::search_haystack(parts.iter().map(String::as_str)),
                );
            }
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert!(texts.len() > 100, "{}", texts.len());
        for q in TRICKY_QUERIES {
            let rule = kernel::SearchQuery::parse(q);
            let mut expected: Vec<&String> = texts
                .iter()
                .filter(|(_, hay)| rule.matches(hay))
                .map(|(slug, _)| slug)
                .collect();
            expected.sort();
            let mut got = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut uri = format!("/api/catalog/products?limit=100&q={}", urlencode(q));
                if let Some(c) = &cursor {
                    uri.push_str(&format!("&cursor={}", urlencode(c)));
                }
                let r = h.get(&uri).await;
                assert_eq!(r.status, StatusCode::OK, "{q}: {:?}", r.body);
                for i in r.body["items"].as_array().expect("items") {
                    got.push(i["slug"].as_str().expect("slug").to_string());
                }
                match r.body["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
            got.sort();
            assert_eq!(
                got.iter().collect::<Vec<_>>(),
                expected,
                "{q:?}: the API and the kernel rule disagree"
            );
        }
        // a query of nothing but punctuation matches nothing; typing nothing filters nothing
        for q in ["' --", "!!!"] {
            let r = h
                .get(&format!("/api/catalog/products?q={}", urlencode(q)))
                .await;
            assert_eq!(r.body["items"].as_array().map(Vec::len), Some(0), "{q:?}");
        }
        let r = h.get("/api/catalog/products?q=%20").await;
        assert!(!r.body["items"].as_array().expect("items").is_empty());
        // the injection attempt is only words: "or" and "1", found as any other words
        let r = h
            .get(&format!(
                "/api/catalog/products?q={}&limit=100",
                urlencode("' OR 1=1 --")
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
));

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

on_all_backends!(bad_list_parameters_are_named, 0, |h| Box::pin(async move {
    for (uri, field, code) in [
        ("/api/catalog/products?limit=0", "limit", "invalid_query"),
        ("/api/catalog/products?limit=abc", "limit", "invalid_query"),
        (
            "/api/catalog/products?min_price=-5",
            "min_price",
            "invalid_query",
        ),
        (
            "/api/catalog/products?sort=cheapest",
            "sort",
            "invalid_query",
        ),
        (
            "/api/catalog/products?cursor=garbage",
            "cursor",
            "invalid_cursor",
        ),
        ("/api/catalog/products?colour=red", "query", "invalid_query"),
    ] {
        let r = h.get(uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {:?}", r.body);
        assert_eq!(r.body["code"], code, "{uri}");
        assert_eq!(r.headers["content-type"], "application/problem+json");
        let f = r.body["errors"][0]["field"].as_str().expect("field");
        assert!(
            f == field || (field == "query" && f.contains("colour")),
            "{uri}: {f}"
        );
    }
    // a cursor made for another sort is refused
    seeded(h).await;
    let r = h.get("/api/catalog/products?limit=2&sort=price").await;
    let c = r.body["next_cursor"].as_str().expect("cursor").to_string();
    let r = h
        .get(&format!(
            "/api/catalog/products?limit=2&sort=name&cursor={c}"
        ))
        .await;
    assert_eq!(r.body["code"], "invalid_cursor");
    // the public cannot list drafts
    let r = h.get("/api/catalog/products?status=draft").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}));

on_all_backends!(create_then_read_by_id_and_slug, 0, |h| Box::pin(
    async move {
        let r = h
            .write(
                "POST",
                "/api/catalog/products",
                &new_product("veste-glaz", "GLZ-001", 8990),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {:?}", h.backend, r.body);
        let id = r.body["id"].as_str().expect("id").to_string();
        assert_eq!(r.headers["location"], format!("/api/catalog/products/{id}"));
        assert_eq!(r.body["price_range"]["min"]["amount_minor"], 8990);
        assert_eq!(r.body["price_range"]["max"]["amount_minor"], 9490);
        assert_eq!(r.body["variants"][0]["vat_included_minor"], 1498);
        assert_eq!(r.body["version"], 1);
        let by_id = h.get(&format!("/api/catalog/products/{id}")).await;
        let by_slug = h.get("/api/catalog/products/veste-glaz").await;
        assert_eq!(by_id.status, StatusCode::OK);
        assert_eq!(by_id.body, by_slug.body);
        assert_eq!(by_id.body["attributes"][0]["value"], true);
        let found = h.get("/api/catalog/products?q=glaz%20pluie").await;
        assert_eq!(found.body["items"][0]["slug"], "veste-glaz");
        let missing = h.get("/api/catalog/products/does-not-exist").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.body["code"], "not_found");
    }
));

on_all_backends!(bad_writes_are_refused_and_change_nothing, 0, |h| Box::pin(
    async move {
        let ok = new_product("ok-product", "OK-1", 1000);
        assert_eq!(
            h.write("POST", "/api/catalog/products", &ok, &[])
                .await
                .status,
            StatusCode::CREATED
        );
        let before = (h.count("products").await, h.count("variants").await);
        // the accepted write told the other services, in its transaction
        assert_eq!(h.count("events").await, 1);
        let payload: String = platform::db_run!(&h.db, |p| sqlx::query_scalar(
            "SELECT payload FROM outbox WHERE topic = 'product.changed'"
        )
        .fetch_one(p)
        .await)
        .expect("event");
        let payload: Value = serde_json::from_str(&payload).expect("json");
        assert_eq!(
            (payload["slug"].clone(), payload["skus"].clone()),
            (json!("ok-product"), json!(["OK-1", "OK-1-L"]))
        );
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = new_product("new-one", "NEW-1", 1000);
            f(&mut v);
            v
        };
        let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
            (
                with(&|v| v["variants"][0]["price"]["amount_minor"] = json!(-1)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[0].price.amount_minor",
            ),
            (
                with(&|v| v["variants"][0]["price"]["amount_minor"] = json!(99_999_999_999i64)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[0].price.amount_minor",
            ),
            (
                with(&|v| v["variants"][0]["price"]["amount_minor"] = json!("12")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "variants[0].price.amount_minor",
            ),
            (
                with(&|v| v["variants"][0]["price"]["currency"] = json!("EURO")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "variants[0].price.currency",
            ),
            (
                with(&|v| v["variants"][1]["price"]["currency"] = json!("USD")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[1].price.currency",
            ),
            (
                with(&|v| v["status"] = json!("sold_out")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "status",
            ),
            (
                with(&|v| v["name"]["fr"] = json!("x".repeat(201))),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "name.fr",
            ),
            (
                with(&|v| v["name"]["en"] = json!("")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "name.en",
            ),
            (
                with(&|v| v["slug"] = json!("Not A Slug")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "slug",
            ),
            (
                with(&|v| v["variants"][0]["barcode"] = json!("4006381333932")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[0].barcode",
            ),
            (
                with(&|v| v["variants"][1]["sku"] = json!("NEW-1")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[1].sku",
            ),
            (
                with(&|v| v["variants"][0]["vat_rate"] = json!(20000)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants[0].vat_rate",
            ),
            (
                with(&|v| v["is_admin"] = json!(true)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "is_admin",
            ),
            (
                with(&|v| v["variants"] = json!([])),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "variants",
            ),
            (
                with(&|v| v["brand_id"] = json!("0190d4c6-3a4b-7c2d-8e9f-0a1b2c3d4e5f")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "brand_id",
            ),
            (
                with(&|v| v["slug"] = json!("ok-product")),
                StatusCode::CONFLICT,
                "slug_taken",
                "slug",
            ),
            (
                with(&|v| v["variants"][0]["sku"] = json!("OK-1")),
                StatusCode::CONFLICT,
                "sku_taken",
                "variants[0].sku",
            ),
            (
                with(&|v| v["variants"][0]["barcode"] = json!("4006381333931")),
                StatusCode::CONFLICT,
                "barcode_taken",
                "variants[0].barcode",
            ),
        ];
        for (body, status, code, field) in cases {
            let r = h.write("POST", "/api/catalog/products", &body, &[]).await;
            assert_eq!(r.status, status, "{}: {field}: {:?}", h.backend, r.body);
            assert_eq!(r.body["code"], code, "{field}: {:?}", r.body);
            assert_eq!(r.headers["content-type"], "application/problem+json");
            let fields: Vec<&str> = r.body["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .map(|e| e["field"].as_str().expect("field"))
                .collect();
            assert!(fields.contains(&field), "{field} not in {fields:?}");
        }
        let auth = [("authorization", &*format!("Bearer {TOKEN}"))];
        let json_ct = [("content-type", "application/json"), auth[0]];
        let r = h
            .raw("POST", "/api/catalog/products", "{\"name\": ", &json_ct)
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("malformed_json"))
        );
        let r = h
            .raw("POST", "/api/catalog/products", &ok.to_string(), &auth)
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("unsupported_media_type")
            )
        );
        // JSON nested 10,000 deep where any value is allowed: refused, no stack overflow
        let deep = format!(
            "{{\"attributes\": [{{\"code\": \"a\", \"type\": \"list\", \"value\": {}{}}}]}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let r = h
            .raw("POST", "/api/catalog/products", &deep, &json_ct)
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("malformed_json")),
            "deep nesting: {:?}",
            r.body
        );
        let big = format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024));
        let r = h.raw("POST", "/api/catalog/products", &big, &json_ct).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
        );
        assert_eq!(
            (h.count("products").await, h.count("variants").await),
            before,
            "nothing written"
        );
        assert_eq!(h.count("events").await, 1, "no event for a refused write");
    }
));

on_all_backends!(writes_need_the_catalog_write_permission, 0, |h| Box::pin(
    async move {
        let body = new_product("anon", "ANON-1", 100).to_string();
        let r = h
            .raw(
                "POST",
                "/api/catalog/products",
                &body,
                &[("content-type", "application/json")],
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
        );
        let r = h
            .raw(
                "POST",
                "/api/catalog/products",
                &body,
                &[
                    ("content-type", "application/json"),
                    ("authorization", "Bearer wrong"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // a wrong token is refused even on reads (never silently downgraded)
        let r = h
            .raw(
                "GET",
                "/api/catalog/products",
                "",
                &[("authorization", "Bearer wrong")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // signed in, but without `catalog:write`
        let r = h
            .raw(
                "POST",
                "/api/catalog/products",
                &body,
                &[
                    ("content-type", "application/json"),
                    ("authorization", &format!("Bearer {CUSTOMER_TOKEN}")),
                ],
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        // a customer sees published products only, like the public
        let r = h
            .raw(
                "GET",
                "/api/catalog/products?status=draft",
                "",
                &[("authorization", &format!("Bearer {CUSTOMER_TOKEN}"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
        assert_eq!(h.count("products").await, 0);
    }
));

on_all_backends!(
    drafts_and_archived_products_are_hidden_from_the_public,
    0,
    |h| Box::pin(async move {
        let mut draft = new_product("brouillon", "DRF-1", 100);
        draft["status"] = json!("draft");
        draft["variants"][0]["barcode"] = json!(null);
        let r = h.write("POST", "/api/catalog/products", &draft, &[]).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let id = r.body["id"].as_str().expect("id").to_string();
        assert_eq!(
            h.get("/api/catalog/products/brouillon").await.status,
            StatusCode::NOT_FOUND
        );
        let bo = h.get_bo("/api/catalog/products/brouillon").await;
        assert_eq!(bo.status, StatusCode::OK);
        assert_eq!(bo.headers["etag"], "\"v1\"");
        let drafts = h.get_bo("/api/catalog/products?status=draft").await;
        assert_eq!(drafts.body["items"].as_array().expect("items").len(), 1);
        // publish with If-Match: a stale version is refused, the right one applies
        let stale = h
            .write(
                "PATCH",
                &format!("/api/catalog/products/{id}"),
                &json!({"status": "published"}),
                &[("if-match", "\"v7\"")],
            )
            .await;
        assert_eq!(
            (stale.status, stale.body["code"].as_str()),
            (StatusCode::PRECONDITION_FAILED, Some("version_mismatch"))
        );
        let r = h
            .write(
                "PATCH",
                &format!("/api/catalog/products/{id}"),
                &json!({"status": "published", "name": {"fr": "Publié", "en": "Published"}}),
                &[("if-match", "\"v1\"")],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["version"], 2);
        assert!(r.body["published_at"].is_string());
        assert_eq!(
            h.get("/api/catalog/products/brouillon").await.body["name"]["fr"],
            "Publié"
        );
        // archive: gone for the public, kept for the back office
        let r = h
            .write(
                "POST",
                &format!("/api/catalog/products/{id}/archive"),
                &json!({}),
                &[],
            )
            .await;
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (StatusCode::OK, Some("archived"))
        );
        assert_eq!(
            h.get(&format!("/api/catalog/products/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            h.get_bo(&format!("/api/catalog/products/{id}"))
                .await
                .status,
            StatusCode::OK
        );
        let r = h
            .write(
                "PATCH",
                &format!("/api/catalog/products/{id}"),
                &json!({"status": "published"}),
                &[],
            )
            .await;
        assert_eq!(r.body["code"], "product_archived");
    })
);

on_all_backends!(variants_can_be_added_and_repriced, 0, |h| Box::pin(
    async move {
        let r = h
            .write(
                "POST",
                "/api/catalog/products",
                &new_product("veste-v", "VV-1", 5000),
                &[],
            )
            .await;
        let id = r.body["id"].as_str().expect("id").to_string();
        let r = h.write("POST", &format!("/api/catalog/products/{id}/variants"),
        &json!({"sku": "VV-XL", "size": "XL", "colour": "Navy", "price": {"amount_minor": 6500, "currency": "EUR"}, "vat_rate": 2000}), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["variants"].as_array().expect("v").len(), 3);
        assert_eq!(r.body["price_range"]["max"]["amount_minor"], 6500);
        let vid = r.body["variants"][0]["id"]
            .as_str()
            .expect("vid")
            .to_string();
        let r = h
            .write(
                "PATCH",
                &format!("/api/catalog/products/{id}/variants/{vid}"),
                &json!({"price": {"amount_minor": 4000, "currency": "EUR"}}),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["price_range"]["min"]["amount_minor"], 4000);
        let r = h
            .write(
                "PATCH",
                &format!("/api/catalog/products/{id}/variants/{vid}"),
                &json!({"price": {"amount_minor": 4000, "currency": "USD"}}),
                &[],
            )
            .await;
        assert_eq!(r.body["code"], "validation_failed");
        let r = h
            .get("/api/catalog/products?min_price=3900&max_price=4100")
            .await;
        assert_eq!(r.body["items"][0]["slug"], "veste-v");
    }
));

on_all_backends!(idempotency_keys_replay_and_refuse, 0, |h| Box::pin(
    async move {
        let body = new_product("idem", "IDEM-1", 1234);
        let first = h
            .write(
                "POST",
                "/api/catalog/products",
                &body,
                &[("idempotency-key", "k-1")],
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED);
        let again = h
            .write(
                "POST",
                "/api/catalog/products",
                &body,
                &[("idempotency-key", "k-1")],
            )
            .await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_eq!(again.body, first.body, "byte-identical replay");
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(again.headers["location"], first.headers["location"]);
        let other = h
            .write(
                "POST",
                "/api/catalog/products",
                &new_product("idem-2", "IDEM-2", 1),
                &[("idempotency-key", "k-1")],
            )
            .await;
        assert_eq!(
            (other.status, other.body["code"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("idempotency_key_reused")
            )
        );
        let bad = h
            .write(
                "POST",
                "/api/catalog/products",
                &body,
                &[("idempotency-key", "has space")],
            )
            .await;
        assert_eq!(bad.body["code"], "invalid_idempotency_key");
        // a failed request does not burn its key
        let mut invalid = new_product("idem-3", "IDEM-3", -5);
        let r = h
            .write(
                "POST",
                "/api/catalog/products",
                &invalid,
                &[("idempotency-key", "k-3")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        invalid["variants"][0]["price"]["amount_minor"] = json!(5);
        invalid["variants"][0]["barcode"] = json!(null);
        let r = h
            .write(
                "POST",
                "/api/catalog/products",
                &invalid,
                &[("idempotency-key", "k-3")],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "the corrected retry runs: {:?}",
            r.body
        );
        assert_eq!(h.count("products").await, 2);
    }
));

on_all_backends!(concurrent_duplicates_create_one_product, 0, |h| Box::pin(
    async move {
        let body = new_product("race", "RACE-1", 999);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let router = h.router.clone();
            let body = body.to_string();
            tasks.push(tokio::spawn(async move {
                let req = Request::post("/api/catalog/products")
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .header("idempotency-key", "race-key")
                    .body(Body::from(body))
                    .expect("request");
                router.oneshot(req).await.expect("infallible").status()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.expect("task"));
        }
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
            "{statuses:?}"
        );
        assert!(statuses.contains(&StatusCode::CREATED));
        assert_eq!(h.count("products").await, 1, "{}: one execution", h.backend);
    }
));

on_all_backends!(cached_reads_see_writes_at_once, 60, |h| Box::pin(
    async move {
        let r = h.get("/api/catalog/products?q=cache").await;
        assert_eq!(r.body["items"].as_array().expect("items").len(), 0);
        let mut p = new_product("cache-me", "CACHE-1", 100);
        p["name"]["fr"] = json!("Produit cache");
        assert_eq!(
            h.write("POST", "/api/catalog/products", &p, &[])
                .await
                .status,
            StatusCode::CREATED
        );
        let r = h.get("/api/catalog/products?q=cache").await;
        assert_eq!(
            r.body["items"].as_array().expect("items").len(),
            1,
            "the write cleared the cache"
        );
        assert!(
            r.headers["cache-control"]
                .to_str()
                .expect("cc")
                .starts_with("public")
        );
    }
));

on_all_backends!(errors_are_problems_everywhere, 0, |h| Box::pin(
    async move {
        let r = h.get("/api/catalog/nowhere").await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("route_not_found"))
        );
        let r = h.raw("DELETE", "/api/catalog/products", "", &[]).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
        );
        let r = h
            .raw(
                "GET",
                "/api/catalog/brands",
                "",
                &[("x-request-id", "abc-123")],
            )
            .await;
        assert_eq!(r.headers["x-request-id"], "abc-123");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        let r = h
            .raw(
                "GET",
                "/api/catalog/products/x",
                "",
                &[("x-request-id", "bad id with spaces")],
            )
            .await;
        assert_ne!(r.headers["x-request-id"], "bad id with spaces");
        assert_eq!(
            r.body["request_id"],
            r.headers["x-request-id"].to_str().expect("id")
        );
    }
));
