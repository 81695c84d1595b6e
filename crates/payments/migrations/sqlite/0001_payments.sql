-- Payments schema, SQLite. Keep in step with ../postgres/0001_payments.sql (same version,
-- same tables and columns; only the types differ). Never edit a released migration: add one.
-- Times are milliseconds since the epoch, written by the application.

-- One payment per checkout attempt; `id` is chosen by the caller (the checkout saga) and is
-- also the provider idempotency key of the authorisation. Status only moves forward
-- (`version` guards every change: optimistic concurrency, same SQL on both engines).
CREATE TABLE payments (
    id BLOB PRIMARY KEY,
    order_ref TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_ref TEXT,
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'authorized', 'captured', 'partially_refunded', 'refunded', 'voided', 'failed')),
    captured INTEGER NOT NULL CHECK (captured >= 0),
    refunded INTEGER NOT NULL CHECK (refunded >= 0),
    last4 TEXT,
    failure_code TEXT,
    failure_message TEXT,
    customer_email TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX payments_provider_ref ON payments (provider, provider_ref);
CREATE INDEX payments_status ON payments (status, updated_at);

-- Refunds asked through the API, idempotent on (payment, key). A pending row counts against
-- the refundable amount until the provider has answered.
CREATE TABLE refunds (
    payment_id BLOB NOT NULL REFERENCES payments (id),
    idem_key TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    created_at INTEGER NOT NULL,
    completed_at INTEGER,
    PRIMARY KEY (payment_id, idem_key)
);

-- Verified provider webhooks, deduplicated by the provider's event id. `applied_at` stays NULL
-- while the payment it names is not known yet; the event is applied when it appears.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    event_type TEXT NOT NULL,
    intent_ref TEXT,
    payment_id BLOB,
    payload TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    applied_at INTEGER
);
CREATE INDEX webhook_events_intent ON webhook_events (intent_ref, applied_at);
CREATE INDEX webhook_events_payment ON webhook_events (payment_id, applied_at);

-- The built-in test provider's own books (its "PSP side"): what it authorised, captured and
-- refunded, so that an invariant checker can compare them with ours. Only the last 4 digits
-- of a (test) card are kept.
CREATE TABLE test_psp_charges (
    id TEXT PRIMARY KEY,
    auth_key TEXT NOT NULL UNIQUE,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    last4 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('requires_action', 'authorized', 'declined', 'captured', 'canceled')),
    decline_code TEXT,
    captured INTEGER NOT NULL,
    refunded INTEGER NOT NULL,
    captures INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The test provider's idempotency keys for captures, cancellations and refunds: the same key
-- gets the same answer and never a second effect.
CREATE TABLE test_psp_requests (
    idem_key TEXT PRIMARY KEY,
    charge_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    amount INTEGER NOT NULL,
    error_code TEXT,
    error_message TEXT,
    created_at INTEGER NOT NULL
);

-- Messages to other services, written in the same transaction as the change.
CREATE TABLE outbox (
    id BLOB PRIMARY KEY,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    published_at INTEGER
);
CREATE INDEX outbox_pending ON outbox (published_at, id);

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
