//! The order machine: skipped steps refused (B6), refunds that add up, fulfil, complete, cancel.

use super::*;

#[tokio::test]
async fn the_order_machine_refuses_skipped_steps_and_refunds_add_up_b6() {
    for h in H::all().await {
        h.stock("rennes", "B", 3).await;
        let cart = h.cart(&[("B", 2)]).await;
        let (_, order) = h.checkout(&cart, OK_CARD, "b6").await;
        let id = order["id"].as_str().unwrap().to_string();
        let post = |path: &'static str, body: Value, key: &'static str| {
            let h = &h;
            let id = id.clone();
            async move {
                h.call_as(
                    Some("store_manager:rennes"),
                    "POST",
                    &format!("/api/orders/{id}/{path}"),
                    Some(body),
                    &[("idempotency-key", key)],
                )
                .await
            }
        };
        // complete before fulfil
        let (s, v, _) = post("complete", json!({}), "c1").await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["code"], "invalid_transition");
        // a Brest manager cannot act on a Rennes order
        let (s, _, _) = h
            .call_as(
                Some("store_manager:brest"),
                "POST",
                &format!("/api/orders/{id}/fulfil"),
                Some(json!({})),
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // refunds: too much, then part, replay, then the rest
        let (s, v, _) = post("refunds", json!({"amount": 999_999}), "r0").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        // a refused request frees its key: the same retry is refused again, not "in progress"
        let (s, v, _) = post("refunds", json!({"amount": 999_999}), "r0").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let (s, v, _) = post("refunds", json!({"amount": 1000}), "r1").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "partially_refunded");
        assert_eq!(v["refunded"], 1000);
        let (s, v, hdr) = post("refunds", json!({"amount": 1000}), "r1").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(hdr.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(v["refunded"], 1000, "a replay refunds nothing more");
        let (s, v, _) = post("refunds", json!({"amount": 4000}), "r2").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "refunded");
        // a refunded order cannot be fulfilled
        let (s, _, _) = post("fulfil", json!({}), "f1").await;
        assert_eq!(s, StatusCode::CONFLICT);
        let r = h.settle().await;
        assert_eq!((r.psp_captured, r.psp_refunded), (5000, 5000));
        h.cleanup().await;
    }
}

#[tokio::test]
async fn fulfil_complete_and_cancel_follow_the_machine() {
    for h in H::all().await {
        h.stock("rennes", "A", 4).await;
        let c1 = h.cart(&[("A", 1)]).await;
        let (_, o1) = h.checkout(&c1, OK_CARD, "f-1").await;
        let c2 = h.cart(&[("A", 2)]).await;
        let (_, o2) = h.checkout(&c2, OK_CARD, "f-2").await;
        let act = |id: Value, what: &'static str, key: &'static str| {
            let h = &h;
            async move {
                h.call_as(
                    Some("store_manager:rennes"),
                    "POST",
                    &format!("/api/orders/{}/{what}", id.as_str().unwrap()),
                    Some(json!({})),
                    &[("idempotency-key", key)],
                )
                .await
            }
        };
        let (s, v, _) = act(o1["id"].clone(), "fulfil", "a").await;
        assert_eq!(
            (s, v["status"].clone()),
            (StatusCode::OK, json!("fulfilled"))
        );
        let (s, v, _) = act(o1["id"].clone(), "complete", "b").await;
        assert_eq!(
            (s, v["status"].clone()),
            (StatusCode::OK, json!("completed"))
        );
        let (s, _, _) = act(o1["id"].clone(), "cancel", "c").await;
        assert_eq!(
            s,
            StatusCode::CONFLICT,
            "a collected order is not cancelled"
        );
        // cancelling a paid order refunds it and puts the stock back
        let (s, v, _) = act(o2["id"].clone(), "cancel", "d").await;
        assert_eq!(
            (s, v["status"].clone()),
            (StatusCode::OK, json!("cancelled")),
            "{v}"
        );
        assert_eq!(available(&h, "A").await, (3, 0));
        let (s, v, _) = act(o2["id"].clone(), "cancel", "d").await;
        assert_eq!(
            (s, v["status"].clone()),
            (StatusCode::OK, json!("cancelled")),
            "replay"
        );
        let r = h.settle().await;
        assert_eq!(r.psp_captured - r.psp_refunded, 1000);
        h.cleanup().await;
    }
}
