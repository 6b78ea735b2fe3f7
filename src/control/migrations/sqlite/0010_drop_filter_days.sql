-- What each drop filter dropped today, summed over the gateways' usage reports, for the
-- page's Drop filters tab. Only the current UTC day is kept: a report's rows for the
-- filter's earlier days go when it lands. Rows go with their filter. Keep in step with the
-- other dialect's 0010.
CREATE TABLE drop_filter_days (
    kind TEXT NOT NULL,                 -- 'logs' (log_drop_filters) | 'metrics' (metrics_drop_filters)
    filter_id BIGINT NOT NULL,
    day BIGINT NOT NULL,                -- epoch milliseconds of the UTC day's midnight
    records BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (kind, filter_id, day)
);
