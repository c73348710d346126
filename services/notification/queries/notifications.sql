-- name: NotificationInsert :one
-- Does nothing when the idempotency key was seen: the caller then reads the first one.
INSERT INTO notification (idempotency_key, user_id, email, category, template, data, title, body_text, body_html, channels, in_inbox)
VALUES (sqlc.arg(idempotency_key), sqlc.narg(user_id), sqlc.narg(email), sqlc.arg(category), sqlc.arg(template), sqlc.arg(data), sqlc.arg(title), sqlc.arg(body_text), sqlc.arg(body_html), sqlc.arg(channels), sqlc.arg(in_inbox))
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING *;

-- name: NotificationGetByIdempotencyKey :one
SELECT * FROM notification WHERE idempotency_key = sqlc.arg(idempotency_key);

-- name: NotificationGetByID :one
SELECT * FROM notification WHERE id = sqlc.arg(id);

-- name: NotificationGetInInbox :one
SELECT * FROM notification WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id) AND in_inbox;

-- name: NotificationListInbox :many
-- Keyset pagination on (created_at, id), newest first; the cursor is the last row of the
-- previous page.
SELECT * FROM notification
WHERE user_id = sqlc.arg(user_id)
  AND in_inbox
  AND (NOT sqlc.arg(unread_only)::boolean OR read_at IS NULL)
  AND (sqlc.arg(category)::text = '' OR category = sqlc.arg(category)::text)
  AND (sqlc.narg(after_created_at)::timestamptz IS NULL
       OR (created_at, id) < (sqlc.narg(after_created_at)::timestamptz, sqlc.narg(after_id)::uuid))
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows);

-- name: NotificationCountUnread :one
SELECT count(*)::integer FROM notification WHERE user_id = sqlc.arg(user_id) AND in_inbox AND read_at IS NULL;

-- name: NotificationMarkRead :one
-- Keeps the first read time: marking twice changes nothing.
UPDATE notification SET read_at = coalesce(read_at, now())
WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id) AND in_inbox
RETURNING *;

-- name: NotificationMarkAllRead :execrows
UPDATE notification SET read_at = now()
WHERE user_id = sqlc.arg(user_id)
  AND in_inbox
  AND read_at IS NULL
  AND (sqlc.arg(category)::text = '' OR category = sqlc.arg(category)::text)
  AND (sqlc.narg(before)::timestamptz IS NULL OR created_at <= sqlc.narg(before)::timestamptz);
