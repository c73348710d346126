-- Fails unless 0001 ran first, which is what the ordering test relies on.
ALTER TABLE widgets ADD COLUMN colour text NOT NULL DEFAULT 'blue';
INSERT INTO widgets (name) VALUES ('seed');
