-- Back to the outbox of 0001, which the upgrade after 0002 dropped: emails still pending
-- are pending there again, due at once. Their River jobs stay in notification_river;
-- a release before River never reads them.
CREATE TABLE IF NOT EXISTS outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id uuid NOT NULL REFERENCES notification (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('email', 'in_app')),
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'delivered', 'bounced', 'dropped', 'failed', 'suppressed')),
    status_reason   text NOT NULL DEFAULT '',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    lease_token     uuid,
    last_error      text NOT NULL DEFAULT '',
    address         text NOT NULL DEFAULT '',
    provider_id     text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (notification_id, channel)
);
CREATE INDEX IF NOT EXISTS outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';

INSERT INTO outbox (notification_id, channel, status, status_reason, attempts, last_error, address, provider_id, updated_at)
SELECT notification_id, channel, status, status_reason, attempts, last_error, address, provider_id, updated_at
FROM delivery
ON CONFLICT (notification_id, channel) DO NOTHING;

DROP TABLE delivery;
