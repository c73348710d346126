DROP TABLE stripe_events;
DROP TABLE subscriptions;
DROP SEQUENCE stripe_reads;
DROP TABLE customers;
