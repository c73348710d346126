-- name: StorageLevelAdd :one
-- StorageLevelAdd adds delta (negative to give back) to owner's storage level and returns
-- the new level. The row stays locked until the transaction ends: the declarations of
-- one owner are weighed against the quota one at a time.
INSERT INTO storage_levels (owner_user_id, level_bytes, update_time)
VALUES (@owner_user_id, GREATEST(@delta::bigint, 0), @now)
ON CONFLICT (owner_user_id) DO UPDATE SET
    level_bytes = GREATEST(storage_levels.level_bytes + @delta::bigint, 0),
    update_time = @now
RETURNING level_bytes;
