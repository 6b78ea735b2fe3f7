-- Drop filters (DESIGN §9): an account's log filters (Logz.io's /v1/drop-filters) and a
-- metrics account's metrics filters (/v1/metrics-management/drop-filters). Gateways
-- replicate both through the feed, so each row carries the feed version of its last
-- change and a deleted one leaves a tombstone (collections 'log_drop_filters' and
-- 'metrics_drop_filters', the item being the filter's id in decimal). Ids come from
-- id_sequences, as for every deletable object. Keep in step with the other dialect's 0009.
CREATE TABLE log_drop_filters (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    active BIGINT NOT NULL,
    log_type TEXT,                      -- NULL: every log type
    description TEXT,
    field_conditions TEXT NOT NULL,     -- JSON: [{"fieldName": ..., "value": string or number}]
    threshold_gb DOUBLE PRECISION NOT NULL,  -- 0: no threshold
    created_at BIGINT NOT NULL,         -- epoch seconds
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    feed_version BIGINT NOT NULL
);
CREATE INDEX log_drop_filters_account ON log_drop_filters (account_id);
CREATE INDEX log_drop_filters_feed_version ON log_drop_filters (feed_version);

CREATE TABLE metrics_drop_filters (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),  -- a metrics account
    name TEXT,
    active BIGINT NOT NULL,
    drop_policy TEXT NOT NULL,          -- DROP_BEFORE_PROCESSING | DROP_BEFORE_STORING
    filter TEXT NOT NULL,               -- JSON: {"operator": "AND", "expression": [...]}
    created_at BIGINT NOT NULL,         -- epoch seconds
    created_by TEXT NOT NULL,
    modified_at BIGINT NOT NULL,
    modified_by TEXT NOT NULL,
    feed_version BIGINT NOT NULL
);
CREATE INDEX metrics_drop_filters_account ON metrics_drop_filters (account_id);
CREATE INDEX metrics_drop_filters_feed_version ON metrics_drop_filters (feed_version);

INSERT INTO id_sequences (name, last) VALUES ('log_drop_filters', 0);
INSERT INTO id_sequences (name, last) VALUES ('metrics_drop_filters', 0);
