// The chat client's behaviour: it turns WebSocket frames and REST answers into store changes,
// and user actions into frames or requests. One instance per signed-in tab.
//
// Guarantees it keeps: messages are deduplicated by (chat, seq) and unsent ones by client_id;
// every (re)connect syncs from the last seq seen per chat; unacknowledged messages are resent
// with their client_id (the server makes that idempotent); gaps in a loaded chat are healed
// over REST.
//
// An unsent message is 'sending' (on its way), 'waiting' (no network, or no answer: it goes out
// again by itself when the connection is back) or 'failed' (the server refused it, or a
// transient error the user may retry). Only 'failed' asks the user to act.

import { applySettings } from './chatsettings.js';
import { api, ApiError, describe } from './api.js';
import { Connection } from './connection.js';
import { chatUpdated, groupEvent, memberRole, userUpdated } from './changes.js';
import { historyLoaded, messageUpdated, reactionUpdated, replyFields, syncCursor, syncDone, takeReply } from './msgchanges.js';
import { mentionFields, mentionsMe } from './mentions.js';
import { KEEP_CLOSED } from './store.js';

const SEND_TIMEOUT = 10000;
const TYPING_EVERY = 2000;
const PRESENCE_MAX = 500; // the most users one presence.subscribe may name
const PAGE = 50;
// The most messages a chat's first load fetches to reach its first unread message.
const REACH_UNREAD = 1000;
const TRANSIENT = new Set(['unavailable', 'rate_limited', 'internal', 'timeout']);
// The system messages of someone joining or leaving a chat: member.joined / member.left follow.
const MEMBERSHIP = new Set(['member_joined', 'member_invited', 'member_left', 'member_removed']);
// How many names (GET /users/{id}) are asked for at once.
const NAME_FETCHES = 4;
// A name whose fetch failed (the network, the server) is asked for again after 2 s, then 4, 8,
// ... at most a minute apart.
const NAME_RETRY_FIRST = 2000;
const NAME_RETRY_MAX = 60000;

/** nextFrame runs fn before the next frame, or in 100 ms where frames stop (a hidden tab). */
function nextFrame(fn) {
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    fn();
  };
  requestAnimationFrame(once);
  setTimeout(once, 100);
}

