-- tollgate control plane schema (SQLite). Keep in step with ../postgres/0001_init.sql:
-- the same tables, columns and meanings; only the id and type spellings differ.
-- Booleans are INTEGER 0/1 and times are epoch integers in both dialects, so one set of
-- queries (sqlx Any, $N placeholders) serves both.

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL,                 -- logs | metrics | tracing | security
    plan TEXT NOT NULL,                 -- community | pro | enterprise (main accounts; tied ones follow theirs)
    trial_ends_at BIGINT,               -- epoch seconds; a trial has what pro has until then
    owner_id BIGINT REFERENCES accounts (id),  -- the main account of a sub/metrics/tracing/security account
    email TEXT,
    retention_days BIGINT,
    max_daily_gb DOUBLE PRECISION,
    searchable BIGINT NOT NULL DEFAULT 0,
    accessible BIGINT NOT NULL DEFAULT 1,
    settings TEXT NOT NULL DEFAULT '{}',      -- the other Logz.io sub-account fields, as JSON
    created_at BIGINT NOT NULL,
    revision BIGINT NOT NULL DEFAULT 0        -- bumped by every change: serialises rule checks per account
);
CREATE INDEX accounts_owner ON accounts (owner_id);

CREATE TABLE shipping_tokens (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL,                 -- logs | metrics | traces
    name TEXT NOT NULL,
    token TEXT NOT NULL,                -- shown to the account's admins, as Logz.io does; never in the feed
    digest TEXT NOT NULL UNIQUE,        -- SHA-256 hex: all a gateway ever sees
    enabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    last_used BIGINT,
    feed_version BIGINT NOT NULL        -- the feed version of its last change
);
CREATE INDEX shipping_tokens_account ON shipping_tokens (account_id);
CREATE INDEX shipping_tokens_feed_version ON shipping_tokens (feed_version);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,        -- the secret is shown once, at creation
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE shared_tokens (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    token TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    filters_operator TEXT NOT NULL,     -- AND | OR
    expires_at_ms BIGINT,               -- null only for legacy tokens
    last_used_ms BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX shared_tokens_account ON shared_tokens (account_id);

CREATE TABLE token_filters (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    description TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX token_filters_account ON token_filters (account_id);

CREATE TABLE shared_token_filters (
    shared_token_id BIGINT NOT NULL REFERENCES shared_tokens (id),
    filter_id BIGINT NOT NULL REFERENCES token_filters (id),
    PRIMARY KEY (shared_token_id, filter_id)
);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL,
    actor TEXT NOT NULL,                -- "admin" or "api-token:<id>"
    action TEXT NOT NULL,               -- e.g. "log-shipping-token.disable"
    target TEXT NOT NULL,               -- e.g. "log-shipping-token:17"
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_events_account ON audit_events (account_id, id);

CREATE TABLE account_usage (
    account_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    records BIGINT NOT NULL,
    PRIMARY KEY (account_id, kind)
);

-- The change feed: one row holds the current version and the oldest `since` the kept
-- tombstones can still answer; older gateways get 410 and refetch the snapshot.
CREATE TABLE feed_state (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL,
    oldest BIGINT NOT NULL
);
INSERT INTO feed_state (id, version, oldest) VALUES (1, 0, 0);

CREATE TABLE feed_tombstones (
    feed_version BIGINT NOT NULL,
    digest TEXT NOT NULL
);
CREATE INDEX feed_tombstones_version ON feed_tombstones (feed_version);
