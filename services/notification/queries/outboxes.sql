-- The outbox of releases before River, read once by the upgrade that turns its unsent
-- emails into River jobs and then drops it (upgrade.go).

-- name: OutboxExists :one
SELECT (to_regclass('outbox') IS NOT NULL)::boolean;

-- name: OutboxLock :exec
-- Holds off a release before River still running during a rolling deploy: its Send
-- waits, then fails once the table is gone, so no email is written where nobody reads.
LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE;

-- name: OutboxListUnsent :many
-- Each email not sent yet, with when it may be tried: its next attempt, or the end of
-- the lease of a worker of the old release that may be sending it at this moment.
SELECT notification_id, attempts,
    greatest(next_attempt_at, coalesce(lease_until, next_attempt_at))::timestamptz AS due_at
FROM outbox
WHERE channel = 'email' AND status = 'pending'
ORDER BY next_attempt_at, id;

-- name: OutboxDrop :exec
DROP TABLE outbox;
