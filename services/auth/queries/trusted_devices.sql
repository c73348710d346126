-- name: TrustedDeviceInsert :one
INSERT INTO trusted_devices (id, user_id, token_hash, expire_time)
VALUES (@id, @user_id, @token_hash, @expire_time)
RETURNING *;

-- name: TrustedDeviceGetByTokenHash :one
SELECT * FROM trusted_devices WHERE token_hash = @token_hash AND expire_time > now();

-- name: TrustedDeviceTouch :exec
UPDATE trusted_devices SET last_use_time = now(), expire_time = @expire_time WHERE id = @id;
