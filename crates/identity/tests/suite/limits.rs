//! Guessing passwords (S7): strangers slowed down then refused, per-address and per-account
//! limits, unknown accounts that look like wrong passwords, bursts counted like sequences; on
//! every limiter.

use super::*;

// ---- S7 ---------------------------------------------------------------------------------------

/// The two limiter backends the sign-in throttling must agree on: this process's counters, and
/// Redis's (when `COMPTOIR_TEST_REDIS_URL` is set; required in strict mode).
async fn limiters() -> Vec<(&'static str, Limiter)> {
    let mut v = vec![("memory", Limiter::in_process())];
    if let Some(url) = testkit::redis_url() {
        v.push(("redis", Limiter::redis(&url).await.expect("Redis limiter")));
    }
    v
}

/// Client addresses of one test only (Redis counters outlive a run): `fdXX:XXXX:XXXX:XXXX::n`.
struct Net(String);

impl Net {
    fn new() -> Self {
        let u = uuid::Uuid::new_v4().simple().to_string();
        Net(format!(
            "fd{}:{}:{}:{}",
            &u[0..2],
            &u[2..6],
            &u[6..10],
            &u[10..14]
        ))
    }

    fn ip(&self, n: u16) -> String {
        format!("{}::{n:x}", self.0)
    }
}

async fn attempt(h: &H, email: &str, password: &str, ip: &str) -> Res {
    h.call(
        "POST",
        "/api/identity/sessions",
        Some(&json!({"email": email, "password": password})),
        &[],
        ip,
    )
    .await
}

fn retry_after(r: &Res) -> u64 {
    r.headers
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds")
}

on_all_backends!(
    a_strangers_guesses_do_not_lock_the_account_holder_out,
    |h, t| {
        for (name, limiter) in limiters().await {
            eprintln!("  limiter: {name}");
            // the first delay is long enough that no attempt of this test outlasts one
            let mut p = policy();
            p.first_delay = Duration::from_secs(60);
            let h = H::with_limiter(t, p, None, limiter).await;
            let net = Net::new();
            let (stranger, holder) = (net.ip(1), net.ip(2));
            let (email, _) = h.customer("the real password").await;

            // 50 wrong passwords from the stranger's address: three at full speed, then each one
            // must wait, and is answered before any password is checked
            let before = h.id.passwords.verifications();
            let (mut unauthorized, mut slowed) = (0, 0);
            for i in 0..50 {
                let r = attempt(&h, &email, "not the password", &stranger).await;
                match r.status {
                    StatusCode::UNAUTHORIZED => {
                        assert_eq!(r.body["code"], "invalid_credentials");
                        unauthorized += 1;
                    }
                    StatusCode::TOO_MANY_REQUESTS => {
                        assert_eq!(r.body["code"], "too_many_attempts");
                        let secs = retry_after(&r);
                        assert!((1..=60).contains(&secs), "attempt {i}: Retry-After {secs}");
                        slowed += 1;
                    }
                    s => panic!("unexpected {s}"),
                }
            }
            assert_eq!((unauthorized, slowed), (3, 47));
            assert_eq!(
                h.id.passwords.verifications(),
                before + 3,
                "a slowed attempt verifies no password"
            );
            // even the right password waits at the stranger's address: the check comes first
            let r = attempt(&h, &email, "the real password", &stranger).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

            // the account holder, from their own address, is not locked out
            let r = attempt(&h, &email, "the real password", &holder).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

            // a success clears that (account, address): two mistypes, a success, then three
            // mistypes at full speed again before the fourth waits
            for _ in 0..2 {
                let r = attempt(&h, &email, "mistyped password", &holder).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            }
            let r = attempt(&h, &email, "the real password", &holder).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            for _ in 0..3 {
                let r = attempt(&h, &email, "mistyped password", &holder).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
            }
            let r = attempt(&h, &email, "mistyped password", &holder).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        }
    }
);

