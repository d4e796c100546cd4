-- +goose Up
-- A browser's push subscription belongs to the session that made it: revoking that session
-- (signing out, "sign out of all devices", the Devices list, a password change) or its expiry
-- stops its pushes, as it stops its WebSocket. Before, a subscription belonged to the user, and
-- a browser signed out from another device went on showing that user's messages in its
-- notifications. Subscriptions made before this cannot tell which session made them, so they
-- go: the web client subscribes again each time it starts, now with its session, and a
-- browser whose session was revoked meanwhile is not pushed to for ever.
DELETE FROM push_subscriptions;
ALTER TABLE push_subscriptions ADD COLUMN session_id BIGINT REFERENCES sessions (id) ON DELETE CASCADE;
CREATE INDEX push_subscriptions_session ON push_subscriptions (session_id);

-- +goose Down
DROP INDEX push_subscriptions_session;
ALTER TABLE push_subscriptions DROP COLUMN session_id;
