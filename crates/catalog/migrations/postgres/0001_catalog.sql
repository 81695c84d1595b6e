-- Catalogue schema, PostgreSQL. Keep in step with ../sqlite/0001_catalog.sql (same version,
-- same tables and columns; only the types differ). Never edit a released migration: add one.

CREATE TABLE brands (
    id UUID PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE categories (
    id UUID PRIMARY KEY,
    parent_id UUID REFERENCES categories (id),
    slug TEXT NOT NULL UNIQUE,
    name_fr TEXT NOT NULL,
    name_en TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX categories_parent ON categories (parent_id);

CREATE TABLE products (
    id UUID PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'archived')),
    name_fr TEXT NOT NULL,
    name_en TEXT NOT NULL,
    description_fr TEXT NOT NULL,
    description_en TEXT NOT NULL,
    brand_id UUID REFERENCES brands (id),
    category_id UUID REFERENCES categories (id),
    attributes JSONB NOT NULL,
    currency TEXT NOT NULL,
    min_price_minor BIGINT NOT NULL CHECK (min_price_minor >= 0),
    max_price_minor BIGINT NOT NULL CHECK (max_price_minor >= min_price_minor),
    search_text TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ
);
CREATE INDEX products_status_price ON products (status, min_price_minor, id);
CREATE INDEX products_status_name_fr ON products (status, name_fr, id);
CREATE INDEX products_status_name_en ON products (status, name_en, id);
CREATE INDEX products_category ON products (category_id);
CREATE INDEX products_brand ON products (brand_id);

CREATE TABLE variants (
    id UUID PRIMARY KEY,
    product_id UUID NOT NULL REFERENCES products (id),
    sku TEXT NOT NULL UNIQUE,
    barcode TEXT UNIQUE,
    size TEXT,
    colour TEXT,
    price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
    vat_rate_bp INTEGER NOT NULL CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    position INTEGER NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX variants_product ON variants (product_id, position);

CREATE TABLE product_images (
    id UUID PRIMARY KEY,
    product_id UUID NOT NULL REFERENCES products (id),
    position INTEGER NOT NULL,
    alt_fr TEXT NOT NULL,
    alt_en TEXT NOT NULL,
    content_type TEXT,
    data BYTEA,
    url TEXT
);
CREATE INDEX product_images_product ON product_images (product_id, position);

-- Back-office tokens until the identity service exists: only their SHA-256 is kept.
CREATE TABLE back_office_tokens (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

-- Idempotency-Key records (platform::idempotency); times in Unix milliseconds.
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
