// Messages that change (edits, deletes, reactions, replies): the client's state side. It applies
// message.updated and reaction.updated (live, from sync, or from our own REST answers) to the
// store, keeps the chat's change cursor (rev) for sync, and holds the reply being written.
//
// Each message carries the rev of its last change, and the server sends a chat's changes in rev
// order, so a reaction.updated is applied only if its rev is newer than the message's. A
// message.updated carries the whole state: one with the message's own rev is applied again
// (idempotent), because a sync may bring, after a live reaction.updated of the same rev, the
// state that also holds an older change this tab never saw (one made before its hello).

import { mentionsMe } from './mentions.js';
import { request } from './api.js';
import { forgetReply } from './composer.js';

/** The common emoji of the reaction picker. */
export const EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🎉', '🙏', '👀'];

const PREVIEW = 100;

const path = (chatId, seq) => `/chats/${chatId}/messages/${seq}`;

/** The REST calls of message changes. */
export const changesApi = {
  edit: (chatId, seq, body) => request('PATCH', path(chatId, seq), { body }),
  remove: (chatId, seq) => request('DELETE', path(chatId, seq)),
  react: (chatId, seq, emoji, add) => request(add ? 'PUT' : 'DELETE', `${path(chatId, seq)}/reactions/${encodeURIComponent(emoji)}`),
};

/** noteRev records that the changes of chatId up to rev have been received. */
export function noteRev(store, chatId, rev) {
  if (!rev || !store.chats.has(chatId)) return;
  store.revs.set(chatId, Math.max(store.revs.get(chatId) || 0, rev));
}

/**
 * syncCursor is the sync cursor of chat c of a hello: {seq, rev} once this tab knows the chat's
 * rev, the plain seq otherwise (and then the hello's last_rev is where this tab starts: what it
 * loads later is the latest state). A server that says no last_rev gets the plain form.
 */
export function syncCursor(store, c, seq) {
  if (!('last_rev' in c)) return seq;
  // A sync that did not finish may have left changes below the highest rev received unsent:
  // ask again from where it asked.
  const rev = store.revSyncing.get(c.id) ?? store.revs.get(c.id);
  if (rev != null) {
    store.revSyncing.set(c.id, rev);
    return { seq, rev };
  }
  const box = store.messages.get(c.id);
  if (box && (box.loaded || box.loading)) {
    // Messages loaded before any rev was known: ask for every change, to be sure.
    return { seq, rev: 0 };
  }
  store.revs.set(c.id, c.last_rev || 0);
  return seq;
}

/** syncDone ends the syncs of a hello: every change up to the highest rev received is in. */
export function syncDone(store) {
  store.revSyncing.clear();
}

/** historyLoaded starts the rev cursor of a chat whose first page was just loaded. */
export function historyLoaded(store, chatId, messages) {
  if (store.revs.has(chatId)) return;
  // Each message is as of the load; the newest rev among them is a safe place to start from.
  store.revs.set(chatId, Math.max(0, ...messages.map((m) => m.rev || 0)));
}

/** quoteOf is the reply_to a message shows for msg. */
export function quoteOf(msg) {
  const deleted = !!msg.deleted_at;
  return { seq: msg.seq, sender_id: msg.sender_id, body_preview: deleted ? '' : [...(msg.body || '')].slice(0, PREVIEW).join(''), deleted };
}

function put(box, msg) {
  box.replace(msg);
}

