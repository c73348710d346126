-- name: PreferenceListForUser :many
SELECT * FROM preference WHERE user_id = sqlc.arg(user_id);

-- name: PreferenceUpsert :exec
INSERT INTO preference (user_id, category, channel, enabled)
VALUES (sqlc.arg(user_id), sqlc.arg(category), sqlc.arg(channel), sqlc.arg(enabled))
ON CONFLICT (user_id, category, channel) DO UPDATE SET enabled = excluded.enabled, updated_at = now();
