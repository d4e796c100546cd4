-- +goose Up
-- send_messages stores a batch of sends (internal/store/sendpg.go) in one statement, so that a
-- busy chat's row is locked for one round trip and the commit, not for several. The batch comes
-- as arrays, one element per send, each chat's sends in queue order; the answer is one row per
-- send, by its 1-based index k:
--   status 0: stored now under seq (id is the new message's);
--   status 1: stored before, by an earlier batch or earlier in this one, under (chat, sender,
--             client id): that message (id, seq, body, created_at);
--   status 2: the sender is not a member; status 3: the chat does not exist.
-- read_all is the chat's read-all mark the send reports: the mark before the batch, except on
-- the chat's last stored send, which carries the mark after it (grown: the batch raised it).
--
-- The chats are locked first, in id order (two batches never wait for each other in a cycle),
-- by a statement of their own: every statement of a function sees the database as of its own
-- start, so the statement that follows sees everything committed by whoever held a lock before
-- (in particular a message stored under the same client id: no unique violation can follow).
-- This function is the one place that takes a chat's counters (last_seq, read_all_seq; a
-- per-chat change number would be taken here too, under the same lock). A new signature gets
-- a new name: instances still running cache the statement with this one's result columns.
--
-- SQLite has no functions of this kind; its store runs the same steps statement by statement in
-- one immediate transaction (internal/store/sendsqlite.go).
-- +postgres begin
-- +goose StatementBegin
CREATE FUNCTION send_messages(p_chat BIGINT[], p_sender BIGINT[], p_client TEXT[], p_body TEXT[], p_at BIGINT[])
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

-- +goose Down
--pg DROP FUNCTION send_messages(BIGINT[], BIGINT[], TEXT[], TEXT[], BIGINT[]);
