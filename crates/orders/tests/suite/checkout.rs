//! The checkout saga: the happy path, a flash sale (L3), duplicate lines (L4), declines and
//! failed captures, idempotent retries (D2).

use super::*;

#[tokio::test]
async fn a_checkout_holds_authorises_confirms_commits_and_captures() {
    for h in H::all().await {
        h.stock("rennes", "A", 10).await;
        let cart = h.cart(&[("A", 2), ("B", 1)]).await;
        h.stock("rennes", "B", 1).await;
        let (s, order) = h.checkout(&cart, OK_CARD, "k-1").await;
        assert_eq!(s, StatusCode::CREATED, "{}: {order}", h.backend);
        assert_eq!(order["status"], "paid");
        assert_eq!(order["total"], 2 * 1000 + 2500);
        assert_eq!(order["location"], "rennes");
        assert_eq!(available(&h, "A").await, (8, 0), "sold, nothing left held");
        assert_eq!(available(&h, "B").await, (0, 0));
        let id = order["id"].as_str().unwrap().to_string();
        // the saga's steps, in order, for head office
        let (s, saga, _) = h
            .call_as(
                Some("head_office"),
                "GET",
                &format!("/api/orders/{id}/saga"),
                None,
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let steps: Vec<&str> = saga["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["step"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                "start",
                "hold_stock",
                "authorize_payment",
                "confirm_order",
                "commit_stock",
                "capture_payment"
            ]
        );
        assert_eq!(saga["state"], "completed");
        // the cart is gone; the events reached the mail sink once each
        let (s, _, _) = h
            .call("GET", &format!("/api/carts/{cart}"), None, &[])
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 1);
        assert_eq!(r.psp_captured, 4500);
        let kinds: Vec<String> = orders::store::notifications(&h.orders.db, 50)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.kind)
            .collect();
        assert!(kinds.contains(&"order_received".to_string()), "{kinds:?}");
        assert!(
            kinds.contains(&"order_confirmation".to_string()),
            "{kinds:?}"
        );
        // staff of another store do not see a Rennes order; Rennes's manager does
        let (s, _, _) = h
            .call_as(
                Some("store_manager:brest"),
                "GET",
                &format!("/api/orders/{id}"),
                None,
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v, _) = h
            .call_as(
                Some("store_manager:rennes"),
                "GET",
                &format!("/api/orders/{id}"),
                None,
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["history"].as_array().unwrap().len(), 3, "{v}");
        h.cleanup().await;
    }
}

#[tokio::test]
async fn flash_sale_sells_exactly_the_stock_l3() {
    for h in H::all().await {
        h.stock("rennes", "HOT", 50).await;
        let mut carts = Vec::new();
        for _ in 0..200 {
            carts.push(h.cart(&[("HOT", 1)]).await);
        }
        let h = Arc::new(h);
        let barrier = Arc::new(tokio::sync::Barrier::new(200));
        let mut tasks = Vec::new();
        for (i, c) in carts.into_iter().enumerate() {
            let h = h.clone();
            let b = barrier.clone();
            tasks.push(tokio::spawn(async move {
                b.wait().await;
                h.checkout(&c, OK_CARD, &format!("flash-{i}")).await
            }));
        }
        let mut created = 0;
        let mut sold_out = 0;
        for t in tasks {
            let (s, v) = t.await.unwrap();
            match s {
                StatusCode::CREATED => created += 1,
                StatusCode::CONFLICT => {
                    assert_eq!(v["code"], "out_of_stock", "{v}");
                    sold_out += 1;
                }
                other => panic!("{}: unexpected {other}: {v}", h.backend),
            }
        }
        assert_eq!((created, sold_out), (50, 150), "{}", h.backend);
        assert_eq!(available(&h, "HOT").await, (0, 0));
        assert_eq!(h.inventory.sold("rennes", "HOT").await.unwrap(), 50);
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 50);
        match Arc::try_unwrap(h) {
            Ok(h) => h.cleanup().await,
            Err(_) => panic!("harness still shared"),
        }
    }
}

#[tokio::test]
async fn duplicate_lines_of_one_sku_are_summed_before_the_check_l4() {
    for h in H::all().await {
        h.stock("rennes", "A", 30).await;
        let inv = h.inventory.clone();
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let inv = inv.clone();
            tasks.push(tokio::spawn(async move {
                let id = Uuid::now_v7();
                let lines = [
                    inventory::HoldLine {
                        sku: "A".into(),
                        quantity: 1,
                    },
                    inventory::HoldLine {
                        sku: "A".into(),
                        quantity: 1,
                    },
                ];
                match inv.hold(id, "rennes", &lines, None).await {
                    Ok(_) => {
                        inv.commit(id).await.unwrap();
                        2
                    }
                    Err(inventory::InvError::OutOfStock(_)) => 0,
                    Err(e) => panic!("{e}"),
                }
            }));
        }
        let mut sold = 0;
        for t in tasks {
            sold += t.await.unwrap();
        }
        assert_eq!(sold, 30, "{}: exactly the stock, in pairs", h.backend);
        assert_eq!(available(&h, "A").await, (0, 0));
        assert!(h.inventory.check().await.unwrap().is_empty());
        h.cleanup().await;
    }
}

