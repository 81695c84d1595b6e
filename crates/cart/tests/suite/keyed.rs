//! Keyed writes (`Idempotency-Key`): the first answer is replayed, the cart store keeps it in the
//! same write as the change, and a process that dies between the change and its response leaves
//! that answer to the retry (the fail point `cart.after_change`, on every backend).

use super::*;
use axum::body::Body;
use axum::http::Request;
use cart::keyed::{Answer, Begin, Claim};
use platform::config::SqliteSync;
use platform::db::{Db, DbTarget};

// ---- through the API -----------------------------------------------------------------------------

on_all_backends!(an_idempotency_key_replays_the_first_answer, |e| Box::pin(
    async move {
        let b = e.backend;
        let id = e.new_cart(None).await;
        let lines = format!("/api/carts/{id}/lines");
        let body = r#"{"sku": "CAP", "quantity": 2}"#;
        let key = [("idempotency-key", "add-cap-1")];
        let first = e.call("POST", &lines, None, Some(body), &key).await;
        assert_eq!(first.status, StatusCode::OK, "{b}: {:?}", first.body);
        let retry = e.call("POST", &lines, None, Some(body), &key).await;
        assert_eq!(retry.status, StatusCode::OK, "{b}");
        assert_eq!(
            retry
                .headers
                .get("idempotent-replayed")
                .and_then(|v| v.to_str().ok()),
            Some("true")
        );
        assert_eq!(
            retry.body, first.body,
            "{b}: the first answer, byte for byte"
        );
        let cart = e.carts.get(id, None).await.expect("get");
        assert_eq!(
            cart.line("CAP").map(|l| l.quantity),
            Some(2),
            "{b}: added once"
        );

        let other = e
            .call(
                "POST",
                &lines,
                None,
                Some(r#"{"sku": "CAP", "quantity": 1}"#),
                &key,
            )
            .await;
        assert_eq!(
            (other.status, other.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            "{b}"
        );

        // a failed request releases its key
        let k2 = [("idempotency-key", "add-nope")];
        let bad = r#"{"sku": "NOPE", "quantity": 1}"#;
        let r = e.call("POST", &lines, None, Some(bad), &k2).await;
        assert_eq!(r.code(), "unknown_sku");
        e.prices.set("NOPE", 100, "EUR", true);
        let r = e.call("POST", &lines, None, Some(bad), &k2).await;
        assert_eq!(r.status, StatusCode::OK, "{b}: the retry ran");

        // creating a cart twice with one key makes one cart
        let k3 = [("idempotency-key", "create-1")];
        let c1 = e.call("POST", "/api/carts", Some("bob"), None, &k3).await;
        let c2 = e.call("POST", "/api/carts", Some("bob"), None, &k3).await;
        assert_eq!(c1.status, StatusCode::CREATED, "{b}");
        assert_eq!(c2.status, StatusCode::CREATED, "{b}: replayed");
        assert_eq!(c1.body["id"], c2.body["id"]);
    }
));

on_all_backends!(
    a_keyed_write_that_changes_nothing_and_a_merge_replay_too,
    |e| Box::pin(async move {
        let b = e.backend;
        let id = e.new_cart(None).await;
        let tee = format!("/api/carts/{id}/lines/TEE-M");
        let r = e
            .json(
                "POST",
                &format!("/api/carts/{id}/lines"),
                None,
                &json!({"sku": "TEE-M", "quantity": 2}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{b}");
        // the same quantity again: nothing to save, the answer is recorded all the same
        let same = r#"{"quantity": 2}"#;
        let key = [("idempotency-key", "same-2")];
        let first = e.call("PATCH", &tee, None, Some(same), &key).await;
        assert_eq!(first.status, StatusCode::OK, "{b}: {:?}", first.body);
        let retry = e.call("PATCH", &tee, None, Some(same), &key).await;
        assert_eq!(
            retry
                .headers
                .get("idempotent-replayed")
                .map(|v| v.as_bytes()),
            Some(&b"true"[..]),
            "{b}"
        );
        assert_eq!(retry.body, first.body, "{b}");

        // a merge and its retry: the lines join alice's cart once, the guest cart is gone
        let mine = e.new_cart(Some("alice")).await;
        let merge = format!("/api/carts/{id}/merge");
        let key = [("idempotency-key", "merge-1")];
        let first = e.call("POST", &merge, Some("alice"), None, &key).await;
        assert_eq!(first.status, StatusCode::OK, "{b}: {:?}", first.body);
        let retry = e.call("POST", &merge, Some("alice"), None, &key).await;
        assert_eq!(retry.status, StatusCode::OK, "{b}: replayed, not 404");
        assert_eq!(retry.body, first.body, "{b}");
        assert_eq!(
            retry.headers.get("location"),
            first.headers.get("location"),
            "{b}"
        );
        let cart = e
            .carts
            .get(mine, Some("alice"))
            .await
            .expect("alice's cart");
        assert_eq!(
            cart.line("TEE-M").map(|l| l.quantity),
            Some(2),
            "{b}: merged once"
        );
        assert!(
            e.store.load(id).await.expect("load").is_none(),
            "{b}: the guest cart is gone"
        );
    })
);

// ---- in the store --------------------------------------------------------------------------------

/// What [`CartStore::begin`] said.
enum Said {
    Proceed(Claim),
    Replay(Res),
    Refused(StatusCode, &'static str),
}

async fn begin(e: &Env, scope: &str, key: &str, hash: &str) -> Said {
    match e.store.begin(scope, key, hash).await {
        Ok(Begin::Proceed(c)) => Said::Proceed(c),
        Ok(Begin::Replay(r)) => Said::Replay(testkit::http::read(r).await),
        Err(err) => Said::Refused(err.status, err.code),
    }
}

fn claimed(said: Said, what: &str) -> Claim {
    match said {
        Said::Proceed(c) => c,
        Said::Replay(r) => panic!("{what}: replayed {:?}", r.body),
        Said::Refused(s, c) => panic!("{what}: refused {s} {c}"),
    }
}

fn refused(said: Said) -> Option<(StatusCode, &'static str)> {
    match said {
        Said::Refused(s, c) => Some((s, c)),
        _ => None,
    }
}

on_all_backends!(
    the_store_keeps_the_answer_of_a_keyed_write_with_its_change,
    |e| Box::pin(async move {
        let b = e.backend;
        let s = &e.store;
        let in_progress = Some((StatusCode::CONFLICT, "idempotency_in_progress"));
        let c1 = claimed(begin(e, "anonymous", "k1", "h1").await, b);
        assert_eq!(
            refused(begin(e, "anonymous", "k1", "h1").await),
            in_progress,
            "{b}"
        );
        let cart = cart_at(e.clock.ms(), None);
        let answer = Answer {
            status: StatusCode::CREATED,
            body: r#"{"made": 1}"#.into(),
            location: Some(format!("/api/carts/{}", cart.id)),
        };
        let with = Commit {
            answer: Some((&c1, &answer)),
            replaces: None,
        };
        s.save(&cart, with).await.expect("save");
        let Said::Replay(r) = begin(e, "anonymous", "k1", "h1").await else {
            panic!("{b}: an answered key replays");
        };
        assert_eq!(r.status, StatusCode::CREATED, "{b}");
        assert_eq!(r.body, json!({"made": 1}), "{b}");
        let header = |n: &str| {
            r.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(header("location"), answer.location, "{b}");
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/json"),
            "{b}"
        );
        assert_eq!(
            header("idempotent-replayed").as_deref(),
            Some("true"),
            "{b}"
        );
        assert_eq!(
            refused(begin(e, "anonymous", "k1", "h2").await),
            Some((StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")),
            "{b}: the key with another request"
        );
        // keys are per scope
        let other = claimed(begin(e, "account:bob", "k1", "h1").await, b);
        s.release(other).await;

        // a save that loses its compare-and-set stores no answer: the key is still running,
        // and released it runs again
        let c2 = claimed(begin(e, "anonymous", "k2", "h1").await, b);
        let with = Commit {
            answer: Some((&c2, &answer)),
            replaces: None,
        };
        assert!(
            matches!(s.save(&cart, with).await, Err(StoreError::Conflict)),
            "{b}"
        );
        assert_eq!(
            refused(begin(e, "anonymous", "k2", "h1").await),
            in_progress,
            "{b}"
        );
        s.release(c2).await;
        let c3 = claimed(begin(e, "anonymous", "k2", "h1").await, b);

        // a keyed write that saves nothing records its answer
        let unchanged = Answer {
            status: StatusCode::OK,
            body: "{}".into(),
            location: None,
        };
        s.record(&c3, &unchanged).await.expect("record");
        let Said::Replay(r) = begin(e, "anonymous", "k2", "h1").await else {
            panic!("{b}: a recorded key replays");
        };
        assert_eq!(
            (r.status, r.headers.get("location")),
            (StatusCode::OK, None),
            "{b}"
        );
        // releasing an answered claim changes nothing
        let c4 = claimed(begin(e, "anonymous", "k3", "h1").await, b);
        s.record(&c4, &unchanged).await.expect("record");
        s.release(c4).await;
        assert!(
            matches!(begin(e, "anonymous", "k3", "h1").await, Said::Replay(_)),
            "{b}"
        );

        // a save that replaces a cart removes it in the same write
        let guest = cart_at(e.clock.ms(), None);
        s.save(&guest, Commit::default()).await.expect("guest");
        let mut next = cart.clone();
        next.version = 2;
        let with = Commit {
            answer: None,
            replaces: Some(guest.id),
        };
        s.save(&next, with).await.expect("merge");
        assert_eq!(s.load(guest.id).await.expect("load"), None, "{b}");

        if let Some(r) = &e.redis {
            let pttl = e.pttl(&r.idempotency_key("anonymous", "k1")).await;
            let day = 24 * 3600 * 1000;
            assert!(
                pttl > day - 60_000 && pttl <= day,
                "{b}: a key is kept a day, {pttl}"
            );
            // a claim left without an answer for a minute is a crashed request's: taken over
            let _crashed = claimed(begin(e, "anonymous", "k5", "h1").await, b);
            e.clock.advance(61_000);
            let _taken = claimed(begin(e, "anonymous", "k5", "h1").await, b);
        }
    })
);

// ---- a crash between the change and the response ---------------------------------------------------

/// This test's name for the harness, to run it again in a child process.
const CRASH_TEST: &str = "keyed::a_crash_after_a_keyed_change_leaves_its_answer_for_the_retry";
/// Set in the child: where the parent's cart lives (JSON).
const CHILD_ENV: &str = "CART_SUITE_CRASH_CHILD";
const POINT: &str = "cart.after_change";
const KEY: [(&str, &str); 1] = [("idempotency-key", "crash-add-cap")];
const ADD_CAP: &str = r#"{"sku": "CAP", "quantity": 1}"#;

fn add_cap(cart: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(format!("/api/carts/{cart}/lines"))
        .header("content-type", "application/json")
        .header(KEY[0].0, KEY[0].1)
        .body(Body::from(ADD_CAP))
        .expect("request")
}

/// The parent keeps the storage and checks; a child process (this test binary, run for this
/// test only, with the fail point armed) makes the keyed change and dies before answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_keyed_change_leaves_its_answer_for_the_retry() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return crash_in_child(&spec).await;
    }
    for env in envs().await {
        crash_then_retry(&env).await;
        env.cleanup().await;
    }
}

async fn crash_then_retry(e: &Env) {
    let b = e.backend;
    let id = e.new_cart(None).await;
    let mut spec = json!({ "cart": id.to_string() });
    match &e.db.target {
        DbTarget::SqliteFile { path, .. } => spec["sqlite"] = json!(path.display().to_string()),
        DbTarget::Postgres { schema, .. } => spec["postgres"] = json!(schema),
    }
    if let Some(r) = &e.redis {
        spec["redis"] = json!(r.prefix());
    }
    let child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([CRASH_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, spec.to_string())
        .env(platform::fail::ENV, POINT)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("the child ends")
        .expect("the child runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("fail point `{POINT}` reached")),
        "{b}: the child dies at the fail point ({}):\n{stderr}",
        out.status
    );

    // a minute later (the store's clock): a claim without an answer would be taken over by now,
    // and the change made a second time
    e.clock.advance(61_000);
    let lines = format!("/api/carts/{id}/lines");
    let retry = e.call("POST", &lines, None, Some(ADD_CAP), &KEY).await;
    assert_eq!(
        retry.status,
        StatusCode::OK,
        "{b}: the first answer: {:?}",
        retry.body
    );
    assert_eq!(
        retry
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true"),
        "{b}"
    );
    assert_eq!(retry.body["lines"].as_array().map(Vec::len), Some(1), "{b}");
    assert_eq!(retry.body["lines"][0]["sku"], "CAP", "{b}");
    assert_eq!(retry.body["lines"][0]["quantity"], 1, "{b}");
    assert_eq!(retry.body["version"], 2, "{b}: the child's change");
    let cart = e.carts.get(id, None).await.expect("the cart");
    assert_eq!(
        cart.line("CAP").map(|l| l.quantity),
        Some(1),
        "{b}: added once"
    );
    assert_eq!(cart.version, 2, "{b}");
    let other = e
        .call(
            "POST",
            &lines,
            None,
            Some(r#"{"sku": "CAP", "quantity": 2}"#),
            &KEY,
        )
        .await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
        "{b}"
    );
}

/// The child: the same service on the parent's storage; the keyed change never returns.
async fn crash_in_child(spec: &str) {
    let spec: Value = serde_json::from_str(spec).expect("the parent's spec");
    let target = match (spec["sqlite"].as_str(), spec["postgres"].as_str()) {
        (Some(path), _) => DbTarget::SqliteFile {
            path: path.into(),
            synchronous: SqliteSync::Normal,
        },
        (None, Some(schema)) => DbTarget::Postgres {
            url: testkit::postgres_url().expect("the parent's PostgreSQL"),
            schema: schema.to_string(),
        },
        _ => panic!("no database in {spec}"),
    };
    let db = Db::connect(&target, 2)
        .await
        .expect("the parent's database");
    let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
    let store: Arc<dyn CartStore> = match spec["redis"].as_str() {
        Some(prefix) => {
            let url = testkit::redis_url().expect("the parent's Redis");
            let redis = RedisCartStore::connect(&url, prefix, clock.clone());
            Arc::new(redis.await.expect("Redis"))
        }
        None => Arc::new(SqlCartStore::new(db.clone(), clock.clone())),
    };
    let carts = Arc::new(Carts::new(
        store,
        catalogue(),
        clock,
        CartSettings::default(),
    ));
    let cart = spec["cart"].as_str().expect("cart id");
    let r = app(carts, &db).send(add_cap(cart)).await;
    panic!(
        "the fail point `{POINT}` was not reached: answered {} {:?}",
        r.status, r.body
    );
}
