-- name: EmailTokenInsert :one
INSERT INTO email_tokens (id, user_id, kind, token_hash, expire_time)
VALUES (@id, @user_id, @kind, @token_hash, @expire_time)
RETURNING *;

-- name: EmailTokenConsume :one
-- Spends a live token in one statement, so two concurrent uses cannot both succeed.
UPDATE email_tokens SET use_time = now()
WHERE token_hash = @token_hash AND kind = @kind AND use_time IS NULL AND expire_time > now()
RETURNING *;

-- name: EmailTokenRevokeForUser :exec
UPDATE email_tokens SET use_time = now()
WHERE user_id = @user_id AND kind = @kind AND use_time IS NULL;
