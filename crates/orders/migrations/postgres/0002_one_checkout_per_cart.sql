-- I9: a cart becomes at most one order. A checkout claims its cart; the claim is released only
-- when the saga ends without an order (compensated or failed), so a declined card can be
-- retried on the same cart while a second concurrent checkout is refused by this index.
-- Checkouts recorded before this migration have no cart_id and take no part in it (the
-- invariant checker reads their plans instead).
ALTER TABLE checkouts ADD COLUMN cart_id UUID;
CREATE UNIQUE INDEX checkouts_one_per_cart ON checkouts (cart_id)
    WHERE cart_id IS NOT NULL AND state NOT IN ('compensated', 'failed');
