-- +goose Up
-- Running a group and an account (issue 14).
--
-- Roles: a group's members are its owner, admins and members. PostgreSQL swaps the role's
-- check; SQLite cannot alter a check, so it copies the table.
-- +postgres begin
ALTER TABLE members DROP CONSTRAINT members_role_check;
ALTER TABLE members ADD CONSTRAINT members_role_check CHECK (role IN ('owner', 'admin', 'member'));
-- +postgres end
-- +sqlite begin
CREATE TABLE members_new (
    chat_id       BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at     BIGINT NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
);
INSERT INTO members_new (chat_id, user_id, role, joined_at, last_read_seq)
    SELECT chat_id, user_id, role, joined_at, last_read_seq FROM members;
DROP TABLE members;
ALTER TABLE members_new RENAME TO members;
CREATE INDEX members_user ON members (user_id, chat_id);
CREATE INDEX members_read ON members (chat_id, last_read_seq);
-- +sqlite end

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

-- When one of the user's WebSockets last closed (chat.Service.Seen): "last seen".
ALTER TABLE users ADD COLUMN last_seen_at BIGINT;
-- A deleted account: anonymized in place (its messages stay, signed "Deleted user").
ALTER TABLE users ADD COLUMN deleted_at BIGINT;

-- send_messages (migration 00005) as it was, except that a read-only chat has no senders: a
-- member of it is answered as a non-member (status 2), and the service says why
-- (peer_deleted). The signature is the same, so instances still running call it unchanged.
-- SQLite's path checks the same (internal/store/sendsqlite.go, lockForSend).
-- +postgres begin
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION send_messages(p_chat BIGINT[], p_sender BIGINT[], p_client TEXT[], p_body TEXT[], p_at BIGINT[])
RETURNS TABLE (k INT, status SMALLINT, id BIGINT, seq BIGINT, body TEXT, created_at BIGINT, read_all BIGINT, grown BOOLEAN)
LANGUAGE plpgsql
-- One plan for every call, made once per session: planning the statement anew costs more than
-- running it. That plan must stay right however the tables grow after it is made (a plan made
-- on a fresh database, whose tables look empty, would scan messages whole at every call), so
-- it may not scan a table: every row is found through an index (the lookups below are LATERAL
-- ... LIMIT 1, run per send, so that they cannot become hash joins over a whole table).
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM chats c WHERE c.id = ANY (p_chat) ORDER BY c.id FOR NO KEY UPDATE;

    RETURN QUERY
    WITH req AS (
        SELECT r.k::INT AS k, r.chat_id, r.sender_id, r.client_id, r.body, r.at
        FROM unnest(p_chat, p_sender, p_client, p_body, p_at) WITH ORDINALITY AS r (chat_id, sender_id, client_id, body, at, k)
    ),
    -- Each send as its chat stands now: the chat's counters, the sender's read mark (NULL: not
    -- a member), the message already stored under its client id.
    seen AS (
        SELECT q.*, c.id IS NOT NULL AS chat_found, c.last_seq, c.read_all_seq, m.last_read_seq AS mark,
            p.id AS prev_id, p.seq AS prev_seq, p.body AS prev_body, p.created_at AS prev_at
        FROM req q
        LEFT JOIN LATERAL (SELECT c.id, c.last_seq, c.read_all_seq, c.read_only FROM chats c WHERE c.id = q.chat_id LIMIT 1) c ON TRUE
        LEFT JOIN LATERAL (SELECT m.last_read_seq FROM members m
            WHERE m.chat_id = q.chat_id AND m.user_id = q.sender_id AND NOT c.read_only LIMIT 1) m ON TRUE
        LEFT JOIN LATERAL (SELECT p.id, p.seq, p.body, p.created_at FROM messages p
            WHERE p.chat_id = q.chat_id AND p.sender_id = q.sender_id AND p.client_id = q.client_id LIMIT 1) p ON TRUE
    ),
    firsts AS (
        SELECT s.*, row_number() OVER (PARTITION BY s.chat_id, s.sender_id, s.client_id ORDER BY s.k) AS nth
        FROM seen s
        WHERE s.mark IS NOT NULL AND s.prev_id IS NULL
    ),
    -- The sends to store, numbered after their chat's last seq in queue order.
    fresh AS (
        SELECT f.*, f.last_seq + row_number() OVER (PARTITION BY f.chat_id ORDER BY f.k) AS new_seq
        FROM firsts f
        WHERE f.nth = 1
    ),
    ins AS (
        INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at)
        SELECT f.chat_id, f.new_seq, 'text', f.sender_id, f.body, f.client_id, f.at FROM fresh f ORDER BY f.chat_id, f.new_seq
        RETURNING messages.id, messages.chat_id, messages.seq
    ),
    -- Sending reads everything before: each sender's mark moves to their last message.
    marks AS (
        SELECT f.chat_id, f.sender_id, max(f.new_seq) AS mark FROM fresh f GROUP BY f.chat_id, f.sender_id
    ),
    set_marks AS (
        UPDATE members m SET last_read_seq = x.mark FROM marks x WHERE m.chat_id = x.chat_id AND m.user_id = x.sender_id
    ),
    -- read_all_seq is the members' least read mark. It can rise only when a sender was holding
    -- it back; then it is the least of the senders' new marks and the others' marks (this
    -- statement sees the members as they were before set_marks, hence the two parts).
    per_chat AS (
        SELECT f.chat_id, max(f.new_seq) AS last_seq, max(f.at) AS latest, min(f.read_all_seq) AS old,
            bool_or(f.mark <= f.read_all_seq) AS holds_min
        FROM fresh f GROUP BY f.chat_id
    ),
    raised AS (
        SELECT p.chat_id, p.last_seq, p.latest, p.old,
            CASE WHEN p.holds_min THEN greatest(p.old, least(
                (SELECT min(x.mark) FROM marks x WHERE x.chat_id = p.chat_id),
                (SELECT min(m.last_read_seq) FROM members m WHERE m.chat_id = p.chat_id
                    AND m.user_id NOT IN (SELECT x.sender_id FROM marks x WHERE x.chat_id = p.chat_id))))
            ELSE p.old END AS new
        FROM per_chat p
    ),
    set_chats AS (
        UPDATE chats c SET last_seq = r.last_seq, activity_at = r.latest, read_all_seq = r.new
        FROM raised r WHERE c.id = r.chat_id
    )
    SELECT s.k,
        (CASE WHEN NOT s.chat_found THEN 3 WHEN s.mark IS NULL THEN 2 WHEN s.prev_id IS NULL AND f.k = s.k THEN 0 ELSE 1 END)::SMALLINT,
        coalesce(s.prev_id, i.id), coalesce(s.prev_seq, f.new_seq), coalesce(s.prev_body, f.body), coalesce(s.prev_at, f.at),
        CASE WHEN f.k = s.k AND f.new_seq = r.last_seq THEN r.new ELSE s.read_all_seq END,
        coalesce(f.k = s.k AND f.new_seq = r.last_seq AND r.new > r.old, FALSE)
    FROM seen s
    LEFT JOIN fresh f ON f.chat_id = s.chat_id AND f.sender_id = s.sender_id AND f.client_id = s.client_id
    LEFT JOIN ins i ON i.chat_id = f.chat_id AND i.seq = f.new_seq
    LEFT JOIN raised r ON r.chat_id = f.chat_id
    ORDER BY s.k;
