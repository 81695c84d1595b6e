//! The payments suite, run on SQLite always and on PostgreSQL when
//! `COMPTOIR_TEST_POSTGRES_URL` is set: the in-process API the checkout saga calls, the HTTP
//! routes through the real router, the built-in test provider's books, (in `stripe`) the
//! Stripe adapter and webhooks against a fake Stripe on loopback, and (in `contract`) the
//! payments contract in process and over HTTP, answers compared.

use axum::http::StatusCode;
use futures_util::future::BoxFuture;
use payments::http::PaymentsState;
use payments::*;
use platform::authz::Principal;
use platform::config::Secret;
use platform::db::Db;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use testkit::{Res, TestApp, TestDb, principal};
use uuid::Uuid;

/// Head office: reads every payment.
pub fn head_office() -> Principal {
    principal::head_office()
}
/// A customer: no `orders:read`.
pub fn customer() -> Principal {
    principal::customer("Customer")
}
/// A clerk of Rennes: `orders:read`, but payments are bound to no store.
pub fn clerk() -> Principal {
    principal::clerk("rennes")
}
/// The webhook secret the service is configured with.
pub const WHSEC: &str = "whsec_current_secret_0123456789";

pub struct H {
    pub db: Db,
    pub payments: Payments,
    pub app: TestApp,
    pub faults: Faults,
}

impl H {
    /// The service on the built-in test provider.
    pub fn test(t: &TestDb) -> H {
        let faults = Faults::new();
        let provider = TestProvider::new(t.db.clone()).with_faults(faults.clone());
        Self::with(t, Arc::new(provider), faults)
    }

    pub fn with(t: &TestDb, provider: Arc<dyn Provider>, faults: Faults) -> H {
        let payments = Payments::new(t.db.clone(), provider, Arc::new(kernel::SystemClock));
        let state = PaymentsState {
            payments: payments.clone(),
            stripe_webhook_secrets: Arc::new(vec![Secret::new(WHSEC)]),
        };
        let app = TestApp::new(payments::http::router(state)).with_common_layers(256 * 1024);
        H {
            db: t.db.clone(),
            payments,
            app,
            faults,
        }
    }

    pub async fn get_as(&self, uri: &str, who: Option<&Principal>) -> Res {
        self.app.get(uri).as_opt(who).await
    }

    pub async fn webhook(&self, body: &str, signature: Option<&str>) -> Res {
        webhook(&self.app, body, signature).await
    }

    /// The outbox, oldest first: (topic, payload).
    pub async fn outbox(&self) -> Vec<(String, Value)> {
        let rows: Vec<(String, String)> = platform::db_run!(&self.db, |p| sqlx::query_as(
            "SELECT topic, payload FROM outbox ORDER BY created_at, id"
        )
        .fetch_all(p)
        .await)
        .expect("outbox");
        rows.into_iter()
            .map(|(t, p)| (t, serde_json::from_str(&p).expect("json payload")))
            .collect()
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        platform::db_run!(&self.db, |p| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(p)
            .await)
        .expect("count")
    }

    pub async fn payment(&self, id: kernel::PaymentId) -> Payment {
        self.payments
            .get(id)
            .await
            .expect("get")
            .expect("payment exists")
    }
}

/// Stripe delivers `body` to the webhook route, signed with `signature` when given.
pub async fn webhook(app: &TestApp, body: &str, signature: Option<&str>) -> Res {
    let mut c = app
        .post("/api/payments/webhooks/stripe")
        .header("content-type", "application/json; charset=utf-8")
        .body(body);
    if let Some(s) = signature {
        c = c.header("stripe-signature", s);
    }
    c.await
}

/// Runs a scenario on every backend, each on a fresh database.
macro_rules! on_all_backends {
    ($name:ident, $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let f: fn(&TestDb) -> BoxFuture<'_, ()> = $body;
            testkit::each_backend(payments::migrations(), f).await;
        }
    };
}

/// A clock the test moves.
pub struct ManualClock(std::sync::Mutex<chrono::DateTime<chrono::Utc>>);

impl ManualClock {
    pub fn starting_now() -> Self {
        ManualClock(std::sync::Mutex::new(chrono::Utc::now()))
    }
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().expect("clock");
        *t += chrono::Duration::from_std(d).expect("duration");
    }
}

