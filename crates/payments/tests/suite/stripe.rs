//! The Stripe adapter and webhooks against the fake Stripe.

use super::fake_stripe::{self, FakeStripe, sign, v1};
use super::*;
use serde_json::json;

/// The secret Stripe signed with before the rotation: not configured on our side any more.
const OLD_WHSEC: &str = "whsec_previous_secret_987654321";

async fn stripe_h(t: &TestDb) -> (H, FakeStripe) {
    let fake = FakeStripe::start().await;
    let provider = StripeProvider::new(&StripeConfig {
        base_url: fake.url.clone(),
        secret_key: Secret::new(fake_stripe::API_KEY),
        timeout: Duration::from_secs(10),
    })
    .expect("client");
    (H::with(t, Arc::new(provider), Faults::new()), fake)
}

fn stripe_request(amount: i64, pm: &str) -> AuthorizeRequest {
    let mut r = card_request(amount, VISA_OK);
    r.method = PaymentMethod::Stripe {
        payment_method: pm.to_string(),
    };
    r
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn authorized_stripe(h: &H, amount: i64) -> (AuthorizeRequest, String) {
    let req = stripe_request(amount, "pm_card_visa");
    let p = authorized(h.payments.authorize(&req).await.expect("authorize"));
    let pi = p.provider_ref.expect("intent id");
    (req, pi)
}

on_all_backends!(stripe_adapter_speaks_the_payment_intents_api, |t| {
    Box::pin(async move {
        let (h, fake) = stripe_h(t).await;
        let pay = &h.payments;

        // authorise: the form, the headers, the key
        let req = stripe_request(1250, "pm_card_visa");
        let p = authorized(pay.authorize(&req).await.expect("authorize"));
        assert_eq!(p.provider, "stripe");
        assert_eq!(p.last4.as_deref(), Some("4242"));
        let pi = p.provider_ref.clone().expect("pi");
        assert!(pi.starts_with("pi_"));
        let posts = fake.posts();
        assert_eq!(posts.len(), 1);
        let post = &posts[0];
        assert_eq!(post.path, "/v1/payment_intents");
        assert_eq!(post.idempotency_key, Some(req.payment_id.to_string()));
        assert_eq!(
            post.authorization,
            Some(format!("Bearer {}", fake_stripe::API_KEY))
        );
        assert_eq!(
            post.version.as_deref(),
            Some(payments::stripe::STRIPE_VERSION)
        );
        assert_eq!(post.field("amount"), Some("1250"));
        assert_eq!(post.field("currency"), Some("eur"));
        assert_eq!(post.field("payment_method"), Some("pm_card_visa"));
        assert_eq!(post.field("confirm"), Some("true"));
        assert_eq!(post.field("capture_method"), Some("manual"));
        let pid = req.payment_id.to_string();
        assert_eq!(post.field("metadata[payment_id]"), Some(pid.as_str()));
        assert_eq!(
            post.field("metadata[order_ref]"),
            Some(req.order_ref.as_str())
        );
        // the secret key never shows in debug output
        let provider = StripeProvider::new(&StripeConfig {
            base_url: fake.url.clone(),
            secret_key: Secret::new(fake_stripe::API_KEY),
            timeout: Duration::from_secs(1),
        })
        .expect("client");
        assert!(!format!("{provider:?}").contains(fake_stripe::API_KEY));

        // authorising again asks nothing: one intent
        authorized(pay.authorize(&req).await.expect("again"));
        assert_eq!((fake.posts().len(), fake.intent_count()), (1, 1));

        // capture, once
        let c = captured(pay.capture(req.payment_id).await.expect("capture"));
        assert_eq!(
            (c.status, c.captured.minor()),
            (PaymentStatus::Captured, 1250)
        );
        let posts = fake.posts();
        let last = posts.last().expect("capture post");
        assert_eq!(last.path, format!("/v1/payment_intents/{pi}/capture"));
        assert_eq!(
            last.idempotency_key,
            Some(format!("{}:capture", req.payment_id))
        );
        captured(pay.capture(req.payment_id).await.expect("capture again"));
        assert_eq!(fake.intent(&pi).captures, 1);

        // refunds: the amount, the key, the refunded total read back, one event per refund
        let p = pay
            .refund(req.payment_id, eur(250), "r1")
            .await
            .expect("refund");
        assert_eq!(
            (p.status, p.refunded.minor()),
            (PaymentStatus::PartiallyRefunded, 250)
        );
        let refund_post = fake
            .posts()
            .into_iter()
            .find(|p| p.path == "/v1/refunds")
            .expect("refund post");
        assert_eq!(refund_post.field("payment_intent"), Some(pi.as_str()));
        assert_eq!(refund_post.field("amount"), Some("250"));
        assert_eq!(
            refund_post.idempotency_key,
            Some(format!("{}:refund:r1", req.payment_id))
        );
        pay.refund(req.payment_id, eur(250), "r1")
            .await
            .expect("same key");
        assert_eq!(fake.intent(&pi).refunded, 250);
        assert_eq!(
            invalid_code(pay.refund(req.payment_id, eur(1001), "r2").await),
            "refund_exceeds_captured"
        );
        let p = pay
            .refund(req.payment_id, eur(1000), "r2")
            .await
            .expect("rest");
        assert_eq!(
            (p.status, p.refunded.minor()),
            (PaymentStatus::Refunded, 1250)
        );
        let events = h.outbox().await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].1["full"], true);

        // declines: the bank's code; the intent is remembered
        for (pm, code) in [
            ("pm_card_chargeDeclined", "generic_decline"),
            (
                "pm_card_chargeDeclinedInsufficientFunds",
                "insufficient_funds",
            ),
        ] {
            let req = stripe_request(900, pm);
            match pay.authorize(&req).await.expect("authorize") {
                AuthOutcome::Declined { code: c, .. } => assert_eq!(c, code),
                other => panic!("expected a decline, got {other:?}"),
            }
            let p = h.payment(req.payment_id).await;
            assert_eq!(p.status, PaymentStatus::Failed);
            assert!(p.provider_ref.is_some_and(|r| r.starts_with("pi_")));
        }

        // the customer must act: pending; voiding cancels the intent
        let req = stripe_request(900, "pm_card_authenticationRequired");
        match pay.authorize(&req).await.expect("authorize") {
            AuthOutcome::Pending(p) => assert_eq!(p.status, PaymentStatus::Pending),
            other => panic!("expected pending, got {other:?}"),
        }
        assert_eq!(
            invalid_code(pay.capture(req.payment_id).await),
            "not_authorized"
        );
        pay.void(req.payment_id).await.expect("void");
        let p = h.payment(req.payment_id).await;
        assert_eq!(p.status, PaymentStatus::Voided);
        assert_eq!(fake.intent(&p.provider_ref.expect("pi")).status, "canceled");
        let cancel = fake.posts().into_iter().last().expect("cancel post");
        assert_eq!(
            cancel.idempotency_key,
            Some(format!("{}:cancel", req.payment_id))
        );

        // methods Stripe cannot take are refused before anything is asked
        let before = fake.posts().len();
        let req = card_request(900, VISA_OK);
        assert_eq!(
            invalid_code(pay.authorize(&req).await),
            "method_not_supported"
        );
        let req = stripe_request(900, "tok_visa");
        assert_eq!(
            invalid_code(pay.authorize(&req).await),
            "invalid_payment_method"
        );
        assert_eq!(fake.posts().len(), before);

        // an unknown payment method at Stripe: declined, remembered
        let req = stripe_request(900, "pm_card_unknown");
        assert!(matches!(
            pay.authorize(&req).await.expect("authorize"),
            AuthOutcome::Declined { .. }
        ));
    })
});

