-- name: AssetInsert :one
INSERT INTO assets (
    id, owner_user_id, filename, content_type, size_bytes, reserved_bytes, declared_sha256,
    state, metadata, create_time, update_time
) VALUES (
    @id, @owner_user_id, @filename, @content_type, @size_bytes, @reserved_bytes,
    sqlc.narg(declared_sha256), 'PENDING', @metadata, @now, @now
)
RETURNING *;

-- name: AssetGetForOwner :one
-- AssetGetForOwner returns a live asset of owner; another owner's is not found.
SELECT * FROM assets
WHERE id = @id AND owner_user_id = @owner_user_id AND state <> 'DELETED';

-- name: AssetGetLive :one
-- AssetGetLive returns a live asset whoever owns it: for signed downloads, whose
-- signature names the asset.
SELECT * FROM assets WHERE id = @id AND state <> 'DELETED';

-- name: AssetListForOwner :many
-- AssetListForOwner pages through owner's live assets, newest first, after the id
-- before (the nil UUID's successor: ffffffff-... for the first page).
SELECT * FROM assets
WHERE owner_user_id = @owner_user_id AND state <> 'DELETED' AND id < @before
  AND content_type LIKE @content_type_prefix || '%'
  AND (sqlc.narg(state)::text IS NULL OR state = sqlc.narg(state)::text)
ORDER BY id DESC
LIMIT @max;

-- name: AssetListAll :many
-- AssetListAll is AssetListForOwner for everyone's assets, for admins.
SELECT * FROM assets
WHERE state <> 'DELETED' AND id < @before
  AND content_type LIKE @content_type_prefix || '%'
  AND (sqlc.narg(state)::text IS NULL OR state = sqlc.narg(state)::text)
ORDER BY id DESC
LIMIT @max;

-- name: AssetMarkReady :one
-- AssetMarkReady records a PENDING asset's stored bytes; no row when it is not PENDING.
UPDATE assets SET
    state = 'READY', size_bytes = @size_bytes, reserved_bytes = @size_bytes,
    sha256 = @sha256, object_key = @object_key, update_time = @now
WHERE id = @id AND state = 'PENDING'
RETURNING *;

-- name: AssetUpdate :one
UPDATE assets SET filename = @filename, metadata = @metadata, update_time = @now
WHERE id = @id AND owner_user_id = @owner_user_id AND state <> 'DELETED'
RETURNING *;

-- name: AssetMarkDeleted :one
-- AssetMarkDeleted makes a live asset of owner unreadable at once; the sweeper erases
-- its bytes.
UPDATE assets SET state = 'DELETED', update_time = @now, delete_time = @now
WHERE id = @id AND owner_user_id = @owner_user_id AND state <> 'DELETED'
RETURNING *;

-- name: AssetExpirePending :many
-- AssetExpirePending deletes up to max assets declared before cutoff whose bytes never
-- arrived, returning them so that their reservations are given back.
UPDATE assets SET state = 'DELETED', update_time = @now, delete_time = @now
WHERE id IN (
    SELECT a.id FROM assets a
    WHERE a.state = 'PENDING' AND a.create_time < @cutoff
    ORDER BY a.create_time
    LIMIT @max
    FOR UPDATE SKIP LOCKED
)
RETURNING *;

-- name: AssetListDeleted :many
-- AssetListDeleted returns up to max deleted assets, oldest first, whose bytes are still
-- to be erased.
SELECT * FROM assets WHERE state = 'DELETED' ORDER BY delete_time LIMIT @max;

-- name: AssetPurge :exec
-- AssetPurge forgets a deleted asset once its bytes are erased.
DELETE FROM assets WHERE id = @id AND state = 'DELETED';

-- name: AssetObjectKeysKnown :many
-- AssetObjectKeysKnown returns which of keys hold a live or not yet erased asset's bytes.
SELECT object_key::text FROM assets WHERE object_key = ANY(@keys::text[]);
