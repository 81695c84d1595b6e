//! Micro-benchmark of the identity hot paths, run by `bench/auth.sh` (release build):
//! access-token verification at the edge (parse, EdDSA signature, claims, cached session check),
//! token signing, and argon2id hashing/verification (the sign-in cost). Prints one JSON object.

use jsonwebtoken::jwk::JwkSet;
use platform::authn::{Authenticator, Credential, DirFuture, Directory};
use platform::authz::{Principal, PrincipalKind, Role};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Fixed(JwkSet);

impl Directory for Fixed {
    fn signing_keys(&self) -> DirFuture<'_, JwkSet> {
        let set = self.0.clone();
        Box::pin(async move { Ok(set) })
    }
    fn api_key<'a>(&'a self, _: &'a str) -> DirFuture<'a, Option<Principal>> {
        Box::pin(async { Ok(None) })
    }
    fn session_active<'a>(&'a self, _: &'a str) -> DirFuture<'a, bool> {
        Box::pin(async { Ok(true) })
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let iss = "http://bench.test";
    let now = chrono::Utc::now().timestamp_millis();
    let row = identity::keys::generate(now);
    let signer = identity::keys::Signer::new(iss, "comptoir", Duration::from_secs(600));
    signer.install(&row).expect("install");
    let jwks: JwkSet = serde_json::from_value(
        serde_json::to_value(identity::keys::jwks(std::slice::from_ref(&row))).expect("json"),
    )
    .expect("jwks");
    let auth = Arc::new(Authenticator::new(
        iss,
        "comptoir",
        Arc::new(Fixed(jwks)),
        None,
        Duration::from_secs(2),
    ));
    let p = Principal {
        subject: "0190c0de-0000-7000-8000-000000000000".into(),
        kind: PrincipalKind::User,
        role: Role::StoreManager,
        store: Some("rennes".into()),
        organiser: None,
        scopes: vec![],
        session: None,
    };
    // signing, one thread
    let n_sign = 20_000;
    let t = Instant::now();
    let mut token = String::new();
    for _ in 0..n_sign {
        token = signer.issue(&p, "sid-1", now).expect("issue").token;
    }
    let sign_per_s = n_sign as f64 / t.elapsed().as_secs_f64();
    let cred = Credential::Token(token);
    auth.authenticate(&cred).await.expect("valid");
    // verification: 1 task, then 2 tasks (both cores), 3 s each
    let mut verify = Vec::new();
    for tasks in [1usize, 2] {
        let count = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let (auth, cred, count) = (auth.clone(), cred.clone(), count.clone());
            handles.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    for _ in 0..100 {
                        auth.authenticate(&cred).await.expect("valid");
                    }
                    count.fetch_add(100, Ordering::Relaxed);
                }
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
        verify.push((tasks, count.load(Ordering::Relaxed) as f64 / 3.0));
    }
    // argon2id (OWASP parameters): sequential cost, then two at once
    let n = 20;
    let t = Instant::now();
    let mut phc = String::new();
    for i in 0..n {
        phc = identity::password::hash_blocking(&format!("bench password {i}")).expect("hash");
    }
    let hash_ms = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        assert!(!identity::password::verify_blocking("wrong password", &phc));
    }
    let verify_ms = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
    let t = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let phc = phc.clone();
            std::thread::spawn(move || {
                for _ in 0..n {
                    identity::password::verify_blocking("wrong password", &phc);
                }
            })
        })
        .collect();
    for th in threads {
        th.join().expect("thread");
    }
    let verify2_per_s = (2 * n) as f64 / t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "token_sign_per_s_1_thread": sign_per_s.round(),
            "token_verify_per_s": verify.iter().map(|(t, v)| serde_json::json!({"tasks": t, "per_s": v.round()})).collect::<Vec<_>>(),
            "argon2id_hash_ms": (hash_ms * 10.0).round() / 10.0,
            "argon2id_verify_ms": (verify_ms * 10.0).round() / 10.0,
            "argon2id_verify_per_s_2_threads": (verify2_per_s * 10.0).round() / 10.0,
        })
    );
}
