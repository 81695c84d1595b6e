-- Payments schema, PostgreSQL. Keep in step with ../sqlite/0001_payments.sql (same version,
-- same tables and columns; only the types differ). Never edit a released migration: add one.
-- Times are milliseconds since the epoch, written by the application.

-- One payment per checkout attempt; `id` is chosen by the caller (the checkout saga) and is
-- also the provider idempotency key of the authorisation. Status only moves forward
-- (`version` guards every change: optimistic concurrency, same SQL on both engines).
CREATE TABLE payments (
    id UUID PRIMARY KEY,
    order_ref TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_ref TEXT,
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'authorized', 'captured', 'partially_refunded', 'refunded', 'voided', 'failed')),
    captured BIGINT NOT NULL CHECK (captured >= 0),
    refunded BIGINT NOT NULL CHECK (refunded >= 0),
    last4 TEXT,
    failure_code TEXT,
    failure_message TEXT,
    customer_email TEXT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX payments_provider_ref ON payments (provider, provider_ref);
CREATE INDEX payments_status ON payments (status, updated_at);

-- Refunds asked through the API, idempotent on (payment, key). A pending row counts against
-- the refundable amount until the provider has answered.
CREATE TABLE refunds (
    payment_id UUID NOT NULL REFERENCES payments (id),
    idem_key TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    created_at BIGINT NOT NULL,
    completed_at BIGINT,
    PRIMARY KEY (payment_id, idem_key)
);

-- Verified provider webhooks, deduplicated by the provider's event id. `applied_at` stays NULL
-- while the payment it names is not known yet; the event is applied when it appears.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    event_type TEXT NOT NULL,
    intent_ref TEXT,
    payment_id UUID,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    applied_at BIGINT
);
CREATE INDEX webhook_events_intent ON webhook_events (intent_ref, applied_at);
CREATE INDEX webhook_events_payment ON webhook_events (payment_id, applied_at);

-- The built-in test provider's own books (its "PSP side"): what it authorised, captured and
-- refunded, so that an invariant checker can compare them with ours. Only the last 4 digits
-- of a (test) card are kept.
CREATE TABLE test_psp_charges (
    id TEXT PRIMARY KEY,
    auth_key TEXT NOT NULL UNIQUE,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    last4 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('requires_action', 'authorized', 'declined', 'captured', 'canceled')),
    decline_code TEXT,
    captured BIGINT NOT NULL,
    refunded BIGINT NOT NULL,
    captures BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The test provider's idempotency keys for captures, cancellations and refunds: the same key
-- gets the same answer and never a second effect.
CREATE TABLE test_psp_requests (
    idem_key TEXT PRIMARY KEY,
    charge_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    amount BIGINT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    created_at BIGINT NOT NULL
);

-- Messages to other services, written in the same transaction as the change.
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
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
