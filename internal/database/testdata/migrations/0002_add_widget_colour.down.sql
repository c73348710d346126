DELETE FROM widgets WHERE name = 'seed';
ALTER TABLE widgets DROP COLUMN colour;
