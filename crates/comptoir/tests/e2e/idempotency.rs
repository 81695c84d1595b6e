//! I9 and D2 over the whole application: every keyed operation binds its `Idempotency-Key` to
//! the whole request. The same key sent again with another body (or, for an operation without
//! a body, another object) is a 422 `idempotency_key_reused` that changes nothing, and the
//! first request sent again is still its replay. A table covers every unsafe operation of the
//! OpenAPI document: keyed ones are exercised, the others are listed with the reason they
//! take no key.

use crate::security::{Running, operations, secret_of, shape, start, temp, token};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Unsafe operations that take no `Idempotency-Key`, and why.
const WITHOUT_KEY: &[(&str, &str, &str)] = &[
    (
        "PUT",
        "/api/inventory/locations/{code}",
        "PUT sets a whole state: repeating it is harmless",
    ),
    (
        "PUT",
        "/api/inventory/stock/{location}/{sku}/threshold",
        "PUT sets a value",
    ),
    (
        "PUT",
        "/api/identity/me/password",
        "PUT sets a value; needs the current password",
    ),
    (
        "POST",
        "/api/catalog/products/{id}/archive",
        "archiving twice is archiving once",
    ),
    (
        "POST",
        "/api/identity/sessions",
        "a sign-in: a retry opens another session, no money moves",
    ),
    (
        "POST",
        "/api/identity/sessions/refresh",
        "refresh tokens are single-use by design",
    ),
    (
        "DELETE",
        "/api/identity/sessions/current",
        "signing out twice is signing out once",
    ),
    (
        "POST",
        "/api/identity/customers",
        "the e-mail is unique: a retry gets 409 email taken",
    ),
    (
        "POST",
        "/api/identity/users",
        "the e-mail is unique: a retry gets 409 email taken",
    ),
    (
        "PATCH",
        "/api/identity/users/{id}",
        "sets role and status: repeating it is harmless",
    ),
    (
        "POST",
        "/api/identity/api-keys",
        "a secret is shown once; a lost answer means a new key",
    ),
    (
        "DELETE",
        "/api/identity/api-keys/{id}",
        "revoking twice is revoking once",
    ),
    (
        "POST",
        "/api/identity/password-resets",
        "asks for a mail; throttled per account",
    ),
    (
        "POST",
        "/api/identity/password-resets/confirm",
        "the reset token is single-use",
    ),
    (
        "POST",
        "/api/identity/signing-keys/rotate",
        "rotation is idempotent within its period",
    ),
    (
        "POST",
        "/api/payments/webhooks/stripe",
        "deduplicated by the provider's event id",
    ),
];

