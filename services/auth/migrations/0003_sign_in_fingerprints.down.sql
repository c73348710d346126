DROP TABLE sign_in_fingerprints;
