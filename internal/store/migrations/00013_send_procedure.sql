-- +goose Up
-- send_messages (migration 00011) as a procedure rather than one statement: the same
-- arguments, results and rules, at about a third less of the database's CPU for the one or two
-- sends a busy chat's call stores. The single statement of 00011 (a dozen common table
-- expressions, each materialized however few sends the call has) cost 706-1,066 µs of
-- PostgreSQL's CPU per call storing one message, this 484-635 µs, of which the commit is most;
-- for twenty sends the two are level (bench/pgsend.sh; docs/PERFORMANCE.md, "The send path"). A
-- chat's row lock is held while the call runs, so its sends wait less for each other.
--
-- The chats are locked in id order first, as before. Then the sends are taken chat by chat and,
-- within a chat, in the order given: a send by a non-member (or into a read-only chat) gets 2,
-- into no chat 3; a client id the chat already holds from the sender gets the message stored
-- under it (1; this also answers a repeat within the batch with the first's message); a reply
-- to a seq the chat did not have when the call began gets 5; @all where the sender may not
-- mention it gets 6; a file that cannot be attached (not the sender's upload to this chat, not
-- stored, attached already, by this batch's earlier sends too, or older than a day) gets 4.
-- Every other send is stored under the chat's next seq, with its mentions (members only, never
-- the sender), its files attached in the order given, and the sender's read mark moved to it.
-- Each chat's counters are written once, after its sends: last_seq, activity_at, and
-- read_all_seq, which can rise only when a sender was holding it back (then it is the members'
-- least mark). The chat's last stored send carries the new read_all and whether it grew; the
-- others, and the repeats, the chat's read_all as it was. Every statement finds its rows
-- through an index whatever the tables' statistics say (enable_seqscan off, one plan per
-- session), as TestSendMessagesUsesIndexes checks.
-- +postgres begin
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION send_messages(p_chat BIGINT[], p_sender BIGINT[], p_client TEXT[], p_body TEXT[], p_at BIGINT[],
    p_file_send BIGINT[] DEFAULT NULL, p_file_id BIGINT[] DEFAULT NULL, p_reply BIGINT[] DEFAULT NULL,
    p_mention_send BIGINT[] DEFAULT NULL, p_mention_user BIGINT[] DEFAULT NULL, p_mention_all BOOLEAN[] DEFAULT NULL)
