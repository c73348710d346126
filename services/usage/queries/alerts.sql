-- name: AlertGet :one
SELECT * FROM alerts
WHERE user_id = @user_id AND meter = @meter AND period_start = @period_start AND threshold = @threshold;

-- name: AlertMarkSent :exec
UPDATE alerts SET sent_time = @sent_time
WHERE user_id = @user_id AND meter = @meter AND period_start = @period_start AND threshold = @threshold
    AND sent_time IS NULL;

-- name: AlertListUnsent :many
-- Alerts raised before cutoff whose notification has not gone out: those whose job was
-- never inserted, because the process that raised them stopped first.
SELECT * FROM alerts
WHERE sent_time IS NULL AND create_time < @cutoff
ORDER BY create_time
LIMIT @max;

-- name: AlertDeleteEndedBefore :execrows
DELETE FROM alerts WHERE period_end < @cutoff;
