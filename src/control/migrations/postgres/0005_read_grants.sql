-- Read grants in the feed: accounts, API tokens and shared tokens carry the
-- feed version of their last read-relevant change, as shipping tokens do, and deletions of
-- any of them leave tombstones. Rows from before this migration sit at version 0: every
-- gateway starts from a snapshot, which carries them. Keep in step with the other
-- dialect's 0005.
ALTER TABLE accounts ADD COLUMN feed_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN feed_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shared_tokens ADD COLUMN feed_version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX accounts_feed_version ON accounts (feed_version);
CREATE INDEX api_tokens_feed_version ON api_tokens (feed_version);
CREATE INDEX shared_tokens_feed_version ON shared_tokens (feed_version);
CREATE INDEX shared_token_filters_filter ON shared_token_filters (filter_id);

-- A tombstone names its collection and the deleted row's key: the digest (hex) of a
-- shipping, API or shared token, or an account's id in decimal.
ALTER TABLE feed_tombstones RENAME COLUMN digest TO item;
ALTER TABLE feed_tombstones ADD COLUMN collection TEXT NOT NULL DEFAULT 'shipping_tokens';
