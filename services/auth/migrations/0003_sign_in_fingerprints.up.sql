-- The clients an account signed in from, each as a fingerprint of its user-agent family
-- and network (fingerprint.go), so that the "new sign-in" email goes out only for a
-- client the account has not used: a sign-in email on every login trains people to
-- ignore them. Only a hash is stored, not the address or the user agent.
CREATE TABLE sign_in_fingerprints (
    user_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint    bytea       NOT NULL,
    last_seen_time timestamptz NOT NULL,
    PRIMARY KEY (user_id, fingerprint)
);