on_all_backends!(stripe_retries_after_lost_answers_never_double, |t| {
    Box::pin(async move {
        let (h, fake) = stripe_h(t).await;
        let pay = &h.payments;

        // Stripe down before acting: nothing happened; the retry authorises once
        let req = stripe_request(3000, "pm_card_visa");
        fake.fail_next_requests(1);
        assert!(matches!(
            pay.authorize(&req).await,
            Err(PaymentError::Provider(_))
        ));
        assert_eq!(
            h.payment(req.payment_id).await.status,
            PaymentStatus::Pending
        );
        authorized(pay.authorize(&req).await.expect("retry"));
        assert_eq!(fake.intent_count(), 1);

        // the authorisation happened but its answer was lost: the same key finds it
        let req = stripe_request(3100, "pm_card_visa");
        fake.lose_next_answers(1);
        assert!(pay.authorize(&req).await.is_err());
        assert_eq!(fake.intent_count(), 2);
        let p = authorized(pay.authorize(&req).await.expect("retry"));
        assert_eq!(fake.intent_count(), 2, "no second intent");

        // F8 on Stripe: the capture happened, its answer was lost; the retry replays it
        fake.lose_next_answers(1);
        assert!(matches!(
            pay.capture(req.payment_id).await,
            Err(PaymentError::Provider(_))
        ));
        let pi = p.provider_ref.expect("pi");
        assert_eq!(fake.intent(&pi).status, "succeeded");
        let c = captured(pay.capture(req.payment_id).await.expect("retry"));
        assert_eq!(c.captured.minor(), 3100);
        assert_eq!(fake.intent(&pi).captures, 1);

        // a refund whose answer was lost: the retry with the same key refunds once
        fake.lose_next_answers(1);
        assert!(pay.refund(req.payment_id, eur(100), "k").await.is_err());
        let p = pay
            .refund(req.payment_id, eur(100), "k")
            .await
            .expect("retry");
        assert_eq!(p.refunded.minor(), 100);
        assert_eq!(fake.intent(&pi).refunded, 100);
        assert_eq!(h.outbox().await.len(), 1);
    })
});

