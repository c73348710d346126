ALTER TABLE refresh_tokens DROP COLUMN successor_seed;
ALTER TABLE api_keys DROP COLUMN session_id;
DROP TABLE trusted_devices;
