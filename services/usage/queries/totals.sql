-- name: TotalConsume :many
-- ConsumeQuota in one statement. Unless the key was claimed before (then no row comes
-- back, and the caller reads the claim), the period's total grows by amount when the
-- result fits the limit (a MAX meter: when amount itself fits) and stays when it does
-- not; either way the row is written and locked, so the decision is taken against the
-- latest total whichever replica decides. The event is inserted when it counted, the
-- alerts it raises are raised, and the key is claimed with the answer, so that a retry
-- gets the same one. A concurrent call with the same key fails on the key's primary key
-- and is rolled back whole; its caller then reads this call's answer.
--
-- quota_limit is -1 for an unlimited meter; amount is the quantity, or 1 on a COUNT
-- meter.
WITH thresholds AS (
    SELECT 80 AS threshold UNION ALL SELECT 100
),
prior AS (
    SELECT 1 FROM idempotency_keys AS k
    WHERE k.user_id = @user_id AND k.idempotency_key = @idempotency_key
),
counted AS (
    INSERT INTO totals AS t (user_id, meter, period_start, period_end, aggregation, total, counted, update_time)
    SELECT @user_id, @meter, @period_start, @period_end, @aggregation::text,
        CASE WHEN @quota_limit::bigint < 0 OR @amount::bigint <= @quota_limit::bigint THEN @amount::bigint ELSE 0 END,
        @quota_limit::bigint < 0 OR @amount::bigint <= @quota_limit::bigint,
        @now::timestamptz
    WHERE NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT (user_id, meter, period_start) DO UPDATE SET
        total = CASE
            WHEN @quota_limit::bigint >= 0 AND (CASE WHEN t.aggregation = 'MAX' THEN @amount::bigint ELSE t.total + @amount::bigint END) > @quota_limit::bigint THEN t.total
            WHEN t.aggregation = 'MAX' THEN greatest(t.total, @amount::bigint)
            ELSE t.total + @amount::bigint
        END,
        counted = @quota_limit::bigint < 0 OR (CASE WHEN t.aggregation = 'MAX' THEN @amount::bigint ELSE t.total + @amount::bigint END) <= @quota_limit::bigint,
        update_time = excluded.update_time
    RETURNING t.total, t.counted
),
recorded AS (
    INSERT INTO events (id, user_id, meter, quantity, idempotency_key, occur_time, period_start, properties, create_time)
    SELECT @event_id, @user_id, @meter, @quantity::bigint, @idempotency_key, @now::timestamptz, @period_start, '{}', @now::timestamptz
    FROM counted AS c
    WHERE c.counted
    RETURNING events.id
),
alerted AS (
    INSERT INTO alerts AS a (user_id, meter, period_start, threshold, period_end, quota_limit, total, create_time)
    SELECT @user_id, @meter, @period_start, th.threshold, @period_end, @quota_limit::bigint, c.total, @now::timestamptz
    FROM counted AS c
    CROSS JOIN thresholds AS th
    WHERE c.counted AND @quota_limit::bigint > 0
        AND 100 * c.total::numeric >= th.threshold * @quota_limit::numeric
    ON CONFLICT (user_id, meter, period_start, threshold) DO NOTHING
    RETURNING a.threshold
),
decided AS (
    INSERT INTO idempotency_keys (user_id, idempotency_key, kind, meter, quantity, event_id, occur_time,
        allowed, total, quota_limit, period_end, create_time)
    SELECT @user_id, @idempotency_key, 'consume', @meter, @quantity::bigint, @event_id, @now::timestamptz,
        c.counted, c.total, NULLIF(@quota_limit::bigint, -1), @period_end, @now::timestamptz
    FROM counted AS c
    RETURNING idempotency_keys.allowed
)
SELECT c.total, c.counted,
    array(SELECT a.threshold FROM alerted AS a ORDER BY a.threshold)::integer[] AS raised
FROM counted AS c;

-- name: TotalGet :one
SELECT * FROM totals
WHERE user_id = @user_id AND meter = @meter AND period_start = @period_start;

-- name: TotalListForPeriod :many
-- A user's totals of one period: one row per meter used in it.
SELECT * FROM totals
WHERE user_id = @user_id AND period_start = @period_start
ORDER BY meter;

-- name: TotalDeleteEndedBefore :execrows
-- Forgets the totals of periods that ended before cutoff, with the events they counted.
DELETE FROM totals WHERE period_end < @cutoff;

-- name: TotalListBilled :many
-- The totals billed by a Stripe subscription item, of periods ending after since, that
-- exceed what was last reported to Stripe for them.
SELECT t.stripe_item_id::text AS stripe_item_id, t.period_start, t.period_end, t.total,
    coalesce(r.reported_quantity, 0)::bigint AS reported_quantity
FROM totals AS t
LEFT JOIN stripe_usage_reports AS r
    ON r.stripe_item_id = t.stripe_item_id AND r.period_start = t.period_start
WHERE t.stripe_item_id IS NOT NULL
    AND t.period_end > @since
    AND t.total > coalesce(r.reported_quantity, 0)
ORDER BY t.period_end, t.stripe_item_id;

-- name: TotalGetBilled :one
-- The total a Stripe subscription item bills in one period.
SELECT t.total FROM totals AS t
WHERE t.stripe_item_id = @stripe_item_id AND t.period_start = @period_start
ORDER BY t.total DESC
LIMIT 1;
