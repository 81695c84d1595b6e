//! The metrics of carts on every backend: a cart created through the API counts once (its
//! keyed replay not again, a customer's second POST that returns their cart not at all); an
//! expired cart counts as abandoned when it still had lines, once, whichever purge sees it.
//! Read from the test's own recorder (`testkit::metrics`): a current-thread runtime, so that
//! everything the body records reaches it.

use super::*;
use testkit::metrics::Recorder;

#[tokio::test]
async fn carts_created_are_counted_once() {
    for e in envs().await {
        let m = Recorder::new();
        let _on = m.on_this_thread();
        let b = e.backend;
        let created = || m.value("comptoir_carts_created_total", &[]);
        let key = [("idempotency-key", "create-metrics")];
        let first = e.call("POST", "/api/carts", None, None, &key).await;
        assert_eq!(first.status, StatusCode::CREATED, "{b}: {:?}", first.body);
        assert_eq!(created(), 1.0, "{b}");
        let again = e.call("POST", "/api/carts", None, None, &key).await;
        assert_eq!(again.body, first.body, "{b}: replayed");
        assert_eq!(created(), 1.0, "{b}: a replay creates nothing");
        // a customer's cart, then the same customer asking again: their cart, not a new one
        let mine = e.call("POST", "/api/carts", Some("alice"), None, &[]).await;
        assert_eq!(mine.status, StatusCode::CREATED, "{b}");
        let same = e.call("POST", "/api/carts", Some("alice"), None, &[]).await;
        assert_eq!(same.body["id"], mine.body["id"], "{b}");
        assert_eq!(created(), 2.0, "{b}");
        e.cleanup().await;
    }
}

#[tokio::test]
async fn an_expired_cart_with_lines_is_abandoned_once() {
    for e in envs().await {
        let m = Recorder::new();
        let _on = m.on_this_thread();
        let b = e.backend;
        let abandoned = || m.value("comptoir_carts_abandoned_total", &[]);
        // a guest cart with a line, an empty guest cart, one emptied, one checked out, one
        // merged
        let full = e.new_cart(None).await;
        e.carts
            .add_line(full, None, "TEE-M", 1, None)
            .await
            .expect("add");
        let _empty = e.new_cart(None).await;
        let emptied = e.new_cart(None).await;
        e.carts
            .add_line(emptied, None, "SOCKS", 1, None)
            .await
            .expect("add");
        e.carts
            .remove_line(emptied, None, "SOCKS", None)
            .await
            .expect("remove");
        let bought = e.new_cart(None).await;
        e.carts
            .add_line(bought, None, "CAP", 1, None)
            .await
            .expect("add");
        e.carts.checked_out(bought).await.expect("checked out");
        // a customer's cart with lines lives 7 days: not expired yet
        let alice = e.new_cart(Some("alice")).await;
        e.carts
            .add_line(alice, Some("alice"), "CAP", 1, None)
            .await
            .expect("add");
        // a guest cart with a line merged into alice's at sign-in: gone, not abandoned
        let merged = e.new_cart(None).await;
        e.carts
            .add_line(merged, None, "SOCKS", 1, None)
            .await
            .expect("add");
        e.carts.merge(merged, "alice", None).await.expect("merge");
        let purged = e.carts.purge_expired().await.expect("purge");
        assert_eq!(purged.abandoned, 0, "{b}: nothing expired yet");
        assert_eq!(abandoned(), 0.0);

        e.clock.advance(2 * DAY_MS + 1);
        let purged = e.carts.purge_expired().await.expect("purge");
        assert_eq!(purged.abandoned, 1, "{b}: only the guest cart with a line");
        assert_eq!(abandoned(), 1.0, "{b}");
        if e.redis.is_none() {
            assert_eq!(purged.removed, 3, "{b}: the three expired guest carts");
        }
        // another instance's purge finds nothing more
        let again = e.carts.purge_expired().await.expect("purge");
        assert_eq!(again.abandoned, 0, "{b}");
        assert_eq!(abandoned(), 1.0, "{b}: counted once");

        e.clock.advance(7 * DAY_MS);
        e.carts.purge_expired().await.expect("purge");
        assert_eq!(
            abandoned(),
            2.0,
            "{b}: the customer's cart too, in its time"
        );
        e.cleanup().await;
    }
}
