-- Ids are never handed out twice. SQLite gives a new row the largest rowid + 1,
-- so deleting the newest token or account made its id the next one's; a client (a
-- Terraform state) still holding the deleted id would silently adopt the new object.
-- The store allocates the ids of deletable objects from this table instead, in the
-- inserting transaction (`store::next_id`). Keep in step with ../postgres/.
CREATE TABLE id_sequences (
    name TEXT PRIMARY KEY,              -- the table whose ids it hands out
    last BIGINT NOT NULL                -- the largest id ever handed out
);
-- A row deleted before this migration ran may have been the newest; that one id can
-- still come back once (SQLite kept no record of it).
INSERT INTO id_sequences (name, last) SELECT 'accounts', COALESCE(MAX(id), 0) FROM accounts;
INSERT INTO id_sequences (name, last) SELECT 'shipping_tokens', COALESCE(MAX(id), 0) FROM shipping_tokens;
INSERT INTO id_sequences (name, last) SELECT 'api_tokens', COALESCE(MAX(id), 0) FROM api_tokens;
INSERT INTO id_sequences (name, last) SELECT 'shared_tokens', COALESCE(MAX(id), 0) FROM shared_tokens;
INSERT INTO id_sequences (name, last) SELECT 'token_filters', COALESCE(MAX(id), 0) FROM token_filters;
