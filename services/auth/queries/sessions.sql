-- name: SessionInsert :one
INSERT INTO sessions (id, user_id, user_agent, ip_address, expire_time)
VALUES (@id, @user_id, @user_agent, @ip_address, @expire_time)
RETURNING *;

-- name: SessionGetByID :one
SELECT * FROM sessions WHERE id = @id;

-- name: SessionGetForUpdate :one
SELECT * FROM sessions WHERE id = @id FOR UPDATE;

-- name: SessionListLive :many
SELECT * FROM sessions
WHERE user_id = @user_id AND end_time IS NULL AND expire_time > now()
ORDER BY create_time DESC;

-- name: SessionTouch :exec
UPDATE sessions SET last_use_time = now(), expire_time = @expire_time
WHERE id = @id AND end_time IS NULL;

-- name: SessionEnd :one
UPDATE sessions SET end_time = now(), end_reason = @end_reason::text
WHERE id = @id AND end_time IS NULL
RETURNING *;

-- name: SessionEndAllForUser :many
UPDATE sessions SET end_time = now(), end_reason = @end_reason::text
WHERE user_id = @user_id AND end_time IS NULL AND id <> @except_id
RETURNING id;

-- name: SessionListLivePage :many
-- Pages through every live session, for rebuilding the Redis mirror.
SELECT id, expire_time FROM sessions
WHERE end_time IS NULL AND expire_time > @now AND id > @after_id
ORDER BY id
LIMIT @max;
