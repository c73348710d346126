-- name: APIKeyInsert :one
INSERT INTO api_keys (id, user_id, display_name, prefix, secret_hash, scopes, expire_time)
VALUES (@id, @user_id, @display_name, @prefix, @secret_hash, @scopes, sqlc.narg('expire_time'))
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
