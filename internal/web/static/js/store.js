// The client's state: chats, loaded messages, unsent messages, members, presence and typing.
// Views subscribe to topics and re-render once per batch of changes. A batch also says what in
// it was narrow (store.changed): the chat list redraws only the rows named, the pane only the
// messages named, unless something in the batch asked for the whole view (notify).

const TYPING_MS = 5000;
// The most messages kept of a chat that is not on screen (the newest; ChatMessages.trim).
export const KEEP_CLOSED = 200;

/** byActivity orders { chat, at } newest first, the newer chat first on a tie (sortedChats). */
export const byActivity = (a, b) => b.at - a.at || b.chat.id - a.chat.id;

/** Messages of one chat that the client has loaded: contiguous from some seq up to the newest. */
export class ChatMessages {
  constructor() {
    this.bySeq = new Map();
    this.hasOlder = true;
    this.loaded = false;
    this.loadingOlder = false;
    this.sorted = null;
  }
  add(msg) {
    const old = this.bySeq.get(msg.seq);
    if (old) {
      // A later state of a message already here (edited, deleted, reacted to) replaces it.
      if ((msg.rev || 0) > (old.rev || 0)) this.replace(msg);
      return false;
    }
    this.bySeq.set(msg.seq, msg);
    // The newest message goes at the end of the sorted list; anything else sorts it again.
    const l = this.sorted;
    if (l && (!l.length || l[l.length - 1].seq < msg.seq)) l.push(msg);
    else this.sorted = null;
    return true;
  }
  /** replace puts a new state of a loaded message in place of the old. */
  replace(msg) {
    this.bySeq.set(msg.seq, msg);
    const l = this.sorted;
    if (!l) return;
    let lo = 0;
    let hi = l.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (l[mid].seq < msg.seq) lo = mid + 1;
      else hi = mid;
    }
    if (l[lo]?.seq === msg.seq) l[lo] = msg;
    else this.sorted = null;
  }
  /**
   * trim forgets all but the newest keep messages (of a chat not on screen: opening it again
   * pages back through the history as usual). Not while a page is on its way.
   */
  trim(keep) {
    if (this.bySeq.size <= keep || this.loading || this.loadingOlder) return;
    const l = this.list();
    for (const m of l.slice(0, l.length - keep)) this.bySeq.delete(m.seq);
    this.sorted = l.slice(l.length - keep);
    this.hasOlder = true;
  }
  list() {
    if (!this.sorted) this.sorted = [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
    return this.sorted;
  }
  get oldest() {
    const l = this.list();
    return l.length ? l[0].seq : 0;
  }
  get newest() {
    const l = this.list();
    return l.length ? l[l.length - 1].seq : 0;
  }
  /** firstMissing is the smallest seq absent between the oldest and newest loaded, or 0. */
  firstMissing() {
    const l = this.list();
    for (let i = 1; i < l.length; i++) if (l[i].seq !== l[i - 1].seq + 1) return l[i - 1].seq + 1;
    return 0;
  }
}

export class Store {
  constructor() {
    this.reset();
    this.subs = new Map();
    this.dirty = new Set();
    this.flushing = false;
    this.changed = Store.noChanges();
    this.changes = Store.noChanges();
  }

  /**
   * noChanges is an empty batch: { allRows, rows: Set(chat id), allPane, msgs: Map(chat id ->
   * Set(seq)), unsent: Set(chat id), people: Set(chat id) }.
   */
  static noChanges() {
    return { allRows: false, rows: new Set(), allPane: false, msgs: new Map(), unsent: new Set(), people: new Set() };
  }

  reset() {
    this.me = null;
    this.sessionId = null;
    this.chats = new Map(); // id -> ChatSummary (kept up to date)
    this.members = new Map(); // chat id -> Map(user id -> member)
    this.messages = new Map(); // chat id -> ChatMessages
    this.pending = new Map(); // client_id -> {chat_id, client_id, body, state, error, created_at}
    this.names = new Map(); // user id -> name
    this.emails = new Map(); // user id -> email, for users whose names look alike (lookalike.js)
    this.online = new Map(); // user id -> bool
    this.lastSeen = new Map(); // user id -> when they were last connected (offline users only)
    // user id -> performance.now() when a live presence frame about them was last applied: a
    // REST response sent before that answers from older presence (heardSince).
    this.presenceAt = new Map();
    this.typing = new Map(); // chat id -> Map(user id -> expiry ms)
    this.seen = new Map(); // chat id -> highest seq received (the sync cursor)
    this.revs = new Map(); // chat id -> highest change (rev) received (msgchanges.js)
    // chat id -> the rev a sync in flight asked from: until its sync.done, the changes below
    // the highest received may still be coming (msgchanges.js syncCursor).
    this.revSyncing = new Map();
    this.replyTo = new Map(); // chat id -> the quote of the message being answered (msgchanges.js)
    this.conn = 'closed';
    this.activeChatId = null;
  }

