DROP TABLE stripe_usage_reports;
DROP TABLE alerts;
DROP TABLE totals;
DROP TABLE idempotency_keys;
DROP TABLE events;
DROP FUNCTION events_drop_partitions(timestamptz);
DROP FUNCTION events_create_partitions(timestamptz, timestamptz);
