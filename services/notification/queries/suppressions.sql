-- name: SuppressionInsert :exec
-- The first reason recorded stays: it is the one that explains the suppression.
INSERT INTO suppression (email, category, reason)
VALUES (lower(sqlc.arg(email)), sqlc.arg(category), sqlc.arg(reason))
ON CONFLICT (email, category) DO NOTHING;

-- name: SuppressionExists :one
-- A suppression for category '' covers every category.
SELECT EXISTS (
    SELECT 1 FROM suppression WHERE email = lower(sqlc.arg(email)) AND category IN ('', sqlc.arg(category)::text)
);