END
$$;
-- +goose StatementEnd
-- +postgres end

-- +goose Down
-- +postgres begin
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION send_messages(p_chat BIGINT[], p_sender BIGINT[], p_client TEXT[], p_body TEXT[], p_at BIGINT[])
RETURNS TABLE (k INT, status SMALLINT, id BIGINT, seq BIGINT, body TEXT, created_at BIGINT, read_all BIGINT, grown BOOLEAN)
LANGUAGE plpgsql
-- One plan for every call, made once per session: planning the statement anew costs more than
-- running it. That plan must stay right however the tables grow after it is made (a plan made
-- on a fresh database, whose tables look empty, would scan messages whole at every call), so
-- it may not scan a table: every row is found through an index (the lookups below are LATERAL
-- ... LIMIT 1, run per send, so that they cannot become hash joins over a whole table).
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM chats c WHERE c.id = ANY (p_chat) ORDER BY c.id FOR NO KEY UPDATE;

    RETURN QUERY
    WITH req AS (
        SELECT r.k::INT AS k, r.chat_id, r.sender_id, r.client_id, r.body, r.at
        FROM unnest(p_chat, p_sender, p_client, p_body, p_at) WITH ORDINALITY AS r (chat_id, sender_id, client_id, body, at, k)
    ),
    -- Each send as its chat stands now: the chat's counters, the sender's read mark (NULL: not
    -- a member), the message already stored under its client id.
    seen AS (
        SELECT q.*, c.id IS NOT NULL AS chat_found, c.last_seq, c.read_all_seq, m.last_read_seq AS mark,
            p.id AS prev_id, p.seq AS prev_seq, p.body AS prev_body, p.created_at AS prev_at
        FROM req q
        LEFT JOIN LATERAL (SELECT c.id, c.last_seq, c.read_all_seq FROM chats c WHERE c.id = q.chat_id LIMIT 1) c ON TRUE
        LEFT JOIN LATERAL (SELECT m.last_read_seq FROM members m
            WHERE m.chat_id = q.chat_id AND m.user_id = q.sender_id LIMIT 1) m ON TRUE
        LEFT JOIN LATERAL (SELECT p.id, p.seq, p.body, p.created_at FROM messages p
            WHERE p.chat_id = q.chat_id AND p.sender_id = q.sender_id AND p.client_id = q.client_id LIMIT 1) p ON TRUE
    ),
    firsts AS (
        SELECT s.*, row_number() OVER (PARTITION BY s.chat_id, s.sender_id, s.client_id ORDER BY s.k) AS nth
        FROM seen s
        WHERE s.mark IS NOT NULL AND s.prev_id IS NULL
    ),
    -- The sends to store, numbered after their chat's last seq in queue order.
    fresh AS (
        SELECT f.*, f.last_seq + row_number() OVER (PARTITION BY f.chat_id ORDER BY f.k) AS new_seq
        FROM firsts f
        WHERE f.nth = 1
    ),
    ins AS (
        INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at)
        SELECT f.chat_id, f.new_seq, 'text', f.sender_id, f.body, f.client_id, f.at FROM fresh f ORDER BY f.chat_id, f.new_seq
        RETURNING messages.id, messages.chat_id, messages.seq
    ),
    -- Sending reads everything before: each sender's mark moves to their last message.
    marks AS (
        SELECT f.chat_id, f.sender_id, max(f.new_seq) AS mark FROM fresh f GROUP BY f.chat_id, f.sender_id
    ),
    set_marks AS (
        UPDATE members m SET last_read_seq = x.mark FROM marks x WHERE m.chat_id = x.chat_id AND m.user_id = x.sender_id
    ),
    -- read_all_seq is the members' least read mark. It can rise only when a sender was holding
    -- it back; then it is the least of the senders' new marks and the others' marks (this
    -- statement sees the members as they were before set_marks, hence the two parts).
    per_chat AS (
        SELECT f.chat_id, max(f.new_seq) AS last_seq, max(f.at) AS latest, min(f.read_all_seq) AS old,
            bool_or(f.mark <= f.read_all_seq) AS holds_min
        FROM fresh f GROUP BY f.chat_id
    ),
    raised AS (
        SELECT p.chat_id, p.last_seq, p.latest, p.old,
            CASE WHEN p.holds_min THEN greatest(p.old, least(
                (SELECT min(x.mark) FROM marks x WHERE x.chat_id = p.chat_id),
                (SELECT min(m.last_read_seq) FROM members m WHERE m.chat_id = p.chat_id
                    AND m.user_id NOT IN (SELECT x.sender_id FROM marks x WHERE x.chat_id = p.chat_id))))
            ELSE p.old END AS new
        FROM per_chat p
    ),
    set_chats AS (
        UPDATE chats c SET last_seq = r.last_seq, activity_at = r.latest, read_all_seq = r.new
        FROM raised r WHERE c.id = r.chat_id
    )
    SELECT s.k,
        (CASE WHEN NOT s.chat_found THEN 3 WHEN s.mark IS NULL THEN 2 WHEN s.prev_id IS NULL AND f.k = s.k THEN 0 ELSE 1 END)::SMALLINT,
        coalesce(s.prev_id, i.id), coalesce(s.prev_seq, f.new_seq), coalesce(s.prev_body, f.body), coalesce(s.prev_at, f.at),
        CASE WHEN f.k = s.k AND f.new_seq = r.last_seq THEN r.new ELSE s.read_all_seq END,
        coalesce(f.k = s.k AND f.new_seq = r.last_seq AND r.new > r.old, FALSE)
    FROM seen s
    LEFT JOIN fresh f ON f.chat_id = s.chat_id AND f.sender_id = s.sender_id AND f.client_id = s.client_id
    LEFT JOIN ins i ON i.chat_id = f.chat_id AND i.seq = f.new_seq
    LEFT JOIN raised r ON r.chat_id = f.chat_id
    ORDER BY s.k;
END
$$;
-- +goose StatementEnd
-- +postgres end
ALTER TABLE users DROP COLUMN deleted_at;
ALTER TABLE users DROP COLUMN last_seen_at;
ALTER TABLE messages DROP COLUMN event_text;
ALTER TABLE chats DROP COLUMN deleted_at;
ALTER TABLE chats DROP COLUMN read_only;
ALTER TABLE chats DROP COLUMN description;
-- Admins become members again; SQLite keeps the wider check (a table copy buys nothing here).
UPDATE members SET role = 'member' WHERE role = 'admin';
-- +postgres begin
ALTER TABLE members DROP CONSTRAINT members_role_check;
ALTER TABLE members ADD CONSTRAINT members_role_check CHECK (role IN ('owner', 'member'));
-- +postgres end