  /** on subscribes fn to a topic: 'chats', 'pane', 'conn', 'members', 'me'. */
  on(topic, fn) {
    if (!this.subs.has(topic)) this.subs.set(topic, new Set());
    this.subs.get(topic).add(fn);
    return () => this.subs.get(topic).delete(fn);
  }

  /**
   * notify marks topics changed; subscribers run once, after the current task. 'chats' and
   * 'pane' so notified redraw the whole list or pane; notifyChats and notifyMessages are the
   * narrow forms.
   */
  notify(...topics) {
    for (const t of topics) {
      if (t === 'chats') this.changes.allRows = true;
      else if (t === 'pane') this.changes.allPane = true;
    }
    this.mark(topics);
  }

  /** notifyChats: the rows of these chats changed (preview, time, badges, place), and topics. */
  notifyChats(ids, ...topics) {
    for (const id of ids) this.changes.rows.add(id);
    this.notify(...topics);
    this.mark(['chats']);
  }

  /**
   * notifyMessages: these loaded messages of chatId are new or changed (none: what the pane
   * shows around its messages, the header and typing line), and topics.
   */
  notifyMessages(chatId, seqs, ...topics) {
    let set = this.changes.msgs.get(chatId);
    if (!set) this.changes.msgs.set(chatId, (set = new Set()));
    for (const seq of seqs) set.add(seq);
    this.notify(...topics);
    this.mark(['pane']);
  }

  /** notifyUnsent: my unacknowledged messages of chatId changed (sent, failed, discarded); its row too. */
  notifyUnsent(chatId) {
    this.changes.unsent.add(chatId);
    this.notifyChats([chatId]);
    this.mark(['pane']);
  }

  /**
   * notifyPeople: who is in chatId changed (a member joined or left): its row, the pane's
   * header and who in it is told apart (lookalike.js), and topics.
   */
  notifyPeople(chatId, ...topics) {
    this.changes.people.add(chatId);
    this.notifyChats([chatId], 'members', ...topics);
    this.mark(['pane']);
  }

  mark(topics) {
    for (const t of topics) this.dirty.add(t);
    if (this.flushing) return;
    this.flushing = true;
    queueMicrotask(() => {
      this.flushing = false;
      const topicsNow = [...this.dirty];
      this.dirty.clear();
      this.changed = this.changes;
      this.changes = Store.noChanges();
      for (const t of topicsNow) for (const fn of this.subs.get(t) || []) {
        try {
          fn();
        } catch (err) {
          console.error('render', t, err);
        }
      }
    });
  }

  /** name is a user's display name, if known. */
  name(id) {
    if (this.me && id === this.me.id) return this.me.name;
    return this.names.get(id);
  }

  isOnline(id) {
    return this.online.get(id) === true;
  }

  /**
   * heardSince tells whether a live presence frame about user id came after sent (a
   * performance.now() of when a request went out; null: a frame, never stale).
   */
  heardSince(id, sent) {
    return sent != null && (this.presenceAt.get(id) ?? -Infinity) > sent;
  }

  /**
   * applyChat stores the chat a request (a promise of a ChatSummary) resolves to. The server
   * answered from the presence it knew then: whoever went on- or offline while the request was
   * out keeps what their presence frame said (a member list fetched as someone left must not
   * show them online for good).
   */
  async applyChat(request) {
    const sent = performance.now();
    return this.setChat(await request, sent);
  }

