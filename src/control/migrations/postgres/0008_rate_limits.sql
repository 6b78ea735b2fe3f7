-- The plans' default rate limits ([control_plane.rate_limits]) the feed carries, as JSON;
-- NULL: none. A control plane started with other defaults records them and puts every
-- main account's family into the feed again, so gateways get the new rates. Keep in step
-- with the other dialect's 0008.
ALTER TABLE feed_state ADD COLUMN rate_limits TEXT;
