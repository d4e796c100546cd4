-- +goose Up
-- One schema for PostgreSQL and SQLite. Before goose reads this file the store replaces
-- {{ID}}, {{BYTES}} and {{PATTERN_OPS}} with each dialect's words, and uncomments lines that
-- start with "--pg " on PostgreSQL only. Every time is milliseconds since the Unix epoch.
CREATE TABLE users (
    id            {{ID}},
    email         TEXT NOT NULL,           -- stored lowercased: emails compare case-insensitively
    name          TEXT NOT NULL,
    name_fold     TEXT NOT NULL,           -- lowercased by the server (Unicode), for search
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_name_prefix ON users (name_fold{{PATTERN_OPS}});
--pg CREATE INDEX users_email_prefix ON users (email text_pattern_ops);

CREATE TABLE sessions (
    id           {{ID}},
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash {{BYTES}} NOT NULL,       -- SHA-256 of the current refresh token
    user_agent   TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE UNIQUE INDEX sessions_refresh ON sessions (refresh_hash);
CREATE INDEX sessions_user ON sessions (user_id);

-- Refresh tokens that were rotated away: presenting one again revokes its session.
CREATE TABLE refresh_rotated (
    hash       {{BYTES}} PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    rotated_at BIGINT NOT NULL
);
CREATE INDEX refresh_rotated_session ON refresh_rotated (session_id);

CREATE TABLE chats (
    id           {{ID}},
    kind         TEXT NOT NULL CHECK (kind IN ('private', 'group')),
    title        TEXT NOT NULL DEFAULT '',
    title_fold   TEXT NOT NULL DEFAULT '', -- lowercased by the server (Unicode), for search
    public       BOOLEAN NOT NULL DEFAULT FALSE,
    creator_id   BIGINT REFERENCES users (id) ON DELETE SET NULL,
    pair_key     TEXT,                     -- 'low:high' user ids of a private chat; NULL for groups
    created_at   BIGINT NOT NULL,
    activity_at  BIGINT NOT NULL,          -- time of the last message: the chat list's order
    last_seq     BIGINT NOT NULL DEFAULT 0,
    read_all_seq BIGINT NOT NULL DEFAULT 0, -- min(last_read_seq) over the members
    member_count INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX chats_pair ON chats (pair_key) WHERE pair_key IS NOT NULL;
CREATE INDEX chats_public ON chats (title_fold) WHERE public AND kind = 'group';

CREATE TABLE members (
    chat_id       BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at     BIGINT NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX members_user ON members (user_id, chat_id);
CREATE INDEX members_read ON members (chat_id, last_read_seq);

CREATE TABLE messages (
    id             {{ID}},
    chat_id        BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq            BIGINT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('text', 'system')),
    sender_id      BIGINT REFERENCES users (id) ON DELETE SET NULL,
    body           TEXT NOT NULL,
    client_id      TEXT,
    created_at     BIGINT NOT NULL,
    event_type     TEXT,
    event_user_id  BIGINT,
    event_actor_id BIGINT
);
CREATE UNIQUE INDEX messages_seq ON messages (chat_id, seq);
CREATE UNIQUE INDEX messages_client ON messages (chat_id, sender_id, client_id) WHERE client_id IS NOT NULL;

-- +goose Down
DROP TABLE messages;
DROP TABLE members;
DROP TABLE chats;
DROP TABLE refresh_rotated;
DROP TABLE sessions;
DROP TABLE users;