/** uuid is crypto.randomUUID where the page is a secure context, a random v4 UUID otherwise. */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export class Client {
  /** hooks: onSignedOut(), onChatGone(chatId), onMessage(msg) for each message newer than the chat's last. */
  constructor(store, hooks = {}) {
    this.s = store;
    this.hooks = hooks;
    this.conn = new Connection({
      onFrame: (f) => this.onFrame(f),
      onStatus: (status) => {
        this.s.conn = status;
        this.s.notify('conn');
      },
      onSignedOut: () => this.hooks.onSignedOut?.(),
    });
    this.hellos = 0;
    this.syncRef = null;
    this.readQueue = new Map();
    this.readTimer = null;
    this.typingSent = new Map();
    this.sendTimers = new Map();
    this.nameFetches = new Set();
    this.nameQueue = [];
    this.namesInFlight = 0;
    this.namesCame = new Set();
    this.nameRetries = new Map(); // user id -> {timer, tries} of a name whose fetch failed
    this.emailFetches = new Set(); // users whose email was asked for (ensureEmails)
    this.chatFetches = new Map();
    this.filling = new Set();
    // Chats whose description changed, by a system message, and whose chat.updated has not come.
    this.describeTimers = new Map();
    // Members who joined or left, by a system message, whose member.joined / member.left has not
    // come: "chatId:userId" -> timer (awaitMember).
    this.memberTimers = new Map();
    // The chat on screen (chat.open) and the users whose presence is asked for
    // (presence.subscribe): in a big group the server sends typing and presence only for them.
    this.openId = null;
    this.watched = '';
    // The chat of a chat.removed without reason, until the next frame (onFrame, rejoined).
    this.heldRemoval = null;
  }

  async start() {
    const s = this.s;
    s.me = await api.me();
    const { chats } = await api.chats();
    for (const c of chats) s.setChat(c);
    s.notify('me', 'chats');
    this.resume();
  }

  /** resume goes on after stop with what the store holds: the socket, the pending sends. */
  resume() {
    this.stopped = false;
    this.restorePending();
    this.conn.start();
    this.typingTimer = setInterval(() => this.s.expireTyping(), 1000);
    this.unwatch = this.s.on('members', () => this.watchMembers());
  }

  stop() {
    this.stopped = true;
    this.conn.stop();
    this.heldRemoval = null;
    // No one is signed in to ask for names: the ones still unknown (queued, waiting for a retry,
    // or failing now) are asked for when they are next drawn after a resume (ensureName).
    this.nameQueue.length = 0;
    this.nameFetches.clear();
    for (const r of this.nameRetries.values()) clearTimeout(r.timer);
    this.nameRetries.clear();
    clearInterval(this.typingTimer);
    this.unwatch?.();
    clearTimeout(this.readTimer);
    for (const t of this.sendTimers.values()) clearTimeout(t);
    for (const t of this.describeTimers.values()) clearTimeout(t);
    for (const t of this.memberTimers.values()) clearTimeout(t);
    this.memberTimers.clear();
  }

  // ---- frames -------------------------------------------------------------------------------

  onFrame(f) {
    const d = f.data || {};
    // A chat.removed without reason waits for the frame after it (rejoined).
    if (this.heldRemoval != null && !(f.type === 'chat.added' && d.chat?.id === this.heldRemoval)) {
      const id = this.heldRemoval;
      this.heldRemoval = null;
      this.chatGone(id);
    }
    switch (f.type) {
      case 'hello': return this.onHello(d);
      case 'message.new':
      case 'message.ack': return this.ingest(d.message);
      case 'read.updated': return this.onReadUpdated(d);
      case 'chat.read_all': return this.onReadAll(d);
      case 'typing': {
        // A big group's typing names everyone who typed in the interval (user_ids).
        if (!this.s.chats.has(d.chat_id)) return;
        const ids = Array.isArray(d.user_ids) ? d.user_ids : [d.user_id];
        for (const id of ids) if (id !== this.s.me?.id) this.s.setTyping(d.chat_id, id);
        return;
      }
      case 'presence':
        // {users:[...]}: every change since the last frame, once presence.subscribe was sent;
        // {user_id, online}: the single-user form.
        if (Array.isArray(d.users)) for (const u of d.users) this.onPresence(u);
        else this.onPresence(d);
        return;
      case 'chat.added':
        if (!d.chat) return;
        if (this.heldRemoval === d.chat.id) return this.rejoined(d.chat);
        this.s.setChat(d.chat);
        return;
      case 'chat.removed':
        if (d.reason || !this.s.chats.has(d.chat_id)) return this.chatGone(d.chat_id, d.reason);
        // Without a reason the user left (on some device), or left and is back already (invited
        // or joined again before this device heard of the leave): then the chat's chat.added
        // comes next (PROTOCOL.md). The chat is not dropped, nor its pane closed, until the next
        // frame says which; the ping makes sure one comes.
        this.heldRemoval = d.chat_id;
        this.conn.probe();
        return;
      case 'member.joined': return this.onMemberJoined(d);
      case 'member.left': return this.onMemberLeft(d);
      case 'chat.updated':
        clearTimeout(this.describeTimers.get(d.chat?.id));
        this.describeTimers.delete(d.chat?.id);
        return chatUpdated(this.s, d);
      case 'member.role': return memberRole(this.s, d);
      case 'user.updated': return userUpdated(this.s, d);
      case 'message.updated':
        // A deleted unread message this tab never loaded: the chat's @ count is asked for.
        if (messageUpdated(this.s, d.message)) this.loadDetail(d.message.chat_id);
        return;
      case 'reaction.updated': return reactionUpdated(this.s, d);
      case 'chat.settings': return applySettings(this.s, d);
      case 'sync.done': return this.onSyncDone(f);
      case 'sync.truncated': return this.pageRest(d.chat_id, d.from_seq);
      case 'error': return this.onError(f);
      default:
    }
  }

  onHello(d) {
    const s = this.s;
    this.hellos += 1;
    s.sessionId = d.session_id ?? s.sessionId;
    if (d.user) s.me = { ...s.me, ...d.user };
    const chats = Array.isArray(d.chats) ? d.chats : [];
    const ids = new Set(chats.map((c) => c.id));
    // A chat missing from the hello was left while this tab was away (removed, deleted, or
    // left on another device): it goes, with a word, and no chat.open is sent for it.
    for (const id of [...s.chats.keys()]) if (!ids.has(id)) this.chatGone(id, 'gone');
    const cursors = {};
    for (const c of chats) {
      const local = s.chats.get(c.id);
      if (!local) {
        this.fetchChat(c.id);
        continue;
      }
      cursors[c.id] = syncCursor(s, c, s.seen.get(c.id) ?? local.last_seq ?? 0);
      local.read_all_seq = Math.max(local.read_all_seq || 0, c.read_all_seq || 0);
      if ((local.my_last_read_seq || 0) > (c.my_last_read_seq || 0)) {
        // Read here while the server could not hear it: tell it again.
        this.readQueue.set(c.id, local.my_last_read_seq);
      } else if ((c.my_last_read_seq || 0) > (local.my_last_read_seq || 0)) {
        local.my_last_read_seq = c.my_last_read_seq;
        if (c.my_last_read_seq >= (local.last_seq || 0)) local.unread_count = 0;
        if (c.unread_mentions !== undefined) local.unread_mentions = c.unread_mentions;
      }
    }
    this.syncRef = this.conn.nextRef('sync');
    this.conn.send('sync', { cursors }, this.syncRef);
    // What the server knew of this tab went with the old connection: tell the new one.
    if (this.openId != null) this.conn.send('chat.open', { chat_id: this.openId });
    // The open chat's history could not be loaded (offline, say): load it now.
    if (this.openId != null && !s.messages.has(this.openId)) this.openHistory(this.openId);
    this.watched = '';
    this.watchMembers();
    this.resendPending();
    this.flushReads();
    s.notify('chats', 'pane', 'me');
  }

  onSyncDone(f) {
    if (f.ref && f.ref !== this.syncRef) return;
    syncDone(this.s);
    // The summaries (unread counts, previews) may have moved while this tab was away.
    if (this.hellos > 1 || this.truncated) {
      this.truncated = false;
      this.refreshChats();
    }
  }

  async refreshChats() {
    let chats;
    const sent = performance.now();
    try {
      ({ chats } = await api.chats());
    } catch {
      return;
    }
    for (const c of chats) {
      this.s.setChat(c, sent);
      this.catchUpChat(c);
    }
  }

  /** catchUpChat brings a chat's loaded history up to c.last_seq, or notes it as seen if none is. */
  catchUpChat(c) {
    if (this.s.messages.get(c.id)?.loaded) this.catchUp(c.id);
    else this.s.seen.set(c.id, Math.max(this.s.seen.get(c.id) || 0, c.last_seq || 0));
  }

  /** ingest takes one message from any source (live, ack, sync, history) exactly once. */
  ingest(msg) {
    const s = this.s;
    if (!msg || !s.me) return;
    const chat = s.chats.get(msg.chat_id);
    if (!chat) {
      this.fetchChat(msg.chat_id);
      return;
    }
    s.seen.set(chat.id, Math.max(s.seen.get(chat.id) || 0, msg.seq));
    const mine = msg.sender_id === s.me.id;
    const acked = mine && msg.client_id && s.pending.has(msg.client_id);
    if (acked) {
      s.pending.delete(msg.client_id);
      clearTimeout(this.sendTimers.get(msg.client_id));
      this.sendTimers.delete(msg.client_id);
      this.savePending();
    }
    const box = s.messages.get(chat.id);
    if (box && box.add(msg) && box.loaded) {
      if (box.firstMissing()) this.fillGaps(chat.id);
      else if (chat.id !== s.activeChatId && box.bySeq.size > KEEP_CLOSED + PAGE) box.trim(KEEP_CLOSED);
    }
    const isNew = msg.seq > (chat.last_seq || 0);
    if (isNew) {
      chat.last_seq = msg.seq;
      chat.last_message = msg;
      if (mine) {
        chat.my_last_read_seq = Math.max(chat.my_last_read_seq || 0, msg.seq);
        chat.unread_count = 0;
        chat.unread_mentions = 0;
      } else if (msg.kind === 'text' && !msg.deleted_at && msg.seq > (chat.my_last_read_seq || 0)) {
        chat.unread_count = (chat.unread_count || 0) + 1;
        if (mentionsMe(msg, s.me.id)) chat.unread_mentions = (chat.unread_mentions || 0) + 1;
      }
    }
    if (msg.sender_id) {
      const mem = s.members.get(chat.id)?.get(msg.sender_id);
      if (mem) mem.last_read_seq = Math.max(mem.last_read_seq || 0, msg.seq);
      if (!mine) s.clearTyping(chat.id, msg.sender_id);
      this.ensureName(msg.sender_id);
    }
    if (msg.event) {
      this.ensureName(msg.event.user_id);
      this.ensureName(msg.event.actor_id);
      if (isNew && groupEvent(s, chat, msg.event)) this.awaitDescription(chat.id);
      if (isNew && MEMBERSHIP.has(msg.event.type)) this.awaitMember(chat.id, msg.event.user_id);
    }
    if (isNew) this.hooks.onMessage?.(msg);
    // The message redraws its chat's row, and in the open chat itself (an acknowledged one of
    // mine keeps the element it was drawn with unsent).
    s.notifyChats([chat.id]);
    if (chat.id === s.activeChatId) s.notifyMessages(chat.id, [msg.seq]);
  }

  /**
   * awaitDescription: the open chat's description changed and the chat.updated that carries it
   * should follow at once; if it was lost, the chat is asked for. (Another chat's description is
   * read when it is opened.)
   */
  awaitDescription(chatId) {
    if (chatId !== this.openId || this.describeTimers.has(chatId)) return;
    this.describeTimers.set(chatId, setTimeout(() => {
      this.describeTimers.delete(chatId);
      if (this.s.chats.has(chatId)) this.loadDetail(chatId);
    }, 3000));
  }

  /**
   * awaitMember: someone joined or left a chat whose members this tab holds, by its system
   * message, and the member.joined / member.left that follows it should come at once. It does not
   * when the message came by a sync (the frames of the time away are not replayed) or the broker
   * lost the frame: then the members are asked for, or the list (the header's count, who is
   * online, the details) would keep whoever left and miss whoever came until the chat is opened
   * again.
   */
  awaitMember(chatId, userId) {
    const key = `${chatId}:${userId}`;
    if (!this.s.members.has(chatId) || this.memberTimers.has(key)) return;
    this.memberTimers.set(key, setTimeout(() => {
      this.memberTimers.delete(key);
      if (this.s.chats.has(chatId) && this.s.members.has(chatId)) this.loadDetail(chatId);
    }, 3000));
  }

  /** memberCame: the member.joined / member.left of a system message came (awaitMember). */
  memberCame(chatId, userId) {
    const key = `${chatId}:${userId}`;
    clearTimeout(this.memberTimers.get(key));
    this.memberTimers.delete(key);
  }

  onReadUpdated(d) {
    const s = this.s;
    const chat = s.chats.get(d.chat_id);
    if (!chat || d.user_id !== s.me.id) return;
    if ((d.last_read_seq || 0) >= (chat.my_last_read_seq || 0)) {
      chat.my_last_read_seq = d.last_read_seq;
      chat.unread_count = d.unread_count;
      chat.unread_mentions = d.unread_mentions || 0;
    }
    const mem = s.members.get(chat.id)?.get(s.me.id);
    if (mem) mem.last_read_seq = Math.max(mem.last_read_seq || 0, d.last_read_seq || 0);
    s.notifyChats([chat.id]);
    s.notifyMessages(chat.id, []);
  }

  onReadAll(d) {
    const s = this.s;
    const chat = s.chats.get(d.chat_id);
    if (!chat) return;
    const before = chat.read_all_seq || 0;
    chat.read_all_seq = Math.max(before, d.read_all_seq || 0);
    // Everyone has read up to read_all_seq, so each member's progress is at least that.
    const mems = s.members.get(chat.id);
    if (mems) for (const m of mems.values()) m.last_read_seq = Math.max(m.last_read_seq || 0, chat.read_all_seq);
    s.notifyChats([chat.id], 'members');
    // My loaded messages it covers now show ✓✓ (a long stretch: the whole pane).
    if (chat.id !== s.activeChatId) return;
    const box = s.messages.get(chat.id);
    if (chat.read_all_seq - before > 200) return s.notify('pane');
    const mine = [];
    for (let seq = before + 1; box && seq <= chat.read_all_seq; seq++) {
      if (box.bySeq.get(seq)?.sender_id === s.me.id) mine.push(seq);
    }
    s.notifyMessages(chat.id, mine);
  }

  onPresence(d) {
    const s = this.s;
    s.online.set(d.user_id, !!d.online);
    s.presenceAt.set(d.user_id, performance.now());
    if (!d.online) s.lastSeen.set(d.user_id, d.last_seen_at || new Date().toISOString());
    for (const mems of s.members.values()) {
      const m = mems.get(d.user_id);
      if (m) m.online = !!d.online;
    }
    const rows = [];
    for (const c of s.chats.values()) {
      if (c.peer?.id !== d.user_id) continue;
      c.peer = { ...c.peer, online: !!d.online };
      rows.push(c.id);
    }
    // The pane's header follows 'members'.
    s.notifyChats(rows, 'members');
  }

  onMemberJoined(d) {
    const s = this.s;
    const chat = s.chats.get(d.chat_id);
    if (!chat || !d.user) return;
    this.memberCame(chat.id, d.user.id);
    const renamed = s.names.get(d.user.id) !== d.user.name;
    s.names.set(d.user.id, d.user.name);
    const mems = s.members.get(chat.id);
    if (mems && !mems.has(d.user.id)) {
      mems.set(d.user.id, {
        id: d.user.id, name: d.user.name, role: 'member', joined_at: new Date().toISOString(),
        last_read_seq: chat.last_seq || 0, online: s.isOnline(d.user.id),
      });
      chat.member_count = mems.size;
    } else if (!mems) {
      chat.member_count = (chat.member_count || 0) + 1;
    }
    // Its system message comes as a message (appended); here the header, who is told apart,
    // and what showed the newcomer's name before it was known.
    s.notifyPeople(chat.id);
    if (renamed) this.renamed(new Set([d.user.id]));
  }

  onMemberLeft(d) {
    const s = this.s;
    const chat = s.chats.get(d.chat_id);
    if (!chat) return;
    this.memberCame(chat.id, d.user_id);
    const mems = s.members.get(chat.id);
    if (mems) {
      mems.delete(d.user_id);
      chat.member_count = mems.size;
    } else {
      chat.member_count = Math.max(0, (chat.member_count || 1) - 1);
    }
    s.clearTyping(chat.id, d.user_id);
    s.notifyPeople(chat.id);
  }

  onError(f) {
    const code = f.data?.code || 'error';
    const message = f.data?.message || 'The server refused this.';
    if (f.ref?.startsWith('send:')) {
      const p = this.s.pending.get(f.ref.slice(5));
      if (!p) return;
      clearTimeout(this.sendTimers.get(p.client_id));
      p.state = 'failed';
      p.error = message;
      p.hard = !TRANSIENT.has(code);
      this.savePending();
      this.s.notifyUnsent(p.chat_id);
      return;
    }
    console.warn('chat: server error frame', code, message, f.ref || '');
  }

  /**
   * chatGone drops a chat the user is no longer in; reason is chat.removed's ("removed",
   * "deleted"), or "gone" when the server no longer lists it (a hello, a refused load).
   */
  chatGone(id, reason) {
    const chat = this.s.chats.get(id);
    if (!chat) return;
    // The server follows it no more for this connection: no chat.open (or close) of it.
    if (this.openId === id) this.openId = null;
    // Its unsent messages go for good: a reload must not send them (after a new invitation).
    // The notice says how many, so that words written offline are not lost without a word.
    const unsent = this.s.pendingOf(id);
    for (const p of unsent) clearTimeout(this.sendTimers.get(p.client_id));
    this.s.removeChat(id);
    this.savePending();
    this.hooks.onChatGone?.(id, reason, chat.title, unsent.length);
  }

  /**
   * rejoined takes chat.added for a chat whose chat.removed came just before it: the user left
   * and is back, and the chat stays as it was on this device (open, with its draft and unsent
   * messages), brought up to date. The messages of the time away (the leave's and the return's
   * notes among them) are not sent live: the loaded history is caught up over REST; its
   * members are asked for again.
   */
  rejoined(chat) {
    const s = this.s;
    this.heldRemoval = null;
    s.setChat(chat);
    this.catchUpChat(chat);
    if (s.members.has(chat.id)) this.loadDetail(chat.id);
  }

  // ---- sending ------------------------------------------------------------------------------

  /** send queues a message and sends it; it shows as "sending" (or "waiting") until acknowledged. */
  send(chatId, body, files = [], mention = {}) {
    const p = { client_id: uuid(), chat_id: chatId, body, files, state: 'sending', created_at: new Date().toISOString() };
    if (mention.mentions?.length) p.mentions = mention.mentions;
    if (mention.mention_all) p.mention_all = true;
    takeReply(this.s, p);
    this.s.pending.set(p.client_id, p);
    this.savePending();
    this.dispatch(p);
    return p;
  }

  retry(clientId) {
    const p = this.s.pending.get(clientId);
    if (p) this.dispatch(p);
  }

  /** discard drops an unsent message for good. */
  discard(clientId) {
    clearTimeout(this.sendTimers.get(clientId));
    const p = this.s.pending.get(clientId);
    this.s.pending.delete(clientId);
    this.savePending();
    if (p) this.s.notifyUnsent(p.chat_id);
  }

  dispatch(p) {
    p.state = navigator.onLine === false ? 'waiting' : 'sending';
    p.error = null;
    p.hard = false;
    clearTimeout(this.sendTimers.get(p.client_id));
    this.sendTimers.set(p.client_id, setTimeout(() => this.timedOut(p.client_id), SEND_TIMEOUT));
    const data = { chat_id: p.chat_id, client_id: p.client_id, body: p.body, ...replyFields(p), ...mentionFields(p) };
    if (p.files?.length) data.file_ids = p.files.map((f) => f.id);
    const sent = this.conn.send('message.send', data, 'send:' + p.client_id);
    if (!sent && p.state === 'sending') this.sendRest(p);
    this.s.notifyUnsent(p.chat_id);
  }

  async sendRest(p) {
    try {
      this.ingest(await api.send(p.chat_id, p.body, p.client_id, p.files?.map((f) => f.id), { ...replyFields(p), ...mentionFields(p) }));
    } catch (err) {
      if (!this.s.pending.has(p.client_id)) return;
      if (err instanceof ApiError && !err.network && err.status < 500 && err.code !== 'rate_limited') {
        clearTimeout(this.sendTimers.get(p.client_id));
        p.state = 'failed';
        p.error = describe(err);
        p.hard = true;
        this.savePending();
        this.s.notifyUnsent(p.chat_id);
        return;
      }
      // Otherwise it waits: the next connection resends it.
      if (p.state === 'sending') {
        p.state = 'waiting';
        this.s.notifyUnsent(p.chat_id);
      }
    }
  }

  /**
   * timedOut: no acknowledgement in time. That is no failure: the message waits, and goes out
   * again (same client_id, so once) on the next connection. A socket that looks open is probed,
   * since a dead line can look open for a long time; if it answers, the message is sent again.
   */
  timedOut(clientId) {
    const p = this.s.pending.get(clientId);
    if (!p || p.state === 'failed') return;
    p.state = 'waiting';
    this.s.notifyUnsent(p.chat_id);
    if (!this.conn.online) return;
    this.conn.probe();
    this.sendTimers.set(clientId, setTimeout(() => {
      const q = this.s.pending.get(clientId);
      if (q && q.state === 'waiting' && this.conn.online) this.dispatch(q);
    }, SEND_TIMEOUT));
  }

  resendPending() {
    const list = [...this.s.pending.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    for (const p of list) if (this.s.chats.has(p.chat_id) && !p.hard) this.dispatch(p);
  }

  pendingKey() {
    return 'chat.pending.' + (this.s.me?.id ?? '');
  }

  /** savePending keeps unsent messages in this tab's session storage, so a reload resends them. */
  savePending() {
    try {
      const list = [...this.s.pending.values()].map(({ client_id, chat_id, body, files, created_at, reply_to_seq, mentions, mention_all }) => ({ client_id, chat_id, body, files, created_at, reply_to_seq, mentions, mention_all }));
      if (list.length) sessionStorage.setItem(this.pendingKey(), JSON.stringify(list));
      else sessionStorage.removeItem(this.pendingKey());
    } catch { /* storage full or disabled: keep them in memory */ }
  }

  restorePending() {
    let list = [];
    try {
      list = JSON.parse(sessionStorage.getItem(this.pendingKey()) || '[]');
    } catch { /* ignore */ }
    for (const p of list) {
      if (!p?.client_id || !this.s.chats.has(p.chat_id)) continue;
      this.s.pending.set(p.client_id, { ...p, state: 'sending' });
    }
    for (const p of this.s.pending.values()) this.dispatch(p);
  }

  // ---- reading and typing -------------------------------------------------------------------

  /** markRead records that this user has seen chatId up to seq, on every device. */
  markRead(chatId, seq) {
    const chat = this.s.chats.get(chatId);
    if (!chat || !seq || seq <= (chat.my_last_read_seq || 0)) return;
    chat.my_last_read_seq = seq;
    if (seq >= (chat.last_seq || 0)) {
      chat.unread_count = 0;
      chat.unread_mentions = 0;
    }
    this.readQueue.set(chatId, seq);
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => this.flushReads(), 150);
    this.s.notifyChats([chatId]);
  }

  flushReads() {
    clearTimeout(this.readTimer);
    for (const [chatId, seq] of this.readQueue) {
      if (this.conn.send('read', { chat_id: chatId, seq })) continue;
      api.read(chatId, seq).then((r) => {
        this.onReadUpdated({ chat_id: chatId, user_id: this.s.me.id, last_read_seq: r.my_last_read_seq, unread_count: r.unread_count, unread_mentions: r.unread_mentions });
        this.onReadAll({ chat_id: chatId, read_all_seq: r.read_all_seq });
      }).catch(() => { /* resent after the next hello */ });
    }
    this.readQueue.clear();
  }

  /** openChat tells the server which chat is on screen (null: none), for a big group's typing. */
  openChat(chatId) {
    if (chatId === this.openId) return;
    this.openId = chatId ?? null;
    this.conn.send('chat.open', { chat_id: this.openId });
    this.watchMembers();
  }

  /**
   * watchMembers subscribes to the presence of the members of the chat on screen (at most
   * 500, the server's cap), and of nobody when none is; a call that changes nothing sends
   * nothing.
   */
  watchMembers() {
    const s = this.s;
    const mems = this.openId == null ? null : s.members.get(this.openId);
    const ids = mems ? [...mems.keys()].filter((id) => id !== s.me?.id).slice(0, PRESENCE_MAX) : [];
    const key = ids.join(',');
    if (key === this.watched) return;
    if (this.conn.send('presence.subscribe', { user_ids: ids })) this.watched = key;
  }

  typing(chatId) {
    const now = Date.now();
    if (now - (this.typingSent.get(chatId) || 0) < TYPING_EVERY) return;
    if (this.conn.send('typing', { chat_id: chatId })) this.typingSent.set(chatId, now);
  }

  // ---- history ------------------------------------------------------------------------------

  /** openHistory loads the newest page of a chat the first time it is shown. */
  async openHistory(chatId) {
    const box = this.s.messagesOf(chatId);
    if (box.loaded || box.loading) return;
    box.loading = true;
    // Load enough to reach the first unread message (for the "new messages" divider): more
    // pages back to my read mark, up to REACH_UNREAD messages.
    const chat = this.s.chats.get(chatId);
    const readSeq = chat?.my_last_read_seq || 0;
    const unreadSpan = chat ? (chat.last_seq || 0) - readSeq : 0;
    const limit = Math.min(200, Math.max(PAGE, unreadSpan + 10));
    try {
      // Pages come ascending by seq: the oldest loaded is the first.
      let { messages, has_more: more } = await api.history(chatId, { limit });
      while (more && messages.length > 0 && messages.length < REACH_UNREAD && messages[0].seq > readSeq + 1) {
        const r = await api.history(chatId, { before_seq: messages[0].seq, limit: 200 });
        messages = [...r.messages, ...messages];
        more = r.has_more && r.messages.length > 0;
      }
      box.hasOlder = more;
      box.loaded = true;
      historyLoaded(this.s, chatId, messages);
      for (const m of messages) this.ingest(m);
      if (box.firstMissing()) this.fillGaps(chatId);
    } catch (err) {
      box.error = describe(err);
      this.s.messages.delete(chatId);
    } finally {
      box.loading = false;
      this.s.notify('pane');
    }
  }

  /** loadOlder fetches the page (limit messages) before the oldest loaded message. */
  async loadOlder(chatId, limit = PAGE) {
    const box = this.s.messages.get(chatId);
    if (!box || !box.loaded || !box.hasOlder || box.loadingOlder) return;
    box.loadingOlder = true;
    this.s.notify('pane');
    try {
      const r = await api.history(chatId, { before_seq: box.oldest, limit });
      for (const m of r.messages) this.ingest(m);
      box.hasOlder = r.has_more && r.messages.length > 0;
    } catch { /* the next scroll tries again */ } finally {
      box.loadingOlder = false;
      this.s.notify('pane');
    }
  }

  /** fillGaps fetches any seqs missing between the loaded messages. */
  async fillGaps(chatId) {
    if (this.filling.has(chatId)) return;
    this.filling.add(chatId);
    try {
      for (let i = 0; i < 50; i++) {
        const box = this.s.messages.get(chatId);
        const miss = box?.firstMissing();
        if (!miss) break;
        const r = await api.history(chatId, { after_seq: miss - 1, limit: 200 });
        if (!r.messages.length) break;
        for (const m of r.messages) this.ingest(m);
      }
    } catch { /* next event retries */ } finally {
      this.filling.delete(chatId);
    }
  }

  /** catchUp fetches everything after the newest loaded message of a chat. */
  async catchUp(chatId, after) {
    const box = this.s.messages.get(chatId);
    if (!box?.loaded) return;
    let cursor = after ?? box.newest;
    try {
      for (let i = 0; i < 100; i++) {
        const r = await api.history(chatId, { after_seq: cursor, limit: 200 });
        for (const m of r.messages) this.ingest(m);
        if (!r.has_more || !r.messages.length) break;
        cursor = r.messages[r.messages.length - 1].seq;
      }
    } catch { /* the next sync tries again */ }
  }

  /** pageRest handles sync.truncated: the rest of that chat comes over REST. */
  pageRest(chatId, fromSeq) {
    this.truncated = true;
    const box = this.s.messages.get(chatId);
    if (box?.loaded) {
      this.catchUp(chatId, Math.max(0, (fromSeq || 1) - 1));
    } else {
      // Not on screen: drop what we had; opening the chat loads its newest page.
      this.s.messages.delete(chatId);
    }
  }

  // ---- chats and users ----------------------------------------------------------------------

  async loadDetail(chatId) {
    try {
      const sent = performance.now();
      const c = await api.chat(chatId);
      if (!this.isMember(c)) return this.chatGone(chatId, 'gone');
      this.s.setChat(c, sent);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) this.chatGone(chatId, 'gone');
    }
  }

  /**
   * isMember tells whether a chat's detail lists this user. A public group answers everyone, so
   * a detail that arrives after this user was removed from it, or that a late frame of it asked
   * for (the message.ack of a send committed just before the removal comes after chat.removed),
   * shows it from outside: it is not one of the user's chats, and must not come back to the list.
   */
  isMember(c) {
    return !Array.isArray(c.members) || c.members.some((m) => m.id === this.s.me?.id);
  }

  fetchChat(id) {
    if (this.chatFetches.has(id)) return this.chatFetches.get(id);
    const sent = performance.now();
    const p = api.chat(id).then((c) => {
      if (!this.isMember(c)) return;
      const known = this.s.chats.has(id);
      this.s.setChat(c, sent);
      if (!known) this.s.seen.set(id, c.last_seq || 0);
    }).catch(() => {}).finally(() => this.chatFetches.delete(id));
    this.chatFetches.set(id, p);
    return p;
  }

  /**
   * ensureName fetches the name of a user this tab does not know yet. The API has no batch of
   * users: a first load asks for hundreds, NAME_FETCHES at a time (the rest of the page's
   * requests keep connections of their own), and what shows them is redrawn once a frame for
   * all the answers of that frame (namesCame), not once an answer.
   */
  ensureName(id) {
    if (!id || this.s.name(id) || this.nameFetches.has(id)) return;
    this.nameFetches.add(id);
    this.nameQueue.push(id);
    this.fetchNames();
  }

  fetchNames() {
    while (this.nameQueue.length && this.namesInFlight < NAME_FETCHES) {
      const id = this.nameQueue.shift();
      this.namesInFlight += 1;
      api.user(id).then((u) => {
        // A name that came while this was asked (member.joined, the chat's members, a
        // user.updated) stays: any later rename comes as user.updated too, whereas an answer
        // overtaken by a rename brought the old name back.
        this.nameRetries.delete(id);
        if (!this.s.names.has(id)) this.s.names.set(id, u.name);
        if (typeof u.online === 'boolean' && !this.s.online.has(id)) this.s.online.set(id, u.online);
        if (u.last_seen_at) this.s.lastSeen.set(id, u.last_seen_at);
      }).catch((err) => {
        // Nothing is set: a name that came meanwhile (member.joined, the chat's members) stays,
        // where a stored "Someone" had replaced it; an unknown one shows as "Someone" (who())
        // until a retry brings it. A user who is not there (404) is not asked for again.
        if (err?.status !== 404 && !this.stopped) this.retryName(id);
        else this.nameRetries.delete(id);
      }).finally(() => {
        this.namesInFlight -= 1;
        this.namesCame.add(id);
        this.fetchNames();
        if (this.namesCame.size === 1) nextFrame(() => this.namesShown());
      });
    }
  }

  /** retryName asks for the name of user id again, later and later, until it comes. */
  retryName(id) {
    const tries = (this.nameRetries.get(id)?.tries || 0) + 1;
    const wait = Math.min(NAME_RETRY_MAX, NAME_RETRY_FIRST * 2 ** (tries - 1));
    const timer = setTimeout(() => {
      if (this.s.names.has(id)) {
        this.nameRetries.delete(id); // it came meanwhile (member.joined, user.updated)
        return;
      }
      this.nameQueue.push(id);
      this.fetchNames();
    }, wait);
    this.nameRetries.set(id, { timer, tries });
  }

  /** namesShown redraws the rows that name a user whose name came (and the pane, the dialogs). */
  namesShown() {
    const came = this.namesCame;
    this.namesCame = new Set();
    this.renamed(came);
  }

  /**
   * renamed redraws what shows the names of users ids, which came or changed: the rows whose
   * preview or typing line names one, and the open chat's messages that do (and the dialogs).
   */
  renamed(ids) {
    const s = this.s;
    const rows = [];
    for (const c of s.chats.values()) {
      const m = c.last_message;
      const typists = s.typing.get(c.id);
      if (ids.has(m?.sender_id) || ids.has(m?.event?.user_id) || ids.has(m?.event?.actor_id)
        || (typists && [...typists.keys()].some((id) => ids.has(id)))) rows.push(c.id);
    }
    s.notifyChats(rows, 'members');
    const open = s.activeChatId;
    if (open == null) return;
    const seqs = [];
    for (const m of s.messages.get(open)?.list() || []) {
      if (ids.has(m.sender_id) || ids.has(m.event?.user_id) || ids.has(m.event?.actor_id)
        || ids.has(m.reply_to?.sender_id) || m.mentions?.some((id) => ids.has(id))) seqs.push(m.seq);
    }
    s.notifyMessages(open, seqs);
  }

  /**
   * ensureEmails learns the emails of users whose names look like another member's, to tell
   * them apart: GET /users by each one's name (members see each other's emails), once a user.
   */
  ensureEmails(ids) {
    const names = new Set();
    for (const id of ids) {
      const name = this.s.name(id);
      if (!name || this.s.emails.has(id) || this.emailFetches.has(id)) continue;
      this.emailFetches.add(id);
      names.add(name);
    }
    for (const name of names) {
      api.usersNamed(name).then((res) => {
        const learnt = new Set();
        for (const u of res.users || []) {
          if (u.email && this.s.emails.get(u.id) !== u.email) {
            this.s.emails.set(u.id, u.email);
            learnt.add(u.id);
          }
        }
        // What shows them is drawn again, as for a name: their messages, not the whole pane.
        if (learnt.size) this.renamed(learnt);
      }).catch(() => {}); // '#id' tells them apart meanwhile
    }
  }

  async createPrivate(userId) {
    return (await this.s.applyChat(api.createPrivate(userId))).id;
  }

  async createGroup(title, isPublic, memberIds) {
    return (await this.s.applyChat(api.createGroup(title, isPublic, memberIds))).id;
  }

  async join(chatId) {
    return (await this.s.applyChat(api.join(chatId))).id;
  }

  async invite(chatId, userId) {
    await this.s.applyChat(api.invite(chatId, userId));
  }

  async leave(chatId) {
    await api.leave(chatId);
    this.chatGone(chatId);
  }
}