/// The events a forger would like us to believe: a refund of 900 that never happened.
fn forged_refund(fake: &FakeStripe, pi: &str, payment_id: kernel::PaymentId) -> (String, String) {
    let mut charge = fake.charge_json(pi);
    charge["amount_refunded"] = json!(900);
    charge["refunded"] = json!(false);
    charge["metadata"] = json!({"payment_id": payment_id.to_string()});
    fake.event("charge.refunded", charge)
}

on_all_backends!(webhooks_believe_only_fresh_signed_unseen_events, |t| {
    Box::pin(async move {
        // B7: unsigned, bad HMAC, a changed byte, stale or future t, replays, rotation
        let (h, fake) = stripe_h(t).await;
        let (req, pi) = authorized_stripe(&h, 1000).await;
        captured(h.payments.capture(req.payment_id).await.expect("capture"));

        let (_, forged) = forged_refund(&fake, &pi, req.payment_id);
        let now = now();
        // signed as sent by Stripe, then one byte of the body changed on the way
        let changed = sign(WHSEC, now, &forged);
        let one_byte = forged.replacen("900", "901", 1);
        assert_eq!(one_byte.len(), forged.len());
        let cases: Vec<(&str, String, Option<String>)> = vec![
            ("unsigned", forged.clone(), None),
            ("empty header", forged.clone(), Some(String::new())),
            (
                "wrong secret",
                forged.clone(),
                Some(sign("whsec_attacker", now, &forged)),
            ),
            ("garbage", forged.clone(), Some("t=abc,v1=zz".into())),
            (
                "no t",
                forged.clone(),
                Some(format!("v1={}", v1(WHSEC, now, &forged))),
            ),
            ("one byte changed", one_byte, Some(changed)),
            (
                "301 s old",
                forged.clone(),
                Some(sign(WHSEC, now - 301, &forged)),
            ),
            // well past the 300 s tolerance: the server reads its clock later than `now` (a
            // loaded machine took more than a second here, and 301 s ahead passed)
            (
                "330 s ahead",
                forged.clone(),
                Some(sign(WHSEC, now + 330, &forged)),
            ),
            (
                "t changed after signing",
                forged.clone(),
                Some(format!("t={},v1={}", now + 1, v1(WHSEC, now, &forged))),
            ),
            (
                "two v1, none ours",
                forged.clone(),
                Some(format!(
                    "t={now},v1={},v1={}",
                    v1(OLD_WHSEC, now, &forged),
                    v1("whsec_attacker", now, &forged)
                )),
            ),
        ];
        for (what, body, sig) in cases {
            let r = h.webhook(&body, sig.as_deref()).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}");
            assert_eq!(r.body["code"], "invalid_signature", "{what}");
        }
        // nothing believed: no refund, no event, nothing recorded
        let p = h.payment(req.payment_id).await;
        assert_eq!((p.status, p.refunded.minor()), (PaymentStatus::Captured, 0));
        assert!(h.outbox().await.is_empty());
        assert_eq!(h.count("SELECT COUNT(*) FROM webhook_events").await, 0);

        // a real refund made in the dashboard, signed during Stripe's secret rotation (one v1
        // under the old secret, one under ours): applied once
        fake.refund_elsewhere(&pi, 200);
        let (evt, body) = fake.event("charge.refunded", fake.charge_json(&pi));
        let t0 = now;
        let header = format!(
            "t={t0},v1={},v1={}",
            v1(OLD_WHSEC, t0, &body),
            v1(WHSEC, t0, &body)
        );
        let r = h.webhook(&body, Some(&header)).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["outcome"], "applied");
        let p = h.payment(req.payment_id).await;
        assert_eq!(
            (p.status, p.refunded.minor()),
            (PaymentStatus::PartiallyRefunded, 200)
        );
        let events = h.outbox().await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1["amount"], 200);
        assert!(
            payments::store::webhook_state(&h.db, &evt)
                .await
                .expect("state")
                .is_some_and(|applied| applied.is_some())
        );

        // replays: the same delivery, or re-signed fresh: 200, no side effect
        let r = h.webhook(&body, Some(&header)).await;
        assert_eq!(
            (r.status, r.body["outcome"].as_str()),
            (StatusCode::OK, Some("duplicate"))
        );
        let r = h.webhook(&body, Some(&sign(WHSEC, now + 5, &body))).await;
        assert_eq!(
            (r.status, r.body["outcome"].as_str()),
            (StatusCode::OK, Some("duplicate"))
        );
        assert_eq!(h.outbox().await.len(), 1);
        assert_eq!(h.payment(req.payment_id).await.refunded.minor(), 200);

        // a signed event of a type we do not act on: accepted, recorded, nothing else
        let (_, other) = fake.event("customer.created", json!({"id": "cus_1"}));
        let r = h.webhook(&other, Some(&sign(WHSEC, now, &other))).await;
        assert_eq!(
            (r.status, r.body["outcome"].as_str()),
            (StatusCode::OK, Some("ignored"))
        );
        // a signed body that is not an event: refused
        let r = h.webhook("[1,2]", Some(&sign(WHSEC, now, "[1,2]"))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(h.outbox().await.len(), 1);
    })
});

