-- Accounts. Roles are not stored: every account is a user, and the admin role follows
-- from BACKPLANE_ADMIN_EMAILS and a verified email, so that editing the setting is the
-- only way to grant or withdraw it.
CREATE TABLE users (
    id             uuid        PRIMARY KEY,
    email          text        NOT NULL,
    email_verified boolean     NOT NULL DEFAULT false,
    display_name   text        NOT NULL,
    password_hash  text        NOT NULL,
    create_time    timestamptz NOT NULL DEFAULT now(),
    update_time    timestamptz NOT NULL DEFAULT now(),
    disable_time   timestamptz,
    CONSTRAINT users_email_lower CHECK (email = lower(email))
);

CREATE UNIQUE INDEX users_email_key ON users (email);

-- One signed-in device or browser. PostgreSQL is the record; Redis mirrors whether the
-- session is live for the edge.
CREATE TABLE sessions (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_agent    text        NOT NULL DEFAULT '',
    ip_address    text        NOT NULL DEFAULT '',
    create_time   timestamptz NOT NULL DEFAULT now(),
    last_use_time timestamptz NOT NULL DEFAULT now(),
    expire_time   timestamptz NOT NULL,
    end_time      timestamptz,
    end_reason    text
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id, create_time DESC);

-- Refresh tokens, stored as SHA-256 hashes of 256-bit random values. Every token of a
-- session is one family: presenting a spent one ends the session.
CREATE TABLE refresh_tokens (
    id          uuid        PRIMARY KEY,
    session_id  uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash  bytea       NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    expire_time timestamptz NOT NULL,
    spent_time  timestamptz
);

CREATE UNIQUE INDEX refresh_tokens_token_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

-- Single-use, expiring tokens sent by email, stored as SHA-256 hashes.
CREATE TABLE email_tokens (
    id          uuid        PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        text        NOT NULL CHECK (kind IN ('verify_email', 'reset_password')),
    token_hash  bytea       NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    expire_time timestamptz NOT NULL,
    use_time    timestamptz
);

CREATE UNIQUE INDEX email_tokens_token_hash_key ON email_tokens (token_hash);
CREATE INDEX email_tokens_user_id_idx ON email_tokens (user_id, kind);

-- API keys. The secret is stored only as its SHA-256 hash; prefix lets owners tell keys
-- apart.
CREATE TABLE api_keys (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    display_name  text        NOT NULL,
    prefix        text        NOT NULL,
    secret_hash   bytea       NOT NULL,
    scopes        text[]      NOT NULL,
    create_time   timestamptz NOT NULL DEFAULT now(),
    expire_time   timestamptz,
    last_use_time timestamptz
);

CREATE UNIQUE INDEX api_keys_secret_hash_key ON api_keys (secret_hash);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id, create_time DESC);

-- Ed25519 keys that sign access tokens. A key is published in the JWKS from creation,
-- signs from activate_time until retire_time, and stays published until expire_time, so
-- every verifier knows it before the first token it signs and until the last expires.
-- The private key is AES-GCM sealed when BACKPLANE_KEY_ENCRYPTION_KEY is set.
CREATE TABLE signing_keys (
    id            text        PRIMARY KEY,
    private_key   bytea       NOT NULL,
    sealed        boolean     NOT NULL,
    create_time   timestamptz NOT NULL DEFAULT now(),
    activate_time timestamptz NOT NULL,
    retire_time   timestamptz NOT NULL,
    expire_time   timestamptz NOT NULL,
    CONSTRAINT signing_keys_times CHECK (activate_time < retire_time AND retire_time < expire_time)
);
