-- +goose Up
-- Which client a rotation came from (a digest of its user agent and address): a retry of a
-- lost refresh answer within chat.RefreshRetryGrace is honoured only from that same client.
-- Rows rotated before this migration have none, so they never qualify for a retry.
ALTER TABLE refresh_rotated ADD COLUMN client {{BYTES}};

-- +goose Down
ALTER TABLE refresh_rotated DROP COLUMN client;
