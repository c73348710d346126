-- name: SendgridEventInsert :execrows
-- Answers 0 rows for an event already processed.
INSERT INTO sendgrid_event (sg_event_id, event) VALUES (sqlc.arg(sg_event_id), sqlc.arg(event))
ON CONFLICT (sg_event_id) DO NOTHING;

-- name: SendgridEventDeleteBefore :execrows
-- SendGrid stops retrying a delivery after 72 hours; ids older than that cannot come back.
DELETE FROM sendgrid_event WHERE received_at < sqlc.arg(before);
