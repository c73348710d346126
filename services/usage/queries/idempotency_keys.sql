-- name: IdempotencyKeyGet :one
SELECT * FROM idempotency_keys
WHERE user_id = @user_id AND idempotency_key = @idempotency_key;

-- name: IdempotencyKeyListForUser :many
-- The claims holding some of a user's keys.
SELECT * FROM idempotency_keys
WHERE user_id = @user_id AND idempotency_key = ANY (@idempotency_keys::text[]);

-- name: IdempotencyKeyDeleteExpired :execrows
-- Deletes up to max keys claimed before cutoff; the upkeep job repeats it until none is
-- left, so that no one statement holds locks on millions of rows.
DELETE FROM idempotency_keys AS k
WHERE (k.user_id, k.idempotency_key) IN (
    SELECT e.user_id, e.idempotency_key FROM idempotency_keys AS e
    WHERE e.create_time < @cutoff
    LIMIT @max
);
