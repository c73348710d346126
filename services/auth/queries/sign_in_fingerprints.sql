-- name: SignInFingerprintSee :one
-- Records a sign-in from a fingerprint and says whether the account had not used it
-- (or not within the time kept: SignInFingerprintPrune runs first).
INSERT INTO sign_in_fingerprints (user_id, fingerprint, last_seen_time)
VALUES (@user_id, @fingerprint, @last_seen_time)
ON CONFLICT (user_id, fingerprint) DO UPDATE SET last_seen_time = EXCLUDED.last_seen_time
RETURNING (xmax = 0)::boolean AS first_seen;

-- name: SignInFingerprintPrune :exec
-- Forgets a user's fingerprints unused since @seen_before, and all but the newest
-- @keep, so that sign-ins from ever-new networks do not grow the table without bound.
DELETE FROM sign_in_fingerprints AS f
WHERE f.user_id = @user_id
  AND (f.last_seen_time < @seen_before OR f.fingerprint NOT IN (
    SELECT k.fingerprint FROM sign_in_fingerprints AS k WHERE k.user_id = @user_id
    ORDER BY k.last_seen_time DESC LIMIT @keep::int
  ));
