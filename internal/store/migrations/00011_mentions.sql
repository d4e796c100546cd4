-- +goose Up
-- Mentions (issue 16). A text message may mention members of its chat: messages.mentions is
-- the list of mentioned user ids as stored ("12,45"; NULL: none), only members of the chat at
-- the send (others are dropped) and never the sender; messages.mention_all is @all (groups
-- only). The mentions table holds one row per mentioned member (none for an @all message), so
-- that a member's unread mentions in a chat are an index range: their rows above their read
-- mark, plus the chat's @all messages above it (messages_mention_all). A deleted message loses
-- its mentions with its body. chats.mention_all_admins: only the group's owner and admins may
-- mention @all.
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE messages ADD COLUMN mention_all BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE chats ADD COLUMN mention_all_admins BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX messages_mention_all ON messages (chat_id, seq) WHERE mention_all;
CREATE TABLE mentions (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    PRIMARY KEY (user_id, chat_id, seq),
    FOREIGN KEY (chat_id, seq) REFERENCES messages (chat_id, seq) ON DELETE CASCADE
);
-- A message's rows, for deleting them with it.
CREATE INDEX mentions_message ON mentions (chat_id, seq);

-- send_messages (migration 00009) as it was, and a send may mention: p_mention_send and
-- p_mention_user pair each send's 1-based index with a user it mentions (the service passes
-- each user once, never the sender), p_mention_all gives each send's @all. Mentioned users who
-- are not members of the chat are dropped; @all in a private chat, or in a group that keeps it
-- to its owner and admins by a member, stores nothing and is answered with status 6. The new
-- parameters default to none and the result gains two columns at its end (the stored
-- mentions and @all), so an instance not yet upgraded calls it unchanged. SQLite's path does
-- the same (internal/store/sendsqlite.go).
-- +postgres begin
-- +goose StatementBegin
DROP FUNCTION send_messages(BIGINT[], BIGINT[], TEXT[], TEXT[], BIGINT[], BIGINT[], BIGINT[], BIGINT[]);
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION send_messages(p_chat BIGINT[], p_sender BIGINT[], p_client TEXT[], p_body TEXT[], p_at BIGINT[],
    p_file_send BIGINT[] DEFAULT NULL, p_file_id BIGINT[] DEFAULT NULL, p_reply BIGINT[] DEFAULT NULL,
    p_mention_send BIGINT[] DEFAULT NULL, p_mention_user BIGINT[] DEFAULT NULL, p_mention_all BOOLEAN[] DEFAULT NULL)
