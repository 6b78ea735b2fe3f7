-- Ids are never handed out twice. PostgreSQL's identity columns never reuse an
-- id, but SQLite does, and both dialects run the same statements: the store allocates the
-- ids of deletable objects from this table, in the inserting transaction
-- (`store::next_id`). Keep in step with ../sqlite/.
CREATE TABLE id_sequences (
    name TEXT PRIMARY KEY,              -- the table whose ids it hands out
    last BIGINT NOT NULL                -- the largest id ever handed out
);
-- Start past every id the identity sequences already handed out, deleted rows included.
INSERT INTO id_sequences (name, last)
SELECT t.name, GREATEST(
    COALESCE((SELECT last_value FROM pg_sequences
              WHERE schemaname = current_schema() AND sequencename = t.name || '_id_seq'), 0),
    t.max_id)
FROM (
    SELECT 'accounts' AS name, COALESCE(MAX(id), 0) AS max_id FROM accounts
    UNION ALL SELECT 'shipping_tokens', COALESCE(MAX(id), 0) FROM shipping_tokens
    UNION ALL SELECT 'api_tokens', COALESCE(MAX(id), 0) FROM api_tokens
    UNION ALL SELECT 'shared_tokens', COALESCE(MAX(id), 0) FROM shared_tokens
    UNION ALL SELECT 'token_filters', COALESCE(MAX(id), 0) FROM token_filters
) AS t;
