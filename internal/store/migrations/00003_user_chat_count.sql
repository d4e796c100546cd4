-- +goose Up
-- How many chats each user belongs to, kept by every membership change, so that the cap on a
-- user's chats (CHAT_LIMIT_USER_CHATS) is checked in the changing transaction under the user's
-- row lock, as chats.member_count is for the cap on a group's members.
ALTER TABLE users ADD COLUMN chat_count INTEGER NOT NULL DEFAULT 0;
UPDATE users SET chat_count = (SELECT count(*) FROM members m WHERE m.user_id = users.id);

-- +goose Down
ALTER TABLE users DROP COLUMN chat_count;