  /** setChat stores a chat summary; sent is as in heardSince (when it is a REST response). */
  setChat(summary, sent = null) {
    const old = this.chats.get(summary.id);
    const c = { ...old, ...summary };
    if (old) {
      // Progress only moves forward: a stale snapshot never takes it back.
      c.my_last_read_seq = Math.max(old.my_last_read_seq || 0, summary.my_last_read_seq || 0);
      c.read_all_seq = Math.max(old.read_all_seq || 0, summary.read_all_seq || 0);
      if ((old.last_seq || 0) > (summary.last_seq || 0)) {
        c.last_seq = old.last_seq;
        c.last_message = old.last_message;
        c.unread_count = old.unread_count;
        c.unread_mentions = old.unread_mentions;
      }
      if ((old.my_last_read_seq || 0) > (summary.my_last_read_seq || 0)) {
        c.unread_count = old.unread_count;
        c.unread_mentions = old.unread_mentions;
      }
    }
    delete c.members;
    this.chats.set(c.id, c);
    if (c.peer) {
      this.names.set(c.peer.id, c.peer.name);
      if (this.heardSince(c.peer.id, sent)) c.peer = { ...c.peer, online: this.isOnline(c.peer.id) };
      else this.online.set(c.peer.id, !!c.peer.online);
    }
    if (!this.seen.has(c.id)) this.seen.set(c.id, c.last_seq || 0);
    if (summary.members) this.setMembers(c.id, summary.members, sent);
    this.notifyChats([c.id], 'pane');
    return c;
  }

  removeChat(id) {
    this.chats.delete(id);
    this.members.delete(id);
    this.messages.delete(id);
    this.typing.delete(id);
    this.seen.delete(id);
    this.revs.delete(id);
    this.revSyncing.delete(id);
    this.replyTo.delete(id);
    for (const [cid, p] of this.pending) if (p.chat_id === id) this.pending.delete(cid);
    this.notify('chats', 'pane', 'members');
  }

  setMembers(chatId, list, sent = null) {
    const m = new Map();
    for (const mem of list) {
      this.names.set(mem.id, mem.name);
      if (this.heardSince(mem.id, sent)) {
        m.set(mem.id, { ...mem, online: this.isOnline(mem.id) });
        continue;
      }
      m.set(mem.id, { ...mem });
      this.online.set(mem.id, !!mem.online);
      if (mem.last_seen_at) this.lastSeen.set(mem.id, mem.last_seen_at);
    }
    this.members.set(chatId, m);
    this.notify('members', 'pane');
  }

  /**
   * sortedChats lists chats by latest activity (activity), newest first, each as { chat, at }.
   */
  sortedChats() {
    return [...this.chats.values()].map((c) => ({ chat: c, at: this.activity(c) })).sort(byActivity);
  }

  /** activity is when chat c was last active: its last message, or a message of mine not sent yet. */
  activity(c) {
    let t = Date.parse(c.last_message?.created_at || c.created_at) || 0;
    for (const p of this.pending.values()) if (p.chat_id === c.id) t = Math.max(t, Date.parse(p.created_at) || 0);
    return t;
  }

  /** unsent returns the newest message of mine in chatId that the server has not acknowledged. */
  unsent(chatId) {
    let last = null;
    for (const p of this.pending.values()) {
      if (p.chat_id === chatId && (!last || p.created_at > last.created_at)) last = p;
    }
    return last;
  }

  messagesOf(chatId) {
    let m = this.messages.get(chatId);
    if (!m) {
      m = new ChatMessages();
      this.messages.set(chatId, m);
    }
    return m;
  }

  pendingOf(chatId) {
    return [...this.pending.values()].filter((p) => p.chat_id === chatId);
  }

  setTyping(chatId, userId) {
    if (!this.typing.has(chatId)) this.typing.set(chatId, new Map());
    this.typing.get(chatId).set(userId, Date.now() + TYPING_MS);
    this.notifyChats([chatId]);
    this.notifyMessages(chatId, []);
  }

  clearTyping(chatId, userId) {
    const t = this.typing.get(chatId);
    if (t && t.delete(userId)) {
      this.notifyChats([chatId]);
      this.notifyMessages(chatId, []);
    }
  }

  /** typists lists who is typing in a chat now. */
  typists(chatId) {
    const t = this.typing.get(chatId);
    if (!t) return [];
    const now = Date.now();
    const ids = [];
    for (const [id, exp] of t) {
      if (exp > now) ids.push(id);
      else t.delete(id);
    }
    return ids;
  }

  /** expireTyping drops typing states that ran out. */
  expireTyping() {
    const now = Date.now();
    for (const [chatId, t] of this.typing) {
      for (const [id, exp] of t) {
        if (exp <= now) {
          t.delete(id);
          this.notifyChats([chatId]);
          this.notifyMessages(chatId, []);
        }
      }
    }
  }
}
