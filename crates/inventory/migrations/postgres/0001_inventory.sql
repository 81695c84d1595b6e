-- Inventory: locations, stock counters per (location, SKU), the movement ledger, holds.
CREATE TABLE locations (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('head_office', 'store', 'warehouse')),
    ships BOOLEAN NOT NULL DEFAULT FALSE,
    click_and_collect BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

CREATE TABLE stock (
    location TEXT NOT NULL REFERENCES locations (code),
    sku TEXT NOT NULL,
    on_hand BIGINT NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
    low_threshold BIGINT NOT NULL DEFAULT 0 CHECK (low_threshold >= 0),
    low_alerted BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (location, sku),
    CHECK (held <= on_hand)
);
CREATE INDEX stock_by_sku ON stock (sku);

CREATE TABLE movements (
    id UUID PRIMARY KEY,
    location TEXT NOT NULL,
    sku TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('receipt', 'sale', 'return', 'hold', 'release',
        'adjustment', 'transfer_out', 'transfer_in')),
    on_hand_delta BIGINT NOT NULL,
    held_delta BIGINT NOT NULL,
    reference TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX movements_by_stock ON movements (location, sku, created_at);

CREATE TABLE holds (
    id UUID PRIMARY KEY,
    location TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'committed', 'released', 'expired', 'returned')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX holds_active ON holds (state, expires_at);

CREATE TABLE hold_lines (
    hold_id UUID NOT NULL REFERENCES holds (id),
    sku TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (hold_id, sku)
);
CREATE INDEX hold_lines_by_sku ON hold_lines (sku);

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
