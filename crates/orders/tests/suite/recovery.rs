//! What goes wrong and comes back: abandoned sagas, a lost capture response (F8), stock-low
//! events and expired holds, a broker outage (F3), reconciliation (D3), payments awaiting the
//! shopper's confirmation.

use super::*;

#[tokio::test]
async fn the_recovery_worker_finishes_an_abandoned_saga() {
    for pg in [false, true] {
        if pg && testkit::postgres_url().is_none() {
            continue;
        }
        let h = H::with_bus(
            pg,
            Arc::new(InProcessBus::new()),
            Duration::from_millis(200),
        )
        .await;
        h.stock("rennes", "A", 5).await;
        let cart = h.cart(&[("A", 1)]).await;
        // a process started the saga, held the stock, then died
        let c = h.carts.get(cart.parse().unwrap(), None).await.unwrap();
        let plan = orders::domain::Plan {
            cart_id: c.id,
            customer: None,
            email: "x@example.org".into(),
            fulfilment: orders::domain::Fulfilment::Collect {
                store: "rennes".into(),
            },
            location: "rennes".into(),
            currency: kernel::Currency::EUR,
            lines: vec![orders::domain::OrderLine {
                sku: "A".into(),
                name: "A".into(),
                quantity: 1,
                unit_price: eur(1000),
                line_total: eur(1000),
            }],
            subtotal: eur(1000),
            shipping: eur(0),
            total: eur(1000),
            payment: payments::PaymentMethod::TestCard {
                number: OK_CARD.into(),
            },
            channel: orders::domain::Channel::Web,
        };
        let orders::saga::Start::New(id) = h
            .orders
            .start_checkout("test", "abandoned", "hash", &plan)
            .await
            .unwrap()
        else {
            panic!("new saga expected")
        };
        h.inventory
            .hold(
                id.uuid(),
                "rennes",
                &[inventory::HoldLine {
                    sku: "A".into(),
                    quantity: 1,
                }],
                None,
            )
            .await
            .unwrap();
        assert_eq!(available(&h, "A").await, (5, 1));
        // the worker takes it over once the lease runs out
        testkit::eventually("the saga is recovered", Duration::from_secs(10), || async {
            h.orders.recover_once().await.unwrap();
            let s = orders::store::checkout(&h.orders.db, id)
                .await
                .unwrap()
                .unwrap();
            (s.state == "completed").then_some(())
        })
        .await;
        assert_eq!(available(&h, "A").await, (4, 0));
        let r = h.settle().await;
        assert_eq!(r.paid_orders, 1);
        h.cleanup().await;
    }
}

#[tokio::test]
async fn a_lost_capture_response_is_retried_without_a_second_capture_f8() {
    for h in H::all().await {
        h.stock("rennes", "A", 5).await;
        h.faults.lose_capture_responses(2);
        let cart = h.cart(&[("A", 1)]).await;
        let (s, v) = h.checkout(&cart, OK_CARD, "lost").await;
        // the first answer may be "not finished yet": the client retries with its key
        let (s, v) = if s == StatusCode::SERVICE_UNAVAILABLE {
            testkit::eventually("the checkout finishes", Duration::from_secs(15), || async {
                h.orders.recover_once().await.unwrap();
                let (s, v) = h.checkout(&cart, OK_CARD, "lost").await;
                (s == StatusCode::CREATED).then_some((s, v))
            })
            .await
        } else {
            (s, v)
        };
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let r = h.settle().await;
        assert_eq!(r.psp_captured, 1000, "{}: captured once", h.backend);
        h.cleanup().await;
    }
}

#[tokio::test]
async fn stock_low_fires_once_and_holds_expire() {
    for h in H::all().await {
        h.stock("rennes", "A", 4).await;
        h.inventory.set_threshold("rennes", "A", 2).await.unwrap();
        let cart = h.cart(&[("A", 2)]).await;
        let (s, _) = h.checkout(&cart, OK_CARD, "low-1").await;
        assert_eq!(s, StatusCode::CREATED);
        let cart = h.cart(&[("A", 1)]).await;
        let (s, _) = h.checkout(&cart, OK_CARD, "low-2").await;
        assert_eq!(s, StatusCode::CREATED);
        h.settle().await;
        let alerts = orders::store::notifications(&h.orders.db, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.kind == "stock_alert")
            .count();
        assert_eq!(
            alerts, 1,
            "one alert when it crossed the threshold, not one per sale"
        );
        // an expired hold is released by the sweeper, and lazily by a buyer who needs it
        let id = Uuid::now_v7();
        h.inventory
            .hold(
                id,
                "rennes",
                &[inventory::HoldLine {
                    sku: "A".into(),
                    quantity: 1,
                }],
                Some(Duration::ZERO),
            )
            .await
            .unwrap();
        assert_eq!(available(&h, "A").await, (1, 1));
        let other = Uuid::now_v7();
        h.inventory
            .hold(
                other,
                "rennes",
                &[inventory::HoldLine {
                    sku: "A".into(),
                    quantity: 1,
                }],
                None,
            )
            .await
            .expect("the expired hold was reclaimed for this buyer");
        assert_eq!(
            h.inventory.hold_state(id).await.unwrap().as_deref(),
            Some("expired")
        );
        h.inventory.release(other).await.unwrap();
        let id = Uuid::now_v7();
        h.inventory
            .hold(
                id,
                "rennes",
                &[inventory::HoldLine {
                    sku: "A".into(),
                    quantity: 1,
                }],
                Some(Duration::ZERO),
            )
            .await
            .unwrap();
        assert_eq!(h.inventory.sweep().await.unwrap(), 1);
        assert_eq!(available(&h, "A").await, (1, 0));
        assert!(h.inventory.check().await.unwrap().is_empty());
        h.cleanup().await;
    }
}

