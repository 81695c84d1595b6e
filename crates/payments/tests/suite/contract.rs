//! The payments contract (`contracts::payments::PaymentsApi`) as the checkout saga, refunds and
//! reconciliation rely on it, run against both of its implementations: `Payments` in process,
//! and `PaymentsClient` calling the same service's internal routes over HTTP (signed, as the
//! orders process calls them). Each runs on a database of its own (same backend, the built-in
//! test provider), with the same payment ids; their answers are compared step by step. Also:
//! the internal routes refuse a call that is not signed for them.

use super::*;
use contracts::payments::{PayError, PayResult, PaymentsApi, PaymentsClient};
use kernel::{Currency, Money, PaymentId};
use platform::caller::{CALL_HEADER, InternalKey};
use std::fmt::Debug;

const CONTRACT_SECRET: &[u8] = b"payments-suite-contract-secret-0123456789";

/// Asks the shopper to confirm (3-D Secure).
const NEEDS_ACTION: &str = "4000002500003155";

/// The payments of the script (fixed, so both worlds name the same ones).
const fn pid(n: u128) -> PaymentId {
    PaymentId::from_uuid(Uuid::from_u128(
        0x0195_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}
const PAID: PaymentId = pid(1);
const DECLINED_ONE: PaymentId = pid(2);
const NO_FUNDS_ONE: PaymentId = pid(3);
const CONFIRMED: PaymentId = pid(4);
const NOT_CONFIRMED: PaymentId = pid(5);
const VOIDED: PaymentId = pid(6);
const CAPTURE_REFUSED: PaymentId = pid(7);
const ZERO: PaymentId = pid(8);
const NEVER: PaymentId = pid(9);

/// `payments`' internal routes behind the guard every process puts them behind.
fn guarded(payments: &Payments, key: InternalKey) -> axum::Router {
    testkit::contract::guarded(payments::contract::internal_router(payments.clone()), key)
}

/// `payments` served on a port of its own, and a client that calls it as the orders process
/// does, signing with `key`.
async fn over_http(payments: &Payments, key: InternalKey) -> PaymentsClient {
    let internal = payments::contract::internal_router(payments.clone());
    let server = InternalKey::new(CONTRACT_SECRET);
    PaymentsClient(testkit::contract::peer(internal, server, "payments", "orders", key).await)
}

/// The request of payment `id` of `amount` euro cents with the test card `number`.
fn request(id: PaymentId, amount: i64, number: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        payment_id: id,
        order_ref: format!("BZH-{}", &id.to_string()[30..]),
        ..card_request(amount, number)
    }
}

/// A payment as a caller relies on it: what differs between two worlds (the provider's charge
/// id, the times) is written as what it was checked to be.
fn steady(p: &Payment) -> Payment {
    let mut p = p.clone();
    if p.provider_ref
        .as_deref()
        .is_some_and(|r| r.starts_with("tch_"))
    {
        p.provider_ref = Some("tch_…".into());
    }
    let epoch = chrono::DateTime::UNIX_EPOCH;
    p.created_at = epoch;
    p.updated_at = epoch;
    p
}

/// An answer, as [`steady`] writes the payments in it.
trait Steady: Debug {
    fn steady(&self) -> String;
}

impl Steady for Payment {
    fn steady(&self) -> String {
        format!("{:?}", steady(self))
    }
}
impl Steady for () {
    fn steady(&self) -> String {
        "()".into()
    }
}
impl Steady for AuthOutcome {
    fn steady(&self) -> String {
        match self {
            AuthOutcome::Authorized(p) => format!("Authorized({})", p.steady()),
            AuthOutcome::Pending(p) => format!("Pending({})", p.steady()),
            d @ AuthOutcome::Declined { .. } => format!("{d:?}"),
        }
    }
}
impl Steady for CaptureOutcome {
    fn steady(&self) -> String {
        match self {
            CaptureOutcome::Captured(p) => format!("Captured({})", p.steady()),
            f @ CaptureOutcome::Failed { .. } => format!("{f:?}"),
        }
    }
}
impl Steady for String {
    fn steady(&self) -> String {
        self.clone()
    }
}
impl Steady for usize {
    fn steady(&self) -> String {
        self.to_string()
    }
}

impl<T: Steady> Steady for Option<T> {
    fn steady(&self) -> String {
        match self {
            Some(v) => format!("Some({})", v.steady()),
            None => "None".into(),
        }
    }
}
impl<T: Steady> Steady for Vec<T> {
    fn steady(&self) -> String {
        let items: Vec<String> = self.iter().map(Steady::steady).collect();
        format!("[{}]", items.join(", "))
    }
}
impl<T: Steady> Steady for Result<T, PayError> {
    fn steady(&self) -> String {
        match self {
            Ok(v) => format!("Ok({})", v.steady()),
            Err(e) => format!("Err({e:?})"),
        }
    }
}

/// What one implementation answered, step by step.
#[derive(Default)]
struct Transcript(Vec<(String, String)>);

impl Transcript {
    fn note(&mut self, step: &str, answer: &impl Steady) {
        self.0.push((step.to_string(), answer.steady()));
    }
}

fn invalid<T: Debug>(r: &Result<T, PayError>) -> &str {
    match r {
        Err(PayError::Invalid { code, message }) => {
            assert!(!message.is_empty(), "a refusal says why");
            code
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn authorized(r: &PayResult<AuthOutcome>) -> &Payment {
    match r {
        Ok(AuthOutcome::Authorized(p)) => p,
        other => panic!("expected an authorisation, got {other:?}"),
    }
}

fn captured(r: &PayResult<CaptureOutcome>) -> &Payment {
    match r {
        Ok(CaptureOutcome::Captured(p)) => p,
        other => panic!("expected a capture, got {other:?}"),
    }
}

fn declined(r: &PayResult<AuthOutcome>) -> &str {
    match r {
        Ok(AuthOutcome::Declined { code, message }) => {
            assert!(!message.is_empty(), "a decline says why");
            code
        }
        other => panic!("expected a decline, got {other:?}"),
    }
}

/// (status, amount, captured, refunded) of a payment.
fn amounts(p: &Payment) -> (PaymentStatus, Money, Money, Money) {
    (p.status, p.amount, p.captured, p.refunded)
}

/// The payments that keep money, by id, with what they keep.
async fn holding(api: &dyn PaymentsApi, limit: i64) -> PayResult<Vec<(PaymentId, Money)>> {
    let mut v: Vec<_> = api
        .holding_money(Duration::ZERO, limit)
        .await?
        .iter()
        .map(|p| (p.id, p.kept()))
        .collect();
    v.sort_by_key(|(id, _)| *id);
    Ok(v)
}

/// The contract, as the checkout saga (authorise, capture, void), refunds (refund) and
/// reconciliation (get, sync, holding money) rely on it. `h` is the world `api` answers for.
async fn payments_contract(api: &dyn PaymentsApi, h: &H, how: &str) -> Transcript {
    let be = format!("{} {how}", h.db.backend());
    let mut t = Transcript::default();
    let eur0 = eur(0);
    let books = || async { psp_ledger_totals(&h.db).await.expect("books") };

    // authorise: the amount is held, as Money in the request's currency
    let req = request(PAID, 4990, VISA_OK);
    let r = api.authorize(&req).await;
    let p = authorized(&r).clone();
    assert_eq!(p.id, PAID, "{be}");
    assert_eq!(p.order_ref, req.order_ref, "{be}");
    assert_eq!(
        amounts(&p),
        (PaymentStatus::Authorized, eur(4990), eur0, eur0),
        "{be}"
    );
    assert_eq!(p.currency, Currency::EUR, "{be}");
    assert_eq!(
        (p.provider.as_str(), p.last4.as_deref()),
        ("test", Some("4242")),
        "{be}"
    );
    assert!(
        p.provider_ref
            .as_deref()
            .is_some_and(|r| r.starts_with("tch_")),
        "{be}: {p:?}"
    );
    t.note("authorize", &r);
    // the same request again (a retry after a lost answer): the same payment, not a second
    let r = api.authorize(&req).await;
    assert_eq!(authorized(&r), &p, "{be}: the same payment");
    t.note("authorize again", &r);
    assert_eq!(books().await.charges, 1, "{be}: one charge at the provider");
    let r = api.get(PAID).await;
    assert_eq!(r, Ok(Some(p.clone())), "{be}");
    t.note("get", &r);
    // the same id for another amount or order is refused, and changes nothing
    let r = api.authorize(&request(PAID, 2000, VISA_OK)).await;
    assert_eq!(invalid(&r), "payment_id_reused", "{be}");
    t.note("authorize, the id reused for another amount", &r);
    let r = api
        .authorize(&AuthorizeRequest {
            order_ref: "BZH-another".into(),
            ..req.clone()
        })
        .await;
    assert_eq!(invalid(&r), "payment_id_reused", "{be}");
    t.note("authorize, the id reused for another order", &r);
    assert_eq!(api.get(PAID).await, Ok(Some(p.clone())), "{be}");
    assert_eq!(books().await.charges, 1, "{be}");

    // capture: the whole amount, once
    let r = api.capture(PAID).await;
    let c = captured(&r).clone();
    assert_eq!(
        amounts(&c),
        (PaymentStatus::Captured, eur(4990), eur(4990), eur0),
        "{be}"
    );
    t.note("capture", &r);
    let r = api.capture(PAID).await;
    assert_eq!(captured(&r), &c, "{be}: capture is idempotent");
    t.note("capture again", &r);
    let b = books().await;
    assert_eq!((b.captured, b.max_captures_per_charge), (4990, 1), "{be}");
    let r = api.authorize(&req).await;
    assert_eq!(
        authorized(&r).status,
        PaymentStatus::Captured,
        "{be}: authorising again answers the payment as it is"
    );
    t.note("authorize after capture", &r);
    let r = api.void(PAID).await;
    assert_eq!(invalid(&r), "already_captured", "{be}: refund instead");
    t.note("void after capture", &r);

    // refund: part, the same key twice refunds once, never more than captured
    let r = api.refund(PAID, eur(1000), "refund-1").await;
    let p = r.clone().expect("refund");
    assert_eq!(
        amounts(&p),
        (
            PaymentStatus::PartiallyRefunded,
            eur(4990),
            eur(4990),
            eur(1000)
        ),
        "{be}"
    );
    assert_eq!(p.kept(), eur(3990), "{be}");
    t.note("refund part", &r);
    let r = api.refund(PAID, eur(1000), "refund-1").await;
    assert_eq!(
        r.as_ref().map(|p| p.refunded),
        Ok(eur(1000)),
        "{be}: the same key refunds once"
    );
    t.note("refund part again", &r);
    assert_eq!(books().await.refunded, 1000, "{be}");
    let r = api.refund(PAID, eur(100), "refund-1").await;
    assert_eq!(invalid(&r), "refund_key_reused", "{be}");
    t.note("refund, the key reused for another amount", &r);
    let r = api.refund(PAID, eur(3991), "refund-2").await;
    assert_eq!(invalid(&r), "refund_exceeds_captured", "{be}");
    t.note("refund more than is left", &r);
    let yen = Money::new(100, Currency::parse("JPY").expect("JPY"));
    let r = api.refund(PAID, yen, "refund-yen").await;
    assert_eq!(invalid(&r), "currency_mismatch", "{be}");
    t.note("refund in another currency", &r);
    let r = api.refund(PAID, eur(0), "refund-0").await;
    assert_eq!(invalid(&r), "invalid_amount", "{be}");
    t.note("refund nothing", &r);
    assert_eq!(
        api.get(PAID).await.map(|p| p.map(|p| p.refunded)),
        Ok(Some(eur(1000))),
        "{be}: nothing moved"
    );
    assert_eq!(books().await.refunded, 1000, "{be}");

    // declined at authorisation, with the bank's reason; asked again, the same answer
    for (id, number, code) in [
        (DECLINED_ONE, DECLINED, "card_declined"),
        (NO_FUNDS_ONE, NO_FUNDS, "insufficient_funds"),
    ] {
        let req = request(id, 1000, number);
        let r = api.authorize(&req).await;
        assert_eq!(declined(&r), code, "{be}");
        t.note(&format!("authorize, {code}"), &r);
        let again = api.authorize(&req).await;
        assert_eq!(again, r, "{be}: the same decline");
        t.note(&format!("authorize again, {code}"), &again);
        let r = api.get(id).await;
        assert_eq!(
            r.as_ref().map(|p| p.as_ref().map(|p| p.status)),
            Ok(Some(PaymentStatus::Failed)),
            "{be}"
        );
        t.note(&format!("get, {code}"), &r);
        let r = api.capture(id).await;
        assert_eq!(invalid(&r), "not_capturable", "{be}");
        t.note(&format!("capture, {code}"), &r);
        let r = api.void(id).await;
        assert_eq!(r, Ok(()), "{be}: nothing to cancel");
        t.note(&format!("void, {code}"), &r);
    }

    // 3-D Secure: pending until the shopper confirms, then authorised
    let req = request(CONFIRMED, 2500, NEEDS_ACTION);
    let r = api.authorize(&req).await;
    match &r {
        Ok(AuthOutcome::Pending(p)) => assert_eq!(
            (p.id, amounts(p)),
            (CONFIRMED, (PaymentStatus::Pending, eur(2500), eur0, eur0)),
            "{be}"
        ),
        other => panic!("{be}: expected pending, got {other:?}"),
    }
    t.note("authorize, 3-D Secure", &r);
    let r = api.capture(CONFIRMED).await;
    assert_eq!(
        invalid(&r),
        "not_authorized",
        "{be}: not before it is confirmed"
    );
    t.note("capture before confirmation", &r);
    let r = api.complete_test_action(CONFIRMED, true).await;
    assert_eq!(r, Ok(()), "{be}");
    t.note("the shopper confirms", &r);
    let r = api.sync(CONFIRMED).await;
    assert_eq!(
        r.as_ref().map(|p| p.as_ref().map(amounts)),
        Ok(Some((PaymentStatus::Authorized, eur(2500), eur0, eur0))),
        "{be}: the provider says it is authorised"
    );
    t.note("sync after confirmation", &r);
    let r = api.authorize(&req).await;
    assert_eq!(authorized(&r).status, PaymentStatus::Authorized, "{be}");
    t.note("authorize after confirmation", &r);
    let r = api.capture(CONFIRMED).await;
    assert_eq!(captured(&r).captured, eur(2500), "{be}");
    t.note("capture after confirmation", &r);

    // 3-D Secure refused by the shopper: declined
    let req = request(NOT_CONFIRMED, 1500, NEEDS_ACTION);
    let r = api.authorize(&req).await;
    assert!(matches!(r, Ok(AuthOutcome::Pending(_))), "{be}: {r:?}");
    t.note("authorize, 3-D Secure to refuse", &r);
    let r = api.complete_test_action(NOT_CONFIRMED, false).await;
    assert_eq!(r, Ok(()), "{be}");
    t.note("the shopper refuses", &r);
    let r = api.sync(NOT_CONFIRMED).await;
    assert_eq!(
        r.as_ref().map(|p| p.as_ref().map(|p| p.status)),
        Ok(Some(PaymentStatus::Failed)),
        "{be}"
    );
    t.note("sync after refusal", &r);
    let r = api.authorize(&req).await;
    assert_eq!(declined(&r), "authentication_failed", "{be}");
    t.note("authorize after refusal", &r);

    // void: the authorisation is cancelled, once; a late authorisation answers so
    let req = request(VOIDED, 800, VISA_OK);
    let r = api.authorize(&req).await;
    authorized(&r);
    t.note("authorize, to void", &r);
    let r = api.void(VOIDED).await;
    assert_eq!(r, Ok(()), "{be}");
    t.note("void", &r);
    let r = api.void(VOIDED).await;
    assert_eq!(r, Ok(()), "{be}: void is idempotent");
    t.note("void again", &r);
    let r = api.get(VOIDED).await;
    assert_eq!(
        r.as_ref().map(|p| p.as_ref().map(amounts)),
        Ok(Some((PaymentStatus::Voided, eur(800), eur0, eur0))),
        "{be}"
    );
    t.note("get after void", &r);
    let r = api.capture(VOIDED).await;
    assert_eq!(invalid(&r), "not_capturable", "{be}");
    t.note("capture after void", &r);
    let r = api.authorize(&req).await;
    assert_eq!(declined(&r), "voided", "{be}");
    t.note("authorize after void", &r);

    // a capture the issuer refuses: the authorisation stands, and can be voided
    let req = request(CAPTURE_REFUSED, 2500, CAPTURE_FAILS);
    let r = api.authorize(&req).await;
    authorized(&r);
    t.note("authorize, capture to fail", &r);
    let r = api.capture(CAPTURE_REFUSED).await;
    match &r {
        Ok(CaptureOutcome::Failed { code, message }) => {
            assert_eq!(code, "capture_failed", "{be}");
            assert!(!message.is_empty(), "{be}");
        }
        other => panic!("{be}: expected a failed capture, got {other:?}"),
    }
    t.note("capture refused", &r);
    let r = api.get(CAPTURE_REFUSED).await;
    assert_eq!(
        r.as_ref().map(|p| p.as_ref().map(amounts)),
        Ok(Some((PaymentStatus::Authorized, eur(2500), eur0, eur0))),
        "{be}"
    );
    t.note("get after the refused capture", &r);
    let r = api.void(CAPTURE_REFUSED).await;
    assert_eq!(r, Ok(()), "{be}");
    t.note("void after the refused capture", &r);

    // requests that cannot succeed as sent: nothing recorded
    let r = api.authorize(&request(ZERO, 0, VISA_OK)).await;
    assert_eq!(invalid(&r), "invalid_amount", "{be}");
    t.note("authorize nothing", &r);
    let r = api
        .authorize(&request(ZERO, 1000, "4111111111111111"))
        .await;
    assert_eq!(invalid(&r), "not_a_test_card", "{be}");
    t.note("authorize, not a test card", &r);
    let r = api.get(ZERO).await;
    assert_eq!(r, Ok(None), "{be}: nothing recorded");
    t.note("get a refused request", &r);

    // a payment nobody made
    let r = api.get(NEVER).await;
    assert_eq!(r, Ok(None), "{be}");
    t.note("get unknown", &r);
    let r = api.sync(NEVER).await;
    assert_eq!(r, Ok(None), "{be}");
    t.note("sync unknown", &r);
    let r = api.capture(NEVER).await;
    assert_eq!(invalid(&r), "unknown_payment", "{be}");
    t.note("capture unknown", &r);
    let r = api.refund(NEVER, eur(100), "refund-never").await;
    assert_eq!(invalid(&r), "unknown_payment", "{be}");
    t.note("refund unknown", &r);
    let r = api.void(NEVER).await;
    assert_eq!(r, Ok(()), "{be}: nothing to cancel");
    t.note("void unknown", &r);
    let r = api.complete_test_action(NEVER, true).await;
    assert_eq!(r, Ok(()), "{be}: no charge waits for it");
    t.note("confirm unknown", &r);
    assert_eq!(api.get(NEVER).await, Ok(None), "{be}");

    // holding money: the captured payments that keep money, with what they keep
    let r = holding(api, 100).await;
    assert_eq!(
        r,
        Ok(vec![(PAID, eur(3990)), (CONFIRMED, eur(2500))]),
        "{be}"
    );
    t.note("holding money", &format!("{r:?}"));
    let r = api.holding_money(Duration::ZERO, 1).await;
    assert_eq!(r.as_ref().map(Vec::len), Ok(1), "{be}: at most the limit");
    t.note("holding money, one", &r.map(|v| v.len()));
    for limit in [0, -1] {
        let r = api.holding_money(Duration::ZERO, limit).await;
        assert_eq!(r, Ok(vec![]), "{be}: at most {limit}: none");
        t.note(&format!("holding money, limit {limit}"), &r);
    }
    let r = api.holding_money(Duration::from_secs(3600), 100).await;
    assert_eq!(r, Ok(vec![]), "{be}: none changed an hour ago");
    t.note("holding money, an hour old", &r);
    // the rest refunded: it keeps nothing
    let r = api.refund(PAID, eur(3990), "refund-2").await;
    assert_eq!(
        r.as_ref().map(amounts),
        Ok((PaymentStatus::Refunded, eur(4990), eur(4990), eur(4990))),
        "{be}"
    );
    t.note("refund the rest", &r);
    let r = api.refund(PAID, eur(1), "refund-3").await;
    assert_eq!(invalid(&r), "refund_exceeds_captured", "{be}");
    t.note("refund after all of it", &r);
    let r = holding(api, 100).await;
    assert_eq!(r, Ok(vec![(CONFIRMED, eur(2500))]), "{be}");
    t.note("holding money at the end", &format!("{r:?}"));

    let b = books().await;
    assert_eq!(
        (b.captured, b.refunded, b.max_captures_per_charge),
        (4990 + 2500, 4990, 1),
        "{be}: the provider's books"
    );
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_implementations_of_the_payments_contract_answer_alike() {
    testkit::each_backend(payments::migrations(), |t| {
        Box::pin(async move {
            let be = t.backend;
            let here = H::test(t);
            let local = payments_contract(&here.payments, &here, "in process").await;
            let other = t.twin(payments::migrations()).await;
            let run = testkit::catching(async {
                let there = H::test(&other);
                let client = over_http(&there.payments, InternalKey::new(CONTRACT_SECRET)).await;
                let remote = payments_contract(&client, &there, "over HTTP").await;
                assert_eq!(local.0.len(), remote.0.len(), "{be}: the same steps");
                for ((step, a), (_, b)) in local.0.iter().zip(&remote.0) {
                    assert_eq!(a, b, "{be}: {step}: in process, then over HTTP");
                }
            })
            .await;
            other.cleanup().await;
            run.resume();
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_routes_refuse_a_call_not_signed_for_them() {
    testkit::each_backend(payments::migrations(), |t| {
        Box::pin(async move {
            let h = H::test(t);
            let be = t.backend;
            let key = InternalKey::new(CONTRACT_SECRET);
            let app = TestApp::unsigned(guarded(&h.payments, key.clone()));
            let route = "/internal/payments/authorizations";
            let req = request(PAID, 4990, VISA_OK);
            let body = serde_json::to_value(&req).expect("json");
            testkit::contract::assert_refused(
                &app,
                &key,
                ("POST", route),
                ("POST", &format!("/internal/payments/{PAID}/capture")),
                Some(&body),
                be,
            )
            .await;
            assert!(
                h.payments.get(PAID).await.expect("get").is_none(),
                "{be}: nothing recorded"
            );

            // a client with the wrong secret, over the wire: not known to the caller, no effect
            let client = over_http(&h.payments, InternalKey::new(b"another-secret")).await;
            let r = PaymentsApi::authorize(&client, &req).await;
            assert!(
                matches!(&r, Err(PayError::Unavailable { detail })
                    if detail.contains("401") && detail.contains("invalid_internal_call")),
                "{be}: {r:?}"
            );
            let r = PaymentsApi::get(&client, PAID).await;
            assert!(
                matches!(&r, Err(PayError::Unavailable { detail })
                    if detail.contains("401") && detail.contains("invalid_internal_call")),
                "{be}: {r:?}"
            );
            assert!(
                h.payments.get(PAID).await.expect("get").is_none(),
                "{be}: nothing recorded"
            );
            assert_eq!(h.count("SELECT COUNT(*) FROM test_psp_charges").await, 0);

            // signed for its route, the same call passes
            let r = app
                .post(route)
                .json(&body)
                .header(
                    CALL_HEADER,
                    &key.sign_call("orders", "POST", route, chrono::Utc::now().timestamp()),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
            assert_eq!(r.body["outcome"], "authorized", "{be}: {}", r.body);
            assert_eq!(
                h.payment(PAID).await.status,
                PaymentStatus::Authorized,
                "{be}: authorised"
            );
        })
    })
    .await;
}
