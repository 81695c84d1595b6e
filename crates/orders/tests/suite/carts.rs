//! One cart, one payment (I9): concurrent checkouts of a cart, a declined card freeing it, a key
//! reused with another cart.

use super::*;

/// I9: one cart, 20 concurrent checkouts with 20 different keys (a double click, two tabs, a
/// retry after a timeout): exactly one order and one charge; the 19 others get a clear 409
/// naming the checkout that holds the cart, and the stock is taken once. A signed-in
/// customer's cart likewise. SQLite; PostgreSQL with carts in Redis.
#[tokio::test]
async fn one_cart_pays_once_whatever_the_keys_i9() {
    for h in H::all().await {
        let be = format!("{}+{} carts", h.backend, h.cart_backend);
        h.stock("rennes", "A", 100).await;
        for customer in [false, true] {
            let who = customer.then_some("customer");
            let (s, v, _) = h
                .call_as(who, "POST", "/api/carts", Some(json!({})), &[])
                .await;
            assert!(s.is_success(), "{be}: {s} {v}");
            let cart = v["id"].as_str().unwrap().to_string();
            let (s, v, _) = h
                .call_as(
                    who,
                    "POST",
                    &format!("/api/carts/{cart}/lines"),
                    Some(json!({"sku": "A", "quantity": 2})),
                    &[],
                )
                .await;
            assert!(s.is_success(), "{be}: {s} {v}");
            let before = available(&h, "A").await;
            let body = json!({
                "cart_id": cart,
                "email": "client@example.org",
                "fulfilment": {"type": "collect", "store": "rennes"},
                "payment": {"type": "test_card", "number": OK_CARD},
            });
            let tries = (0..20).map(|i| {
                let h = &h;
                let body = body.clone();
                async move {
                    let key = format!("click-{customer}-{i}");
                    let headers = [("idempotency-key", key.as_str())];
                    let (s, v, _) = h
                        .call_as(who, "POST", "/api/checkout", Some(body), &headers)
                        .await;
                    (s, v)
                }
            });
            let answers = futures_util::future::join_all(tries).await;
            let created: Vec<&Value> = answers
                .iter()
                .filter(|(s, _)| *s == StatusCode::CREATED)
                .map(|(_, v)| v)
                .collect();
            assert_eq!(created.len(), 1, "{be} customer={customer}: {answers:?}");
            let order = created[0]["id"].as_str().unwrap();
            for (s, v) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
                assert_eq!(*s, StatusCode::CONFLICT, "{be}: {v}");
                let code = v["code"].as_str().unwrap_or("");
                assert!(
                    code == "cart_checkout_in_progress" || code == "cart_checked_out",
                    "{be}: {v}"
                );
                assert!(
                    v["detail"].as_str().unwrap_or("").contains(order),
                    "{be}: the refusal names the checkout that holds the cart: {v}"
                );
            }
            assert_eq!(
                available(&h, "A").await,
                (before.0 - 2, 0),
                "{be}: the stock is taken once"
            );
            // a customer's cart is named only to that customer: another account gets the 404
            // a stranger gets for the cart itself
            if customer {
                let (s, v, _) = h
                    .call_as(
                        Some("customer:other"),
                        "POST",
                        "/api/checkout",
                        Some(body.clone()),
                        &[("idempotency-key", "stranger")],
                    )
                    .await;
                assert_eq!(s, StatusCode::NOT_FOUND, "{be}: {v}");
                assert!(!v.to_string().contains(order), "{be}: {v}");
            }
            // and later, with yet another key, still no second order
            let headers = [("idempotency-key", "late")];
            let (s, v, _) = h
                .call_as(who, "POST", "/api/checkout", Some(body.clone()), &headers)
                .await;
            assert!(
                s == StatusCode::CONFLICT || s == StatusCode::NOT_FOUND,
                "{be}: {s} {v}"
            );
        }
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 2, "{be}: one paid order per cart: {r:?}");
        assert_eq!(
            r.psp_captured, 4000,
            "{be}: one charge per cart (2 × 2 × 1000): {r:?}"
        );
        h.cleanup().await;
    }
}

/// A declined card releases the cart: the shopper retries with another card (and another key)
/// and pays; the earlier attempt does not block it.
#[tokio::test]
async fn a_declined_checkout_frees_its_cart_for_a_retry_i9() {
    for h in H::all().await {
        h.stock("rennes", "A", 10).await;
        let cart = h.cart(&[("A", 1)]).await;
        let (s, v) = h.checkout(&cart, DECLINED, "try-1").await;
        assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{}: {v}", h.backend);
        assert_eq!(v["type"], "urn:comptoir:problem:payment_declined", "{v}");
        assert_eq!(v["code"], "payment_declined");
        let (s, v) = h.checkout(&cart, OK_CARD, "try-2").await;
        assert_eq!(s, StatusCode::CREATED, "{}: {v}", h.backend);
        h.settle().await;
        h.cleanup().await;
    }
}

/// The same key with another cart is another request: 422, and no second checkout (guests
/// and customers alike).
#[tokio::test]
async fn a_key_reused_with_another_cart_is_refused() {
    for h in H::all().await {
        h.stock("rennes", "A", 10).await;
        let c1 = h.cart(&[("A", 1)]).await;
        let c2 = h.cart(&[("A", 1)]).await;
        let (s, v) = h.checkout(&c1, OK_CARD, "K").await;
        assert_eq!(s, StatusCode::CREATED, "{}: {v}", h.backend);
        let (s, v) = h.checkout(&c2, OK_CARD, "K").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {v}", h.backend);
        assert_eq!(v["code"], "idempotency_key_reused");
        assert_eq!(available(&h, "A").await, (9, 0), "{}", h.backend);
        // the first request again is a replay
        let (s, _) = h.checkout(&c1, OK_CARD, "K").await;
        assert_eq!(s, StatusCode::CREATED);
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 1);
        h.cleanup().await;
    }
}