impl kernel::Clock for ManualClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().expect("clock")
    }
}

/// An amount in euros' minor units.
pub fn eur(minor: i64) -> kernel::Money {
    kernel::Money::new(minor, kernel::Currency::EUR)
}

pub fn card_request(amount: i64, number: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        payment_id: kernel::PaymentId::new(),
        order_ref: format!("BZH-{}", &Uuid::new_v4().simple().to_string()[..8]),
        amount: kernel::Money::new(amount, kernel::Currency::EUR),
        method: PaymentMethod::TestCard {
            number: number.to_string(),
        },
        customer_email: Some("client@example.org".into()),
    }
}

pub const VISA_OK: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const NO_FUNDS: &str = "4000000000009995";
const CAPTURE_FAILS: &str = "4000000000000341";

fn authorized(o: AuthOutcome) -> Payment {
    match o {
        AuthOutcome::Authorized(p) => p,
        other => panic!("expected an authorisation, got {other:?}"),
    }
}

fn captured(o: CaptureOutcome) -> Payment {
    match o {
        CaptureOutcome::Captured(p) => p,
        other => panic!("expected a capture, got {other:?}"),
    }
}

fn invalid_code<T: std::fmt::Debug>(r: Result<T, PaymentError>) -> &'static str {
    match r {
        Err(PaymentError::Invalid { code, .. }) => code,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---- the test provider ----------------------------------------------------------------------

on_all_backends!(test_cards_behave_as_documented, |t| Box::pin(async move {
    let h = H::test(t);
    let pay = &h.payments;

    // 4242…: authorised, then captured; only the last 4 digits are kept
    let req = card_request(4990, VISA_OK);
    let p = authorized(pay.authorize(&req).await.expect("authorize"));
    assert_eq!(p.status, PaymentStatus::Authorized);
    assert_eq!(p.last4.as_deref(), Some("4242"));
    assert_eq!(
        (p.provider.as_str(), p.amount.minor(), p.captured.minor()),
        ("test", 4990, 0)
    );
    assert!(
        p.provider_ref
            .as_deref()
            .is_some_and(|r| r.starts_with("tch_"))
    );
    let p = captured(pay.capture(req.payment_id).await.expect("capture"));
    assert_eq!(
        (p.status, p.captured.minor()),
        (PaymentStatus::Captured, 4990)
    );

    // declined at authorisation, with the bank's reason
    for (number, code) in [
        (DECLINED, "card_declined"),
        (NO_FUNDS, "insufficient_funds"),
    ] {
        let req = card_request(1000, number);
        match pay.authorize(&req).await.expect("authorize") {
            AuthOutcome::Declined { code: c, .. } => assert_eq!(c, code),
            other => panic!("{number}: expected a decline, got {other:?}"),
        }
        assert_eq!(
            h.payment(req.payment_id).await.status,
            PaymentStatus::Failed
        );
        // asking again gives the same answer
        match pay.authorize(&req).await.expect("authorize again") {
            AuthOutcome::Declined { code: c, .. } => assert_eq!(c, code),
            other => panic!("expected the same decline, got {other:?}"),
        }
        assert_eq!(
            invalid_code(pay.capture(req.payment_id).await),
            "not_capturable"
        );
    }

    // …0341: authorised, but the capture fails; the authorisation can then be voided
    let req = card_request(2500, CAPTURE_FAILS);
    authorized(pay.authorize(&req).await.expect("authorize"));
    match pay.capture(req.payment_id).await.expect("capture") {
        CaptureOutcome::Failed { code, .. } => assert_eq!(code, "capture_failed"),
        other => panic!("expected a failed capture, got {other:?}"),
    }
    let p = h.payment(req.payment_id).await;
    assert_eq!(
        (p.status, p.captured.minor()),
        (PaymentStatus::Authorized, 0)
    );
    pay.void(req.payment_id).await.expect("void");
    assert_eq!(
        h.payment(req.payment_id).await.status,
        PaymentStatus::Voided
    );

    // anything else is refused before anything is recorded: never real card data
    for number in [
        "4111111111111111",
        "4242 4242 4242 4242",
        "",
        "42424242424242420",
    ] {
        let req = card_request(1000, number);
        assert_eq!(invalid_code(pay.authorize(&req).await), "not_a_test_card");
        assert!(pay.get(req.payment_id).await.expect("get").is_none());
    }
    let mut stripe_method = card_request(1000, VISA_OK);
    stripe_method.method = PaymentMethod::Stripe {
        payment_method: "pm_card_visa".into(),
    };
    assert_eq!(
        invalid_code(pay.authorize(&stripe_method).await),
        "method_not_supported"
    );
    // no full card number is stored anywhere: only last 4 digits
    let numbers = h
        .count("SELECT COUNT(*) FROM test_psp_charges WHERE LENGTH(last4) <> 4")
        .await;
    assert_eq!(numbers, 0);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM payments WHERE last4 IS NOT NULL AND LENGTH(last4) <> 4")
            .await,
        0
    );

    // the PSP's books: one capture of 4990, nothing refunded
    let books = psp_ledger_totals(&h.db).await.expect("books");
    assert_eq!(
        (
            books.captured,
            books.refunded,
            books.max_captures_per_charge
        ),
        (4990, 0, 1)
    );
}));

