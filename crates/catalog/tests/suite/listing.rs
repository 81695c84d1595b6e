//! The demo data, pagination, filters, text search and bad list parameters.

use super::*;
use testkit::TRICKY_SEARCH_QUERIES as TRICKY_QUERIES;

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
