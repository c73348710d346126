-- name: RefreshTokenInsert :one
INSERT INTO refresh_tokens (id, session_id, token_hash, expire_time)
VALUES (@id, @session_id, @token_hash, @expire_time)
RETURNING *;

-- name: RefreshTokenGetForUpdate :one
SELECT * FROM refresh_tokens WHERE token_hash = @token_hash FOR UPDATE;

-- name: RefreshTokenSpend :exec
UPDATE refresh_tokens SET spent_time = now() WHERE id = @id AND spent_time IS NULL;
