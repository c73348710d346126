-- name: DeliveryInsert :exec
INSERT INTO delivery (notification_id, channel, status, status_reason)
VALUES (sqlc.arg(notification_id), sqlc.arg(channel), sqlc.arg(status), sqlc.arg(status_reason));

-- name: DeliveryListForNotifications :many
SELECT * FROM delivery WHERE notification_id = ANY(sqlc.arg(notification_ids)::uuid[]) ORDER BY notification_id, channel;

-- name: DeliveryBeginEmailAttempt :one
-- Starts attempt number `attempt` at a notification's email and returns what sending it
-- needs. No row when the email is no longer pending (its outcome is recorded: this is a
-- job run again after its process died before River marked it done) or when a later
-- attempt already started.
UPDATE delivery
SET attempts = sqlc.arg(attempt)::bigint, updated_at = now()
FROM notification n
WHERE delivery.notification_id = sqlc.arg(notification_id)
  AND delivery.channel = 'email'
  AND delivery.status = 'pending'
  AND delivery.attempts < sqlc.arg(attempt)::bigint
  AND n.id = delivery.notification_id
RETURNING delivery.attempts, n.id AS notification_id, n.user_id, n.email, n.category, n.title, n.body_text, n.body_html;

-- name: DeliveryMarkEmailSent :execrows
-- Only the attempt that still holds the email records it: see delivery.attempts.
UPDATE delivery
SET status = 'sent', last_error = '', address = sqlc.arg(address), provider_id = sqlc.arg(provider_id), updated_at = now()
WHERE notification_id = sqlc.arg(notification_id) AND channel = 'email' AND status = 'pending'
  AND attempts = sqlc.arg(attempt)::bigint;

-- name: DeliveryRecordEmailFailure :execrows
-- A failed attempt that will be retried: the email stays pending, with the error.
UPDATE delivery
SET last_error = sqlc.arg(last_error), address = sqlc.arg(address), updated_at = now()
WHERE notification_id = sqlc.arg(notification_id) AND channel = 'email' AND status = 'pending'
  AND attempts = sqlc.arg(attempt)::bigint;

-- name: DeliveryFinishEmail :execrows
-- Ends an email for good without sending it: failed, or suppressed.
UPDATE delivery
SET status = sqlc.arg(status), status_reason = sqlc.arg(status_reason), last_error = sqlc.arg(last_error),
    address = sqlc.arg(address), updated_at = now()
WHERE notification_id = sqlc.arg(notification_id) AND channel = 'email' AND status = 'pending'
  AND attempts = sqlc.arg(attempt)::bigint;

-- name: DeliverySetEmailStatusFromEvent :execrows
-- Only an email handed to SendGrid moves on; a bounce, drop or failure is final, so a
-- late "delivered" cannot hide it.
UPDATE delivery
SET status = sqlc.arg(status), status_reason = sqlc.arg(status_reason), updated_at = now()
WHERE notification_id = sqlc.arg(notification_id)
  AND channel = 'email'
  AND status IN ('pending', 'sent', 'delivered');

-- name: DeliveryCountByStatus :one
SELECT count(*)::integer FROM delivery WHERE channel = 'email' AND status = sqlc.arg(status);

-- name: DeliveryCopyFromOutbox :execrows
-- The upgrade to River: every outbox row becomes a delivery row (upgrade.go).
INSERT INTO delivery (notification_id, channel, status, status_reason, attempts, last_error, address, provider_id, updated_at)
SELECT notification_id, channel, status, status_reason, attempts, last_error, address, provider_id, updated_at
FROM outbox
ON CONFLICT (notification_id, channel) DO NOTHING;
