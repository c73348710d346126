-- name: EventsRecord :many
-- Records a batch of events and counts them in one statement, and so in one transaction
-- and one round trip. Each event's key is claimed (a key claimed before is left alone:
-- that event is a duplicate, or a key reused for something else); the events whose key
-- was claimed are inserted and added to their period's totals; and a total that passes
-- 80 % or 100 % of its limit raises that alert, once per period.
--
-- The caller sends no key twice and sorts the input by (user_id, idempotency_key), and
-- the totals are written in (user_id, meter, period_start) order, so that concurrent
-- batches take their locks in one order and cannot deadlock.
--
-- One row per input event, in input order: whether its key was claimed; if not, the
-- claim that holds the key (absent when that claim committed after this statement
-- began, which the caller reads again); the total of its period after this statement;
-- and the thresholds this statement raised for that total.
WITH thresholds AS (
    SELECT 80 AS threshold UNION ALL SELECT 100
),
input AS (
    -- Set-returning functions in one select list advance together: row n of each.
    SELECT
        generate_series(1, cardinality(@ids::uuid[])) AS ord,
        unnest(@ids::uuid[]) AS id,
        unnest(@user_ids::uuid[]) AS user_id,
        unnest(@meters::text[]) AS meter,
        unnest(@aggregations::text[]) AS aggregation,
        unnest(@quantities::bigint[]) AS quantity,
        unnest(@idempotency_keys::text[]) AS idempotency_key,
        unnest(@occur_times::timestamptz[]) AS occur_time,
        unnest(@period_starts::timestamptz[]) AS period_start,
        unnest(@period_ends::timestamptz[]) AS period_end,
        unnest(@properties::text[]) AS properties,
        unnest(@quota_limits::bigint[]) AS quota_limit,
        unnest(@stripe_item_ids::text[]) AS stripe_item_id
),
claimed AS (
    INSERT INTO idempotency_keys AS k (user_id, idempotency_key, kind, meter, quantity, event_id, occur_time, create_time)
    SELECT i.user_id, i.idempotency_key, 'record', i.meter, i.quantity, i.id, i.occur_time, @now::timestamptz
    FROM input AS i
    ORDER BY i.ord
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING k.event_id
),
recorded AS (
    INSERT INTO events (id, user_id, meter, quantity, idempotency_key, occur_time, period_start, properties, create_time)
    SELECT i.id, i.user_id, i.meter, i.quantity, i.idempotency_key, i.occur_time, i.period_start, i.properties::jsonb, @now::timestamptz
    FROM input AS i
    JOIN claimed AS c ON c.event_id = i.id
    RETURNING events.id
),
counted AS (
    INSERT INTO totals AS t (user_id, meter, period_start, period_end, aggregation, total, stripe_item_id, update_time)
    SELECT i.user_id, i.meter, i.period_start, max(i.period_end), min(i.aggregation),
        CASE min(i.aggregation)
            WHEN 'MAX' THEN max(i.quantity)
            WHEN 'COUNT' THEN count(*)
            ELSE sum(i.quantity)::bigint
        END,
        NULLIF(max(i.stripe_item_id), ''), @now::timestamptz
    FROM input AS i
    JOIN claimed AS c ON c.event_id = i.id
    GROUP BY i.user_id, i.meter, i.period_start
    ORDER BY i.user_id, i.meter, i.period_start
    ON CONFLICT (user_id, meter, period_start) DO UPDATE SET
        total = CASE t.aggregation
            WHEN 'MAX' THEN greatest(t.total, excluded.total)
            ELSE t.total + excluded.total
        END,
        counted = true,
        stripe_item_id = coalesce(excluded.stripe_item_id, t.stripe_item_id),
        update_time = excluded.update_time
    RETURNING t.user_id, t.meter, t.period_start, t.period_end, t.total
),
limits AS (
    SELECT DISTINCT i.user_id, i.meter, i.period_start, i.quota_limit
    FROM input AS i
),
alerted AS (
    INSERT INTO alerts AS a (user_id, meter, period_start, threshold, period_end, quota_limit, total, create_time)
    SELECT c.user_id, c.meter, c.period_start, th.threshold, c.period_end, l.quota_limit, c.total, @now::timestamptz
    FROM counted AS c
    JOIN limits AS l ON l.user_id = c.user_id AND l.meter = c.meter AND l.period_start = c.period_start
    CROSS JOIN thresholds AS th
    WHERE l.quota_limit > 0 AND c.total::numeric * 100 >= l.quota_limit::numeric * th.threshold
    ON CONFLICT (user_id, meter, period_start, threshold) DO NOTHING
    RETURNING a.user_id, a.meter, a.period_start, a.threshold
)
SELECT
    i.ord::bigint AS ord,
    (c.event_id IS NOT NULL)::boolean AS claimed,
    k.kind AS prior_kind,
    k.meter AS prior_meter,
    k.quantity AS prior_quantity,
    k.event_id AS prior_event_id,
    k.occur_time AS prior_occur_time,
    t.total AS period_total,
    array(
        SELECT a.threshold FROM alerted AS a
        WHERE a.user_id = i.user_id AND a.meter = i.meter AND a.period_start = i.period_start
        ORDER BY a.threshold
    )::integer[] AS raised
FROM input AS i
LEFT JOIN claimed AS c ON c.event_id = i.id
LEFT JOIN idempotency_keys AS k
    ON c.event_id IS NULL AND k.user_id = i.user_id AND k.idempotency_key = i.idempotency_key
LEFT JOIN counted AS t
    ON t.user_id = i.user_id AND t.meter = i.meter AND t.period_start = i.period_start
ORDER BY i.ord;

-- name: EventGet :one
-- The event a duplicate key points at, by the user, time and id its key recorded.
SELECT * FROM events
WHERE user_id = @user_id AND occur_time = @occur_time AND id = @id;

-- name: EventListForUser :many
-- A page of a user's events, newest first, strictly after the cursor (before_time,
-- before_id) in that order, optionally on one meter and within [start_time, end_time).
SELECT * FROM events
WHERE user_id = @user_id
    AND (@meter::text = '' OR meter = @meter::text)
    AND occur_time >= @start_time::timestamptz
    AND occur_time < @end_time::timestamptz
    AND (occur_time, id) < (@before_time::timestamptz, @before_id::uuid)
ORDER BY occur_time DESC, id DESC
LIMIT @max;

-- name: EventPartitionsCreate :one
-- Creates the missing monthly partitions from the month of from_time to that of to_time.
SELECT events_create_partitions(@from_time::timestamptz, @to_time::timestamptz)::integer AS created;

-- name: EventPartitionsDrop :one
-- Drops the monthly partitions that end at or before cutoff.
SELECT events_drop_partitions(@cutoff::timestamptz)::integer AS dropped;

-- name: EventPartitionList :many
-- The names of the events partitions, oldest first.
SELECT c.relname::text AS name
FROM pg_catalog.pg_inherits AS i
JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = 'events'::regclass
ORDER BY c.relname;
