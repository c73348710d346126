-- name: StripeEventExists :one
SELECT EXISTS (SELECT 1 FROM stripe_events WHERE id = @id);

-- name: StripeEventInsert :execrows
-- StripeEventInsert records an event; no row is inserted when it was recorded before.
-- A concurrent delivery of the same event waits here until the first one's transaction
-- ends, then inserts nothing.
INSERT INTO stripe_events (id, type, api_version, object_id, outcome, create_time)
VALUES (@id, @type, @api_version, @object_id, @outcome, @create_time)
ON CONFLICT (id) DO NOTHING;

-- name: StripeEventSetOutcome :exec
UPDATE stripe_events SET outcome = @outcome WHERE id = @id;

-- name: StripeEventGet :one
SELECT * FROM stripe_events WHERE id = @id;
