-- +goose Up
-- The demo of PRODUCT.md: three users (password "password"), a private chat First-Second, the
-- group "General" with all three and the public group "Random" with First and Third, a few
-- messages in each. Read progress follows the rules: senders have read their own messages,
-- read_all_seq is the members' minimum. {{NOW_MS}} is the time of migration in milliseconds.
INSERT INTO users (id, email, name, name_fold, password_hash, created_at) VALUES
    (1, 'first@example.com',  'First', 'first', '$argon2id$v=19$m=19456,t=2,p=1$HroKhCcqDSM0rhQoA44aig$MarbjPJaR28bX0nI9dMVOLfGC9X4ZPw0fo5MjdsHDfE', {{NOW_MS}} - 3600000),
    (2, 'second@example.com', 'Second', 'second', '$argon2id$v=19$m=19456,t=2,p=1$HroKhCcqDSM0rhQoA44aig$MarbjPJaR28bX0nI9dMVOLfGC9X4ZPw0fo5MjdsHDfE', {{NOW_MS}} - 3600000),
    (3, 'third@example.com',  'Third', 'third', '$argon2id$v=19$m=19456,t=2,p=1$HroKhCcqDSM0rhQoA44aig$MarbjPJaR28bX0nI9dMVOLfGC9X4ZPw0fo5MjdsHDfE', {{NOW_MS}} - 3600000);

INSERT INTO chats (id, kind, title, title_fold, public, creator_id, pair_key, created_at, activity_at, last_seq, read_all_seq, member_count) VALUES
    (1, 'private', '',        '',        FALSE, 1,    '1:2', {{NOW_MS}} - 3000000, {{NOW_MS}} - 600000, 3, 2, 2),
    (2, 'group',   'General', 'general', FALSE, 1,    NULL,  {{NOW_MS}} - 2400000, {{NOW_MS}} - 300000, 4, 2, 3),
    (3, 'group',   'Random',  'random',  TRUE,  1,    NULL,  {{NOW_MS}} - 1800000, {{NOW_MS}} - 120000, 3, 2, 2);

INSERT INTO members (chat_id, user_id, role, joined_at, last_read_seq) VALUES
    (1, 1, 'member', {{NOW_MS}} - 3000000, 3),
    (1, 2, 'member', {{NOW_MS}} - 3000000, 2),
    (2, 1, 'owner',  {{NOW_MS}} - 2400000, 2),
    (2, 2, 'member', {{NOW_MS}} - 2400000, 3),
    (2, 3, 'member', {{NOW_MS}} - 2400000, 4),
    (3, 1, 'owner',  {{NOW_MS}} - 1800000, 3),
    (3, 3, 'member', {{NOW_MS}} - 1800000, 2);

INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at, event_type, event_user_id, event_actor_id) VALUES
    (1, 1, 'text',   1,    'Hi Second! Welcome to the chat.',                         'demo-1-1', {{NOW_MS}} - 900000, NULL, NULL, NULL),
    (1, 2, 'text',   2,    'Hey First, glad to be here.',                             'demo-1-2', {{NOW_MS}} - 800000, NULL, NULL, NULL),
    (1, 3, 'text',   1,    'Open a second browser window and sign in as second@example.com to chat live.', 'demo-1-3', {{NOW_MS}} - 600000, NULL, NULL, NULL),
    (2, 1, 'system', NULL, '',                                                        NULL,       {{NOW_MS}} - 2400000, 'chat_created', 1, 1),
    (2, 2, 'text',   1,    'Welcome to General, everyone.',                           'demo-2-2', {{NOW_MS}} - 700000, NULL, NULL, NULL),
    (2, 3, 'text',   2,    'Hello all!',                                              'demo-2-3', {{NOW_MS}} - 500000, NULL, NULL, NULL),
    (2, 4, 'text',   3,    'Hi! Third here.',                                         'demo-2-4', {{NOW_MS}} - 300000, NULL, NULL, NULL),
    (3, 1, 'system', NULL, '',                                                        NULL,       {{NOW_MS}} - 1800000, 'chat_created', 1, 1),
    (3, 2, 'text',   3,    'Random is a public group: anyone can find it and join.',  'demo-3-2', {{NOW_MS}} - 240000, NULL, NULL, NULL),
    (3, 3, 'text',   1,    'Try joining it as second@example.com.',                   'demo-3-3', {{NOW_MS}} - 120000, NULL, NULL, NULL);

--pg SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users));
--pg SELECT setval(pg_get_serial_sequence('chats', 'id'), (SELECT max(id) FROM chats));

-- +goose Down
DELETE FROM messages WHERE chat_id IN (1, 2, 3);
DELETE FROM members WHERE chat_id IN (1, 2, 3);
DELETE FROM chats WHERE id IN (1, 2, 3);
DELETE FROM users WHERE id IN (1, 2, 3);