RETURNS TABLE (k INT, status SMALLINT, id BIGINT, seq BIGINT, body TEXT, created_at BIGINT, read_all BIGINT, grown BOOLEAN,
    mentions TEXT, mention_all BOOLEAN)
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
        SELECT r.k::INT AS k, r.chat_id, r.sender_id, r.client_id, r.body, r.at, coalesce(r.reply, 0) AS reply,
            coalesce(r.mention_all, FALSE) AS mention_all
        FROM unnest(p_chat, p_sender, p_client, p_body, p_at, p_reply, p_mention_all)
            WITH ORDINALITY AS r (chat_id, sender_id, client_id, body, at, reply, mention_all, k)
    ),
    -- The users each send mentions who are members of its chat (the others are dropped), in
    -- the order given, and the list as stored with the message.
    mentioned AS (
        SELECT w.k::INT AS k, w.user_id, w.n
        FROM unnest(p_mention_send, p_mention_user) WITH ORDINALITY AS w (k, user_id, n)
        JOIN req q ON q.k = w.k
        JOIN LATERAL (SELECT 1 FROM members mm WHERE mm.chat_id = q.chat_id AND mm.user_id = w.user_id LIMIT 1) mm ON TRUE
        WHERE w.user_id <> q.sender_id
    ),
    mention_list AS (
        SELECT x.k, string_agg(x.user_id::TEXT, ',' ORDER BY x.n) AS list FROM mentioned x GROUP BY x.k
    ),
    -- The files each send attaches, with their places among its files.
    wanted AS (
        SELECT w.k::INT AS k, w.file_id, (row_number() OVER (PARTITION BY w.k ORDER BY w.n) - 1)::INT AS pos
        FROM unnest(p_file_send, p_file_id) WITH ORDINALITY AS w (k, file_id, n)
    ),
    -- How many files each send with files names, and how many of them it may attach.
    usable AS (
        SELECT w.k, count(*) AS want, count(x.id) AS got
        FROM wanted w
        JOIN req q ON q.k = w.k
        LEFT JOIN LATERAL (SELECT x.id FROM files x WHERE x.id = w.file_id AND x.chat_id = q.chat_id
            AND x.uploader_id = q.sender_id AND x.state = 'stored' AND x.message_id IS NULL AND x.attached_at IS NULL
            AND x.created_at > q.at - 86400000 LIMIT 1) x ON TRUE
        GROUP BY w.k
    ),
    -- Each send as its chat stands now: the chat's counters, the sender's read mark (NULL: not
    -- a member), the message already stored under its client id, whether its files are free.
    seen AS (
        SELECT q.*, c.id IS NOT NULL AS chat_found, c.last_seq, c.read_all_seq, m.last_read_seq AS mark,
            p.id AS prev_id, p.seq AS prev_seq, p.body AS prev_body, p.created_at AS prev_at,
            p.mentions AS prev_mentions, p.mention_all AS prev_mention_all,
            coalesce(u.want, 0)::INT AS nfiles, coalesce(u.want = u.got, TRUE) AS files_ok,
            q.mention_all AND (c.kind <> 'group' OR (c.mention_all_admins AND m.role = 'member')) AS all_refused
        FROM req q
        LEFT JOIN LATERAL (SELECT c.id, c.kind, c.last_seq, c.read_all_seq, c.read_only, c.mention_all_admins FROM chats c
            WHERE c.id = q.chat_id LIMIT 1) c ON TRUE
        LEFT JOIN LATERAL (SELECT m.last_read_seq, m.role FROM members m
            WHERE m.chat_id = q.chat_id AND m.user_id = q.sender_id AND NOT c.read_only LIMIT 1) m ON TRUE
        LEFT JOIN LATERAL (SELECT p.id, p.seq, p.body, p.created_at, p.mentions, p.mention_all FROM messages p
            WHERE p.chat_id = q.chat_id AND p.sender_id = q.sender_id AND p.client_id = q.client_id LIMIT 1) p ON TRUE
        LEFT JOIN usable u ON u.k = q.k
    ),
    -- The sends that may be stored: by a member, not stored before, with free files, answering
    -- a message the chat has (if any), mentioning @all only where the sender may.
    cand AS (
        SELECT s.* FROM seen s WHERE s.mark IS NOT NULL AND s.prev_id IS NULL AND s.files_ok AND s.reply <= s.last_seq
            AND NOT s.all_refused
    ),
    -- A file named by several sends of the batch goes to the first of them (and its repeats);
    -- the others clash and are refused.
    owner AS (
        SELECT DISTINCT ON (w.file_id) w.file_id, c.sender_id, c.client_id
        FROM wanted w JOIN cand c ON c.k = w.k
        ORDER BY w.file_id, w.k
    ),
    clash AS (
        SELECT DISTINCT w.k FROM wanted w
        JOIN cand c ON c.k = w.k
        JOIN owner o ON o.file_id = w.file_id
        WHERE o.sender_id <> c.sender_id OR o.client_id <> c.client_id
    ),
    firsts AS (
        SELECT s.*, row_number() OVER (PARTITION BY s.chat_id, s.sender_id, s.client_id ORDER BY s.k) AS nth
        FROM cand s
        WHERE s.k NOT IN (SELECT c.k FROM clash c)
    ),
    -- The sends to store, numbered after their chat's last seq in queue order.
    fresh AS (
        SELECT f.*, f.last_seq + row_number() OVER (PARTITION BY f.chat_id ORDER BY f.k) AS new_seq
        FROM firsts f
        WHERE f.nth = 1
    ),
    ins AS (
        INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at, file_count, reply_to_seq, mentions, mention_all)
        SELECT f.chat_id, f.new_seq, 'text', f.sender_id, f.body, f.client_id, f.at, f.nfiles, nullif(f.reply, 0), ml.list, f.mention_all
        FROM fresh f LEFT JOIN mention_list ml ON ml.k = f.k ORDER BY f.chat_id, f.new_seq
        RETURNING messages.id, messages.chat_id, messages.seq
    ),
    -- The rows that count unread mentions: one per mentioned member, none for an @all message
    -- (it counts for every member by itself).
    ins_mentions AS (
        INSERT INTO mentions (user_id, chat_id, seq)
        SELECT x.user_id, f.chat_id, f.new_seq FROM fresh f JOIN mentioned x ON x.k = f.k WHERE NOT f.mention_all
    ),
    -- Each stored send's files are its message's now.
    attach AS (
        UPDATE files x SET message_id = i.id, position = w.pos, attached_at = f.at
        FROM fresh f
        JOIN wanted w ON w.k = f.k
        JOIN ins i ON i.chat_id = f.chat_id AND i.seq = f.new_seq
        WHERE x.id = w.file_id
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
        (CASE WHEN NOT s.chat_found THEN 3 WHEN s.mark IS NULL THEN 2 WHEN s.prev_id IS NOT NULL THEN 1
            WHEN s.reply > s.last_seq THEN 5
            WHEN s.all_refused THEN 6
            WHEN NOT s.files_ok OR s.k IN (SELECT c.k FROM clash c) THEN 4
            WHEN f.k = s.k THEN 0 ELSE 1 END)::SMALLINT,
        coalesce(s.prev_id, i.id), coalesce(s.prev_seq, f.new_seq), coalesce(s.prev_body, f.body), coalesce(s.prev_at, f.at),
        CASE WHEN f.k = s.k AND f.new_seq = r.last_seq THEN r.new ELSE s.read_all_seq END,
        coalesce(f.k = s.k AND f.new_seq = r.last_seq AND r.new > r.old, FALSE),
        CASE WHEN s.prev_id IS NOT NULL THEN s.prev_mentions ELSE fl.list END,
        coalesce(s.prev_mention_all, f.mention_all, FALSE)
    FROM seen s
    LEFT JOIN fresh f ON f.chat_id = s.chat_id AND f.sender_id = s.sender_id AND f.client_id = s.client_id
    LEFT JOIN ins i ON i.chat_id = f.chat_id AND i.seq = f.new_seq
    LEFT JOIN raised r ON r.chat_id = f.chat_id
    LEFT JOIN mention_list fl ON fl.k = f.k
    ORDER BY s.k;
END
$$;
-- +goose StatementEnd
-- +postgres end


-- +goose Down
-- send_messages of migration 00009 again (no mentions).
-- +postgres begin
-- +goose StatementBegin
DROP FUNCTION send_messages(BIGINT[], BIGINT[], TEXT[], TEXT[], BIGINT[], BIGINT[], BIGINT[], BIGINT[], BIGINT[], BIGINT[], BOOLEAN[]);
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION send_messages(p_chat BIGINT[], p_sender BIGINT[], p_client TEXT[], p_body TEXT[], p_at BIGINT[],
    p_file_send BIGINT[] DEFAULT NULL, p_file_id BIGINT[] DEFAULT NULL, p_reply BIGINT[] DEFAULT NULL)
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
        SELECT r.k::INT AS k, r.chat_id, r.sender_id, r.client_id, r.body, r.at, coalesce(r.reply, 0) AS reply
        FROM unnest(p_chat, p_sender, p_client, p_body, p_at, p_reply) WITH ORDINALITY AS r (chat_id, sender_id, client_id, body, at, reply, k)
    ),
    -- The files each send attaches, with their places among its files.
    wanted AS (
        SELECT w.k::INT AS k, w.file_id, (row_number() OVER (PARTITION BY w.k ORDER BY w.n) - 1)::INT AS pos
        FROM unnest(p_file_send, p_file_id) WITH ORDINALITY AS w (k, file_id, n)
    ),
    -- How many files each send with files names, and how many of them it may attach.
    usable AS (
        SELECT w.k, count(*) AS want, count(x.id) AS got
        FROM wanted w
        JOIN req q ON q.k = w.k
        LEFT JOIN LATERAL (SELECT x.id FROM files x WHERE x.id = w.file_id AND x.chat_id = q.chat_id
            AND x.uploader_id = q.sender_id AND x.state = 'stored' AND x.message_id IS NULL AND x.attached_at IS NULL
            AND x.created_at > q.at - 86400000 LIMIT 1) x ON TRUE
        GROUP BY w.k
    ),
    -- Each send as its chat stands now: the chat's counters, the sender's read mark (NULL: not
    -- a member), the message already stored under its client id, whether its files are free.
    seen AS (
        SELECT q.*, c.id IS NOT NULL AS chat_found, c.last_seq, c.read_all_seq, m.last_read_seq AS mark,
            p.id AS prev_id, p.seq AS prev_seq, p.body AS prev_body, p.created_at AS prev_at,
            coalesce(u.want, 0)::INT AS nfiles, coalesce(u.want = u.got, TRUE) AS files_ok
        FROM req q
        LEFT JOIN LATERAL (SELECT c.id, c.last_seq, c.read_all_seq, c.read_only FROM chats c WHERE c.id = q.chat_id LIMIT 1) c ON TRUE
        LEFT JOIN LATERAL (SELECT m.last_read_seq FROM members m
            WHERE m.chat_id = q.chat_id AND m.user_id = q.sender_id AND NOT c.read_only LIMIT 1) m ON TRUE
        LEFT JOIN LATERAL (SELECT p.id, p.seq, p.body, p.created_at FROM messages p
            WHERE p.chat_id = q.chat_id AND p.sender_id = q.sender_id AND p.client_id = q.client_id LIMIT 1) p ON TRUE
        LEFT JOIN usable u ON u.k = q.k
    ),
    -- The sends that may be stored: by a member, not stored before, with free files, answering
    -- a message the chat has (if any).
    cand AS (
        SELECT s.* FROM seen s WHERE s.mark IS NOT NULL AND s.prev_id IS NULL AND s.files_ok AND s.reply <= s.last_seq
    ),
    -- A file named by several sends of the batch goes to the first of them (and its repeats);
    -- the others clash and are refused.
    owner AS (
        SELECT DISTINCT ON (w.file_id) w.file_id, c.sender_id, c.client_id
        FROM wanted w JOIN cand c ON c.k = w.k
        ORDER BY w.file_id, w.k
    ),
    clash AS (
        SELECT DISTINCT w.k FROM wanted w
        JOIN cand c ON c.k = w.k
        JOIN owner o ON o.file_id = w.file_id
        WHERE o.sender_id <> c.sender_id OR o.client_id <> c.client_id
    ),
    firsts AS (
        SELECT s.*, row_number() OVER (PARTITION BY s.chat_id, s.sender_id, s.client_id ORDER BY s.k) AS nth
        FROM cand s
        WHERE s.k NOT IN (SELECT c.k FROM clash c)
    ),
    -- The sends to store, numbered after their chat's last seq in queue order.
    fresh AS (
        SELECT f.*, f.last_seq + row_number() OVER (PARTITION BY f.chat_id ORDER BY f.k) AS new_seq
        FROM firsts f
        WHERE f.nth = 1
    ),
    ins AS (
        INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at, file_count, reply_to_seq)
        SELECT f.chat_id, f.new_seq, 'text', f.sender_id, f.body, f.client_id, f.at, f.nfiles, nullif(f.reply, 0)
        FROM fresh f ORDER BY f.chat_id, f.new_seq
        RETURNING messages.id, messages.chat_id, messages.seq
    ),
    -- Each stored send's files are its message's now.
    attach AS (
        UPDATE files x SET message_id = i.id, position = w.pos, attached_at = f.at
        FROM fresh f
        JOIN wanted w ON w.k = f.k
        JOIN ins i ON i.chat_id = f.chat_id AND i.seq = f.new_seq
        WHERE x.id = w.file_id
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
        (CASE WHEN NOT s.chat_found THEN 3 WHEN s.mark IS NULL THEN 2 WHEN s.prev_id IS NOT NULL THEN 1
            WHEN s.reply > s.last_seq THEN 5
            WHEN NOT s.files_ok OR s.k IN (SELECT c.k FROM clash c) THEN 4
            WHEN f.k = s.k THEN 0 ELSE 1 END)::SMALLINT,
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

DROP TABLE mentions;
DROP INDEX messages_mention_all;
ALTER TABLE chats DROP COLUMN mention_all_admins;
ALTER TABLE messages DROP COLUMN mention_all;
ALTER TABLE messages DROP COLUMN mentions;
