-- Account users, their one-time setup links and their login sessions. Keep in
-- step with the other dialect's 0004.
CREATE TABLE users (
    id BIGINT PRIMARY KEY,              -- from id_sequences: never reused
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    email TEXT NOT NULL UNIQUE,         -- lower-cased; users log in by email, so one user per email
    full_name TEXT NOT NULL,
    role TEXT NOT NULL,                 -- admin | user | read-only
    active BIGINT NOT NULL,             -- 0: suspended
    password_hash TEXT,                 -- argon2id PHC string; NULL until the setup link is used
    created_at BIGINT NOT NULL,         -- epoch seconds
    updated_at BIGINT NOT NULL
);
CREATE INDEX users_account ON users (account_id);

-- A link is the digest of a secret handed to the user once; using it deletes it.
CREATE TABLE user_setup_links (
    digest TEXT PRIMARY KEY,            -- SHA-256 hex of the link's secret
    user_id BIGINT NOT NULL REFERENCES users (id),
    expires_at BIGINT NOT NULL          -- epoch seconds
);
CREATE INDEX user_setup_links_user ON user_setup_links (user_id);

-- A session is the digest of the cookie's secret. Suspending, deleting or changing the
-- role of a user deletes its sessions in the same transaction.
CREATE TABLE user_sessions (
    digest TEXT PRIMARY KEY,            -- SHA-256 hex of the cookie's secret
    user_id BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,         -- epoch seconds: absolute expiry counts from here
    last_seen_at BIGINT NOT NULL        -- idle expiry counts from here
);
CREATE INDEX user_sessions_user ON user_sessions (user_id);

INSERT INTO id_sequences (name, last) VALUES ('users', 0);

-- When an API token last authenticated a call (epoch seconds), for the page's list.
ALTER TABLE api_tokens ADD COLUMN last_used BIGINT;
