-- Carts: guest carts (no owner, reachable by their unguessable id) and customer carts (one per
-- owner). The lines are a JSON array: a cart is always read and written whole, with optimistic
-- concurrency on `version`. Times are milliseconds since the epoch, given by the service.
CREATE TABLE carts (
    id BLOB PRIMARY KEY,
    owner TEXT,
    currency TEXT NOT NULL,
    lines TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX carts_owner ON carts (owner);
CREATE INDEX carts_expires ON carts (expires_at);

-- Messages to other services, written in the same transaction as the change.
CREATE TABLE outbox (
    id BLOB PRIMARY KEY,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    published_at INTEGER
);
CREATE INDEX outbox_pending ON outbox (published_at, id);

-- Events this service has consumed, recorded in the transaction of their effect.
CREATE TABLE processed_events (
    consumer TEXT NOT NULL,
    event_id BLOB NOT NULL,
    processed_at INTEGER NOT NULL,
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
    locked_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