on_all_backends!(a_stranger_is_slowed_down_then_refused, |h, t| {
    for (name, limiter) in limiters().await {
        eprintln!("  limiter: {name}");
        // growing delays of 20 ms, 40 ms ... 1.28 s: the seven waits take about 2.5 s here
        let mut p = policy();
        p.first_delay = Duration::from_millis(20);
        let h = H::with_limiter(t, p, None, limiter).await;
        let net = Net::new();
        let stranger = net.ip(1);
        let (email, _) = h.customer("the real password").await;
        let unauthorized = AtomicUsize::new(0);
        let (hr, er, ur, sr) = (&h, email.as_str(), &unauthorized, stranger.as_str());
        let refused_for = testkit::eventually(
            "the stranger to be refused for the window",
            Duration::from_secs(60),
            move || async move {
                let r = attempt(hr, er, "not the password", sr).await;
                match r.status {
                    StatusCode::UNAUTHORIZED => {
                        ur.fetch_add(1, Ordering::SeqCst);
                        None
                    }
                    StatusCode::TOO_MANY_REQUESTS => {
                        assert_eq!(r.body["code"], "too_many_attempts");
                        // a delay (Retry-After 1 or 2 s) or the rest of the window
                        let secs = retry_after(&r);
                        (secs > 2).then_some(secs)
                    }
                    s => panic!("unexpected {s}"),
                }
            },
        )
        .await;
        assert_eq!(
            unauthorized.load(Ordering::SeqCst),
            10,
            "the (account, address) maximum"
        );
        assert!((60..=900).contains(&refused_for), "{refused_for}");
        // refused for the window, whatever the password
        let r = attempt(&h, &email, "the real password", &stranger).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(retry_after(&r) > 2);
        // the account holder, elsewhere, signs in
        let r = attempt(&h, &email, "the real password", &net.ip(2)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
});

on_all_backends!(the_per_address_and_per_account_limits_still_hold, |h, t| {
    for (name, limiter) in limiters().await {
        eprintln!("  limiter: {name}");
        let h = H::with_limiter(t, policy(), None, limiter.clone()).await;
        let net = Net::new();
        let run = uuid::Uuid::new_v4().simple().to_string();

        // one address spraying many accounts, one guess each: refused after 50
        let sprayer = net.ip(1);
        let mut unauthorized = 0;
        for i in 0..80 {
            let r = attempt(
                &h,
                &format!("nobody{i}-{run}@test.example"),
                "whatever123",
                &sprayer,
            )
            .await;
            match r.status {
                StatusCode::UNAUTHORIZED => unauthorized += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert_eq!(r.body["code"], "too_many_attempts");
                    assert!(retry_after(&r) > 2);
                }
                s => panic!("unexpected {s}"),
            }
        }
        assert_eq!(unauthorized, 50, "the per-address limit");

        // 200 guesses on one account from 20 addresses (no delays here, so that each address
        // reaches its maximum at once): the account's ceiling stops them at 100
        let mut p = policy();
        p.failures_before_delay = p.max_failures_per_pair;
        let h = H::with_limiter(t, p, None, limiter).await;
        let (email, _) = h.customer("the real password").await;
        let mut unauthorized = 0;
        for i in 0..200u16 {
            let r = attempt(&h, &email, "not the password", &net.ip(100 + i % 20)).await;
            match r.status {
                StatusCode::UNAUTHORIZED => unauthorized += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert_eq!(r.body["code"], "too_many_attempts")
                }
                s => panic!("unexpected {s}"),
            }
        }
        assert_eq!(
            unauthorized, 100,
            "at most 100 failures per account and window"
        );
        // distributed guessing is capped for everyone, the holder too, until the window ends...
        let r = attempt(&h, &email, "the real password", &net.ip(999)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(retry_after(&r) > 2);
        // ... or a reset link is used
        h.post(
            "/api/identity/password-resets",
            &json!({"email": email}),
            None,
        )
        .await;
        let msgs =
            identity::store::pending_outbox(&h.id.db, identity::service::TOPIC_PASSWORD_RESET)
                .await
                .expect("outbox");
        let link = msgs
            .iter()
            .map(|m| serde_json::from_str::<Value>(&m.payload).expect("json"))
            .find(|m| m["email"] == email.as_str())
            .expect("reset message");
        let r = h
            .call(
                "POST",
                "/api/identity/password-resets/confirm",
                Some(&json!({"token": link["token"], "new_password": "a brand new password"})),
                &[],
                &net.ip(999),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let r = attempt(&h, &email, "a brand new password", &net.ip(999)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
});

on_all_backends!(unknown_accounts_look_like_wrong_passwords, |h, t| {
    let mut p = policy();
    p.failures_before_delay = 1000;
    p.max_failures_per_pair = 1000;
    p.max_failures_per_account = 1000;
    p.max_failures_per_ip = 1000;
    let h = H::with(t, p, None).await;
    let (email, _) = h.customer("the real password").await;
    let known = json!({"email": email, "password": "not the password"});
    let unknown = json!({"email": "nobody-at-all@test.example", "password": "not the password"});
    let a = h.post("/api/identity/sessions", &known, None).await;
    let b = h.post("/api/identity/sessions", &unknown, None).await;
    assert_eq!(a.status, b.status);
    let strip = |mut v: Value| {
        v.as_object_mut().expect("object").remove("request_id");
        v
    };
    assert_eq!(
        strip(a.body),
        strip(b.body),
        "same body for unknown and wrong"
    );
    // and the same work: both verify one argon2id hash (counted, not timed: wall-clock
    // ratios are noise on a shared machine)
    let before = h.id.passwords.verifications();
    h.post("/api/identity/sessions", &known, None).await;
    assert_eq!(
        h.id.passwords.verifications(),
        before + 1,
        "known: one verification"
    );
    h.post("/api/identity/sessions", &unknown, None).await;
    assert_eq!(
        h.id.passwords.verifications(),
        before + 2,
        "unknown: one dummy verification"
    );
    // throttled, they still look alike: after three failures each, the same 429
    let mut p = policy();
    p.first_delay = Duration::from_secs(60);
    let h = H::with(t, p, None).await;
    let net = Net::new();
    let unknown_email = format!("nobody-{}@test.example", uuid::Uuid::new_v4().simple());
    let mut answers = Vec::new();
    for who in [email.as_str(), unknown_email.as_str()] {
        for _ in 0..3 {
            let r = attempt(&h, who, "not the password", &net.ip(1)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        let r = attempt(&h, who, "not the password", &net.ip(1)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(retry_after(&r) >= 1);
        answers.push(strip(r.body));
    }
    assert_eq!(answers[0], answers[1], "same throttled answer");
});

on_all_backends!(
    a_burst_of_parallel_guesses_is_counted_like_a_sequence,
    |h, t| {
        for (name, limiter) in limiters().await {
            eprintln!("  limiter: {name}");
            // the first delay is long enough that the burst cannot outwait it
            let mut p = policy();
            p.first_delay = Duration::from_secs(60);
            let h = H::with_limiter(t, p, None, limiter).await;
            let net = Net::new();
            let stranger = net.ip(1);
            let (email, _) = h.customer("the real password").await;
            let burst = (0..20).map(|_| attempt(&h, &email, "not the password", &stranger));
            let answers = futures_util::future::join_all(burst).await;
            let unauthorized = answers
                .iter()
                .filter(|r| r.status == StatusCode::UNAUTHORIZED)
                .count();
            let throttled = answers
                .iter()
                .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
                .count();
            assert_eq!(
                (unauthorized, throttled),
                (3, 17),
                "{name}: the passwords checked are those of a sequence: 3, then the delay"
            );
            let r = attempt(&h, &email, "the real password", &net.ip(2)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        }
    }
);
