-- The last characters of each API token, so the page can tell two tokens of one name
-- apart, as GitHub and GitLab show them. Four of 32 characters: the rest stay secret.
-- Tokens made before this migration have none. Keep in step with the other dialect's 0006.
ALTER TABLE api_tokens ADD COLUMN suffix TEXT;