on_all_backends!(bad_requests_change_nothing, |t| Box::pin(async move {
    let h = H::test(t);
    let pay = &h.payments;
    for amount in [0, -5, kernel::MAX_AMOUNT_MINOR + 1] {
        let req = card_request(amount, VISA_OK);
        assert_eq!(invalid_code(pay.authorize(&req).await), "invalid_amount");
    }
    let mut req = card_request(1000, VISA_OK);
    req.order_ref = String::new();
    assert_eq!(invalid_code(pay.authorize(&req).await), "invalid_order_ref");
    assert_eq!(h.count("SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM test_psp_charges").await, 0);

    // a payment id is bound to its amount, currency and order
    let req = card_request(1000, VISA_OK);
    authorized(pay.authorize(&req).await.expect("authorize"));
    let mut other = req.clone();
    other.amount = eur(2000);
    assert_eq!(
        invalid_code(pay.authorize(&other).await),
        "payment_id_reused"
    );
    let mut other = req.clone();
    other.order_ref = "another order".into();
    assert_eq!(
        invalid_code(pay.authorize(&other).await),
        "payment_id_reused"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM test_psp_charges").await, 1);

    // operations on unknown payments
    let unknown = kernel::PaymentId::new();
    assert_eq!(invalid_code(pay.capture(unknown).await), "unknown_payment");
    assert_eq!(
        invalid_code(pay.refund(unknown, eur(100), "k").await),
        "unknown_payment"
    );
    assert!(pay.sync(unknown).await.expect("sync").is_none());
    assert!(pay.get(unknown).await.expect("get").is_none());
}));

on_all_backends!(authorize_and_capture_twice_happen_once, |t| Box::pin(
    async move {
        let h = H::test(t);
        let pay = &h.payments;
        let req = card_request(12_345, VISA_OK);
        let first = authorized(pay.authorize(&req).await.expect("authorize"));
        let second = authorized(pay.authorize(&req).await.expect("authorize again"));
        assert_eq!(first.provider_ref, second.provider_ref);
        let c1 = captured(pay.capture(req.payment_id).await.expect("capture"));
        let c2 = captured(pay.capture(req.payment_id).await.expect("capture again"));
        assert_eq!((c1.captured.minor(), c2.captured.minor()), (12_345, 12_345));
        // authorising a captured payment again answers it, and takes nothing more
        let again = authorized(pay.authorize(&req).await.expect("authorize after capture"));
        assert_eq!(again.status, PaymentStatus::Captured);

        // the same, concurrently: still one charge, one capture
        let req2 = card_request(500, VISA_OK);
        let (a, b) = tokio::join!(pay.authorize(&req2), pay.authorize(&req2));
        let (a, b) = (authorized(a.expect("a")), authorized(b.expect("b")));
        assert_eq!(a.provider_ref, b.provider_ref);
        let (a, b) = tokio::join!(pay.capture(req2.payment_id), pay.capture(req2.payment_id));
        assert_eq!(captured(a.expect("a")).captured.minor(), 500);
        assert_eq!(captured(b.expect("b")).captured.minor(), 500);

        let books = psp_ledger_totals(&h.db).await.expect("books");
        assert_eq!(books.charges, 2, "one authorisation per payment");
        assert_eq!(books.max_captures_per_charge, 1, "one capture per payment");
        assert_eq!(books.captured, 12_345 + 500);
    }
));

on_all_backends!(lost_answers_are_found_through_the_idempotency_keys, |t| {
    Box::pin(async move {
        // RELIABILITY.md F8: the PSP did it, the answer was lost, the retry must find it
        let h = H::test(t);
        let pay = &h.payments;

        // authorisation answer lost: the payment stays pending; the retry finds the charge
        let req = card_request(7000, VISA_OK);
        h.faults.lose_authorize_responses(1);
        assert!(matches!(
            pay.authorize(&req).await,
            Err(PaymentError::Provider(_))
        ));
        assert_eq!(
            h.payment(req.payment_id).await.status,
            PaymentStatus::Pending
        );
        let p = authorized(pay.authorize(&req).await.expect("retry"));
        assert_eq!(p.status, PaymentStatus::Authorized);
        assert_eq!(h.count("SELECT COUNT(*) FROM test_psp_charges").await, 1);

        // capture answer lost: the money is taken at the PSP, we do not know yet
        h.faults.lose_capture_responses(1);
        assert!(matches!(
            pay.capture(req.payment_id).await,
            Err(PaymentError::Provider(_))
        ));
        assert_eq!(
            h.payment(req.payment_id).await.status,
            PaymentStatus::Authorized
        );
        assert_eq!(
            psp_ledger_totals(&h.db).await.expect("books").captured,
            7000
        );
        // the retry finds the capture that happened, and takes nothing more
        let p = captured(pay.capture(req.payment_id).await.expect("retry capture"));
        assert_eq!(p.captured.minor(), 7000);
        let books = psp_ledger_totals(&h.db).await.expect("books");
        assert_eq!((books.captured, books.max_captures_per_charge), (7000, 1));

        // refund answer lost: the retry with the same key refunds nothing more
        h.faults.lose_refund_responses(1);
        assert!(matches!(
            pay.refund(req.payment_id, eur(1000), "r-1").await,
            Err(PaymentError::Provider(_))
        ));
        assert_eq!(h.payment(req.payment_id).await.refunded.minor(), 0);
        // a second refund meanwhile cannot spend the amount in flight
        assert_eq!(
            invalid_code(pay.refund(req.payment_id, eur(6500), "r-2").await),
            "refund_exceeds_captured"
        );
        let p = pay
            .refund(req.payment_id, eur(1000), "r-1")
            .await
            .expect("retry");
        assert_eq!(p.refunded.minor(), 1000);
        assert_eq!(
            psp_ledger_totals(&h.db).await.expect("books").refunded,
            1000
        );
        assert_eq!(h.outbox().await.len(), 1);
        // an amount in another currency is refused, and nothing moves
        let yen = kernel::Money::new(100, kernel::Currency::parse("JPY").expect("JPY"));
        assert_eq!(
            invalid_code(pay.refund(req.payment_id, yen, "r-yen").await),
            "currency_mismatch"
        );
        assert_eq!(h.payment(req.payment_id).await.refunded.minor(), 1000);
        assert_eq!(h.outbox().await.len(), 1);

        // a pending payment whose answer was lost is found by the recovery worker after a
        // while, and settled by sync
        let clock = Arc::new(ManualClock::starting_now());
        let faults = Faults::new();
        let worker = Payments::new(
            h.db.clone(),
            Arc::new(TestProvider::new(h.db.clone()).with_faults(faults.clone())),
            clock.clone(),
        );
        let req = card_request(300, VISA_OK);
        faults.lose_authorize_responses(1);
        assert!(worker.authorize(&req).await.is_err());
        let minute = Duration::from_secs(60);
        assert!(
            worker
                .stale_pending(minute, 10)
                .await
                .expect("stale")
                .is_empty()
        );
        clock.advance(Duration::from_secs(61));
        assert_eq!(
            worker.stale_pending(minute, 10).await.expect("stale"),
            vec![req.payment_id]
        );
        let p = worker
            .sync(req.payment_id)
            .await
            .expect("sync")
            .expect("known");
        assert_eq!(p.status, PaymentStatus::Authorized);
        assert!(p.provider_ref.is_some());
        assert!(
            worker
                .stale_pending(minute, 10)
                .await
                .expect("stale")
                .is_empty()
        );

        // past the PSP's key lifetime an unanswered attempt is closed, not asked again (a
        // PSP that forgot the key would authorise a second time)
        let req = card_request(350, VISA_OK);
        faults.lose_authorize_responses(1);
        assert!(worker.authorize(&req).await.is_err());
        clock.advance(Duration::from_secs(24 * 3600));
        match worker.authorize(&req).await.expect("a day later") {
            AuthOutcome::Declined { code, .. } => assert_eq!(code, "attempt_expired"),
            other => panic!("expected attempt_expired, got {other:?}"),
        }
        assert_eq!(
            h.payment(req.payment_id).await.status,
            PaymentStatus::Failed
        );

        // voiding a payment whose authorisation answer was lost cancels the charge found
        let req = card_request(400, VISA_OK);
        h.faults.lose_authorize_responses(1);
        assert!(pay.authorize(&req).await.is_err());
        pay.void(req.payment_id).await.expect("void");
        assert_eq!(
            h.payment(req.payment_id).await.status,
            PaymentStatus::Voided
        );
        let psp_status: String = platform::db_run!(&h.db, |p| sqlx::query_scalar(
            "SELECT status FROM test_psp_charges WHERE auth_key = $1"
        )
        .bind(req.payment_id.to_string())
        .fetch_one(p)
        .await)
        .expect("charge");
        assert_eq!(psp_status, "canceled");
        // and a late retry of the authorisation answers "voided" without a new charge
        match pay.authorize(&req).await.expect("late retry") {
            AuthOutcome::Declined { code, .. } => assert_eq!(code, "voided"),
            other => panic!("expected voided, got {other:?}"),
        }
        assert_eq!(h.count("SELECT COUNT(*) FROM test_psp_charges").await, 4);
    })
});

on_all_backends!(refunds_are_bounded_idempotent_and_announced_once, |t| {
    Box::pin(async move {
        let h = H::test(t);
        let pay = &h.payments;
        let req = card_request(10_000, VISA_OK);
        // nothing to refund before the capture
        authorized(pay.authorize(&req).await.expect("authorize"));
        assert_eq!(
            invalid_code(pay.refund(req.payment_id, eur(100), "early").await),
            "not_captured"
        );
        captured(pay.capture(req.payment_id).await.expect("capture"));

        // partial
        let p = pay
            .refund(req.payment_id, eur(3000), "refund-a")
            .await
            .expect("a");
        assert_eq!(
            (p.status, p.refunded.minor(), p.captured.minor()),
            (PaymentStatus::PartiallyRefunded, 3000, 10_000)
        );
        // the same key again: the same refund, not a second one
        let again = pay
            .refund(req.payment_id, eur(3000), "refund-a")
            .await
            .expect("a again");
        assert_eq!(again.refunded.minor(), 3000);
        // the same key for another amount is refused
        assert_eq!(
            invalid_code(pay.refund(req.payment_id, eur(100), "refund-a").await),
            "refund_key_reused"
        );
        // more than what is left is refused, and changes nothing
        assert_eq!(
            invalid_code(pay.refund(req.payment_id, eur(7001), "refund-b").await),
            "refund_exceeds_captured"
        );
        assert_eq!(
            invalid_code(pay.refund(req.payment_id, eur(0), "refund-z").await),
            "invalid_amount"
        );
        assert_eq!(
            invalid_code(pay.refund(req.payment_id, eur(10), "bad key").await),
            "invalid_refund_key"
        );
        // the rest: fully refunded
        let p = pay
            .refund(req.payment_id, eur(7000), "refund-b")
            .await
            .expect("b");
        assert_eq!(
            (p.status, p.refunded.minor()),
            (PaymentStatus::Refunded, 10_000)
        );
        assert_eq!(
            invalid_code(pay.refund(req.payment_id, eur(1), "refund-c").await),
            "refund_exceeds_captured"
        );
        // a refunded payment cannot be voided
        assert_eq!(
            invalid_code(pay.void(req.payment_id).await),
            "already_captured"
        );

        // exactly two events, in order, with what the orders service needs
        let events = h.outbox().await;
        assert_eq!(events.len(), 2, "{events:?}");
        for (topic, _) in &events {
            assert_eq!(topic, platform::bus::topic::PAYMENT_REFUNDED);
        }
        let e0 = &events[0].1;
        assert_eq!(e0["payment_id"], req.payment_id.to_string());
        assert_eq!(e0["order_ref"], req.order_ref);
        assert_eq!(
            (e0["amount"].as_i64(), e0["refunded_total"].as_i64()),
            (Some(3000), Some(3000))
        );
        assert_eq!(
            (e0["currency"].as_str(), e0["captured"].as_i64()),
            (Some("EUR"), Some(10_000))
        );
        assert_eq!(e0["full"], false);
        let e1 = &events[1].1;
        assert_eq!(
            (e1["amount"].as_i64(), e1["refunded_total"].as_i64()),
            (Some(7000), Some(10_000))
        );
        assert_eq!(e1["full"], true);

        // the PSP's books agree: captured − refunded = 0
        let books = psp_ledger_totals(&h.db).await.expect("books");
        assert_eq!((books.captured, books.refunded), (10_000, 10_000));
    })
});

on_all_backends!(void_is_safe_to_repeat, |t| Box::pin(async move {
    let h = H::test(t);
    let pay = &h.payments;
    // unknown: nothing to do
    pay.void(kernel::PaymentId::new()).await.expect("unknown");
    // authorised → voided, at the PSP too; again: still fine
    let req = card_request(800, VISA_OK);
    authorized(pay.authorize(&req).await.expect("authorize"));
    pay.void(req.payment_id).await.expect("void");
    pay.void(req.payment_id).await.expect("void again");
    assert_eq!(
        h.payment(req.payment_id).await.status,
        PaymentStatus::Voided
    );
    assert_eq!(
        invalid_code(pay.capture(req.payment_id).await),
        "not_capturable"
    );
    // failed: nothing to do
    let req = card_request(800, DECLINED);
    pay.authorize(&req).await.expect("declined");
    pay.void(req.payment_id).await.expect("void failed");
    assert_eq!(
        h.payment(req.payment_id).await.status,
        PaymentStatus::Failed
    );
    // captured: refuse (refund instead)
    let req = card_request(800, VISA_OK);
    authorized(pay.authorize(&req).await.expect("authorize"));
    captured(pay.capture(req.payment_id).await.expect("capture"));
    assert_eq!(
        invalid_code(pay.void(req.payment_id).await),
        "already_captured"
    );
    let books = psp_ledger_totals(&h.db).await.expect("books");
    assert_eq!(books.captured, 800);
}));

// ---- HTTP -----------------------------------------------------------------------------------

on_all_backends!(reading_a_payment_needs_orders_read_and_scope, |t| {
    Box::pin(async move {
        let h = H::test(t);
        let req = card_request(1999, VISA_OK);
        authorized(h.payments.authorize(&req).await.expect("authorize"));
        let uri = format!("/api/payments/{}", req.payment_id);

        let r = h.get_as(&uri, Some(&head_office())).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["id"], req.payment_id.to_string());
        assert_eq!(r.body["status"], "authorized");
        assert_eq!(r.body["amount"], 1999);
        assert_eq!(r.body["currency"], "EUR");
        assert_eq!(r.body["last4"], "4242");
        assert_eq!(r.body["provider"], "test");

        let r = h.get_as(&uri, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = h.get_as(&uri, Some(&customer())).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        // a store's clerk holds orders:read but payments are not bound to a store: 404
        let r = h.get_as(&uri, Some(&clerk())).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        for missing in [
            format!("/api/payments/{}", Uuid::now_v7()),
            "/api/payments/nope".into(),
        ] {
            let r = h.get_as(&missing, Some(&head_office())).await;
            assert_eq!(
                (r.status, r.body["code"].as_str()),
                (StatusCode::NOT_FOUND, Some("not_found"))
            );
        }
        // undeclared methods are refused
        let r = h.app.delete(&uri).as_(&head_office()).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    })
});

#[test]
fn every_route_is_in_the_policy_and_the_openapi_document() {
    use utoipa::OpenApi;
    let doc = serde_json::to_value(payments::http::PaymentsApi::openapi()).expect("json");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("ops").keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut declared: Vec<(String, String)> = payments::http::policy()
        .declared()
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    declared.sort();
    assert_eq!(documented, declared);
}

#[path = "suite/contract.rs"]
mod contract;
#[path = "suite/fake_stripe.rs"]
mod fake_stripe;
#[path = "suite/stripe.rs"]
mod stripe;
