-- Email delivery moves onto River: a job per email in the schema notification_river
-- (jobs.go) replaces the outbox's claims and leases. What stays here is each
-- notification's progress on each channel, which the inbox shows and SendGrid's events
-- update.
--
-- The outbox table itself is left for the upgrade that runs right after River's schema
-- is migrated (upgrade.go): it copies every row into delivery, turns each email still
-- unsent into a job, and drops the table, in one transaction. SQL alone cannot do that
-- part, because a job is inserted through River's client, which computes what River
-- needs (its uniqueness key, its encoded arguments) the way the running River version
-- expects.
CREATE TABLE delivery (
    notification_id uuid NOT NULL REFERENCES notification (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('email', 'in_app')),
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'delivered', 'bounced', 'dropped', 'failed', 'suppressed')),
    status_reason   text NOT NULL DEFAULT '',
    -- Attempts made to send the email. An attempt records its number when it starts,
    -- and records its outcome only while the number is still its own: an attempt that
    -- outlived its time, and that River took for lost and ran again, cannot overwrite
    -- the outcome of the attempt that took over.
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    -- The address the email went to, resolved at delivery time for user recipients.
    address         text NOT NULL DEFAULT '',
    provider_id     text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, channel)
);
