-- The Stripe customer of each user who ever needed one: one per user, created on first
-- need (a checkout, the portal), with the user's id in its metadata.
CREATE TABLE customers (
    user_id            uuid        PRIMARY KEY,
    stripe_customer_id text        NOT NULL UNIQUE,
    create_time        timestamptz NOT NULL DEFAULT now()
);

-- Orders every read of Stripe this service makes, across replicas: a read takes a
-- number before it asks Stripe, and a subscription row is written only by a read newer
-- than the one it came from, so a slow read never overwrites a later one.
CREATE SEQUENCE stripe_reads;

-- Each Stripe subscription, as Stripe last reported it. Stripe is the record; this copy
-- answers entitlement questions without calling Stripe.
CREATE TABLE subscriptions (
    id                     uuid        PRIMARY KEY,
    user_id                uuid        NOT NULL,
    stripe_subscription_id text        NOT NULL UNIQUE,
    stripe_customer_id     text        NOT NULL,
    -- The subscription item that carries the plan's price; a change of plan swaps its
    -- price, so Stripe prorates on the same item.
    stripe_item_id         text        NOT NULL,
    stripe_price_id        text        NOT NULL,
    -- The catalogue plan whose price this is; '' when the catalogue no longer sells it.
    plan_id                text        NOT NULL,
    -- Stripe's status, as Stripe writes it (active, past_due, ...).
    status                 text        NOT NULL,
    current_period_start   timestamptz NOT NULL,
    current_period_end     timestamptz NOT NULL,
    cancel_at_period_end   boolean     NOT NULL DEFAULT false,
    cancel_time            timestamptz,
    trial_end_time         timestamptz,
    -- When Stripe created the subscription.
    create_time            timestamptz NOT NULL,
    -- When this copy last changed, and the number of the Stripe read it came from.
    update_time            timestamptz NOT NULL DEFAULT now(),
    read_version           bigint      NOT NULL
);

CREATE INDEX subscriptions_user_idx ON subscriptions (user_id, create_time DESC);
CREATE INDEX subscriptions_list_idx ON subscriptions (create_time DESC, id DESC);

-- Every Stripe event received, recorded in the transaction of its effect: an event id
-- found here has had its effect, and a redelivery has none.
CREATE TABLE stripe_events (
    id           text        PRIMARY KEY,
    type         text        NOT NULL,
    api_version  text        NOT NULL,
    -- The id of the object the event is about (sub_..., in_..., cs_...).
    object_id    text        NOT NULL,
    -- applied: the re-fetched object was written; stale: a newer read was already
    -- stored; ignored: a type this service does not act on, or an object not ours.
    outcome      text        NOT NULL,
    create_time  timestamptz NOT NULL,
    receive_time timestamptz NOT NULL DEFAULT now()
);
