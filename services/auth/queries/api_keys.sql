-- name: APIKeyInsert :one
INSERT INTO api_keys (id, user_id, display_name, prefix, secret_hash, scopes, expire_time, session_id)
VALUES (@id, @user_id, @display_name, @prefix, @secret_hash, @scopes, sqlc.narg('expire_time'), sqlc.narg('session_id'))
RETURNING *;

-- name: APIKeyListForUser :many
SELECT * FROM api_keys WHERE user_id = @user_id ORDER BY create_time DESC, id DESC;

-- name: APIKeyGetBySecretHash :one
SELECT * FROM api_keys WHERE secret_hash = @secret_hash;

-- name: APIKeyDelete :one
DELETE FROM api_keys WHERE id = @id AND user_id = @user_id RETURNING id;

-- name: APIKeyTouch :exec
-- Records use at most once a minute, so a busy key does not write on every request.
UPDATE api_keys SET last_use_time = now()
WHERE id = @id AND (last_use_time IS NULL OR last_use_time < now() - interval '1 minute');

-- name: APIKeyDeleteAllForUser :many
-- Deletes every key of a user, for a password reset.
DELETE FROM api_keys WHERE user_id = @user_id RETURNING id;

-- name: APIKeyDeleteForUserExceptSession :many
-- Deletes the keys of a user that one session did not create, for a password change.
DELETE FROM api_keys
WHERE user_id = @user_id AND (session_id IS NULL OR session_id <> @keep_session_id::uuid)
RETURNING id;
