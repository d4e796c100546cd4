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

-- +goose Down
ALTER TABLE members DROP COLUMN muted_until;
ALTER TABLE members DROP COLUMN notify;
DROP TABLE search_state;
DROP TABLE message_search;