#[tokio::test]
async fn a_declined_card_takes_nothing_and_a_failed_capture_is_undone() {
    for h in H::all().await {
        h.stock("rennes", "A", 5).await;
        let cart = h.cart(&[("A", 2)]).await;
        let (s, v) = h.checkout(&cart, DECLINED, "d-1").await;
        assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
        assert_eq!(v["code"], "payment_declined");
        assert_eq!(available(&h, "A").await, (5, 0), "hold released");
        // the cart survives a declined payment; a failed capture is compensated
        let (s, v) = h.checkout(&cart, CAPTURE_FAILS, "d-2").await;
        assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
        assert_eq!(v["code"], "payment_failed");
        assert_eq!(
            available(&h, "A").await,
            (5, 0),
            "stock put back after the sale"
        );
        let cancelled = orders::store::list_orders(
            &h.orders.db,
            &orders::store::OrderFilter {
                status: Some("cancelled".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(cancelled.len(), 1, "the confirmed order was cancelled");
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 0);
        assert_eq!(r.psp_captured, 0);
        // then a good card works on the same cart
        let (s, v) = h.checkout(&cart, OK_CARD, "d-3").await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(available(&h, "A").await, (3, 0));
        h.settle().await;
        h.cleanup().await;
    }
}

#[tokio::test]
async fn retrying_a_checkout_never_orders_or_charges_twice_d2() {
    for h in H::all().await {
        h.stock("rennes", "A", 100).await;
        let cart = h.cart(&[("A", 1)]).await;
        let (s1, v1) = h.checkout(&cart, OK_CARD, "same").await;
        assert_eq!(s1, StatusCode::CREATED);
        // a retry with the same key and body: the same answer, marked as a replay
        let body = json!({
            "cart_id": cart, "email": "client@example.org",
            "fulfilment": {"type": "collect", "store": "rennes"},
            "payment": {"type": "test_card", "number": OK_CARD},
        });
        let (s2, v2, hdr) = h
            .call(
                "POST",
                "/api/checkout",
                Some(body.clone()),
                &[("idempotency-key", "same")],
            )
            .await;
        assert_eq!((s2, &v2), (s1, &v1));
        assert_eq!(hdr.get("idempotent-replayed").unwrap(), "true");
        // the same key with another body
        let mut other = body.clone();
        other["email"] = json!("autre@example.org");
        let (s, v, _) = h
            .call(
                "POST",
                "/api/checkout",
                Some(other),
                &[("idempotency-key", "same")],
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["code"], "idempotency_key_reused");
        // no key at all
        let (s, v, _) = h
            .call("POST", "/api/checkout", Some(body.clone()), &[])
            .await;
        assert_eq!(s, StatusCode::PRECONDITION_REQUIRED);
        assert_eq!(v["code"], "idempotency_key_required");
        // a client-sent total is refused, not used
        let mut priced = body.clone();
        priced["total"] = json!(1);
        let (s, _, _) = h
            .call(
                "POST",
                "/api/checkout",
                Some(priced),
                &[("idempotency-key", "priced")],
            )
            .await;
        assert!(s.is_client_error(), "{s}");
        // 10 parallel requests with one new key: one checkout runs
        let cart2 = h.cart(&[("A", 1)]).await;
        let h = Arc::new(h);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let h = h.clone();
            let c = cart2.clone();
            tasks.push(tokio::spawn(async move {
                h.checkout(&c, OK_CARD, "parallel").await
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        for t in tasks {
            let (s, v) = t.await.unwrap();
            match s {
                StatusCode::CREATED => {
                    ids.insert(v["id"].as_str().unwrap().to_string());
                }
                StatusCode::CONFLICT => assert_eq!(v["code"], "idempotency_in_progress", "{v}"),
                other => panic!("unexpected {other} {v}"),
            }
        }
        assert_eq!(ids.len(), 1, "one order for one key");
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 2);
        assert_eq!(available(&h, "A").await, (98, 0));
        match Arc::try_unwrap(h) {
            Ok(h) => h.cleanup().await,
            Err(_) => panic!("harness still shared"),
        }
    }
}
