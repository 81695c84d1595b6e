//! The store: saved, loaded, deleted; compare-and-set on the version; expiry; one cart per
//! customer. On every backend, Redis included.

use super::*;

on_all_backends!(a_cart_is_saved_loaded_and_deleted, |e| Box::pin(
    async move {
        let b = e.backend;
        let mut c = cart_at(e.clock.ms(), Some("alice"));
        assert_eq!(e.store.load(c.id).await.expect("load"), None, "{b}");
        e.store.save(&c, Commit::default()).await.expect("save v1");
        assert_eq!(
            e.store.load(c.id).await.expect("load"),
            Some(c.clone()),
            "{b}"
        );
        c.version = 2;
        c.lines[0].quantity = 3;
        e.store.save(&c, Commit::default()).await.expect("save v2");
        let back = e.store.load(c.id).await.expect("load").expect("present");
        assert_eq!((back.version, back.lines[0].quantity), (2, 3), "{b}");
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            Some(c.id),
            "{b}"
        );
        e.store.delete(c.id).await.expect("delete");
        assert_eq!(e.store.load(c.id).await.expect("load"), None, "{b}");
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            None,
            "{b}"
        );
        e.store.delete(c.id).await.expect("deleting twice is fine");
    }
));

on_all_backends!(saves_are_compare_and_set_on_the_version, |e| Box::pin(
    async move {
        let b = e.backend;
        let mut c = cart_at(e.clock.ms(), None);
        let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict));
        c.version = 2;
        assert!(
            conflict(e.store.save(&c, Commit::default()).await),
            "{b}: v2 of a missing cart"
        );
        c.version = 1;
        e.store.save(&c, Commit::default()).await.expect("v1");
        assert!(
            conflict(e.store.save(&c, Commit::default()).await),
            "{b}: v1 twice"
        );
        c.version = 3;
        assert!(
            conflict(e.store.save(&c, Commit::default()).await),
            "{b}: skipping v2"
        );
        c.version = 2;
        e.store.save(&c, Commit::default()).await.expect("v2");
        c.lines.clear();
        assert!(
            conflict(e.store.save(&c, Commit::default()).await),
            "{b}: a stale v2"
        );
        let back = e.store.load(c.id).await.expect("load").expect("present");
        assert_eq!(back.lines.len(), 1, "{b}: the stale write changed nothing");

        // a second cart for an owner who has one is a conflict too
        let first = cart_at(e.clock.ms(), Some("dora"));
        e.store
            .save(&first, Commit::default())
            .await
            .expect("first");
        assert!(
            conflict(
                e.store
                    .save(&cart_at(e.clock.ms(), Some("dora")), Commit::default())
                    .await
            ),
            "{b}: one cart per owner"
        );

        // concurrent changes through the service all land, none is lost
        let (guest, _) = e.carts.create(None, None, None).await.expect("create");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let carts = e.carts.clone();
                tokio::spawn(async move { carts.add_line(guest.id, None, "SOCKS", 1, None).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("join").expect("every add lands");
        }
        let after = e.carts.get(guest.id, None).await.expect("get");
        assert_eq!(after.line("SOCKS").map(|l| l.quantity), Some(8), "{b}");
        assert_eq!(after.version, 9, "{b}");
    }
));

