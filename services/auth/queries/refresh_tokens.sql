-- name: RefreshTokenInsert :one
INSERT INTO refresh_tokens (id, session_id, token_hash, expire_time)
VALUES (@id, @session_id, @token_hash, @expire_time)
RETURNING *;

-- name: RefreshTokenGetForUpdate :one
SELECT * FROM refresh_tokens WHERE token_hash = @token_hash FOR UPDATE;

-- name: RefreshTokenSpend :exec
-- Records the seed the token's successor was derived from, for retries in the grace window.
UPDATE refresh_tokens SET spent_time = now(), successor_seed = @successor_seed
WHERE id = @id AND spent_time IS NULL;
