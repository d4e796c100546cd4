-- +goose Up
-- Withdrawn notifications (issue 16). push_shown is, per user and chat, the newest message a
-- push told the user's browsers of (the push service accepted it), until it is withdrawn: once
-- the member's read mark reaches seq (read on any device), the push worker queues a job for
-- the pair in push_jobs (ScanPushWithdrawals), which sends the browsers a withdrawal and
-- deletes the row. The read path writes nothing here: the row and the read mark are both
-- durable, so a crash loses no withdrawal, and one row makes one withdrawal however often
-- the chat is read.
CREATE TABLE push_shown (
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id  BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq      BIGINT NOT NULL,
    shown_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, chat_id)
);

-- +goose Down
DROP TABLE push_shown;
