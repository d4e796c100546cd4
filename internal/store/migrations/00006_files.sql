-- +goose Up
-- Files uploaded into chats (issue 15). The bytes live in the file store (a directory or an
-- S3-compatible bucket) under blob_key; only their description lives here. A file is uploaded
-- first (state 'uploading' while its bytes stream, then 'stored'), then attached to one
-- message (message_id, position among that message's files, attached_at). A file not
-- attached within 24 hours, or whose message is gone (message_id NULL, attached_at set), is
-- deleted with its bytes by the janitor. Thumbnails of images are made off the request path:
-- thumb_state 'pending' until an instance claims it (thumb_claimed_at) and makes it.
CREATE TABLE files (
    id               {{ID}},
    chat_id          BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    uploader_id      BIGINT REFERENCES users (id) ON DELETE SET NULL,
    state            TEXT NOT NULL CHECK (state IN ('uploading', 'stored')),
    blob_key         TEXT NOT NULL,
    name             TEXT NOT NULL DEFAULT '',
    size             BIGINT NOT NULL DEFAULT 0,
    content_type     TEXT NOT NULL DEFAULT '',
    sha256           {{BYTES}},
    width            INTEGER NOT NULL DEFAULT 0,
    height           INTEGER NOT NULL DEFAULT 0,
    orientation      INTEGER NOT NULL DEFAULT 1,  -- EXIF orientation of a JPEG, for its thumbnail
    created_at       BIGINT NOT NULL,
    message_id       BIGINT REFERENCES messages (id) ON DELETE SET NULL,
    position         INTEGER NOT NULL DEFAULT 0,
    attached_at      BIGINT,
    thumb_state      TEXT NOT NULL DEFAULT 'none' CHECK (thumb_state IN ('none', 'pending', 'ready', 'failed')),
    thumb_key        TEXT NOT NULL DEFAULT '',
    thumb_type       TEXT NOT NULL DEFAULT '',
    thumb_size       BIGINT NOT NULL DEFAULT 0,
    thumb_sha256     {{BYTES}},
    thumb_claimed_at BIGINT
);
CREATE INDEX files_message ON files (message_id, position) WHERE message_id IS NOT NULL;
CREATE INDEX files_uploader ON files (uploader_id, created_at);
CREATE INDEX files_chat ON files (chat_id);
CREATE INDEX files_unattached ON files (created_at) WHERE message_id IS NULL;
CREATE INDEX files_thumb_pending ON files (created_at) WHERE thumb_state = 'pending';

-- +goose Down
DROP TABLE files;
