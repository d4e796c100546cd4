-- +goose Up
-- Message search (issue 16). Text messages are copied, case-folded by the server
-- (chat.FoldSearch), into an index of substrings by an indexer that runs after commit
-- (searchindex.go), never in a send's transaction: PostgreSQL keeps the copies in a table
-- with a pg_trgm GIN index, SQLite in an FTS5 table with the trigram tokenizer (its rowid is
-- the message's id). search_state.indexed_to is the indexer's high-water mark: every text
-- message with a smaller or equal id is in the index. Searches check each hit against the
-- message's current body, so a copy that an edit or deletion made stale never shows.
-- +postgres begin
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE message_search (
    id      BIGINT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    chat_id BIGINT NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX message_search_body ON message_search USING gin (body gin_trgm_ops);
-- +postgres end
-- +sqlite begin
CREATE VIRTUAL TABLE message_search USING fts5 (body, chat_id UNINDEXED, tokenize = 'trigram');
-- +sqlite end
CREATE TABLE search_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_to BIGINT NOT NULL
);
INSERT INTO search_state (id, indexed_to) VALUES (1, 0);

-- Notification settings of a member (issue 16): notify NULL until the member chooses (the
-- default depends on the chat, chat.DefaultNotify); muted_until in ms, NULL when not muted.
ALTER TABLE members ADD COLUMN notify TEXT CHECK (notify IN ('all', 'mentions', 'none'));
ALTER TABLE members ADD COLUMN muted_until BIGINT;

-- Web Push (issue 16). A subscription is a browser's push endpoint with its keys (RFC 8291),
-- for one user. push_jobs is the durable queue: one row per user and chat with something to
-- tell (collapsed: a burst of messages updates seq), due at due_at; an instance that claims a
-- job holds it until lease_until, so a crashed instance's jobs are taken by another.
-- push_state.scanned_to is the high-water mark of the scanner that turns committed messages
-- into jobs (the search indexer's way: nothing is added to a send's transaction).
CREATE TABLE push_subscriptions (
    id         {{ID}},
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint   TEXT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX push_subscriptions_endpoint ON push_subscriptions (endpoint);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
CREATE TABLE push_jobs (
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id     BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    due_at      BIGINT NOT NULL,
    lease_until BIGINT,
    claimed_by  TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, chat_id)
);
CREATE INDEX push_jobs_due ON push_jobs (due_at);
CREATE TABLE push_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    scanned_to BIGINT NOT NULL
);
-- History before push existed is no one's news.
INSERT INTO push_state (id, scanned_to) SELECT 1, COALESCE(max(id), 0) FROM messages;

-- +goose Down
DROP TABLE push_state;
DROP TABLE push_jobs;
DROP TABLE push_subscriptions;
ALTER TABLE members DROP COLUMN muted_until;
ALTER TABLE members DROP COLUMN notify;
DROP TABLE search_state;
DROP TABLE message_search;