/** messageUpdated applies message.updated (an edit or a delete: the whole new state). */
export function messageUpdated(store, msg, { local = false } = {}) {
  const chat = msg && store.chats.get(msg.chat_id);
  if (!chat) return;
  const revBefore = store.revs.get(chat.id);
  if (!local) noteRev(store, chat.id, msg.rev);
  const box = store.messages.get(chat.id);
  const old = box?.bySeq.get(msg.seq) || (chat.last_message?.seq === msg.seq ? chat.last_message : null);
  if (old && !local && (old.rev || 0) > (msg.rev || 0)) return;
  if (box?.bySeq.has(msg.seq)) put(box, msg);
  if (chat.last_message?.seq === msg.seq) chat.last_message = msg;
  // A deleted message is no longer unread. One this tab has not loaded counted in the chat's
  // unread count if it is older than the newest this tab knows of (a newer one comes deleted)
  // and its delete is news (a rev above those received); whether it mentioned me, the
  // delete no longer says: the chat's counts are asked for then (needSummary).
  const unread = (m) => m.kind === 'text' && m.sender_id !== store.me?.id && msg.seq > (chat.my_last_read_seq || 0);
  let needSummary = false;
  if (msg.deleted_at && chat.unread_count > 0) {
    if (old && !old.deleted_at && unread(old)) {
      chat.unread_count -= 1;
      if (mentionsMe(old, store.me.id) && chat.unread_mentions > 0) chat.unread_mentions -= 1;
    } else if (!old && !local && unread(msg) && msg.seq <= (chat.last_seq || 0) && (revBefore == null || (msg.rev || 0) > revBefore)) {
      chat.unread_count -= 1;
      needSummary = chat.unread_mentions > 0;
    }
  }
  // The replies to it show its new text (or that it is gone).
  const drawn = box?.bySeq.has(msg.seq) ? [msg.seq] : [];
  if (box && (!old || old.body !== msg.body || !old.deleted_at !== !msg.deleted_at)) {
    for (const m of box.list()) {
      if (m.reply_to?.seq !== msg.seq) continue;
      put(box, { ...m, reply_to: quoteOf(msg) });
      drawn.push(m.seq);
    }
  }
  if (store.replyTo.get(chat.id)?.seq === msg.seq) {
    if (msg.deleted_at) store.replyTo.delete(chat.id);
    else store.replyTo.set(chat.id, quoteOf(msg));
  }
  // A reply being written to it goes from the saved draft too (it would come back from there).
  if (msg.deleted_at && store.me) forgetReply(store.me.id, chat.id, msg.seq);
  store.notifyChats([chat.id]);
  store.notifyMessages(chat.id, drawn);
  return needSummary;
}

/** reactionUpdated applies reaction.updated {chat_id, seq, rev, emoji, user_id, added, count}. */
export function reactionUpdated(store, d) {
  if (!d || !store.chats.has(d.chat_id)) return;
  noteRev(store, d.chat_id, d.rev);
  const box = store.messages.get(d.chat_id);
  const m = box?.bySeq.get(d.seq);
  if (!m || (m.rev || 0) >= d.rev) return;
  const list = (m.reactions || []).map((r) => ({ ...r, user_ids: [...(r.user_ids || [])] }));
  let r = list.find((x) => x.emoji === d.emoji);
  if (!r) {
    r = { emoji: d.emoji, count: 0, user_ids: [] };
    list.push(r);
  }
  r.count = d.count;
  const i = r.user_ids.indexOf(d.user_id);
  if (d.added && i < 0 && r.user_ids.length < 100) r.user_ids.push(d.user_id);
  if (!d.added && i >= 0) r.user_ids.splice(i, 1);
  put(box, { ...m, rev: d.rev, reactions: list.filter((x) => x.count > 0) });
  store.notifyMessages(d.chat_id, [d.seq]);
}

/** takeReply moves the reply being written in p's chat onto the unsent message p. */
export function takeReply(store, p) {
  const q = store.replyTo.get(p.chat_id);
  if (!q) return;
  store.replyTo.delete(p.chat_id);
  p.reply_to_seq = q.seq;
  store.notify('pane');
}

/** replyFields are the fields a send of p adds for its reply. */
export function replyFields(p) {
  return p.reply_to_seq ? { reply_to_seq: p.reply_to_seq } : {};
}

/** editMessage changes the body of one of my messages. */
export async function editMessage(store, chatId, seq, body) {
  messageUpdated(store, await changesApi.edit(chatId, seq, body));
}

/** deleteMessage deletes a message; it shows deleted at once, the frame brings its new rev. */
export async function deleteMessage(store, chatId, seq) {
  await changesApi.remove(chatId, seq);
  const m = store.messages.get(chatId)?.bySeq.get(seq);
  if (m && !m.deleted_at) {
    messageUpdated(store, { ...m, body: '', deleted_at: new Date().toISOString(), reactions: [], reply_to: undefined, edited_at: undefined }, { local: true });
  }
}

/** toggleReaction adds or takes back my reaction emoji on a message. */
export async function toggleReaction(store, chatId, seq, emoji) {
  const m = store.messages.get(chatId)?.bySeq.get(seq);
  const mine = !!m?.reactions?.find((r) => r.emoji === emoji)?.user_ids?.includes(store.me.id);
  reactionUpdated(store, await changesApi.react(chatId, seq, emoji, !mine));
}