on_all_backends!(carts_expire_and_each_change_pushes_the_expiry_back, |e| {
    Box::pin(async move {
        let b = e.backend;
        let t0 = e.clock.ms();
        let (guest, created) = e.carts.create(None, None, None).await.expect("guest");
        assert!(created);
        assert_eq!(guest.expires_at, t0 + 2 * DAY_MS, "{b}: guests keep 2 days");
        let (mine, _) = e
            .carts
            .create(Some("alice"), None, None)
            .await
            .expect("customer");
        assert_eq!(
            mine.expires_at,
            t0 + 7 * DAY_MS,
            "{b}: customers keep 7 days"
        );
        if let Some(r) = &e.redis {
            for (key, ttl) in [
                (r.cart_key(guest.id), 2 * DAY_MS),
                (r.cart_key(mine.id), 7 * DAY_MS),
                (r.owner_key("alice"), 7 * DAY_MS),
            ] {
                let pttl = e.pttl(&key).await;
                assert!(pttl > ttl - 60_000 && pttl <= ttl, "{key}: PTTL {pttl}");
            }
        }

        // a day later, a change gives the guest cart two more days
        e.clock.advance(DAY_MS);
        let changed = e
            .carts
            .add_line(guest.id, None, "TEE-M", 1, None)
            .await
            .expect("add");
        assert_eq!(changed.expires_at, e.clock.ms() + 2 * DAY_MS, "{b}");
        assert_eq!(changed.updated_at, e.clock.ms(), "{b}");
        if let Some(r) = &e.redis {
            let pttl = e.pttl(&r.cart_key(guest.id)).await;
            assert!(pttl > 2 * DAY_MS - 60_000, "{b}: TTL refreshed, {pttl}");
        }

        // two days and a bit later: the guest cart is gone, the customer's is still there
        e.clock.advance(2 * DAY_MS + 1);
        assert!(matches!(
            e.carts.get(guest.id, None).await,
            Err(CartError::NotFound)
        ));
        assert_eq!(e.store.load(guest.id).await.expect("load"), None, "{b}");
        assert!(matches!(
            e.carts.add_line(guest.id, None, "SOCKS", 1, None).await,
            Err(CartError::NotFound)
        ));
        assert_eq!(
            e.carts.get(mine.id, Some("alice")).await.expect("alive").id,
            mine.id
        );
        let purged = e.carts.purge_expired().await.expect("purge");
        if e.redis.is_some() {
            assert_eq!(purged.removed, 0, "Redis expires carts itself");
        } else {
            assert_eq!(purged.removed, 1, "{b}: the guest cart is deleted");
        }
        assert_eq!(purged.abandoned, 1, "{b}: it had a line");

        // past the customer's 7 days: no cart, and a new one can be made
        e.clock.advance(7 * DAY_MS);
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            None,
            "{b}"
        );
        let (fresh, created) = e
            .carts
            .create(Some("alice"), None, None)
            .await
            .expect("again");
        assert!(created, "{b}: the expired cart does not block a new one");
        assert_ne!(fresh.id, mine.id);
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            Some(fresh.id),
            "{b}"
        );
    })
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_removes_an_expired_cart_by_itself() {
    let Some(url) = testkit::redis_url() else {
        return;
    };
    let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
    let prefix = format!("comptoir-test:{}:", Uuid::new_v4().simple());
    let store = RedisCartStore::connect(&url, &prefix, clock.clone())
        .await
        .expect("redis");
    let mut c = cart_at(T0, Some("erin"));
    c.expires_at = T0 + 300;
    store.save(&c, Commit::default()).await.expect("save");
    let mut conn = store.connection();
    for key in [store.cart_key(c.id), store.owner_key("erin")] {
        testkit::eventually("the TTL to remove the key", Duration::from_secs(5), || {
            let mut conn = conn.clone();
            let key = key.clone();
            async move {
                let n: i64 = redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("exists");
                (n == 0).then_some(())
            }
        })
        .await;
    }
    let n: i64 = redis::cmd("EXISTS")
        .arg(store.cart_key(c.id))
        .query_async(&mut conn)
        .await
        .expect("exists");
    assert_eq!(n, 0);
}

on_all_backends!(a_customer_has_one_cart_found_by_owner, |e| Box::pin(
    async move {
        let b = e.backend;
        let (a1, created) = e
            .carts
            .create(Some("alice"), None, None)
            .await
            .expect("create");
        assert!(created);
        assert_eq!(a1.owner.as_deref(), Some("alice"));
        let (a2, created) = e
            .carts
            .create(Some("alice"), None, None)
            .await
            .expect("again");
        assert!(!created, "{b}: the existing cart is returned");
        assert_eq!(a1.id, a2.id);
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            Some(a1.id)
        );
        assert_eq!(e.store.find_by_owner("bob").await.expect("find"), None);

        // concurrent first visits of one customer still make one cart
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let carts = e.carts.clone();
                tokio::spawn(async move { carts.create(Some("carol"), None, None).await })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.expect("join").expect("create").0.id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{b}: {ids:?}");

        // checkout deletes the cart and frees the owner
        e.carts.checked_out(a1.id).await.expect("checked out");
        assert_eq!(e.store.load(a1.id).await.expect("load"), None, "{b}");
        assert_eq!(
            e.store.find_by_owner("alice").await.expect("find"),
            None,
            "{b}"
        );
        let (a3, created) = e
            .carts
            .create(Some("alice"), None, None)
            .await
            .expect("new");
        assert!(created && a3.id != a1.id, "{b}");
    }
));