struct Call {
    status: u16,
    body: Value,
    replayed: bool,
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    key: Option<&str>,
    body: Option<&Value>,
) -> Call {
    let c = platform::tls::current()
        .reqwest_builder()
        .build()
        .expect("an HTTP client");
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = c.request(m, format!("{base}{path}"));
    if let Some(t) = auth {
        rb = rb.bearer_auth(t);
    }
    if let Some(k) = key {
        rb = rb.header("idempotency-key", k);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let res = rb.send().await.expect("send");
    let status = res.status().as_u16();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let text = res.text().await.expect("body");
    Call {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        replayed,
    }
}

/// What the second request changes: another body, or (no body) another object's route.
enum Other {
    Body(Value),
    Path(String),
}

struct Case {
    method: &'static str,
    /// The documented route, to check that the table covers the document.
    route: &'static str,
    path: String,
    auth: Option<String>,
    body: Option<Value>,
    other: Other,
    /// A read (path, credential) whose answer must be the same before and after the refusal.
    check: Option<(String, Option<String>)>,
}

impl Case {
    async fn run(&self, r: &Running, key: &str) -> Value {
        let auth = self.auth.as_deref();
        let send_first = || {
            call(
                &r.base,
                self.method,
                &self.path,
                auth,
                Some(key),
                self.body.as_ref(),
            )
        };
        let first = send_first().await;
        assert!(
            (200..300).contains(&first.status),
            "{} {}: the first request works: {} {}",
            self.method,
            self.path,
            first.status,
            first.body
        );
        let read = |c: &Option<(String, Option<String>)>| {
            let c = c.clone();
            async move {
                match c {
                    Some((p, a)) => {
                        let mut x = call(&r.base, "GET", &p, a.as_deref(), None, None).await;
                        if let Some(m) = x.body.as_object_mut() {
                            m.remove("request_id");
                        }
                        Some((x.status, x.body))
                    }
                    None => None,
                }
            }
        };
        let before = read(&self.check).await;
        let (path, body) = match &self.other {
            Other::Body(b) => (self.path.clone(), Some(b.clone())),
            Other::Path(p) => (p.clone(), self.body.clone()),
        };
        let second = call(&r.base, self.method, &path, auth, Some(key), body.as_ref()).await;
        assert_eq!(
            second.status, 422,
            "{} {path}: the same key with another request: {}",
            self.method, second.body
        );
        assert_eq!(
            second.body["code"], "idempotency_key_reused",
            "{}",
            second.body
        );
        assert!(second.body["request_id"].is_string(), "{}", second.body);
        assert_eq!(
            read(&self.check).await,
            before,
            "{} {path}: the refused request changed nothing",
            self.method
        );
        let again = send_first().await;
        assert_eq!(
            again.status, first.status,
            "{} {}: {}",
            self.method, self.path, again.body
        );
        assert!(again.replayed, "{} {}: a replay", self.method, self.path);
        first.body
    }
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_string()
}

async fn guest_cart(base: &str, lines: &[&str]) -> String {
    let c = call(base, "POST", "/api/carts", None, None, Some(&json!({}))).await;
    let id = id_of(&c.body);
    for sku in lines {
        let l = json!({"sku": sku, "quantity": 1});
        let r = call(
            base,
            "POST",
            &format!("/api/carts/{id}/lines"),
            None,
            None,
            Some(&l),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    id
}

fn variant(sku: &str, amount: i64) -> Value {
    json!({"sku": sku, "price": {"amount_minor": amount, "currency": "EUR"}, "vat_rate": 2000})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_keyed_operation_binds_its_key_to_the_whole_request_d2() {
    let dir = temp("idem");
    let r = start(&dir, None).await;
    let base = r.base.clone();
    let hq = token(
        &base,
        "direction@breizhsport.example",
        &secret_of(&r, "head_office"),
    )
    .await;
    let customer = token(
        &base,
        "client@example.org",
        &secret_of(&r, "client@example.org"),
    )
    .await;
    // two sellable SKUs of the demo catalogue, with stock at Rennes
    let list = call(
        &base,
        "GET",
        "/api/catalog/products?limit=5",
        None,
        None,
        None,
    )
    .await;
    let products = list.body["items"]
        .as_array()
        .or(list.body.as_array())
        .cloned();
    let products = products.unwrap_or_else(|| panic!("products: {}", list.body));
    let mut skus = Vec::new();
    for p in products.iter().take(2) {
        let slug = p["slug"].as_str().expect("slug");
        let one = call(
            &base,
            "GET",
            &format!("/api/catalog/products/{slug}"),
            None,
            None,
            None,
        )
        .await;
        skus.push(
            one.body["variants"][0]["sku"]
                .as_str()
                .expect("sku")
                .to_string(),
        );
    }
    let (s1, s2) = (skus[0].clone(), skus[1].clone());
    for s in [&s1, &s2] {
        let m = json!({"location": "rennes", "sku": s, "kind": "receipt", "quantity": 50, "reason": "setup"});
        let x = call(
            &base,
            "POST",
            "/api/inventory/movements",
            Some(&hq),
            None,
            Some(&m),
        )
        .await;
        assert_eq!(x.status, 201, "{}", x.body);
    }
    let stock = |sku: &str| {
        (
            format!("/api/inventory/stock?location=rennes&sku={sku}"),
            Some(hq.clone()),
        )
    };
    let hq_auth = Some(hq.clone());
    let mut done: BTreeSet<(String, String)> = BTreeSet::new();
    let mut n = 0;
    let mut run = async |case: Case| -> Value {
        n += 1;
        done.insert((case.method.to_string(), shape(case.route)));
        case.run(&r, &format!("table-key-{n}")).await
    };

    // carts
    let created = run(Case {
        method: "POST",
        route: "/api/carts",
        path: "/api/carts".into(),
        auth: None,
        body: Some(json!({})),
        other: Other::Body(json!({"currency": "EUR"})),
        check: None,
    })
    .await;
    let cart = id_of(&created);
    let cart_read = Some((format!("/api/carts/{cart}"), None));
    run(Case {
        method: "POST",
        route: "/api/carts/{id}/lines",
        path: format!("/api/carts/{cart}/lines"),
        auth: None,
        body: Some(json!({"sku": s1, "quantity": 1})),
        other: Other::Body(json!({"sku": s2, "quantity": 1})),
        check: cart_read.clone(),
    })
    .await;
    run(Case {
        method: "PATCH",
        route: "/api/carts/{id}/lines/{sku}",
        path: format!("/api/carts/{cart}/lines/{s1}"),
        auth: None,
        body: Some(json!({"quantity": 2})),
        other: Other::Body(json!({"quantity": 3})),
        check: cart_read.clone(),
    })
    .await;
    let x = call(
        &base,
        "POST",
        &format!("/api/carts/{cart}/lines"),
        None,
        None,
        Some(&json!({"sku": s2, "quantity": 1})),
    )
    .await;
    assert_eq!(x.status, 200, "{}", x.body);
    run(Case {
        method: "DELETE",
        route: "/api/carts/{id}/lines/{sku}",
        path: format!("/api/carts/{cart}/lines/{s2}"),
        auth: None,
        body: None,
        other: Other::Path(format!("/api/carts/{cart}/lines/{s1}")),
        check: cart_read.clone(),
    })
    .await;
    let (g1, g2) = (
        guest_cart(&base, &[&s1]).await,
        guest_cart(&base, &[&s2]).await,
    );
    run(Case {
        method: "POST",
        route: "/api/carts/{id}/merge",
        path: format!("/api/carts/{g1}/merge"),
        auth: Some(customer.clone()),
        body: None,
        other: Other::Path(format!("/api/carts/{g2}/merge")),
        check: Some((format!("/api/carts/{g2}"), None)),
    })
    .await;

    // catalogue
    run(Case {
        method: "POST",
        route: "/api/catalog/brands",
        path: "/api/catalog/brands".into(),
        auth: hq_auth.clone(),
        body: Some(json!({"name": "Idem A"})),
        other: Other::Body(json!({"name": "Idem B"})),
        check: Some(("/api/catalog/brands".into(), hq_auth.clone())),
    })
    .await;
    run(Case {
        method: "POST",
        route: "/api/catalog/categories",
        path: "/api/catalog/categories".into(),
        auth: hq_auth.clone(),
        body: Some(json!({"name": {"fr": "Idem A", "en": "Idem A"}})),
        other: Other::Body(json!({"name": {"fr": "Idem B", "en": "Idem B"}})),
        check: Some(("/api/catalog/categories".into(), hq_auth.clone())),
    })
    .await;
    let product = |slug: &str, sku: &str| json!({"slug": slug, "name": {"fr": slug, "en": slug}, "variants": [variant(sku, 1990)]});
    let p = run(Case {
        method: "POST",
        route: "/api/catalog/products",
        path: "/api/catalog/products".into(),
        auth: hq_auth.clone(),
        body: Some(product("idem-a", "IDEM-A")),
        other: Other::Body(product("idem-b", "IDEM-B")),
        check: Some(("/api/catalog/products/idem-b".into(), hq_auth.clone())),
    })
    .await;
    let pid = id_of(&p);
    let vid = p["variants"][0]["id"]
        .as_str()
        .expect("variant id")
        .to_string();
    let product_read = Some((format!("/api/catalog/products/{pid}"), hq_auth.clone()));
    run(Case {
        method: "POST",
        route: "/api/catalog/products/{id}/variants",
        path: format!("/api/catalog/products/{pid}/variants"),
        auth: hq_auth.clone(),
        body: Some(variant("IDEM-A2", 2990)),
        other: Other::Body(variant("IDEM-A3", 2990)),
        check: product_read.clone(),
    })
    .await;
    run(Case {
        method: "PATCH",
        route: "/api/catalog/products/{key}",
        path: format!("/api/catalog/products/{pid}"),
        auth: hq_auth.clone(),
        body: Some(json!({"name": {"fr": "Idem 1", "en": "Idem 1"}})),
        other: Other::Body(json!({"name": {"fr": "Idem 2", "en": "Idem 2"}})),
        check: product_read.clone(),
    })
    .await;
    run(Case {
        method: "PATCH",
        route: "/api/catalog/products/{id}/variants/{variant_id}",
        path: format!("/api/catalog/products/{pid}/variants/{vid}"),
        auth: hq_auth.clone(),
        body: Some(json!({"size": "S"})),
        other: Other::Body(json!({"size": "M"})),
        check: product_read.clone(),
    })
    .await;

    // inventory
    let movement = |q: i64| json!({"location": "rennes", "sku": s1, "kind": "receipt", "quantity": q, "reason": "delivery"});
    run(Case {
        method: "POST",
        route: "/api/inventory/movements",
        path: "/api/inventory/movements".into(),
        auth: hq_auth.clone(),
        body: Some(movement(5)),
        other: Other::Body(movement(6)),
        check: Some(stock(&s1)),
    })
    .await;
    let transfer = |q: i64| json!({"from": "rennes", "to": "brest", "sku": s1, "quantity": q, "reason": "rebalance"});
    run(Case {
        method: "POST",
        route: "/api/inventory/transfers",
        path: "/api/inventory/transfers".into(),
        auth: hq_auth.clone(),
        body: Some(transfer(1)),
        other: Other::Body(transfer(2)),
        check: Some(stock(&s1)),
    })
    .await;

    // checkout and the order's actions
    let other_cart = guest_cart(&base, &[&s1]).await;
    let checkout = |c: &str| {
        json!({"cart_id": c, "email": "guest@example.org",
            "fulfilment": {"type": "collect", "store": "rennes"},
            "payment": {"type": "test_card", "number": "4242424242424242"}})
    };
    let order = run(Case {
        method: "POST",
        route: "/api/checkout",
        path: "/api/checkout".into(),
        auth: None,
        body: Some(checkout(&cart)),
        other: Other::Body(checkout(&other_cart)),
        check: Some((format!("/api/carts/{other_cart}"), None)),
    })
    .await;
    let oid = id_of(&order);
    let order_read = Some((format!("/api/orders/{oid}"), hq_auth.clone()));
    for action in ["fulfil", "complete"] {
        run(Case {
            method: "POST",
            route: if action == "fulfil" {
                "/api/orders/{id}/fulfil"
            } else {
                "/api/orders/{id}/complete"
            },
            path: format!("/api/orders/{oid}/{action}"),
            auth: hq_auth.clone(),
            body: Some(json!({"note": "a"})),
            other: Other::Body(json!({"note": "b"})),
            check: order_read.clone(),
        })
        .await;
    }
    run(Case {
        method: "POST",
        route: "/api/orders/{id}/refunds",
        path: format!("/api/orders/{oid}/refunds"),
        auth: hq_auth.clone(),
        body: Some(json!({"amount": 100, "reason": "a"})),
        other: Other::Body(json!({"amount": 200, "reason": "a"})),
        check: order_read.clone(),
    })
    .await;
    let second = call(
        &base,
        "POST",
        "/api/checkout",
        None,
        Some("second-order"),
        Some(&checkout(&other_cart)),
    )
    .await;
    assert_eq!(second.status, 201, "{}", second.body);
    let o2 = id_of(&second.body);
    run(Case {
        method: "POST",
        route: "/api/orders/{id}/cancel",
        path: format!("/api/orders/{o2}/cancel"),
        auth: hq_auth.clone(),
        body: Some(json!({"note": "a"})),
        other: Other::Body(json!({"note": "b"})),
        check: Some((format!("/api/orders/{o2}"), hq_auth.clone())),
    })
    .await;

    // a declined card: a problem like every other, with its type and this request's id
    let declined_cart = guest_cart(&base, &[&s2]).await;
    let mut body = checkout(&declined_cart);
    body["payment"]["number"] = json!("4000000000000002");
    let d = call(
        &base,
        "POST",
        "/api/checkout",
        None,
        Some("declined"),
        Some(&body),
    )
    .await;
    assert_eq!(d.status, 402, "{}", d.body);
    assert_eq!(
        d.body["type"], "urn:comptoir:problem:payment_declined",
        "{}",
        d.body
    );
    assert_eq!(d.body["code"], "payment_declined");
    assert!(d.body["request_id"].is_string(), "{}", d.body);
    let again = call(
        &base,
        "POST",
        "/api/checkout",
        None,
        Some("declined"),
        Some(&body),
    )
    .await;
    assert!(again.replayed, "{}", again.body);
    assert_ne!(
        again.body["request_id"], d.body["request_id"],
        "the replay names its own request"
    );

    // the table covers the document: every unsafe operation is exercised or listed as keyless
    let without: BTreeSet<(String, String)> = WITHOUT_KEY
        .iter()
        .map(|(m, p, _)| (m.to_string(), shape(p)))
        .collect();
    for (m, p) in operations() {
        if m == "GET" {
            continue;
        }
        let k = (m.clone(), shape(&p));
        assert!(
            done.contains(&k) || without.contains(&k),
            "{m} {p}: an unsafe operation neither tested for its key nor listed as keyless"
        );
        assert!(
            !(done.contains(&k) && without.contains(&k)),
            "{m} {p}: listed twice"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