RETURNS TABLE (k INT, status SMALLINT, id BIGINT, seq BIGINT, body TEXT, created_at BIGINT, read_all BIGINT, grown BOOLEAN,
    mentions TEXT, mention_all BOOLEAN)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    n INT := coalesce(array_length(p_chat, 1), 0);
    order_k INT[];           -- the sends' indexes, chat by chat, each chat's in the order given
    i INT;
    j INT;                   -- the send being taken (1-based)
    cur BIGINT;              -- its chat
    sender BIGINT;
    -- the chat as the call found it
    found_chat BOOLEAN;
    v_kind TEXT;
    v_read_only BOOLEAN;
    v_all_admins BOOLEAN;
    start_seq BIGINT;
    old_ra BIGINT;
    -- what this call did to it
    next_seq BIGINT;
    latest BIGINT;
    holds BOOLEAN;
    last_k INT;
    new_ra BIGINT;
    mark_user BIGINT[];      -- the senders of its stored sends, with each send's seq
    mark_seq BIGINT[];
    -- the send
    v_mark BIGINT;
    v_role TEXT;
    v_reply BIGINT;
    v_all BOOLEAN;
    v_want INT;
    v_got INT;
    v_list TEXT;
    v_users BIGINT[];
    v_id BIGINT;
    -- the message stored before under the send's client id
    prev_id BIGINT;
    prev_seq BIGINT;
    prev_body TEXT;
    prev_at BIGINT;
    prev_mentions TEXT;
    prev_all BOOLEAN;
    -- the answers, by send
    r_status SMALLINT[] := array_fill(3::SMALLINT, ARRAY[n]);
    r_id BIGINT[] := '{}';
    r_seq BIGINT[] := '{}';
    r_body TEXT[] := '{}';
    r_at BIGINT[] := '{}';
    r_ra BIGINT[] := '{}';
    r_grown BOOLEAN[] := array_fill(FALSE, ARRAY[n]);
    r_mentions TEXT[] := '{}';
    r_all BOOLEAN[] := array_fill(FALSE, ARRAY[n]);
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM chats c WHERE c.id = ANY (p_chat) ORDER BY c.id FOR NO KEY UPDATE;
    SELECT array_agg(x.s ORDER BY p_chat[x.s], x.s) INTO order_k FROM generate_subscripts(p_chat, 1) AS x (s);

    i := 1;
    WHILE i <= n LOOP
        cur := p_chat[order_k[i]];
        SELECT TRUE, c.kind, c.read_only, c.mention_all_admins, c.last_seq, c.read_all_seq
            INTO found_chat, v_kind, v_read_only, v_all_admins, start_seq, old_ra
            FROM chats c WHERE c.id = cur;
        next_seq := start_seq;
        latest := NULL;
        holds := FALSE;
        last_k := 0;
        mark_user := '{}';
        mark_seq := '{}';
        WHILE i <= n AND p_chat[order_k[i]] = cur LOOP
            j := order_k[i];
            i := i + 1;
            IF found_chat IS NULL THEN
                CONTINUE; -- 3, as filled in
            END IF;
            r_ra[j] := old_ra;
            sender := p_sender[j];
            -- The sender's membership (its read mark as the call found it: marks are written
            -- at the chat's end) and the message already stored under the client id, if any.
            v_mark := NULL;
            prev_id := NULL;
            IF NOT v_read_only THEN
                SELECT m.last_read_seq, m.role, q.id, q.seq, q.body, q.created_at, q.mentions, q.mention_all
                    INTO v_mark, v_role, prev_id, prev_seq, prev_body, prev_at, prev_mentions, prev_all
                FROM members m
                LEFT JOIN LATERAL (SELECT q.id, q.seq, q.body, q.created_at, q.mentions, q.mention_all FROM messages q
                    WHERE q.chat_id = cur AND q.sender_id = sender AND q.client_id = p_client[j] LIMIT 1) q ON TRUE
                WHERE m.chat_id = cur AND m.user_id = sender;
            END IF;
            IF v_mark IS NULL THEN
                r_status[j] := 2;
                CONTINUE;
            END IF;
            IF prev_id IS NOT NULL THEN
                r_status[j] := 1;
                r_id[j] := prev_id;
                r_seq[j] := prev_seq;
                r_body[j] := prev_body;
                r_at[j] := prev_at;
                r_mentions[j] := prev_mentions;
                r_all[j] := prev_all;
                CONTINUE;
            END IF;
            v_reply := coalesce(p_reply[j], 0);
            IF v_reply > start_seq THEN
                r_status[j] := 5;
                CONTINUE;
            END IF;
            v_all := coalesce(p_mention_all[j], FALSE);
            IF v_all AND (v_kind <> 'group' OR (v_all_admins AND v_role = 'member')) THEN
                r_status[j] := 6;
                CONTINUE;
            END IF;
            v_want := 0;
            IF j = ANY (p_file_send) THEN
                SELECT count(*), count(x.id) INTO v_want, v_got
                FROM unnest(p_file_send, p_file_id) AS w (s, file_id)
                LEFT JOIN LATERAL (SELECT x.id FROM files x WHERE x.id = w.file_id AND x.chat_id = cur
                    AND x.uploader_id = sender AND x.state = 'stored' AND x.message_id IS NULL AND x.attached_at IS NULL
                    AND x.created_at > p_at[j] - 86400000 LIMIT 1) x ON TRUE
                WHERE w.s = j;
                IF v_want <> v_got THEN
                    r_status[j] := 4;
                    CONTINUE;
                END IF;
            END IF;
            v_list := NULL;
            v_users := NULL;
            IF j = ANY (p_mention_send) THEN
                SELECT string_agg(w.user_id::TEXT, ',' ORDER BY w.nth), array_agg(w.user_id ORDER BY w.nth)
                    INTO v_list, v_users
                FROM unnest(p_mention_send, p_mention_user) WITH ORDINALITY AS w (s, user_id, nth)
                WHERE w.s = j AND w.user_id <> sender
                    AND EXISTS (SELECT 1 FROM members mm WHERE mm.chat_id = cur AND mm.user_id = w.user_id);
            END IF;

            next_seq := next_seq + 1;
            INSERT INTO messages AS x (chat_id, seq, kind, sender_id, body, client_id, created_at, file_count, reply_to_seq,
                mentions, mention_all)
            VALUES (cur, next_seq, 'text', sender, p_body[j], p_client[j], p_at[j], v_want, nullif(v_reply, 0), v_list, v_all)
            RETURNING x.id INTO v_id;
            IF v_users IS NOT NULL AND NOT v_all THEN
                INSERT INTO mentions (user_id, chat_id, seq) SELECT u, cur, next_seq FROM unnest(v_users) AS u;
            END IF;
            IF v_want > 0 THEN
                UPDATE files x SET message_id = v_id, position = w.pos, attached_at = p_at[j]
                FROM (SELECT w.file_id, (row_number() OVER (ORDER BY w.nth) - 1)::INT AS pos
                      FROM unnest(p_file_send, p_file_id) WITH ORDINALITY AS w (s, file_id, nth) WHERE w.s = j) w
                WHERE x.id = w.file_id;
            END IF;
            mark_user := mark_user || sender;
            mark_seq := mark_seq || next_seq;
            holds := holds OR v_mark <= old_ra;
            latest := greatest(latest, p_at[j]);
            last_k := j;
            r_status[j] := 0;
            r_id[j] := v_id;
            r_seq[j] := next_seq;
            r_body[j] := p_body[j];
            r_at[j] := p_at[j];
            r_mentions[j] := v_list;
            r_all[j] := v_all;
        END LOOP;

        IF last_k > 0 THEN
            -- Sending reads everything before: each sender's mark moves to their last message.
            UPDATE members m SET last_read_seq = x.mark
            FROM (SELECT t.u, max(t.s) AS mark FROM unnest(mark_user, mark_seq) AS t (u, s) GROUP BY t.u) x
            WHERE m.chat_id = cur AND m.user_id = x.u;
            new_ra := old_ra;
            IF holds THEN
                SELECT greatest(old_ra, min(m.last_read_seq)) INTO new_ra FROM members m WHERE m.chat_id = cur;
            END IF;
            UPDATE chats c SET last_seq = next_seq, activity_at = latest, read_all_seq = new_ra WHERE c.id = cur;
            r_ra[last_k] := new_ra;
            r_grown[last_k] := new_ra > old_ra;
        END IF;
    END LOOP;

    RETURN QUERY SELECT x.s, r_status[x.s], r_id[x.s], r_seq[x.s], r_body[x.s], r_at[x.s], r_ra[x.s], r_grown[x.s],
        r_mentions[x.s], r_all[x.s]
    FROM generate_series(1, n) AS x (s);
END
$$;
-- +goose StatementEnd
-- +postgres end

-- +goose Down
-- send_messages of migration 00011 again (one statement).
-- +postgres begin
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION send_messages(p_chat BIGINT[], p_sender BIGINT[], p_client TEXT[], p_body TEXT[], p_at BIGINT[],
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
