-- name: UserInsert :one
INSERT INTO users (id, email, display_name, password_hash)
VALUES (@id, @email, @display_name, @password_hash)
RETURNING *;

-- name: UserGetByID :one
SELECT * FROM users WHERE id = @id;

-- name: UserGetByEmail :one
SELECT * FROM users WHERE email = @email;

-- name: UserList :many
SELECT * FROM users
WHERE id > @after_id
ORDER BY id
LIMIT @max;

-- name: UserSetDisplayName :one
UPDATE users SET display_name = @display_name, update_time = now()
WHERE id = @id
RETURNING *;

-- name: UserSetPassword :one
UPDATE users SET password_hash = @password_hash, update_time = now()
WHERE id = @id
RETURNING *;

-- name: UserMarkEmailVerified :one
UPDATE users SET email_verified = true, update_time = now()
WHERE id = @id
RETURNING *;

-- name: UserSetDisabled :one
UPDATE users
SET disable_time = CASE WHEN @disabled::boolean THEN coalesce(disable_time, now()) END,
    update_time = now()
WHERE id = @id
RETURNING *;
