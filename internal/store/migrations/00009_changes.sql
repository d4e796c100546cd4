-- +goose Up
-- Messages that change (issue 13): edits, deletes, reactions and replies.
--
-- Every change of a chat's messages takes the chat's next change number, chats.last_rev (1, 2,
-- 3 ... with no gaps, in commit order), under the chat's row lock, as a send takes its seq; the
-- changed message records it in messages.rev (the rev of its last change; 0: never changed).
-- Receivers heal rev gaps from the store as they heal seq gaps, by messages_rev: the latest
-- state of each message changed after a rev. The index is partial, so that a new message
-- (rev 0) costs the send path nothing.
ALTER TABLE chats ADD COLUMN last_rev BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
-- A deleted message is a tombstone: it keeps its seq (numbering stays gapless), its body is
-- emptied and its reactions are deleted, so that nothing of it can be read back.
ALTER TABLE messages ADD COLUMN deleted_at BIGINT;
-- The seq of the message of the same chat this one answers.
ALTER TABLE messages ADD COLUMN reply_to_seq BIGINT;
CREATE INDEX messages_rev ON messages (chat_id, rev) WHERE rev > 0;

-- One row per user and emoji on a message; a message's rows go with it (a deleted group).
CREATE TABLE reactions (
    chat_id    BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    emoji      TEXT NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (chat_id, seq, emoji, user_id),
    FOREIGN KEY (chat_id, seq) REFERENCES messages (chat_id, seq) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE reactions;
DROP INDEX messages_rev;
ALTER TABLE messages DROP COLUMN reply_to_seq;
ALTER TABLE messages DROP COLUMN deleted_at;
ALTER TABLE messages DROP COLUMN edited_at;
ALTER TABLE messages DROP COLUMN rev;
ALTER TABLE chats DROP COLUMN last_rev;
