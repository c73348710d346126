-- A notification is one message to one recipient, rendered once at Send time so that a
-- template changed by a later release never alters what was already accepted.
CREATE TABLE notification (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key text NOT NULL UNIQUE,
    -- Exactly one of user_id and email names the recipient.
    user_id         uuid,
    email           text,
    category        text NOT NULL CHECK (category IN ('security', 'account', 'billing', 'usage', 'product')),
    template        text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}',
    title           text NOT NULL,
    body_text       text NOT NULL,
    body_html       text NOT NULL,
    -- The channels the sender asked for, in the order given.
    channels        text[] NOT NULL,
    -- Whether the notification shows in the recipient's in-app inbox.
    in_inbox        boolean NOT NULL DEFAULT false,
    read_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((user_id IS NULL) <> (email IS NULL))
);

-- The inbox lists a user's notifications newest first; the partial index keeps the
-- unread count cheap.
CREATE INDEX notification_inbox_idx ON notification (user_id, created_at DESC, id DESC) WHERE in_inbox;
CREATE INDEX notification_unread_idx ON notification (user_id) WHERE in_inbox AND read_at IS NULL;

-- An outbox row is one notification's progress on one channel. Email rows are the work
-- queue: workers claim them with FOR UPDATE SKIP LOCKED and hold them with a lease, so a
-- worker that dies mid-send releases its rows when the lease expires.
CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id uuid NOT NULL REFERENCES notification (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('email', 'in_app')),
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'delivered', 'bounced', 'dropped', 'failed', 'suppressed')),
    status_reason   text NOT NULL DEFAULT '',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Set while a worker holds the row; lease_token fences a worker whose lease ran out
    -- from overwriting the outcome of the worker that took the row over.
    lease_until     timestamptz,
    lease_token     uuid,
    last_error      text NOT NULL DEFAULT '',
    -- The address the email went to, resolved at delivery time for user recipients.
    address         text NOT NULL DEFAULT '',
    provider_id     text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (notification_id, channel)
);

CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';

-- A preference row exists only once a user changed a default (every entry defaults to on).
CREATE TABLE preference (
    user_id    uuid NOT NULL,
    category   text NOT NULL CHECK (category IN ('security', 'account', 'billing', 'usage', 'product')),
    channel    text NOT NULL CHECK (channel IN ('email', 'in_app')),
    enabled    boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, category, channel)
);

-- A suppression stops non-security email to an address: for every category after a hard
-- bounce or spam report (category ''), or for one category after an unsubscribe by a
-- recipient who is not a user.
CREATE TABLE suppression (
    email      text NOT NULL,
    category   text NOT NULL DEFAULT '',
    reason     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email, category)
);

-- SendGrid retries webhook deliveries; remembering each sg_event_id makes them harmless.
CREATE TABLE sendgrid_event (
    sg_event_id text PRIMARY KEY,
    event       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
