//! The carts contract (`contracts::carts::CartsApi`) as checkout relies on it, run against both
//! of its implementations: `Carts` in process, and `CartsClient` calling the same service's
//! internal routes over HTTP (signed, as the orders process calls them). Each runs on a store of
//! its own (the same backend, the same catalogue); their answers are compared step by step.
//! Also: the internal routes refuse a call that is not signed for them.

use super::*;
use contracts::carts::{CartLine, CartsApi, CartsClient, CartsError, CheckoutCart};
use kernel::{CartId, Currency, Money};
use platform::caller::{CALL_HEADER, InternalKey};
use std::fmt::Debug;

const CONTRACT_SECRET: &[u8] = b"cart-suite-contract-secret-0123456789";

/// A cart nobody made.
const NEVER: CartId = CartId::from_uuid(Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0009));

/// `carts`' internal routes behind the guard every process puts them behind.
fn guarded(carts: &Arc<Carts>, key: InternalKey) -> axum::Router {
    testkit::contract::guarded(cart::contract::internal_router(carts.clone()), key)
}

/// `carts` served on a port of its own, and a client that calls it as the orders process does,
/// signing with `key`.
async fn over_http(carts: &Arc<Carts>, key: InternalKey) -> CartsClient {
    let internal = cart::contract::internal_router(carts.clone());
    let server = InternalKey::new(CONTRACT_SECRET);
    CartsClient(testkit::contract::peer(internal, server, "cart", "orders", key).await)
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn line(sku: &str, quantity: i64, unit_price: Money) -> CartLine {
    CartLine {
        sku: sku.into(),
        name: format!("Article {sku}"),
        quantity,
        unit_price,
    }
}

/// What one implementation answered, step by step; the carts' ids (new in each world) are
/// written as the names the script gives them.
#[derive(Default)]
struct Transcript {
    steps: Vec<(String, String)>,
    names: Vec<(String, &'static str)>,
}

impl Transcript {
    fn name(&mut self, id: CartId, name: &'static str) {
        self.names.push((id.to_string(), name));
    }

    fn note(&mut self, step: &str, answer: impl Debug) {
        let mut s = format!("{answer:?}");
        for (id, name) in &self.names {
            s = s.replace(id.as_str(), name);
        }
        self.steps.push((step.to_string(), s));
    }
}

/// A new cart of `owner` in `currency` (the default: euros) with `lines` (SKU, quantity), made
/// as the storefront makes it.
async fn cart_with(
    e: &Env,
    owner: Option<&str>,
    currency: Option<&str>,
    lines: &[(&str, i64)],
) -> CartId {
    let (cart, created) = e.carts.create(owner, currency, None).await.expect("create");
    assert!(created, "{}: a new cart", e.backend);
    for (sku, quantity) in lines {
        e.carts
            .add_line(cart.id, owner, sku, *quantity, None)
            .await
            .expect("add");
    }
    cart.id
}

/// Every amount of a checkout cart is in its currency.
fn assert_in_its_currency(c: &CheckoutCart, be: &str) {
    for l in &c.lines {
        assert_eq!(
            l.unit_price.currency(),
            c.currency,
            "{be}: {} is priced in the cart's currency",
            l.sku
        );
    }
}

/// The contract, as the checkout saga relies on it: a cart as checkout sees it (whose it is,
/// repriced against the catalogue, with what changed) and its end once the order is placed.
/// `e` is the world `api` answers for (its `carts` is the service behind `api`).
async fn carts_contract(api: &dyn CartsApi, e: &Env, how: &str) -> Transcript {
    let be = format!("{} {how}", e.backend);
    let mut t = Transcript::default();
    let guest = cart_with(e, None, None, &[("TEE-M", 2), ("SOCKS", 1)]).await;
    t.name(guest, "<guest>");
    let alices = cart_with(e, Some("alice"), None, &[("CAP", 1), ("TEE-M", 1)]).await;
    t.name(alices, "<alice's>");
    let swiss = cart_with(e, None, Some("CHF"), &[("SWISS", 2)]).await;
    t.name(swiss, "<swiss>");
    let empty = cart_with(e, Some("bob"), None, &[]).await;
    t.name(empty, "<bob's, empty>");

    // a guest cart: whoever has its id sees it, at the catalogue's prices
    let seen = CheckoutCart {
        id: guest,
        owner: None,
        currency: Currency::EUR,
        lines: vec![line("TEE-M", 2, eur(1990)), line("SOCKS", 1, eur(500))],
        changes: vec![],
    };
    let r = api.for_checkout(guest, None).await;
    assert_eq!(r, Ok(seen.clone()), "{be}: a guest's cart, as a guest");
    t.note("guest cart, anonymous", &r);
    let r = api.for_checkout(guest, Some("bob")).await;
    assert_eq!(r, Ok(seen), "{be}: a guest cart is anyone's with its id");
    t.note("guest cart, signed in", &r);

    // a customer's cart: its owner's only
    let r = api.for_checkout(alices, Some("alice")).await;
    assert_eq!(
        r,
        Ok(CheckoutCart {
            id: alices,
            owner: Some("alice".into()),
            currency: Currency::EUR,
            lines: vec![line("CAP", 1, eur(1500)), line("TEE-M", 1, eur(1990))],
            changes: vec![],
        }),
        "{be}: alice's cart, as alice"
    );
    t.note("customer's cart, its owner", &r);
    let r = api.for_checkout(alices, Some("bob")).await;
    assert_eq!(r, Err(CartsError::NotFound), "{be}: not bob's");
    t.note("customer's cart, another customer", &r);
    let r = api.for_checkout(alices, None).await;
    assert_eq!(r, Err(CartsError::NotFound), "{be}: not a guest's");
    t.note("customer's cart, anonymous", &r);

    let r = api.for_checkout(empty, Some("bob")).await;
    assert_eq!(
        r,
        Ok(CheckoutCart {
            id: empty,
            owner: Some("bob".into()),
            currency: Currency::EUR,
            lines: vec![],
            changes: vec![],
        }),
        "{be}: an empty cart is a cart (checkout refuses it)"
    );
    t.note("empty cart", &r);

    // a cart in another currency: every amount in it
    let r = api.for_checkout(swiss, None).await;
    let chf = Currency::parse("CHF").expect("CHF");
    assert_eq!(
        r,
        Ok(CheckoutCart {
            id: swiss,
            owner: None,
            currency: chf,
            lines: vec![line("SWISS", 2, Money::new(3000, chf))],
            changes: vec![],
        }),
        "{be}"
    );
    assert_in_its_currency(r.as_ref().expect("a cart"), &be);
    t.note("cart in francs", &r);

    // a cart nobody made
    let r = api.for_checkout(NEVER, None).await;
    assert_eq!(r, Err(CartsError::NotFound), "{be}");
    t.note("unknown cart", &r);
    let r = api.for_checkout(NEVER, Some("alice")).await;
    assert_eq!(r, Err(CartsError::NotFound), "{be}");
    t.note("unknown cart, signed in", &r);

    // repricing: what changed in the catalogue since the lines were added
    for (sku, price) in [
        ("HAT", 2500),
        ("SCARF", 1800),
        ("GLOVES", 1200),
        ("BELT", 900),
    ] {
        e.prices.set(sku, price, "EUR", true);
    }
    let repriced = cart_with(
        e,
        None,
        None,
        &[
            ("HAT", 1),
            ("SOCKS", 3),
            ("SCARF", 1),
            ("GLOVES", 2),
            ("BELT", 1),
        ],
    )
    .await;
    t.name(repriced, "<repriced>");
    e.prices.set("HAT", 2700, "EUR", true);
    e.prices.set("SCARF", 1800, "EUR", false);
    e.prices.remove("GLOVES");
    e.prices.set("BELT", 900, "CHF", true);
    let r = api.for_checkout(repriced, None).await;
    assert_eq!(
        r,
        Ok(CheckoutCart {
            id: repriced,
            owner: None,
            currency: Currency::EUR,
            lines: vec![line("HAT", 1, eur(2700)), line("SOCKS", 3, eur(500))],
            changes: vec![
                PriceChange::Changed {
                    sku: "HAT".into(),
                    old: 2500,
                    new: 2700
                },
                PriceChange::Unavailable {
                    sku: "SCARF".into()
                },
                PriceChange::Unavailable {
                    sku: "GLOVES".into()
                },
                PriceChange::Unavailable { sku: "BELT".into() },
            ],
        }),
        "{be}: the new price in the lines; no longer sold, unknown or in francs: dropped"
    );
    assert_in_its_currency(r.as_ref().expect("a cart"), &be);
    t.note("repriced cart", &r);
    let kept = e.carts.get(repriced, None).await.expect("get");
    assert_eq!(
        kept.lines.len(),
        5,
        "{be}: checkout's view saves nothing (the shopper reviews the cart)"
    );
    assert_eq!(
        kept.line("HAT").map(|l| l.unit_price),
        Some(eur(2500)),
        "{be}"
    );
    let r = api.for_checkout(repriced, None).await;
    t.note("repriced cart again", &r);
    assert_eq!(r.map(|c| c.changes.len()), Ok(4), "{be}: the same changes");
    // once the shopper saw the new prices, checkout finds nothing changed
    e.carts
        .refresh_prices(repriced, None)
        .await
        .expect("refresh");
    let r = api.for_checkout(repriced, None).await;
    assert_eq!(
        r,
        Ok(CheckoutCart {
            id: repriced,
            owner: None,
            currency: Currency::EUR,
            lines: vec![line("HAT", 1, eur(2700)), line("SOCKS", 3, eur(500))],
            changes: vec![],
        }),
        "{be}"
    );
    t.note("repriced cart, reviewed", &r);

    // checked out: the cart is gone, once and for all
    let r = api.checked_out(guest).await;
    assert_eq!(r, Ok(()), "{be}");
    t.note("checked out", &r);
    assert_eq!(
        e.store.load(guest).await.expect("load"),
        None,
        "{be}: deleted"
    );
    let r = api.checked_out(guest).await;
    assert_eq!(r, Ok(()), "{be}: checked out is idempotent");
    t.note("checked out again", &r);
    let r = api.for_checkout(guest, None).await;
    assert_eq!(r, Err(CartsError::NotFound), "{be}");
    t.note("checked-out cart", &r);
    let r = api.checked_out(alices).await;
    assert_eq!(r, Ok(()), "{be}: a customer's cart");
    t.note("customer's cart checked out", &r);
    assert!(
        e.carts.find_for("alice").await.expect("find").is_none(),
        "{be}: alice has no cart"
    );
    let r = api.for_checkout(alices, Some("alice")).await;
    assert_eq!(r, Err(CartsError::NotFound), "{be}");
    t.note("customer's checked-out cart", &r);
    let r = api.checked_out(NEVER).await;
    assert_eq!(r, Ok(()), "{be}: a cart already gone is fine");
    t.note("unknown cart checked out", &r);
    let r = api.for_checkout(swiss, None).await;
    assert!(r.is_ok(), "{be}: the other carts stay: {r:?}");

    // an expired cart is not found
    e.clock.advance(2 * DAY_MS + 1);
    let r = api.for_checkout(swiss, None).await;
    assert_eq!(
        r,
        Err(CartsError::NotFound),
        "{be}: a guest cart lasts 2 days"
    );
    t.note("expired cart", &r);
    let r = api.for_checkout(empty, Some("bob")).await;
    assert!(r.is_ok(), "{be}: a customer's lasts 7: {r:?}");
    t.note("customer's cart after 2 days", &r);
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_implementations_of_the_carts_contract_answer_alike() {
    let here = envs().await;
    let there = envs().await;
    let backends = |v: &[Env]| v.iter().map(|e| e.backend).collect::<Vec<_>>();
    assert_eq!(backends(&here), backends(&there), "a twin of each store");
    let mut runs = Vec::new();
    for (local, remote) in here.into_iter().zip(there) {
        let be = local.backend;
        eprintln!("backend: {be}");
        let run = testkit::catching(async {
            let a = carts_contract(local.carts.as_ref(), &local, "in process").await;
            let client = over_http(&remote.carts, InternalKey::new(CONTRACT_SECRET)).await;
            let b = carts_contract(&client, &remote, "over HTTP").await;
            assert_eq!(a.steps.len(), b.steps.len(), "{be}: the same steps");
            for ((step, x), (_, y)) in a.steps.iter().zip(&b.steps) {
                assert_eq!(x, y, "{be}: {step}: in process, then over HTTP");
            }
        })
        .await;
        local.cleanup().await;
        remote.cleanup().await;
        runs.push(run);
    }
    for run in runs {
        run.resume();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_routes_refuse_a_call_not_signed_for_them() {
    for e in envs().await {
        let run = testkit::catching(async {
            let be = e.backend;
            let cart = cart_with(&e, None, None, &[("TEE-M", 1)]).await;
            let key = InternalKey::new(CONTRACT_SECRET);
            let app = TestApp::unsigned(guarded(&e.carts, key.clone()));
            let done = format!("/internal/carts/{cart}/checked-out");
            testkit::contract::assert_refused(
                &app,
                &key,
                ("POST", &done),
                ("POST", &format!("/internal/carts/{cart}/checkout-view")),
                None,
                be,
            )
            .await;
            assert!(
                e.store.load(cart).await.expect("load").is_some(),
                "{be}: the cart is still there"
            );

            // a client with the wrong secret, over the wire: not known to the caller, no effect
            let client = over_http(&e.carts, InternalKey::new(b"another-secret")).await;
            let r = client.for_checkout(cart, None).await;
            assert!(
                matches!(&r, Err(CartsError::Unavailable { detail })
                    if detail.contains("401") && detail.contains("invalid_internal_call")),
                "{be}: {r:?}"
            );
            let r = CartsApi::checked_out(&client, cart).await;
            assert!(
                matches!(&r, Err(CartsError::Unavailable { detail })
                    if detail.contains("401") && detail.contains("invalid_internal_call")),
                "{be}: {r:?}"
            );
            assert!(
                e.store.load(cart).await.expect("load").is_some(),
                "{be}: the cart is still there"
            );

            // signed for its route, the same call passes
            let r = app
                .post(&done)
                .header(
                    CALL_HEADER,
                    &key.sign_call("orders", "POST", &done, chrono::Utc::now().timestamp()),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
            assert_eq!(
                e.store.load(cart).await.expect("load"),
                None,
                "{be}: checked out"
            );
        })
        .await;
        e.cleanup().await;
        run.resume();
    }
}
