-- name: TrustedDeviceInsert :one
INSERT INTO trusted_devices (id, user_id, token_hash, expire_time)
VALUES (@id, @user_id, @token_hash, @expire_time)
RETURNING *;

-- name: TrustedDeviceGetByTokenHash :one
SELECT * FROM trusted_devices WHERE token_hash = @token_hash AND expire_time > now();

-- name: TrustedDeviceTouch :exec
UPDATE trusted_devices SET last_use_time = now(), expire_time = @expire_time WHERE id = @id;

-- name: TrustedDevicePrune :exec
-- Keeps a user's newest devices only, and none that expired, so that sign-ins from
-- ever-new browsers do not grow the table without bound.
DELETE FROM trusted_devices AS d
WHERE d.user_id = @user_id
  AND (d.expire_time <= now() OR d.id NOT IN (
    SELECT k.id FROM trusted_devices AS k WHERE k.user_id = @user_id
    ORDER BY k.last_use_time DESC, k.id DESC LIMIT @keep::int
  ));
