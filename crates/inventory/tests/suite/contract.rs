//! The stock contract (`contracts::inventory::StockApi`) as the checkout saga relies on it, run
//! against both of its implementations: `Inventory` in process, and `StockClient` calling the
//! same service's internal routes over HTTP (signed, as another process calls them). Each runs
//! on a world of its own (same backend, same locations and stock); their answers are compared
//! step by step. Also: the internal routes refuse a call that is not signed for them.

use super::*;
use contracts::inventory::{
    Available, HoldState, LocationInfo, Shortage, StockApi, StockClient, StockError,
};
use platform::caller::{CALL_HEADER, InternalKey};
use std::fmt::Debug;

const CONTRACT_SECRET: &[u8] = b"inventory-suite-contract-secret-0123456789";

/// The holds of the script (fixed, so both worlds name the same ones).
const SOLD: Uuid = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0001);
const TOO_MUCH: Uuid = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0002);
const ELSEWHERE: Uuid = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0003);
const MALFORMED: Uuid = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0004);
const GIVEN_BACK: Uuid = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0005);
const LAPSED: Uuid = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0006);
const NEVER: Uuid = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0009);

/// `inventory`'s internal routes behind the guard every process puts them behind.
fn guarded(inventory: &Inventory, key: InternalKey) -> axum::Router {
    testkit::contract::guarded(inventory::contract::internal_router(inventory.clone()), key)
}

