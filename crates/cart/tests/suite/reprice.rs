//! Merging a guest cart at sign-in, and repricing against the catalogue.

use super::*;

on_all_backends!(
    merge_sums_quantities_caps_them_and_deletes_the_guest_cart,
    |e| {
        Box::pin(async move {
            let b = e.backend;
            let c = &e.carts;
            let (mine, _) = c.create(Some("alice"), None, None).await.expect("alice");
            c.add_line(mine.id, Some("alice"), "TEE-M", 2, None)
                .await
                .expect("add");
            c.add_line(mine.id, Some("alice"), "SOCKS", 98, None)
                .await
                .expect("add");
            let (guest, _) = c.create(None, None, None).await.expect("guest");
            c.add_line(guest.id, None, "TEE-M", 3, None)
                .await
                .expect("add");
            c.add_line(guest.id, None, "SOCKS", 5, None)
                .await
                .expect("add");
            c.add_line(guest.id, None, "CAP", 1, None)
                .await
                .expect("add");

            let merged = c.merge(guest.id, "alice", None).await.expect("merge");
            assert_eq!(merged.id, mine.id, "{b}");
            let q = |s: &str| merged.line(s).map(|l| l.quantity);
            assert_eq!(q("TEE-M"), Some(5), "{b}: summed");
            assert_eq!(q("SOCKS"), Some(MAX_QUANTITY), "{b}: capped at 99");
            assert_eq!(q("CAP"), Some(1), "{b}: added");
            assert_eq!(e.store.load(guest.id).await.expect("load"), None, "{b}");
            assert_eq!(
                c.get(mine.id, Some("alice")).await.expect("get"),
                merged,
                "{b}: saved"
            );
            assert!(matches!(
                c.merge(guest.id, "alice", None).await,
                Err(CartError::NotFound)
            ));

            // a customer without a cart gets the guest cart itself, with a customer's lifetime
            let (guest2, _) = c.create(None, None, None).await.expect("guest");
            c.add_line(guest2.id, None, "CAP", 2, None)
                .await
                .expect("add");
            let bobs = c.merge(guest2.id, "bob", None).await.expect("merge");
            assert_eq!(bobs.id, guest2.id, "{b}");
            assert_eq!(bobs.owner.as_deref(), Some("bob"));
            assert_eq!(bobs.expires_at, e.clock.ms() + 7 * DAY_MS);
            assert_eq!(
                e.store.find_by_owner("bob").await.expect("find"),
                Some(bobs.id)
            );
            assert!(
                matches!(c.get(guest2.id, None).await, Err(CartError::NotFound)),
                "{b}: now bob's only"
            );
            assert_eq!(
                c.merge(guest2.id, "bob", None).await.expect("again").id,
                bobs.id
            );
            assert!(
                matches!(
                    c.merge(guest2.id, "alice", None).await,
                    Err(CartError::NotFound)
                ),
                "{b}: bob's cart is not a guest cart"
            );

            // lines in another currency do not mix
            let (swiss, _) = c.create(None, Some("CHF"), None).await.expect("CHF cart");
            c.add_line(swiss.id, None, "SWISS", 1, None)
                .await
                .expect("add");
            assert!(
                matches!(
                    c.merge(swiss.id, "alice", None).await,
                    Err(CartError::CurrencyMismatch { .. })
                ),
                "{b}"
            );
            assert!(c.get(swiss.id, None).await.is_ok(), "{b}: nothing changed");
        })
    }
);

on_all_backends!(reprice_detects_changed_and_unavailable_lines, |e| Box::pin(
    async move {
        let b = e.backend;
        let c = &e.carts;
        let (cart, _) = c.create(None, None, None).await.expect("create");
        c.add_line(cart.id, None, "TEE-M", 2, None)
            .await
            .expect("add");
        c.add_line(cart.id, None, "SOCKS", 1, None)
            .await
            .expect("add");
        c.add_line(cart.id, None, "CAP", 1, None)
            .await
            .expect("add");
        let before = c.get(cart.id, None).await.expect("get");
        assert_eq!(
            before.subtotal().map(|m| m.minor()),
            Some(2 * 1990 + 500 + 1500)
        );

        let (same, changes) = c.reprice(&before).await.expect("reprice");
        assert!(changes.is_empty(), "{b}");
        assert_eq!(same, before);

        e.prices.set("TEE-M", 2490, "EUR", true);
        e.prices.set("SOCKS", 500, "EUR", false);
        e.prices.remove("CAP");
        let (now, changes) = c.reprice(&before).await.expect("reprice");
        assert_eq!(
            changes,
            vec![
                PriceChange::Changed {
                    sku: "TEE-M".into(),
                    old: 1990,
                    new: 2490
                },
                PriceChange::Unavailable {
                    sku: "SOCKS".into()
                },
                PriceChange::Unavailable { sku: "CAP".into() },
            ],
            "{b}"
        );
        assert_eq!(now.lines.len(), 1);
        assert_eq!(now.subtotal().map(|m| m.minor()), Some(2 * 2490));
        assert_eq!(
            c.get(cart.id, None).await.expect("get"),
            before,
            "{b}: reprice saves nothing"
        );

        let (saved, changes) = c.refresh_prices(cart.id, None).await.expect("refresh");
        assert_eq!(changes.len(), 3);
        assert_eq!(saved.lines, now.lines, "{b}");
        assert_eq!(c.get(cart.id, None).await.expect("get"), saved);
    }
));
