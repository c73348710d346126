DROP TABLE storage_levels;
DROP TABLE assets;
