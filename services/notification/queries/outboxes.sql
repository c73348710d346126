-- name: OutboxInsert :exec
INSERT INTO outbox (notification_id, channel, status, status_reason)
VALUES (sqlc.arg(notification_id), sqlc.arg(channel), sqlc.arg(status), sqlc.arg(status_reason));

-- name: OutboxListForNotifications :many
SELECT * FROM outbox WHERE notification_id = ANY(sqlc.arg(notification_ids)::uuid[]) ORDER BY id;

-- name: OutboxClaim :many
-- Takes up to max_rows due emails that no live lease holds. SKIP LOCKED lets concurrent
-- workers take disjoint rows without waiting; the lease keeps a row theirs after commit.
WITH due AS (
    SELECT o.id FROM outbox o
    WHERE o.channel = 'email'
      AND o.status = 'pending'
      AND o.next_attempt_at <= now()
      AND (o.lease_until IS NULL OR o.lease_until < now())
    ORDER BY o.next_attempt_at
    LIMIT sqlc.arg(max_rows)
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox
SET attempts = outbox.attempts + 1,
    lease_until = now() + sqlc.arg(lease_ms)::bigint * interval '1 millisecond',
    lease_token = sqlc.arg(lease_token),
    updated_at = now()
FROM due, notification n
WHERE outbox.id = due.id AND n.id = outbox.notification_id
RETURNING outbox.id, outbox.attempts, outbox.lease_token, n.id AS notification_id, n.user_id, n.email,
    n.category, n.title, n.body_text, n.body_html;

-- name: OutboxMarkSent :execrows
UPDATE outbox
SET status = 'sent', lease_until = NULL, lease_token = NULL, last_error = '',
    address = sqlc.arg(address), provider_id = sqlc.arg(provider_id), updated_at = now()
WHERE id = sqlc.arg(id) AND lease_token = sqlc.arg(lease_token);

-- name: OutboxRetry :execrows
-- Releases the lease and schedules the next attempt on the database's clock, the one
-- every replica's claim compares against.
UPDATE outbox
SET lease_until = NULL, lease_token = NULL, last_error = sqlc.arg(last_error),
    next_attempt_at = now() + sqlc.arg(delay_ms)::bigint * interval '1 millisecond', updated_at = now()
WHERE id = sqlc.arg(id) AND lease_token = sqlc.arg(lease_token);

-- name: OutboxFinish :execrows
-- Ends an email for good without sending it: failed, or suppressed.
UPDATE outbox
SET status = sqlc.arg(status), status_reason = sqlc.arg(status_reason), last_error = sqlc.arg(last_error), address = sqlc.arg(address),
    lease_until = NULL, lease_token = NULL, updated_at = now()
WHERE id = sqlc.arg(id) AND lease_token = sqlc.arg(lease_token);

-- name: OutboxSetEmailStatusFromEvent :execrows
-- Only an email handed to SendGrid moves on; a bounce, drop or failure is final, so a
-- late "delivered" cannot hide it.
UPDATE outbox
SET status = sqlc.arg(status), status_reason = sqlc.arg(status_reason), updated_at = now()
WHERE notification_id = sqlc.arg(notification_id)
  AND channel = 'email'
  AND status IN ('pending', 'sent', 'delivered');

-- name: OutboxCountByStatus :one
SELECT count(*)::integer FROM outbox WHERE channel = 'email' AND status = sqlc.arg(status);
