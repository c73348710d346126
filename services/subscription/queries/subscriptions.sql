-- name: SubscriptionReadVersion :one
SELECT nextval('stripe_reads')::bigint AS version;

-- name: SubscriptionUpsert :one
-- SubscriptionUpsert writes a subscription as read from Stripe, unless the stored copy
-- came from a later read; then it returns no row.
INSERT INTO subscriptions (
    id, user_id, stripe_subscription_id, stripe_customer_id, stripe_item_id, stripe_price_id,
    plan_id, status, current_period_start, current_period_end, cancel_at_period_end,
    cancel_time, trial_end_time, create_time, read_version
) VALUES (
    @id, @user_id, @stripe_subscription_id, @stripe_customer_id, @stripe_item_id, @stripe_price_id,
    @plan_id, @status, @current_period_start, @current_period_end, @cancel_at_period_end,
    @cancel_time, @trial_end_time, @create_time, @read_version
)
ON CONFLICT (stripe_subscription_id) DO UPDATE SET
    user_id = excluded.user_id,
    stripe_customer_id = excluded.stripe_customer_id,
    stripe_item_id = excluded.stripe_item_id,
    stripe_price_id = excluded.stripe_price_id,
    plan_id = excluded.plan_id,
    status = excluded.status,
    current_period_start = excluded.current_period_start,
    current_period_end = excluded.current_period_end,
    cancel_at_period_end = excluded.cancel_at_period_end,
    cancel_time = excluded.cancel_time,
    trial_end_time = excluded.trial_end_time,
    create_time = excluded.create_time,
    read_version = excluded.read_version,
    update_time = now()
WHERE subscriptions.read_version < excluded.read_version
RETURNING *;

-- name: SubscriptionGetCurrent :one
-- SubscriptionGetCurrent returns the subscription that speaks for a user: the newest
-- that has not ended, else the newest.
SELECT * FROM subscriptions
WHERE user_id = @user_id
ORDER BY status NOT IN ('canceled', 'incomplete_expired') DESC, create_time DESC, id DESC
LIMIT 1;

-- name: SubscriptionGetByStripeID :one
SELECT * FROM subscriptions WHERE stripe_subscription_id = @stripe_subscription_id;

-- name: SubscriptionCountForUser :one
SELECT count(*) FROM subscriptions WHERE user_id = @user_id;

-- name: SubscriptionList :many
-- SubscriptionList pages through every subscription, newest first, after the
-- (create_time, id) of the previous page's last row.
SELECT * FROM subscriptions
WHERE (@status::text = '' OR status = @status::text)
  AND (@plan_id::text = '' OR plan_id = @plan_id::text)
  AND (@first_page::boolean OR (create_time, id) < (@after_time::timestamptz, @after_id::uuid))
ORDER BY create_time DESC, id DESC
LIMIT @max;