/// F3: the broker goes away during checkouts. Checkouts go on (events wait in the outboxes),
/// the backlog drains once it is back, every event has exactly one effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkouts_continue_through_a_broker_outage_f3() {
    let Some(url) = testkit::rabbitmq_url() else {
        return;
    };
    for pg in [false, true] {
        if pg && testkit::postgres_url().is_none() {
            continue;
        }
        let prefix = format!("f3{}", &Uuid::new_v4().simple().to_string()[..10]);
        let (upstream, _) = testkit::proxy::split_url(&url, "127.0.0.1:1".parse().unwrap());
        let proxy = testkit::proxy::Proxy::start(upstream).await;
        let (_, through) = testkit::proxy::split_url(&url, proxy.addr);
        let bus = Arc::new(
            platform::rabbit::RabbitBus::connect(&through, &prefix)
                .await
                .expect("RabbitMQ through the proxy"),
        );
        let h = H::with_bus(pg, bus.clone(), Duration::from_secs(10)).await;
        h.stock("rennes", "A", 50).await;
        h.settle().await;
        proxy.cut();
        let mut acknowledged = 0;
        for i in 0..10 {
            let cart = h.cart(&[("A", 1)]).await;
            let (s, v) = h.checkout(&cart, OK_CARD, &format!("outage-{i}")).await;
            assert_eq!(s, StatusCode::CREATED, "checkout during the outage: {v}");
            acknowledged += 1;
        }
        let waiting = platform::bus::pending_count(&h.orders.db).await.unwrap();
        assert!(
            waiting >= 10,
            "events wait in the outbox while the broker is away ({waiting})"
        );
        proxy.restore();
        let r = h.settle().await;
        assert_eq!(r.paid_orders, acknowledged);
        let notes = orders::store::notifications(&h.orders.db, 1000)
            .await
            .unwrap();
        let placed = notes.iter().filter(|n| n.kind == "order_received").count();
        let paid = notes
            .iter()
            .filter(|n| n.kind == "order_confirmation")
            .count();
        assert_eq!((placed, paid), (10, 10), "each event once ({})", h.backend);
        h.cleanup().await;
        drop(bus);
        drop(proxy);
        let _ = platform::rabbit::delete_topology(
            &url,
            &prefix,
            &[
                orders::consumers::REFUNDS_GROUP,
                orders::consumers::NOTIFICATIONS_GROUP,
            ],
        )
        .await;
    }
}

