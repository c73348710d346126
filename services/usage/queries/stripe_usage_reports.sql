-- name: StripeUsageReportEnsure :exec
INSERT INTO stripe_usage_reports (stripe_item_id, period_start)
VALUES (@stripe_item_id, @period_start)
ON CONFLICT (stripe_item_id, period_start) DO NOTHING;

-- name: StripeUsageReportLock :one
-- Locks an item's report of a period until the transaction ends, so that one reporter
-- at a time decides what to send.
SELECT * FROM stripe_usage_reports
WHERE stripe_item_id = @stripe_item_id AND period_start = @period_start
FOR UPDATE;

-- name: StripeUsageReportSetPending :exec
UPDATE stripe_usage_reports
SET pending_window = @pending_window, pending_quantity = @pending_quantity, pending_timestamp = @pending_timestamp
WHERE stripe_item_id = @stripe_item_id AND period_start = @period_start;

-- name: StripeUsageReportConfirm :exec
-- Records that Stripe accepted quantity for the period; the reported quantity only ever
-- grows, and the pending report is cleared if it was this one.
UPDATE stripe_usage_reports
SET reported_quantity = greatest(reported_quantity, @quantity::bigint),
    reported_time = @reported_time,
    pending_window = CASE WHEN pending_window = @pending_window::bigint THEN NULL ELSE pending_window END,
    pending_quantity = CASE WHEN pending_window = @pending_window::bigint THEN NULL ELSE pending_quantity END,
    pending_timestamp = CASE WHEN pending_window = @pending_window::bigint THEN NULL ELSE pending_timestamp END
WHERE stripe_item_id = @stripe_item_id AND period_start = @period_start;

-- name: StripeUsageReportGet :one
SELECT * FROM stripe_usage_reports
WHERE stripe_item_id = @stripe_item_id AND period_start = @period_start;

-- name: StripeUsageReportDeleteBefore :execrows
DELETE FROM stripe_usage_reports WHERE period_start < @cutoff;
