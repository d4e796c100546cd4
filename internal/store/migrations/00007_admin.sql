-- +goose Up
-- Running a group and an account (issue 14).
--
-- Roles: a group's members are its owner, admins and members. PostgreSQL swaps the role's
-- check; SQLite cannot alter a check, so it copies the table (lines that start with
-- "--sqlite " run on SQLite only, "--pg " on PostgreSQL only).
--pg ALTER TABLE members DROP CONSTRAINT members_role_check;
--pg ALTER TABLE members ADD CONSTRAINT members_role_check CHECK (role IN ('owner', 'admin', 'member'));
--sqlite CREATE TABLE members_new (
--sqlite     chat_id       BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
--sqlite     user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
--sqlite     role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
--sqlite     joined_at     BIGINT NOT NULL,
--sqlite     last_read_seq BIGINT NOT NULL DEFAULT 0,
--sqlite     PRIMARY KEY (chat_id, user_id)
--sqlite );
--sqlite INSERT INTO members_new (chat_id, user_id, role, joined_at, last_read_seq)
--sqlite     SELECT chat_id, user_id, role, joined_at, last_read_seq FROM members;
--sqlite DROP TABLE members;
--sqlite ALTER TABLE members_new RENAME TO members;
--sqlite CREATE INDEX members_user ON members (user_id, chat_id);
--sqlite CREATE INDEX members_read ON members (chat_id, last_read_seq);

-- Until now an owner could leave and leave their group without one: the member who has been
-- there longest takes it over (from now on, a leaving owner hands the group on at once).
UPDATE members SET role = 'owner'
WHERE chat_id IN (SELECT c.id FROM chats c WHERE c.kind = 'group'
        AND NOT EXISTS (SELECT 1 FROM members o WHERE o.chat_id = c.id AND o.role = 'owner'))
    AND user_id = (SELECT f.user_id FROM members f WHERE f.chat_id = members.chat_id
        ORDER BY f.joined_at, f.user_id LIMIT 1);

-- A group's description, shown with its details.
ALTER TABLE chats ADD COLUMN description TEXT NOT NULL DEFAULT '';
-- A private chat whose other member deleted their account: readable, but nobody can send.
ALTER TABLE chats ADD COLUMN read_only BOOLEAN NOT NULL DEFAULT FALSE;
-- A deleted group: its members and messages are gone; the row stays, so that its files are
-- removed by the janitor (files.chat_id) and its id is never reused.
ALTER TABLE chats ADD COLUMN deleted_at BIGINT;

-- What a system message says beyond its type and users: the new title of chat_renamed, the
-- role of role_changed, 'true' or 'false' for visibility_changed.
ALTER TABLE messages ADD COLUMN event_text TEXT;

-- When the user's last WebSocket on some instance closed (chat.Service.Seen): "last seen".
ALTER TABLE users ADD COLUMN last_seen_at BIGINT;
-- A deleted account: anonymized in place (its messages stay, signed "Deleted user").
ALTER TABLE users ADD COLUMN deleted_at BIGINT;

-- +goose Down
ALTER TABLE users DROP COLUMN deleted_at;
ALTER TABLE users DROP COLUMN last_seen_at;
ALTER TABLE messages DROP COLUMN event_text;
ALTER TABLE chats DROP COLUMN deleted_at;
ALTER TABLE chats DROP COLUMN read_only;
ALTER TABLE chats DROP COLUMN description;
UPDATE members SET role = 'member' WHERE role = 'admin';
--pg ALTER TABLE members DROP CONSTRAINT members_role_check;
--pg ALTER TABLE members ADD CONSTRAINT members_role_check CHECK (role IN ('owner', 'member'));
