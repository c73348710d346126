DROP TABLE sendgrid_event;
DROP TABLE suppression;
DROP TABLE preference;
DROP TABLE outbox;
DROP TABLE notification;
