-- What gateways report per account and UTC day, for the detailed sub-account view's
-- `dailyUsagesList`, and when an account's settings last changed. Keep in
-- step with the other dialect's 0003.
CREATE TABLE account_daily_usage (
    account_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    day BIGINT NOT NULL,                -- epoch milliseconds of the UTC day's midnight
    bytes BIGINT NOT NULL,
    records BIGINT NOT NULL,
    PRIMARY KEY (account_id, kind, day)
);
ALTER TABLE accounts ADD COLUMN updated_at BIGINT;  -- epoch seconds; NULL: never changed since created