on_all_backends!(webhooks_out_of_order_and_before_the_payment, |t| {
    Box::pin(async move {
        let (h, fake) = stripe_h(t).await;
        let deliver = |body: String| {
            let sig = sign(WHSEC, now(), &body);
            let app = h.app.clone();
            async move { webhook(&app, &body, Some(&sig)).await }
        };

        // the refund's event arrives before the capture's, then older news
        let (req, pi) = authorized_stripe(&h, 1000).await;
        let authorised_obj = fake.intent_json(&pi);
        fake.capture_elsewhere(&pi);
        let succeeded_obj = fake.intent_json(&pi);
        fake.refund_elsewhere(&pi, 300);
        let (_, refunded) = fake.event("charge.refunded", fake.charge_json(&pi));
        let r = deliver(refunded).await;
        assert_eq!(r.body["outcome"], "applied");
        let p = h.payment(req.payment_id).await;
        assert_eq!(
            (p.status, p.captured.minor(), p.refunded.minor()),
            (PaymentStatus::PartiallyRefunded, 1000, 300)
        );
        for (kind, obj) in [
            ("payment_intent.succeeded", succeeded_obj),
            (
                "payment_intent.amount_capturable_updated",
                authorised_obj.clone(),
            ),
            ("payment_intent.canceled", {
                let mut o = authorised_obj;
                o["status"] = json!("canceled");
                o
            }),
        ] {
            let (_, body) = fake.event(kind, obj);
            let r = deliver(body).await;
            assert_eq!(r.status, StatusCode::OK, "{kind}");
            let p = h.payment(req.payment_id).await;
            assert_eq!(
                (p.status, p.captured.minor(), p.refunded.minor()),
                (PaymentStatus::PartiallyRefunded, 1000, 300),
                "{kind} must not move the payment back"
            );
        }
        let events = h.outbox().await;
        assert_eq!(events.len(), 1, "one refund, one event: {events:?}");
        assert_eq!(events[0].1["amount"], 300);

        // an event for a payment we do not know yet: recorded, applied when it appears.
        // (An earlier attempt reached Stripe with this payment's key; the intent was then
        // captured in the dashboard.)
        let req = stripe_request(700, "pm_card_visa");
        let client = StripeProvider::new(&StripeConfig {
            base_url: fake.url.clone(),
            secret_key: Secret::new(fake_stripe::API_KEY),
            timeout: Duration::from_secs(5),
        })
        .expect("client");
        let early = client
            .authorize(&req, &req.payment_id.to_string())
            .await
            .expect("an earlier attempt");
        fake.capture_elsewhere(&early.provider_ref);
        let (evt, body) = fake.event(
            "payment_intent.succeeded",
            fake.intent_json(&early.provider_ref),
        );
        let r = deliver(body).await;
        assert_eq!(
            (r.status, r.body["outcome"].as_str()),
            (StatusCode::OK, Some("recorded"))
        );
        assert!(h.payments.get(req.payment_id).await.expect("get").is_none());
        assert_eq!(
            payments::store::webhook_state(&h.db, &evt)
                .await
                .expect("state"),
            Some(None),
            "kept, not applied"
        );
        // the payment appears: Stripe replays the first answer (authorised) for the key, and
        // the recorded event then moves it on
        let p = authorized(h.payments.authorize(&req).await.expect("authorize"));
        assert_eq!(p.provider_ref.as_deref(), Some(early.provider_ref.as_str()));
        assert_eq!(fake.intent_count(), 2);
        let p = h.payment(req.payment_id).await;
        assert_eq!(
            (p.status, p.captured.minor()),
            (PaymentStatus::Captured, 700)
        );
        assert!(
            payments::store::webhook_state(&h.db, &evt)
                .await
                .expect("state")
                .is_some_and(|a| a.is_some())
        );

        // a webhook that beats the API's answer: the payment is known only by its id yet
        let app = h.app.clone();
        fake.set_webhook_sink(
            Arc::new(move |body, sig| {
                let app = app.clone();
                Box::pin(async move { webhook(&app, &body, Some(&sig)).await.status.as_u16() })
            }),
            WHSEC,
        );
        let applied = "SELECT COUNT(*) FROM webhook_events \
            WHERE event_type = 'payment_intent.amount_capturable_updated' AND applied_at IS NOT NULL";
        let before = h.count(applied).await;
        let (req, pi) = authorized_stripe(&h, 450).await;
        let p = h.payment(req.payment_id).await;
        assert_eq!(p.status, PaymentStatus::Authorized);
        assert_eq!(
            h.count(applied).await,
            before + 1,
            "the early event was applied"
        );
        assert_eq!(p.provider_ref.as_deref(), Some(pi.as_str()));
    })
});

