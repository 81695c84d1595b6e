-- Events of the catalogue (product.changed), written in the transaction of the change and
-- published by the outbox relay.
CREATE TABLE outbox (
    id BLOB PRIMARY KEY,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    published_at INTEGER
);
CREATE INDEX outbox_pending ON outbox (published_at, id);