/// `inventory` served on a port of its own, and a client that calls it as the orders process
/// does, signing with `key`.
async fn over_http(inventory: &Inventory, key: InternalKey) -> StockClient {
    let internal = inventory::contract::internal_router(inventory.clone());
    let server = InternalKey::new(CONTRACT_SECRET);
    StockClient(testkit::contract::peer(internal, server, "inventory", "orders", key).await)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Every level the contract reports, by (location, SKU).
async fn shelf(api: &dyn StockApi) -> BTreeMap<(String, String), i64> {
    let all: Vec<Available> = api.available().await.unwrap();
    let n = all.len();
    let out: BTreeMap<_, _> = all
        .into_iter()
        .map(|a| ((a.location, a.sku), a.available))
        .collect();
    assert_eq!(out.len(), n, "one level per (location, SKU)");
    out
}

fn levels(rows: &[(&str, &str, i64)]) -> BTreeMap<(String, String), i64> {
    rows.iter()
        .map(|(l, s, q)| ((l.to_string(), s.to_string()), *q))
        .collect()
}

/// What one implementation answered, step by step (expiries as what they were checked to be).
#[derive(Default)]
struct Transcript(Vec<(String, String)>);

impl Transcript {
    fn note(&mut self, step: &str, answer: impl Debug) {
        self.0.push((step.to_string(), format!("{answer:?}")));
    }
}

/// The contract, as the checkout saga (hold, commit, release, restock, hold state), the
/// checkout's pickup store (location) and the storefront (locations, available) rely on it.
/// `h` is the world `api` answers for (its `inv` is the service behind `api`).
async fn stock_contract(api: &dyn StockApi, h: &H, how: &str) -> Transcript {
    let be = format!("{} {how}", h.backend());
    let mut t = Transcript::default();
    h.stock("rennes", "A", 5).await;
    h.stock("rennes", "B", 3).await;
    h.stock("logistique", "C", 2).await;
    let start = levels(&[
        ("rennes", "A", 5),
        ("rennes", "B", 3),
        ("logistique", "C", 2),
    ]);

    // locations: the demo's seven, by kind then code; one by code; none for anything else
    let all = api.locations().await.unwrap();
    let codes: Vec<&str> = all.iter().map(|l| l.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "siege",
            "brest",
            "quimper",
            "rennes",
            "saint-malo",
            "vannes",
            "logistique"
        ],
        "{be}: every location, by kind then code"
    );
    t.note("locations", &all);
    let rennes = LocationInfo {
        code: "rennes".into(),
        name: "Breizhsport Rennes".into(),
        kind: "store".into(),
        ships: false,
        click_and_collect: true,
    };
    let r = api.location("rennes").await;
    assert_eq!(r, Ok(Some(rennes)), "{be}");
    t.note("location rennes", &r);
    let r = api.location("logistique").await.unwrap().unwrap();
    assert!(r.ships && !r.click_and_collect, "{be}: {r:?}");
    assert_eq!(r.kind, "warehouse", "{be}");
    t.note("location logistique", &r);
    // what a customer may type as the pickup store: none of it names a location
    for code in [
        "nowhere",
        "Rennes",
        "rennes/../siege",
        "a b",
        "é",
        ".",
        "..",
        "",
    ] {
        let r = api.location(code).await;
        assert_eq!(r, Ok(None), "{be}: location {code:?}");
        t.note(&format!("location {code:?}"), &r);
    }

    let r = shelf(api).await;
    assert_eq!(r, start, "{be}: every level recorded, as available");
    t.note("available at the start", &r);

    // hold: an expiry ttl from now; rennes has 2 A and 1 B fewer to sell
    let before = now_ms();
    let sold = api
        .hold(
            SOLD,
            "rennes",
            &[line("A", 2), line("B", 1)],
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let after = now_ms();
    assert!(
        (before + 60_000..=after + 60_000).contains(&sold),
        "{be}: expires 60 s after the hold ({before}..{after} + 60 s): {sold}"
    );
    t.note("hold", "Ok(expiry = time of the hold + ttl)");
    let held = levels(&[
        ("rennes", "A", 3),
        ("rennes", "B", 2),
        ("logistique", "C", 2),
    ]);
    assert_eq!(shelf(api).await, held, "{be}: held units are not for sale");
    let r = api.hold_state(SOLD).await;
    assert_eq!(r, Ok(Some(HoldState::Active)), "{be}");
    t.note("state after hold", &r);

    // the same hold again (a retry after a lost answer): one effect, the same answer
    let r = api
        .hold(
            SOLD,
            "rennes",
            &[line("A", 2), line("B", 1)],
            Some(Duration::from_secs(60)),
        )
        .await;
    assert_eq!(
        r,
        Ok(sold),
        "{be}: a retried hold answers when the hold expires"
    );
    t.note("hold again", "Ok(the first expiry)");
    assert_eq!(shelf(api).await, held, "{be}: held once, not twice");
    assert_eq!(h.level("rennes", "A").await, Some((5, 2)), "{be}");

    // out of stock: all lines or none, a shortage per SKU short (a SKU named twice is summed)
    let r = api
        .hold(
            TOO_MUCH,
            "rennes",
            &[line("A", 2), line("B", 1), line("A", 2), line("C", 1)],
            None,
        )
        .await;
    assert_eq!(
        r,
        Err(StockError::OutOfStock {
            shortages: vec![
                Shortage {
                    sku: "A".into(),
                    requested: 4,
                    available: 3
                },
                Shortage {
                    sku: "C".into(),
                    requested: 1,
                    available: 0
                },
            ]
        }),
        "{be}"
    );
    t.note("hold too much", &r);
    assert_eq!(
        shelf(api).await,
        held,
        "{be}: nothing held of a refused hold"
    );
    let r = api.hold_state(TOO_MUCH).await;
    assert_eq!(r, Ok(None), "{be}: a refused hold leaves no hold");
    t.note("state of a refused hold", &r);

    // a location that does not exist
    let r = api.hold(ELSEWHERE, "nowhere", &[line("A", 1)], None).await;
    assert_eq!(
        r,
        Err(StockError::UnknownLocation {
            location: "nowhere".into()
        }),
        "{be}"
    );
    t.note("hold at an unknown location", &r);

    // requests that cannot succeed as sent
    let long = "S".repeat(65);
    let malformed: [(&str, Vec<HoldLine>); 6] = [
        ("no line", vec![]),
        ("quantity 0", vec![line("A", 0)]),
        ("negative quantity", vec![line("A", -1)]),
        ("too large a quantity", vec![line("A", i64::MAX)]),
        ("empty SKU", vec![line("", 1)]),
        ("65-character SKU", vec![line(&long, 1)]),
    ];
    for (what, lines) in &malformed {
        let r = api.hold(MALFORMED, "rennes", lines, None).await;
        assert!(
            matches!(&r, Err(StockError::Invalid { message }) if !message.is_empty()),
            "{be}: {what}: {r:?}"
        );
        t.note(&format!("hold with {what}"), &r);
    }
    assert_eq!(api.hold_state(MALFORMED).await, Ok(None), "{be}");
    assert_eq!(
        shelf(api).await,
        held,
        "{be}: nothing held of a malformed hold"
    );

    // commit: the units leave the shelf (on hand and held both drop), once
    let r = api.commit(SOLD).await;
    assert_eq!(r, Ok(()), "{be}");
    t.note("commit", &r);
    assert_eq!(h.level("rennes", "A").await, Some((3, 0)), "{be}: sold");
    assert_eq!(h.level("rennes", "B").await, Some((2, 0)), "{be}: sold");
    assert_eq!(
        shelf(api).await,
        held,
        "{be}: what was held is what was sold"
    );
    let r = api.commit(SOLD).await;
    assert_eq!(r, Ok(()), "{be}: commit is idempotent");
    t.note("commit again", &r);
    assert_eq!(
        h.level("rennes", "A").await,
        Some((3, 0)),
        "{be}: sold once"
    );
    let r = api.hold_state(SOLD).await;
    assert_eq!(r, Ok(Some(HoldState::Committed)), "{be}");
    t.note("state after commit", &r);
    // a hold retried after its commit still succeeds, and takes nothing more
    let r = api
        .hold(SOLD, "rennes", &[line("A", 2), line("B", 1)], None)
        .await;
    assert_eq!(r, Ok(sold), "{be}: a committed hold answers its expiry");
    t.note("hold after commit", "Ok(the first expiry)");
    assert_eq!(shelf(api).await, held, "{be}");
    // release does not undo a sale
    let r = api.release(SOLD).await;
    assert_eq!(r, Ok(false), "{be}: a sold hold is not active");
    t.note("release after commit", &r);
    assert_eq!(api.hold_state(SOLD).await, Ok(Some(HoldState::Committed)));

    // restock: the sold units come back on hand, once
    let r = api.restock(SOLD, "cancellation").await;
    assert_eq!(r, Ok(true), "{be}: it was sold");
    t.note("restock", &r);
    assert_eq!(shelf(api).await, start, "{be}: back on the shelf");
    assert_eq!(h.level("rennes", "A").await, Some((5, 0)), "{be}");
    let r = api.restock(SOLD, "cancellation").await;
    assert_eq!(r, Ok(false), "{be}: returned already");
    t.note("restock again", &r);
    assert_eq!(shelf(api).await, start, "{be}: returned once");
    let r = api.hold_state(SOLD).await;
    assert_eq!(r, Ok(Some(HoldState::Returned)), "{be}");
    t.note("state after restock", &r);
    let r = api.commit(SOLD).await;
    assert_eq!(r, Err(StockError::HoldLost { hold: SOLD }), "{be}");
    t.note("commit after restock", &r);
    let r = api.hold(SOLD, "rennes", &[line("A", 2)], None).await;
    assert_eq!(r, Err(StockError::HoldLost { hold: SOLD }), "{be}");
    t.note("hold after restock", &r);

    // release: an active hold is given back, once
    let before = now_ms();
    let r = api.hold(GIVEN_BACK, "rennes", &[line("A", 1)], None).await;
    let after = now_ms();
    let given = r.clone().unwrap();
    assert!(
        (before + 900_000..=after + 900_000).contains(&given),
        "{be}: without a ttl, the service's (900 s): {given}"
    );
    t.note(
        "hold without a ttl",
        "Ok(expiry = time of the hold + 900 s)",
    );
    assert_eq!(shelf(api).await[&("rennes".into(), "A".into())], 4, "{be}");
    let r = api.release(GIVEN_BACK).await;
    assert_eq!(r, Ok(true), "{be}: it was active");
    t.note("release", &r);
    assert_eq!(shelf(api).await, start, "{be}: the unit is for sale again");
    let r = api.release(GIVEN_BACK).await;
    assert_eq!(r, Ok(false), "{be}: released already");
    t.note("release again", &r);
    assert_eq!(shelf(api).await, start, "{be}: given back once");
    let r = api.hold_state(GIVEN_BACK).await;
    assert_eq!(r, Ok(Some(HoldState::Released)), "{be}");
    t.note("state after release", &r);
    let r = api.commit(GIVEN_BACK).await;
    assert_eq!(r, Err(StockError::HoldLost { hold: GIVEN_BACK }), "{be}");
    t.note("commit after release", &r);
    let r = api.restock(GIVEN_BACK, "cancellation").await;
    assert_eq!(r, Ok(false), "{be}: it was never sold");
    t.note("restock after release", &r);
    let r = api.hold(GIVEN_BACK, "rennes", &[line("A", 1)], None).await;
    assert_eq!(r, Err(StockError::HoldLost { hold: GIVEN_BACK }), "{be}");
    t.note("hold after release", &r);
    assert_eq!(shelf(api).await, start, "{be}");

    // expiry: a hold that ran out of time is lost to the checkout
    api.hold(LAPSED, "rennes", &[line("B", 1)], Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(h.inv.sweep().await.unwrap(), 1, "{be}: the sweeper's pass");
    let r = api.hold_state(LAPSED).await;
    assert_eq!(r, Ok(Some(HoldState::Expired)), "{be}");
    t.note("state after expiry", &r);
    let r = api.commit(LAPSED).await;
    assert_eq!(r, Err(StockError::HoldLost { hold: LAPSED }), "{be}");
    t.note("commit after expiry", &r);
    let r = api.release(LAPSED).await;
    assert_eq!(r, Ok(false), "{be}: it is no longer active");
    t.note("release after expiry", &r);
    assert_eq!(shelf(api).await, start, "{be}: the lapsed unit is for sale");

    // a hold nobody made
    let r = api.hold_state(NEVER).await;
    assert_eq!(r, Ok(None), "{be}");
    t.note("state of an unknown hold", &r);
    let r = api.commit(NEVER).await;
    assert_eq!(r, Err(StockError::HoldLost { hold: NEVER }), "{be}");
    t.note("commit of an unknown hold", &r);
    let r = api.release(NEVER).await;
    assert_eq!(r, Ok(false), "{be}");
    t.note("release of an unknown hold", &r);
    let r = api.restock(NEVER, "cancellation").await;
    assert_eq!(r, Ok(false), "{be}");
    t.note("restock of an unknown hold", &r);

    let r = shelf(api).await;
    assert_eq!(r, start, "{be}");
    t.note("available at the end", &r);
    h.assert_consistent().await;
    t
}

#[tokio::test]
async fn both_implementations_of_the_stock_contract_answer_alike() {
    testkit::each_backend(inventory::migrations(), |t| {
        Box::pin(async move {
            let be = t.backend;
            let here = H::new(t).await;
            let local = stock_contract(&here.inv, &here, "in process").await;
            let other = t.twin(inventory::migrations()).await;
            let run = testkit::catching(async {
                let there = H::new(&other).await;
                let client = over_http(&there.inv, InternalKey::new(CONTRACT_SECRET)).await;
                let remote = stock_contract(&client, &there, "over HTTP").await;
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

#[tokio::test]
async fn the_internal_routes_refuse_a_call_not_signed_for_them() {
    testkit::each_backend(inventory::migrations(), |t| {
        Box::pin(async move {
            let h = H::new(t).await;
            let be = h.backend();
            h.stock("rennes", "A", 5).await;
            let key = InternalKey::new(CONTRACT_SECRET);
            let app = TestApp::unsigned(guarded(&h.inv, key.clone()));
            let hold = format!("/internal/inventory/holds/{SOLD}");
            let body = json!({"location": "rennes", "lines": [{"sku": "A", "quantity": 1}]});
            testkit::contract::assert_refused(
                &app,
                &key,
                ("PUT", &hold),
                ("GET", "/internal/inventory/locations"),
                Some(&body),
                be,
            )
            .await;
            assert_eq!(
                h.level("rennes", "A").await,
                Some((5, 0)),
                "{be}: nothing held"
            );

            // a client with the wrong secret, over the wire: not known to the caller, no effect
            let client = over_http(&h.inv, InternalKey::new(b"another-secret")).await;
            let r = StockApi::hold(&client, SOLD, "rennes", &[line("A", 1)], None).await;
            assert!(
                matches!(&r, Err(StockError::Unavailable { detail })
                    if detail.contains("401") && detail.contains("invalid_internal_call")),
                "{be}: {r:?}"
            );
            assert_eq!(
                h.level("rennes", "A").await,
                Some((5, 0)),
                "{be}: nothing held"
            );
            assert_eq!(StockApi::hold_state(&h.inv, SOLD).await, Ok(None), "{be}");

            // signed for its route, the same call passes
            let r = app
                .put(&hold)
                .json(&body)
                .header(
                    CALL_HEADER,
                    &key.sign_call("orders", "PUT", &hold, chrono::Utc::now().timestamp()),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{be}: {}", r.body);
            assert_eq!(h.level("rennes", "A").await, Some((5, 1)), "{be}: held");
        })
    })
    .await;
}