on_all_backends!(unverifiable_webhooks_make_us_ask_stripe, |t| {
    Box::pin(async move {
        let (h, fake) = stripe_h(t).await;
        let (req, pi) = authorized_stripe(&h, 5000).await;
        // captured in the dashboard, and the genuine webhook never came
        fake.capture_elsewhere(&pi);
        let gets = fake.gets(&pi);

        // a forged "canceled" naming our payment: refused, but Stripe is asked
        let mut obj = fake.intent_json(&pi);
        obj["status"] = json!("canceled");
        let (_, body) = fake.event("payment_intent.canceled", obj);
        let r = h.webhook(&body, None).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_signature"))
        );
        assert_eq!(fake.gets(&pi), gets + 1, "one poll of the intent");
        // the truth (captured) is recorded, not the body's claim (canceled)
        let p = h.payment(req.payment_id).await;
        assert_eq!(
            (p.status, p.captured.minor()),
            (PaymentStatus::Captured, 5000)
        );

        // found by the intent id alone (a charge's event), with a bad signature
        let (_, body) = forged_refund(&fake, &pi, Uuid::nil().into());
        let r = h
            .webhook(&body, Some(&sign("whsec_attacker", now(), &body)))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(fake.gets(&pi), gets + 2);
        assert_eq!(h.payment(req.payment_id).await.refunded.minor(), 0);
        assert!(h.outbox().await.is_empty());

        // naming nothing we know: nobody is asked
        let total = fake.total_gets();
        let (_, body) = fake.event(
            "payment_intent.succeeded",
            json!({"id": "pi_unknown", "object": "payment_intent", "status": "succeeded",
                   "metadata": {"payment_id": Uuid::now_v7().to_string()}}),
        );
        let r = h.webhook(&body, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = h.webhook("not json at all", None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(fake.total_gets(), total);
        assert_eq!(fake.gets("pi_unknown"), 0);
    })
});

/// `https://` to Stripe (here the fake behind TLS, with the test CA of `.ci/tls-services`):
/// verified against `tls.ca_file`'s CA, refused without it, with a message naming the setting.
#[tokio::test]
async fn stripe_over_https_verifies_the_certificate() {
    let var = |name: &str| match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                !testkit::strict(),
                "{}=1 but {name} is not set (eval \"$(.ci/tls-services)\")",
                testkit::STRICT_ENV
            );
            eprintln!("skipping the Stripe HTTPS test: {name} is not set (see .ci/tls-services)");
            None
        }
    };
    let (Some(ca), Some(cert), Some(key)) = (
        var("COMPTOIR_TEST_TLS_CA_FILE"),
        var("COMPTOIR_TEST_TLS_SERVER_CERT_FILE"),
        var("COMPTOIR_TEST_TLS_SERVER_KEY_FILE"),
    ) else {
        return;
    };
    let fake = FakeStripe::start_https(platform::http::tls::TlsFiles {
        cert: cert.into(),
        key: key.into(),
    })
    .await;
    let config = StripeConfig {
        base_url: fake.url.clone(),
        secret_key: Secret::new(fake_stripe::API_KEY),
        timeout: Duration::from_secs(10),
    };
    let req = stripe_request(990, "pm_card_visa");
    let trusted = platform::tls::TlsClient::with_ca_file(std::path::Path::new(&ca)).expect("CA");
    let client = StripeProvider::with_tls(&config, &trusted).expect("client");
    let charge = client
        .authorize(&req, &req.payment_id.to_string())
        .await
        .expect("authorised over HTTPS");
    assert!(charge.provider_ref.starts_with("pi_"), "{charge:?}");
    assert_eq!(fake.posts().len(), 1);

    let untrusted = StripeProvider::with_tls(&config, &platform::tls::TlsClient::public_roots())
        .expect("client");
    let e = untrusted
        .authorize(&req, &Uuid::new_v4().to_string())
        .await
        .expect_err("a certificate that does not verify");
    let text = format!("{e:?}");
    assert!(text.contains("payments.stripe_api_base"), "{text}");
    assert!(text.contains("tls.ca_file"), "{text}");
    assert_eq!(fake.posts().len(), 1, "nothing reached the server");
}
