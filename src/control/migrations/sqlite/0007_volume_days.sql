-- What the fleet reported about an account's UTC day beyond its bytes: when a gateway
-- first held it capped, and when its volume first crossed its soft limit (one audit event
-- a day). Keep in step with the other dialect's 0007.
CREATE TABLE account_volume_days (
    account_id BIGINT NOT NULL,
    day BIGINT NOT NULL,                -- epoch milliseconds of the UTC day's midnight
    capped_at BIGINT,                   -- epoch milliseconds; NULL: not capped that day
    soft_limit_at BIGINT,               -- epoch milliseconds; NULL: not crossed that day
    PRIMARY KEY (account_id, day)
);
