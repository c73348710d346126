-- Every usage event, partitioned by the month in which it occurred (UTC), so that old
-- months are dropped whole once past BACKPLANE_USAGE_RETENTION instead of deleted row by
-- row. Partitions are created ahead by events_create_partitions, which the service's
-- upkeep job runs daily; an event for a month with no partition fails loudly rather than
-- landing in a default partition that would block creating that month's partition later.
--
-- No primary key: one would have to include occur_time, and nothing looks an event up
-- by id alone. The one index serves listing a user's events, newest first, and reading
-- back the event a duplicate key points at.
CREATE TABLE events (
    id              uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    meter           text        NOT NULL,
    quantity        bigint      NOT NULL,
    idempotency_key text        NOT NULL,
    occur_time      timestamptz NOT NULL,
    -- The start of the billing period the event counts in, as decided when recorded.
    period_start    timestamptz NOT NULL,
    properties      jsonb       NOT NULL DEFAULT '{}',
    create_time     timestamptz NOT NULL
) PARTITION BY RANGE (occur_time);

CREATE INDEX events_user_idx ON events (user_id, occur_time DESC, id DESC);

-- Creates the monthly partitions of events (events_YYYY_MM, months in UTC) from the
-- month holding from_time to the month holding to_time, those not there yet, and returns
-- how many it created. An advisory lock serialises concurrent callers (the upkeep job and
-- a migration, say), so that neither trips over the other's half-made partition.
CREATE FUNCTION events_create_partitions(from_time timestamptz, to_time timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month   timestamp := date_trunc('month', from_time AT TIME ZONE 'UTC');
    last    timestamp := date_trunc('month', to_time AT TIME ZONE 'UTC');
    name    text;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.events partitions'));
    WHILE month <= last LOOP
        name := 'events_' || to_char(month, 'YYYY_MM');
        IF to_regclass(format('%I.%I', current_schema(), name)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                name, month AT TIME ZONE 'UTC', (month + interval '1 month') AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN created;
END
$$;

-- Drops every monthly partition of events that ends at or before cutoff, and returns how
-- many it dropped. Dropping a partition locks the parent table for an instant, once a
-- month.
CREATE FUNCTION events_drop_partitions(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part    record;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.events partitions'));
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'events'::regclass
          AND c.relname ~ '^events_[0-9]{4}_[0-9]{2}$'
          AND (to_date(substr(c.relname, 8), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC' <= cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;

-- A service starts able to record: the months around the migration exist at once, and
-- the upkeep job keeps creating those ahead.
SELECT events_create_partitions(now() - interval '2 months', now() + interval '3 months');

-- The idempotency key of every event and every ConsumeQuota, per user, kept for
-- BACKPLANE_USAGE_KEY_TTL (at least a day) and then deleted by the upkeep job. Claiming
-- the key is what makes a piece of work count once, across any number of replicas.
CREATE TABLE idempotency_keys (
    user_id         uuid        NOT NULL,
    idempotency_key text        NOT NULL,
    -- 'record' (RecordUsage and its batches) or 'consume' (ConsumeQuota).
    kind            text        NOT NULL,
    meter           text        NOT NULL,
    quantity        bigint      NOT NULL,
    -- The event recorded under the key; for a refused ConsumeQuota, the id it would have
    -- had (no event exists).
    event_id        uuid        NOT NULL,
    occur_time      timestamptz NOT NULL,
    -- ConsumeQuota's answer, given again to a retry: whether it counted, the total after
    -- it, the limit it was judged against (NULL: unlimited) and when the period ends.
    allowed         boolean,
    total           bigint,
    quota_limit     bigint,
    period_end      timestamptz,
    create_time     timestamptz NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);

-- Keys are written in time order, so a BRIN index finds the expired ones for next to
-- nothing on every insert.
CREATE INDEX idempotency_keys_create_idx ON idempotency_keys USING brin (create_time);

-- Each user's total per meter and billing period, written in the same statement as the
-- events it counts, so that a summary reads one row per meter. A new period is a new
-- row: totals start at zero without any job.
CREATE TABLE totals (
    user_id        uuid        NOT NULL,
    meter          text        NOT NULL,
    period_start   timestamptz NOT NULL,
    period_end     timestamptz NOT NULL,
    -- SUM, MAX or COUNT: the meter's aggregation when the period's first event came;
    -- a change to the catalogue applies from the next period.
    aggregation    text        NOT NULL,
    total          bigint      NOT NULL,
    -- Whether the latest write counted. ConsumeQuota writes the row whether or not its
    -- quantity fits, so that one statement both decides and learns the total it decided
    -- against; this says which it was.
    counted        boolean     NOT NULL DEFAULT true,
    -- The Stripe subscription item that bills this total, when the plan's price is
    -- metered by this meter.
    stripe_item_id text,
    update_time    timestamptz NOT NULL,
    PRIMARY KEY (user_id, meter, period_start)
);

CREATE INDEX totals_billed_idx ON totals (period_end) WHERE stripe_item_id IS NOT NULL;

-- Each usage alert raised: a meter's total passed 80 % or 100 % of its limit in a
-- period. The primary key makes each one once per threshold and period, whichever
-- replica sees the total cross it; sent_time records that the notification went out.
CREATE TABLE alerts (
    user_id      uuid        NOT NULL,
    meter        text        NOT NULL,
    period_start timestamptz NOT NULL,
    -- 80 or 100: the percentage of the limit passed.
    threshold    integer     NOT NULL,
    period_end   timestamptz NOT NULL,
    quota_limit  bigint      NOT NULL,
    total        bigint      NOT NULL,
    create_time  timestamptz NOT NULL,
    sent_time    timestamptz,
    PRIMARY KEY (user_id, meter, period_start, threshold)
);

CREATE INDEX alerts_unsent_idx ON alerts (create_time) WHERE sent_time IS NULL;

-- What was reported to Stripe for each metered subscription item and period. Stripe
-- keeps the latest report of a period (action=set), so a report is never allowed to
-- send less than reported_quantity.
CREATE TABLE stripe_usage_reports (
    stripe_item_id    text        NOT NULL,
    period_start      timestamptz NOT NULL,
    -- The highest quantity Stripe accepted, and when.
    reported_quantity bigint      NOT NULL DEFAULT 0,
    reported_time     timestamptz,
    -- The report under way: its window, quantity and timestamp, kept so that a retry
    -- sends Stripe the same request under the same idempotency key.
    pending_window    bigint,
    pending_quantity  bigint,
    pending_timestamp timestamptz,
    PRIMARY KEY (stripe_item_id, period_start)
);
