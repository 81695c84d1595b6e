//! The activity metrics of identity: a sign-up counts once (an e-mail taken or a refused
//! password not at all), a sign-in counts when it opens a session (a wrong password counts as a
//! failure, not a sign-in). Read from the test's own recorder (`testkit::metrics`), on a
//! current-thread runtime so that everything the bodies record reaches it.

use super::*;
use testkit::metrics::Recorder;

#[tokio::test]
async fn sign_ups_and_sign_ins_are_counted_once_each() {
    let _serial = SERIAL.lock().await;
    let m = Arc::new(Recorder::new());
    let _on = m.on_this_thread();
    testkit::each_backend(identity::migrations(), |t| {
        let m = m.clone();
        Box::pin(async move {
            let h = H::new(t).await;
            let b = h.backend;
            let at = |name: &str| m.value(name, &[]);
            let (registered0, signins0, failed0) = (
                at("comptoir_customers_registered_total"),
                at("comptoir_signins_total"),
                at("comptoir_signin_failed_total"),
            );
            let registered = || at("comptoir_customers_registered_total") - registered0;
            let signins = || at("comptoir_signins_total") - signins0;
            let (email, _) = h.customer("un mot de passe solide").await;
            assert_eq!((registered(), signins()), (1.0, 1.0), "{b}");
            // the same e-mail again, and a password the policy refuses: no account
            let r = h
                .post(
                    "/api/identity/customers",
                    &json!({"email": email, "password": "un autre mot de passe", "name": "X"}),
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{b}: {:?}", r.body);
            let r = h
                .post(
                    "/api/identity/customers",
                    &json!({"email": "short@test.example", "password": "court", "name": "X"}),
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
            assert_eq!(registered(), 1.0, "{b}");
            // a wrong password is a failure, not a sign-in; the right one is one more
            let r = h.sign_in(&email, "pas le bon mot de passe").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{b}");
            assert_eq!(signins(), 1.0, "{b}");
            assert_eq!(at("comptoir_signin_failed_total") - failed0, 1.0, "{b}");
            let r = h.sign_in(&email, "un mot de passe solide").await;
            assert_eq!(r.status, StatusCode::CREATED, "{b}");
            assert_eq!(signins(), 2.0, "{b}");
        })
    })
    .await;
}