/// D3: reconciliation finds a capture without an order, a paid order without a capture and an
/// amount mismatch in one run; the orphan capture is refunded automatically.
#[tokio::test]
async fn reconciliation_finds_and_refunds_what_does_not_add_up_d3() {
    for mut h in H::all().await {
        h.orders.settings.orphan_after = Duration::ZERO;
        h.stock("rennes", "A", 10).await;
        let cart = h.cart(&[("A", 1)]).await;
        let (s, order) = h.checkout(&cart, OK_CARD, "d3").await;
        assert_eq!(s, StatusCode::CREATED);
        h.settle().await;
        // 1. money captured with no order behind it (a checkout that never got that far)
        let orphan = kernel::PaymentId::new();
        let req = payments::AuthorizeRequest {
            payment_id: orphan,
            order_ref: "lost".into(),
            amount: eur(777),
            method: payments::PaymentMethod::TestCard {
                number: OK_CARD.into(),
            },
            customer_email: None,
        };
        h.payments.authorize(&req).await.unwrap();
        h.payments.capture(orphan).await.unwrap();
        let r = orders::invariants::check(&h.orders, &h.books(), false)
            .await
            .unwrap();
        assert!(
            r.violations
                .iter()
                .any(|v| v.starts_with("I4") && v.contains(&orphan.to_string())),
            "{:?}",
            r.violations
        );
        assert_eq!(h.orders.refund_orphans().await.unwrap(), 1);
        assert_eq!(h.orders.refund_orphans().await.unwrap(), 0, "refunded once");
        let r = h.settle().await;
        assert_eq!(r.psp_refunded, 777);
        // 2. an amount mismatch between the order and its payment
        let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
        platform::db_run!(&h.orders.db, |p| sqlx::query(
            "UPDATE orders SET total = total + 1 WHERE id = $1"
        )
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
        .unwrap();
        let r = orders::invariants::check(&h.orders, &h.books(), false)
            .await
            .unwrap();
        assert!(
            r.violations.iter().any(|v| v.starts_with("I3 order")),
            "{:?}",
            r.violations
        );
        // 3. a paid order with no capture at all
        platform::db_run!(&h.orders.db, |p| sqlx::query(
            "UPDATE orders SET total = total - 1 WHERE id = $1"
        )
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
        .unwrap();
        platform::db_run!(h.payments.db(), |p| sqlx::query(
            "UPDATE payments SET captured = 0, status = 'authorized' WHERE id = $1"
        )
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
        .unwrap();
        let r = orders::invariants::check(&h.orders, &h.books(), false)
            .await
            .unwrap();
        assert!(
            r.violations.iter().any(|v| v.starts_with("I3")),
            "a paid order without its capture: {:?}",
            r.violations
        );
        h.cleanup().await;
    }
}

/// A card that asks the shopper to confirm (3-D Secure): the saga waits in
/// `awaiting_authorization`, the recovery worker polls the provider, and the checkout ends paid
/// once confirmed, or compensated (stock released, nothing charged) when the shopper fails it.
#[tokio::test]
async fn a_payment_that_needs_the_shoppers_confirmation_is_polled_to_its_end() {
    const NEEDS_ACTION: &str = "4000002500003155";
    for pg in [false, true] {
        if pg && testkit::postgres_url().is_none() {
            continue;
        }
        let h = H::with_bus(
            pg,
            Arc::new(InProcessBus::new()),
            Duration::from_millis(100),
        )
        .await;
        h.stock("rennes", "A", 5).await;
        for (approved, key) in [(true, "3ds-ok"), (false, "3ds-failed")] {
            let cart = h.cart(&[("A", 1)]).await;
            let (s, v) = h.checkout(&cart, NEEDS_ACTION, key).await;
            assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "not finished yet: {v}");
            let sagas = orders::store::checkouts_in(&h.orders.db, &["awaiting_authorization"], 10)
                .await
                .unwrap();
            assert_eq!(sagas.len(), 1, "{}", h.backend);
            let id = sagas[0].id;
            assert_eq!(available(&h, "A").await.1, 1, "the stock is held meanwhile");
            // while the shopper has not answered, a retry is told to come back
            let (s, _) = h.checkout(&cart, NEEDS_ACTION, key).await;
            assert_eq!(s, StatusCode::CONFLICT);
            assert!(
                payments::TestProvider::complete_action(
                    h.payments.db(),
                    orders::domain::payment_of(id),
                    approved
                )
                .await
                .unwrap()
            );
            let state = testkit::eventually("the saga ends", Duration::from_secs(15), || async {
                h.orders.recover_once().await.unwrap();
                let s = orders::store::checkout(&h.orders.db, id)
                    .await
                    .unwrap()
                    .unwrap();
                matches!(s.state.as_str(), "completed" | "compensated").then_some(s.state)
            })
            .await;
            let (s, v) = h.checkout(&cart, NEEDS_ACTION, key).await;
            if approved {
                assert_eq!(state, "completed");
                assert_eq!(
                    (s, v["status"].clone()),
                    (StatusCode::CREATED, json!("paid"))
                );
            } else {
                assert_eq!(state, "compensated");
                assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
                assert_eq!(v["code"], "payment_declined");
            }
        }
        assert_eq!(
            available(&h, "A").await,
            (4, 0),
            "one sold, the other released"
        );
        // a shopper who never answers: once the hold would have expired the saga gives up,
        // cancels the payment at the provider and releases the stock
        let mut h = h;
        h.orders.settings.hold_ttl = Duration::ZERO;
        let cart = h.cart(&[("A", 1)]).await;
        let (s, _) = h.checkout(&cart, NEEDS_ACTION, "3ds-silent").await;
        assert!(
            s == StatusCode::SERVICE_UNAVAILABLE || s == StatusCode::PAYMENT_REQUIRED,
            "{s}"
        );
        let (s, v) = testkit::eventually(
            "the silent checkout ends",
            Duration::from_secs(15),
            || async {
                h.orders.recover_once().await.unwrap();
                let (s, v) = h.checkout(&cart, NEEDS_ACTION, "3ds-silent").await;
                (s == StatusCode::PAYMENT_REQUIRED).then_some((s, v))
            },
        )
        .await;
        assert_eq!(
            (s, v["code"].clone()),
            (StatusCode::PAYMENT_REQUIRED, json!("payment_timeout"))
        );
        assert_eq!(available(&h, "A").await, (4, 0), "released");
        let r = h.settle().await;
        assert_eq!((r.paid_orders, r.psp_captured), (1, 1000));
        h.cleanup().await;
    }
}

fn eur(minor: i64) -> kernel::Money {
    kernel::Money::new(minor, kernel::Currency::EUR)
}
