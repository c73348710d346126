-- Devices that signed in to an account before (OWASP's device cookies): a client that
-- presents one is throttled on its own, so strangers' wrong guesses do not lock the
-- owner out. The token is stored only as its SHA-256 hash.
CREATE TABLE trusted_devices (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    bytea       NOT NULL,
    create_time   timestamptz NOT NULL DEFAULT now(),
    last_use_time timestamptz NOT NULL DEFAULT now(),
    expire_time   timestamptz NOT NULL
);

CREATE UNIQUE INDEX trusted_devices_token_hash_key ON trusted_devices (token_hash);
CREATE INDEX trusted_devices_user_id_idx ON trusted_devices (user_id);

-- The session that created an API key, so that a password change can delete the keys
-- other sessions made and keep the caller's own. NULL for keys made before this column.
ALTER TABLE api_keys ADD COLUMN session_id uuid;

-- A spent refresh token's successor is derived from it and this seed, so that a retry
-- within the grace window is answered with the same successor: one chain per session.
ALTER TABLE refresh_tokens ADD COLUMN successor_seed bytea;
