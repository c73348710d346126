DROP TABLE signing_keys;
DROP TABLE api_keys;
DROP TABLE email_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
