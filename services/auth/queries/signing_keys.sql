-- name: SigningKeyListLive :many
SELECT * FROM signing_keys WHERE expire_time > @now ORDER BY activate_time DESC;

-- name: SigningKeyInsert :one
INSERT INTO signing_keys (id, private_key, sealed, activate_time, retire_time, expire_time)
VALUES (@id, @private_key, @sealed, @activate_time, @retire_time, @expire_time)
RETURNING *;

-- name: SigningKeyLock :exec
-- Serialises key creation between replicas for the rest of the transaction.
SELECT pg_advisory_xact_lock(hashtext('backplane.auth.signing_keys'));
