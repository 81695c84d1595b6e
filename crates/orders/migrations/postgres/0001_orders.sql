-- Orders, the checkout saga that creates them, and the mail sink of the notifications consumer.
CREATE TABLE orders (
    id UUID PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    customer TEXT,
    email TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'awaiting_payment', 'paid', 'fulfilled',
        'completed', 'cancelled', 'partially_refunded', 'refunded')),
    fulfilment TEXT NOT NULL CHECK (fulfilment IN ('delivery', 'collect')),
    location TEXT NOT NULL,
    address TEXT,
    currency TEXT NOT NULL,
    subtotal BIGINT NOT NULL CHECK (subtotal >= 0),
    shipping BIGINT NOT NULL CHECK (shipping >= 0),
    total BIGINT NOT NULL CHECK (total >= 0),
    refunded BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= total),
    lines TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer, created_at);
CREATE INDEX orders_by_location ON orders (location, status, created_at);

CREATE TABLE order_history (
    order_id UUID NOT NULL REFERENCES orders (id),
    seq INTEGER NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    actor TEXT NOT NULL,
    note TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (order_id, seq)
);

CREATE TABLE checkouts (
    id UUID PRIMARY KEY,
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('started', 'stock_held', 'awaiting_authorization',
        'payment_authorized', 'order_confirmed', 'stock_committed', 'completed',
        'compensating', 'compensated', 'failed')),
    plan TEXT NOT NULL,
    error_code TEXT,
    error_detail TEXT,
    response_status INTEGER,
    response_body TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (scope, idem_key)
);
CREATE INDEX checkouts_open ON checkouts (state, locked_until);

CREATE TABLE saga_steps (
    saga_id UUID NOT NULL REFERENCES checkouts (id),
    seq INTEGER NOT NULL,
    step TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (saga_id, seq)
);

CREATE TABLE notifications (
    id UUID PRIMARY KEY,
    event_id UUID NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX notifications_by_event ON notifications (event_id);

CREATE TABLE outbox (
    id UUID PRIMARY KEY,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX outbox_pending ON outbox (published_at, id);

CREATE TABLE processed_events (
    consumer TEXT NOT NULL,
    event_id UUID NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_progress', 'done')),
    response_status INTEGER,
    response_body TEXT,
    response_content_type TEXT,
    response_location TEXT,
    locked_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
