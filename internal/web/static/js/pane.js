// The message pane: header, history with upward infinite scroll, day separators, the "new
// messages" divider, delivery marks, typing indicator and the composer.

import { chatSettingsDialog } from './chatsettings.js';
import { h, icon, place, reconcile } from './dom.js';
import { avatar } from './avatar.js';
import { count, dayKey, dayLabel, fullTime, hue, lastSeen, plural, systemParts, timeOf } from './format.js';
import { ReadTracker, windowActive } from './reading.js';
import { firstLineOf, who } from './chatlist.js';
import { membersDialog, readByDialog } from './members.js';
import { mountComposer } from './composer.js';
import { hasBlocks, renderBody } from './markup.js';
import { mentionTokens, mentionsMe } from './mentions.js';
import { tellApart, twinsIn } from './lookalike.js';
import { renderFiles } from './files.js';
import { KEEP_CLOSED } from './store.js';
import { mountChanges } from './msgview.js';
import { quiet } from './notify.js';

const RUN_GAP = 5 * 60 * 1000;
const LOAD_OLDER_AT = 300;
// The least time between two things the announcer says (announce).
const ANNOUNCE_MS = 1500;

function typingSentence(store, ids) {
  const names = ids.map((id) => store.name(id) || 'Someone');
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

/** mountPane renders the pane into el; back() returns to the list on narrow screens. */
export function mountPane(ctx, el, { back }) {
  const { store, client } = ctx;
  let chatId = null;
  let openReadSeq = 0;
  let dividerSeq = null;
  let dividerDone = false;
  // The first unread message is older than what is loaded (more unread than a first load
  // fetches): the divider tops the loaded messages and says so, until older pages reach it.
  let dividerAbove = false;
  let initialScroll = true;
  let stickToBottom = false;
  // A message to show once its page is loaded (a search result): { chatId, seq }.
  let target = null;
  // The list's elements by key, and the newest loaded message drawn, as of the last render
  // (patch adds to them).
  let drawn = new Map();
  let drawnNewest = 0;
  // The senders told apart (twinsOf) as drawn: when they change, every message is drawn again.
  let drawnTwins = '';
  // The newest message of the open chat that screen readers were told of (announce); null
  // until its first page is loaded. announcedAt is when the announcer last spoke, and
  // announceTimer, while set, will tell what comes before then.
  let announced = null;
  let announcedAt = -Infinity;
  let announceTimer = 0;

  const empty = h('div', { class: 'pane-empty' },
    h('div', { class: 'empty-art' }, icon('chat')),
    h('h2', { text: 'Your messages' }),
    h('p', { text: 'Pick a chat from the list, or start a new one.' }));

  const backBtn = h('button', { type: 'button', class: 'icon-btn back-btn', 'aria-label': 'Back to chats', onclick: () => back() }, icon('back'));
  const headAvatar = h('span', { class: 'head-avatar' });
  const title = h('h2', { class: 'pane-title', id: 'pane-title', 'data-testid': 'pane-title' });
  const subtitle = h('p', { class: 'pane-sub', 'data-testid': 'pane-sub' });
  const inviteBtn = h('button', {
    type: 'button', class: 'icon-btn', 'aria-label': 'Invite people', title: 'Invite people', 'data-testid': 'invite-button',
    onclick: () => membersDialog(ctx, chatId, { focusInvite: true }),
  }, icon('userPlus'));
  const membersBtn = h('button', {
    type: 'button', class: 'icon-btn', 'aria-label': 'Members', title: 'Members', 'data-testid': 'members-button',
    onclick: () => membersDialog(ctx, chatId),
  }, icon('users'));
  const bellBtn = h('button', {
    type: 'button', class: 'icon-btn', 'aria-label': 'Notifications', title: 'Notifications', 'data-testid': 'bell-button',
    onclick: () => chatSettingsDialog(ctx, chatId),
  }, icon('bell'));
  const header = h('header', { class: 'pane-head' }, backBtn, headAvatar,
    h('div', { class: 'title-text' }, title, subtitle), h('div', { class: 'head-actions' }, bellBtn, inviteBtn, membersBtn));

  const top = h('div', { class: 'history-status', 'data-testid': 'history-status' });
  const list = h('div', { class: 'msg-list' });
  // The log is not a live region: it is filled anew with each chat opened and each page loaded
  // back, which a screen reader would read out whole. New messages are told by the announcer.
  const scroller = h('div', { class: 'scroller', role: 'log', 'aria-live': 'off', 'aria-label': 'Messages', tabindex: '0', 'data-testid': 'messages' },
    h('div', { class: 'scroll-inner' }, top, list));
  // With more unread than a first load fetches ('more above' on the divider), no read mark is
  // set until the rest is loaded and seen, so a chat left unread for long would keep its badge
  // until its reader paged back through all of it: this bar, over the top of the messages (not
  // among them, where paging back moves everything), marks all read at once.
  const unreadCount = h('span', { class: 'unread-count' });
  const markAll = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'mark-all-read', text: 'Mark all as read',
    onclick: () => {
      const chat = store.chats.get(chatId);
      if (!chat) return;
      client.markRead(chatId, chat.last_seq);
      render();
      composer.focus(); // the bar is gone
    } });
  const unreadBar = h('div', { class: 'unread-bar', 'data-testid': 'unread-bar', hidden: true }, unreadCount, markAll);
  // The button hides once the view is at the bottom: the focus it had goes to the composer (to
  // the messages on a touch screen, where the composer's focus brings up the keyboard).
  // It carries the chat's unread count: a message that arrives below the view while it is
  // scrolled up shows there, and brings the button out however near the bottom the view is.
  const jumpCount = h('span', { class: 'jump-count', 'data-testid': 'jump-count', 'aria-hidden': 'true', hidden: true });
  const jump = h('button', { type: 'button', class: 'jump', 'aria-label': 'Jump to the latest message', title: 'Latest', hidden: true, 'data-testid': 'jump',
    onclick: () => {
      toBottom(true);
      if (matchMedia('(pointer: coarse)').matches) scroller.focus({ preventScroll: true });
      else composer.focus();
    } }, icon('down'), jumpCount);
  /**
   * showJump shows the jump button 400 px or more from the bottom, or with unread messages below
   * a view that is not at the bottom (8 px: the view that follows new messages), with their count.
   */
  const showJump = (fromEnd) => {
    const unread = store.chats.get(chatId)?.unread_count || 0;
    const hide = fromEnd < 400 && !(unread > 0 && fromEnd >= 8);
    if (jump.hidden !== hide) jump.hidden = hide;
    const text = unread > 999 ? '999+' : String(unread);
    if (jumpCount.hidden !== !unread) jumpCount.hidden = !unread;
    if (unread && jumpCount.textContent !== text) jumpCount.textContent = text;
    const label = unread ? `Jump to the latest message, ${unread} unread` : 'Jump to the latest message';
    if (jump.getAttribute('aria-label') !== label) jump.setAttribute('aria-label', label);
  };
  const typingLine = h('div', { class: 'typing-line', 'data-testid': 'typing', 'aria-live': 'polite' });
  const announcer = h('div', { class: 'sr-only', 'aria-live': 'polite', 'data-testid': 'announcer' });
  // keepBottom runs a change of the composer's size (fn) and keeps a view that was at the bottom
  // there: the composer measures itself by collapsing first, which scrolls the view up.
  const keepBottom = (fn) => {
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 8;
    fn();
    if (atBottom) toBottom(false);
  };
  const composer = mountComposer(ctx, { getChat: () => chatId, onSent: () => { stickToBottom = true; }, keepBottom });
  const view = h('section', { class: 'pane-chat', 'aria-labelledby': 'pane-title' },
    header, h('div', { class: 'scroll-wrap' }, unreadBar, scroller, jump), typingLine, announcer, composer.el);
  // Edits, deletes, reactions and replies (msgview.js).
  const changes = mountChanges(ctx, { composer, getChat: () => chatId });

  // Files dropped anywhere on the open chat are attached to the draft.
  let dragDepth = 0;
  const hasFiles = (ev) => [...(ev.dataTransfer?.types || [])].includes('Files');
  view.addEventListener('dragenter', (ev) => {
    if (!hasFiles(ev)) return;
    dragDepth += 1;
    view.classList.add('dropping');
  });
  view.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) view.classList.remove('dropping');
  });
  view.addEventListener('dragover', (ev) => {
    if (hasFiles(ev)) ev.preventDefault();
  });
  view.addEventListener('drop', (ev) => {
    dragDepth = 0;
    view.classList.remove('dropping');
    if (!ev.dataTransfer?.files?.length) return;
    ev.preventDefault();
    composer.addFiles([...ev.dataTransfer.files]);
  });

  /**
   * unreadMissing tells whether some of a chat's unread messages are older than its loaded ones
   * (more unread than a first load fetches): a read mark covers every message before it, so
   * none is set until they are loaded and seen.
   */
  const unreadMissing = (chat, box) => {
    const readTo = chat.my_last_read_seq || 0;
    if (!box.hasOlder || box.oldest <= readTo + 1) return false;
    const me = store.me.id;
    const loaded = box.list().filter((m) => m.seq > readTo && m.kind === 'text' && m.sender_id !== me && !m.deleted_at).length;
    return loaded < (chat.unread_count || 0);
  };

  const tracker = new ReadTracker(scroller, (seq) => {
    const chat = store.chats.get(chatId);
    const box = store.messages.get(chatId);
    if (chat && box?.loaded && !unreadMissing(chat, box)) client.markRead(chatId, seq);
  });

  const fromBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
  // The jump button's scroll is smooth, unless the user asked for less motion (CSS's
  // scroll-behavior does not govern a scroll whose behavior is given).
  const toBottom = (smooth) => {
    const glide = smooth && !matchMedia('(prefers-reduced-motion: reduce)').matches;
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: glide ? 'smooth' : 'instant' });
  };

  // Where the view is, as of the last scroll or resize: gap is its distance from the bottom,
  // measured against the box's height as last observed, because the browser sends the scroll
  // event of a resize before the resize is observed. A view within 8 px of the bottom stays
  // there when the scroller's box shrinks or grows (the composer growing with a long draft, the
  // reply bar, an on-screen keyboard); within 80 px a new message takes it down along (patch).
  // A message arriving reads gap rather than measuring: a measure in the task that moved its
  // chat's row in the list would lay the page out there and then, and again after the append.
  let gap = 0;
  let boxHeight = 0;
  const measureGap = () => {
    gap = scroller.scrollHeight - scroller.scrollTop - (boxHeight || scroller.clientHeight);
  };
  const resized = new ResizeObserver(() => {
    const pinned = gap < 8;
    boxHeight = scroller.clientHeight;
    if (pinned) toBottom(false);
    else measureGap();
  });
  resized.observe(scroller);

  // settle scrolls to the bottom (when asked) and shows or hides the jump button, once, before
  // the next frame: a burst of messages lays the page out once a frame, with the frame's layout.
  let settling = 0;
  let settleBottom = false;
  const settle = (bottom) => {
    settleBottom ||= bottom;
    settling ||= requestAnimationFrame(() => {
      settling = 0;
      if (settleBottom) toBottom(false);
      settleBottom = false;
      showJump(fromBottom());
    });
  };
  const unsettle = () => {
    cancelAnimationFrame(settling);
    settling = 0;
    settleBottom = false;
  };

  // Older messages load one page per approach to the top: reaching the top zone loads a page and
  // disarms; leaving the zone (scrolling down, or the page arriving above the view) arms again.
  let armed = true;
  scroller.addEventListener('scroll', () => {
    measureGap();
    showJump(gap);
    if (scroller.scrollTop >= LOAD_OLDER_AT) armed = true;
    else if (armed && loadOlder()) armed = false;
  }, { passive: true });

  function loadOlder() {
    const box = store.messages.get(chatId);
    if (!box?.loaded || !box.hasOlder || box.loadingOlder) return false;
    client.loadOlder(chatId);
    return true;
  }

  function setChat(id) {
    if (id === chatId) return;
    composer.switchTo(chatId, id);
    // The chat left keeps its newest messages only: a long scroll back is not held for ever.
    store.messages.get(chatId)?.trim(KEEP_CLOSED);
    chatId = id;
    client.openChat(id);
    tracker.reset();
    announced = null;
    clearTimeout(announceTimer);
    announceTimer = 0;
    announcer.textContent = '';
    list.replaceChildren();
    drawn = new Map();
    drawnNewest = 0;
    drawnTwins = '';
    unsettle();
    gap = 0;
    initialScroll = true;
    armed = true;
    dividerSeq = null;
    dividerDone = false;
    dividerAbove = false;
    unreadBar.hidden = true;
    if (id == null) {
      el.replaceChildren(empty);
      return;
    }
    openReadSeq = store.chats.get(id)?.my_last_read_seq || 0;
    el.replaceChildren(view);
    client.openHistory(id);
    client.loadDetail(id);
    render();
    if (!matchMedia('(pointer: coarse)').matches) composer.focus();
  }

  /**
   * announce tells screen readers of the messages from others that arrived in the open chat
   * since it last spoke: "Name: first line" for one, "N new messages" for more. It speaks at
   * most once per ANNOUNCE_MS, what comes sooner being told at the end of the wait with the
   * rest: messages come one frame each, and a burst was said message by message, a queue a
   * screen reader read out for minutes. The chat's loaded history never is.
   */
  function announce() {
    const box = store.messages.get(chatId);
    if (!box?.loaded) return;
    const newest = box.newest;
    if (announced == null || newest <= announced) {
      announced = Math.max(announced ?? 0, newest);
      return;
    }
    if (announceTimer) return;
    const wait = announcedAt + ANNOUNCE_MS - performance.now();
    if (wait > 0) {
      announceTimer = setTimeout(() => {
        announceTimer = 0;
        announce();
      }, wait);
      return;
    }
    const l = box.list();
    const fresh = [];
    for (let i = l.length - 1; i >= 0 && l[i].seq > announced; i--) {
      const m = l[i];
      if (m.kind === 'text' && !m.deleted_at && m.sender_id !== store.me.id) fresh.push(m);
    }
    announced = newest;
    if (!fresh.length) return;
    announcedAt = performance.now();
    announcer.textContent = fresh.length === 1
      ? `${who(store, fresh[0].sender_id)}: ${firstLineOf(fresh[0])}`
      : plural(fresh.length, 'new message');
  }

  /** A message from someone else that arrives unseen marks where the unread part starts. */
  function onMessage(msg) {
    if (msg.chat_id !== chatId || msg.sender_id === store.me.id || msg.kind !== 'text') return;
    if (dividerDone && dividerSeq == null && !windowActive()) dividerSeq = msg.seq;
  }

  function renderHeader(chat) {
    title.textContent = chat.title;
    const peer = chat.kind === 'private' ? chat.peer : null;
    headAvatar.replaceChildren(peer
      ? avatar(peer.id, chat.title, { online: store.isOnline(peer.id) })
      : avatar(chat.id, chat.title, { group: true }));
    if (peer) {
      const on = store.isOnline(peer.id) && !chat.read_only;
      subtitle.textContent = chat.read_only ? 'deleted account' : on ? 'online' : lastSeen(store.lastSeen.get(peer.id));
      subtitle.classList.toggle('is-online', on);
    } else {
      const mems = store.members.get(chat.id);
      const parts = [plural(mems ? mems.size : chat.member_count, 'member')];
      if (mems) {
        const on = [...mems.keys()].filter((id) => id !== store.me.id && store.isOnline(id)).length;
        if (on) parts.push(`${on} online`);
      }
      if (chat.public) parts.push('public');
      subtitle.textContent = parts.join(' · ');
      subtitle.classList.remove('is-online');
    }
    inviteBtn.hidden = chat.kind !== 'group';
    // The bell says whether the chat is muted (or notifies of nothing).
    const muted = quiet(chat);
    if (bellBtn.dataset.muted !== String(muted)) {
      bellBtn.dataset.muted = String(muted);
      bellBtn.replaceChildren(icon(muted ? 'bell-off' : 'bell'));
      bellBtn.setAttribute('aria-label', muted ? 'Notifications (muted)' : 'Notifications');
      bellBtn.title = muted ? 'Notifications (muted)' : 'Notifications';
    }
    const info = chat.kind === 'group' ? 'Group info' : 'Contact info';
    membersBtn.setAttribute('aria-label', info);
    membersBtn.title = info;
    composer.setReadOnly(chat.read_only ? 'This account was deleted: you can read this chat, not reply.' : '');
  }

  function statusEl(chat, m) {
    if (m.pending) {
      if (m.pending.state === 'failed') return h('span', { class: 'status failed', 'data-testid': 'msg-status', dataset: { state: 'failed' }, text: 'Not sent' });
      if (m.pending.state === 'waiting') {
        return h('span', {
          class: 'status waiting', 'data-testid': 'msg-status', dataset: { state: 'waiting' }, text: 'Waiting for network',
          title: 'It will be sent when the connection is back.',
        });
      }
      return h('span', { class: 'status sending', 'data-testid': 'msg-status', dataset: { state: 'sending' }, text: 'Sending…' });
    }
    const read = m.seq <= (chat.read_all_seq || 0);
    const props = {
      class: `status ${read ? 'read' : 'sent'}`, 'data-testid': 'msg-status', dataset: { state: read ? 'read' : 'sent' },
      title: read ? 'Read by everyone' : 'Sent',
    };
    const marks = read ? '✓✓' : '✓';
    if (chat.kind === 'group') {
      return h('button', { ...props, type: 'button', 'aria-label': `${read ? 'Read by everyone' : 'Sent'}. Show who has read it`, onclick: () => readByDialog(ctx, chat.id, m) }, marks);
    }
    return h('span', { ...props, role: 'img', 'aria-label': read ? 'Read' : 'Sent' }, marks);
  }

  /** keyOf is a message's key in the list: my own by client_id, so a sent one keeps its element. */
  const keyOf = (m) => (m.kind !== 'system' && m.sender_id === store.me.id && m.client_id ? `c:${m.client_id}` : `s:${m.seq}`);

  /** contOf tells whether m continues the run of prev, the message before it (buildItems). */
  const contOf = (prev, m) => !!prev && prev.kind !== 'system' && dayKey(prev.created_at) === dayKey(m.created_at)
    && !(dividerSeq && m.seq === dividerSeq) && prev.sender_id === m.sender_id
    && Date.parse(m.created_at) - Date.parse(prev.created_at) < RUN_GAP;

  /**
   * twinsOf returns the senders of msgs, and the chat's members, whose names look like someone
   * else's there: they are told apart (lookalike.js).
   */
  function twinsOf(chat, msgs) {
    const twins = chat.kind === 'group' ? twinsIn(store, chat.id, new Set(msgs.map((m) => m.sender_id))) : new Set();
    if (twins.size) client.ensureEmails(twins);
    return twins;
  }

  function messageItem(chat, m, cont, twins) {
    const apart = twins.has(m.sender_id) ? tellApart(store, m.sender_id) : '';
    const mine = m.sender_id === store.me.id;
    const group = chat.kind === 'group';
    // Only my messages show whether they were read: a read mark draws no one else's again (a
    // message drawn anew between a press and its release loses the click, on a quote say).
    const state = !mine ? '' : m.pending ? m.pending.state : m.seq <= (chat.read_all_seq || 0) ? 'read' : 'sent';
    const senderName = store.name(m.sender_id) || '…';
    const tokens = mentionTokens(m, store);
    const forMe = mentionsMe(m, store.me.id);
    const sig = [cont, m.seq || '', state, senderName, apart, m.pending?.error || '', (m.files || []).map((f) => f.id).join(','), changes.sig(m),
      tokens.map((t) => t.text).join(',')].join('|');
    const fill = (el) => {
      if (el.sig === sig) return;
      el.sig = sig;
      el.className = `msg ${mine ? 'mine' : 'theirs'}${cont ? ' cont' : ''}${m.pending ? ' pending' : ''}${forMe ? ' mentions-me' : ''}`;
      if (m.seq) el.dataset.seq = String(m.seq);
      else delete el.dataset.seq;
      el.dataset.own = String(mine);
      el.dataset.senderId = String(m.sender_id ?? '');
      if (m.client_id) el.dataset.clientId = m.client_id;
      const showSender = group && !mine && !cont;
      const bubble = h('div', { class: 'bubble' },
        showSender ? h('div', { class: 'sender', 'data-testid': 'sender' }, h('bdi', { text: senderName }),
          apart ? h('span', { class: 'sender-apart', 'data-testid': 'sender-apart', text: apart }) : null) : null,
        // Who said it, for screen readers where the bubble does not show a name.
        showSender ? null : h('span', { class: 'sr-only', text: `${mine ? 'You' : apart ? `${senderName} (${apart})` : senderName}: ` }),
        renderFiles(m.files),
        m.body ? h('div', { class: hasBlocks(m.body) ? 'text blocks' : 'text', 'data-testid': 'message-text' }, renderBody(m.body, tokens)) : null,
        h('span', { class: 'meta' },
          h('time', { datetime: m.created_at, title: fullTime(m.created_at), text: timeOf(m.created_at) }),
          mine ? statusEl(chat, m) : null));
      const sender = bubble.querySelector('.sender');
      if (sender) sender.style.setProperty('--hue', String(Math.round(hue(m.sender_id))));
      const kids = [];
      if (group && !mine) kids.push(cont ? h('span', { class: 'msg-avatar spacer' }) : h('span', { class: 'msg-avatar' }, avatar(m.sender_id, senderName, { size: 'xs' })));
      kids.push(bubble);
      changes.decorate(el, bubble, kids, chat, m);
      if (m.pending?.state === 'failed') {
        kids.push(h('div', { class: 'failed-row', role: 'alert' },
          h('span', { text: m.pending.error || 'Not sent.' }),
          h('button', { type: 'button', class: 'link', 'data-testid': 'retry', text: 'Retry', onclick: () => client.retry(m.client_id) }),
          h('button', { type: 'button', class: 'link muted', text: 'Delete', onclick: () => client.discard(m.client_id) })));
      }
      el.replaceChildren(...kids);
      // A quote's jump highlights the message (msgview.js); a redraw meanwhile (its read
      // mark arriving) keeps the highlight where its animation was.
      const since = Date.now() - Number(el.dataset.flash || 0);
      if (el.dataset.flash && since < 2400) {
        el.classList.add('flash');
        bubble.style.animationDelay = `-${since}ms`;
      }
    };
    return {
      key: keyOf(m),
      create: () => {
        const el = h('div', { 'data-testid': 'message' });
        fill(el);
        return el;
      },
      update: fill,
    };
  }

  function systemItem(m) {
    const parts = systemParts(m.event, (id) => who(store, id), store.me?.id);
    const text = JSON.stringify(parts);
    const fill = (el) => {
      if (el.sig === text) return;
      el.sig = text;
      // Each name set apart (its own direction, in bold): a name cannot pass for the sentence.
      el.replaceChildren(h('span', {}, ...parts.map((p) => (typeof p === 'string' ? p : h('bdi', { class: 'sys-name', text: p.name })))), h('time', { datetime: m.created_at, title: fullTime(m.created_at), class: 'sr-only', text: timeOf(m.created_at) }));
    };
    return {
      key: `s:${m.seq}`,
      create: () => {
        const el = h('div', { class: 'system-note', 'data-testid': 'system-message', dataset: { seq: m.seq } });
        fill(el);
        return el;
      },
      update: fill,
    };
  }

  function dayItem(iso) {
    const label = dayLabel(iso);
    return {
      key: `d:${dayKey(iso)}`,
      create: () => h('div', { class: 'day-sep', role: 'separator', 'aria-label': label }, h('span', { text: label })),
      update: (el) => {
        if (el.firstChild.textContent !== label) {
          el.firstChild.textContent = label;
          el.setAttribute('aria-label', label);
        }
      },
    };
  }

  function dividerItem() {
    const label = dividerAbove ? 'New messages (more above)' : 'New messages';
    return {
      key: 'unread',
      create: () => h('div', { class: 'unread-divider', 'data-testid': 'unread-divider', role: 'separator' }, h('span', { text: label })),
      update: (el) => { el.firstChild.textContent = label; },
    };
  }

  /** unsentOf lists my messages of chatId not acknowledged yet, as messages, in the order written. */
  function unsentOf(id) {
    const me = store.me.id;
    return store.pendingOf(id)
      .sort((a, b) => a.created_at.localeCompare(b.created_at))
      .map((p) => ({ pending: p, sender_id: me, kind: 'text', body: p.body, files: p.files, created_at: p.created_at, client_id: p.client_id }));
  }

  const twinsKey = (twins) => [...twins].sort((a, b) => a - b).join(',');

  function buildItems(chat, box) {
    const pending = unsentOf(chat.id);
    const items = [];
    let prev = null;
    const msgs = [...(box ? box.list() : []), ...pending];
    // Senders whose names look alike (the members', and those who left) are told apart.
    const twins = twinsOf(chat, msgs);
    drawnTwins = twinsKey(twins);
    for (const m of msgs) {
      if (!prev || dayKey(prev.created_at) !== dayKey(m.created_at)) items.push(dayItem(m.created_at));
      if (dividerSeq && m.seq === dividerSeq) items.push(dividerItem());
      items.push(m.kind === 'system' ? systemItem(m) : messageItem(chat, m, contOf(prev, m), twins));
      prev = m;
    }
    return items;
  }

  /**
   * dividerOf places the divider as a render of the loaded messages would: at the first unread
   * message from someone else as of the chat's opening (seq, or null), 'more above' when older
   * unread messages are not loaded (above).
   */
  function dividerOf(chat, box) {
    const first = box.list().find((m) => m.seq > openReadSeq && m.kind === 'text' && m.sender_id !== store.me.id);
    return { seq: first ? first.seq : null, above: !!first && unreadMissing(chat, box) };
  }

  /** renderUnreadBar shows the bar with the count while the divider is 'more above'. */
  function renderUnreadBar(chat) {
    if (unreadBar.hidden !== !dividerAbove) unreadBar.hidden = !dividerAbove;
    const text = `${count(chat.unread_count || 0)} unread`;
    if (dividerAbove && unreadCount.textContent !== text) unreadCount.textContent = text;
  }

  /** renderHead draws what is around the messages: the header and the typing line. */
  function renderHead(chat) {
    renderHeader(chat);
    const typists = store.typists(chat.id);
    typingLine.textContent = typists.length ? typingSentence(store, typists) : '';
    typingLine.classList.toggle('on', typists.length > 0);
  }

  /**
   * onChange follows the store: a batch that names messages of the open chat (new, edited,
   * deleted, reacted to, read), my unsent ones or a change of its members redraws those only
   * (patch), one that asks for the whole pane goes over every loaded message (render).
   */
  function onChange() {
    if (chatId == null) return;
    announce();
    const { allPane, msgs, unsent, people } = store.changed;
    if (allPane) return render();
    const seqs = msgs.get(chatId);
    const chat = store.chats.get(chatId);
    const mine = unsent.has(chatId) || people.has(chatId);
    if ((!seqs && !mine) || !chat) return;
    renderHead(chat);
    if (dividerAbove) {
      // A read mark that moved (another device's, or mine with a message I sent) may end 'more
      // above': render draws the divider and the bar anew then. A new message only adds to the
      // count.
      const box = store.messages.get(chatId);
      const now = box?.loaded ? dividerOf(chat, box) : null;
      if (!now || now.seq !== dividerSeq || !now.above) return render();
      renderUnreadBar(chat);
    }
    if ((seqs?.size || mine) && !patch(chat, seqs ? [...seqs].sort((a, b) => a - b) : [])) render();
  }

  /**
   * patch redraws the messages seqs of the open chat in place (their signature tells whether
   * they changed), adds the new ones after the newest drawn, with their day separator (my own
   * acknowledged one keeps the element it had unsent), and brings my unsent messages below them
   * up to date; it returns false, having changed nothing that render would not, for anything
   * else (a message in between, a new day among my unsent ones, a target to bring into view,
   * senders to tell apart that were not, many at once).
   */
  function patch(chat, seqs) {
    const box = store.messages.get(chatId);
    if (!box?.loaded || box.loadingOlder || target || initialScroll || !dividerDone) return false;
    if (seqs.length > 50 || !drawnNewest) return false;
    const unsent = unsentOf(chatId);
    const twins = twinsOf(chat, unsent.length ? [...box.list(), ...unsent] : box.list());
    if (twinsKey(twins) !== drawnTwins) return false;
    // Where the view was as of its last scroll (gap): measuring here would lay the page out.
    const atBottom = stickToBottom || settleBottom || gap < 80;
    // The view's top, measured for a message drawn again only: a measure here lays the page
    // out (the chat list's row moved in this task), and a new message below needs none.
    let viewTop = null;
    let shift = 0;
    const added = [];
    for (const seq of seqs) {
      const m = box.bySeq.get(seq);
      if (!m) return false;
      const prev = box.bySeq.get(seq - 1);
      const el = drawn.get(keyOf(m));
      if (el && seq <= drawnNewest) {
        const item = m.kind === 'system' ? systemItem(m) : messageItem(chat, m, contOf(prev, m), twins);
        // A message above the view that changes height would move what is in view: it is kept.
        const above = !atBottom && el.getBoundingClientRect().top < (viewTop ??= scroller.getBoundingClientRect().top);
        const before = above ? el.offsetHeight : 0;
        item.update(el);
        if (above) shift += el.offsetHeight - before;
        continue;
      }
      const prevEl = prev && drawn.get(keyOf(prev));
      if (seq !== drawnNewest + 1 || !prevEl) return false;
      const items = [];
      if (dayKey(prev.created_at) !== dayKey(m.created_at)) items.push(dayItem(m.created_at));
      if (dividerSeq && m.seq === dividerSeq) items.push(dividerItem());
      const item = m.kind === 'system' ? systemItem(m) : messageItem(chat, m, contOf(prev, m), twins);
      // What follows the newest drawn: nothing, or my unsent messages (without a day of their own).
      const next = prevEl.nextElementSibling;
      if (next && !next.dataset.key?.startsWith('c:')) return false;
      if (el) {
        // Mine, acknowledged: the first of the unsent, drawn again in place as sent.
        if (items.length || next !== el) return false;
        item.update(el);
        added.push(el);
      } else {
        items.push(item);
        if (items.some((it) => drawn.has(it.key))) return false;
        for (const it of items) {
          const e = it.create();
          e.dataset.key = it.key;
          list.insertBefore(e, next);
          drawn.set(it.key, e);
          added.push(e);
        }
      }
      drawnNewest = seq;
    }
    // My unsent messages, after the loaded ones in the order written (buildItems); any drawn
    // after them are gone (discarded).
    let before = box.bySeq.get(drawnNewest);
    const newestEl = before && drawn.get(keyOf(before));
    if (!newestEl) return false;
    let cur = newestEl.nextElementSibling;
    for (const p of unsent) {
      if (dayKey(p.created_at) !== dayKey(before.created_at)) return false;
      const item = messageItem(chat, p, contOf(before, p), twins);
      let el = drawn.get(item.key);
      if (el) {
        item.update(el);
        if (el === cur) cur = cur.nextElementSibling;
        else place(list, el, cur);
      } else {
        el = item.create();
        el.dataset.key = item.key;
        list.insertBefore(el, cur);
        drawn.set(item.key, el);
        added.push(el);
      }
      before = p;
    }
    while (cur) {
      const gone = cur;
      cur = cur.nextElementSibling;
      drawn.delete(gone.dataset.key);
      gone.remove();
    }
    tracker.observe(added);
    if (atBottom) settle(true);
    else {
      if (shift) scroller.scrollTop += shift;
      if (added.length) settle(false);
    }
    stickToBottom = false;
    return true;
  }

  function render() {
    if (chatId == null) return;
    const chat = store.chats.get(chatId);
    if (!chat) return;
    renderHead(chat);

    const box = store.messages.get(chatId);
    if (!box) {
      // Loaded again when the connection is back (client.js onHello); what I write meanwhile shows.
      top.replaceChildren(h('span', { text: 'Could not load the messages. ' }),
        h('button', { type: 'button', class: 'link', text: 'Try again', onclick: () => client.openHistory(chatId) }));
      reconcile(list, buildItems(chat, null));
      noteDrawn(null);
      return;
    }
    if (!box.loaded) {
      top.replaceChildren(h('span', { class: 'spinner', text: 'Loading messages…' }));
      return;
    }
    // Measured before anything on screen changes (the status line above the list included); a
    // scroll to the bottom still to come (settle) is done here instead.
    const atBottom = settleBottom || fromBottom() < 80;
    unsettle();
    const anchor = !atBottom && !initialScroll ? viewAnchor() : null;

    if (box.loadingOlder) top.replaceChildren(h('span', { class: 'spinner', text: 'Loading earlier messages…' }));
    else if (!box.hasOlder) top.replaceChildren(h('span', { class: 'beginning', text: chat.kind === 'group' ? 'This is the beginning of the group.' : 'This is the beginning of your conversation.' }));
    else top.replaceChildren();

    if (!dividerDone || dividerAbove) {
      dividerDone = true;
      ({ seq: dividerSeq, above: dividerAbove } = dividerOf(chat, box));
    }
    renderUnreadBar(chat);

    reconcile(list, buildItems(chat, box));
    noteDrawn(box);
    tracker.observe(list.querySelectorAll('[data-seq]'));

    if (target && target.chatId === chatId) {
      // Page back until the message is loaded, then bring it to the middle of the view.
      const el = list.querySelector(`[data-seq="${target.seq}"]`);
      if (el) {
        target = null;
        initialScroll = false;
        el.scrollIntoView({ block: 'center' });
        el.classList.add('hit');
        setTimeout(() => el.classList.remove('hit'), 2500);
        stickToBottom = false;
        showJump(fromBottom());
        return;
      } else if (box.hasOlder && box.oldest > target.seq) {
        if (!box.loadingOlder) client.loadOlder(chatId);
        return;
      } else {
        target = null; // not in the history any more (deleted)
      }
    }
    if (initialScroll) {
      initialScroll = false;
      const divider = list.querySelector('.unread-divider');
      if (divider) scroller.scrollTop = Math.max(0, divider.offsetTop - 40);
      else toBottom(false);
    } else if (stickToBottom || atBottom) {
      toBottom(false);
    } else if (anchor?.el.isConnected) {
      scroller.scrollTop += offsetInView(anchor.el) - anchor.offset;
    }
    stickToBottom = false;
    showJump(fromBottom());
    if (scroller.scrollTop >= LOAD_OLDER_AT) armed = true;
    // A short chat that does not fill the view cannot be scrolled: fetch until it does.
    if (scroller.scrollHeight <= scroller.clientHeight) loadOlder();
  }

  function noteDrawn(box) {
    drawn = new Map();
    for (const el of list.children) drawn.set(el.dataset.key, el);
    const l = box ? box.list() : [];
    drawnNewest = l.length ? l[l.length - 1].seq : 0;
  }

  const offsetInView = (el) => el.getBoundingClientRect().top - scroller.getBoundingClientRect().top;

  /**
   * viewAnchor is the message the user is looking at: the first one (not a day separator or the
   * unread divider, which move when older messages arrive) whose bottom is inside the view.
   */
  function viewAnchor() {
    const top = scroller.getBoundingClientRect().top;
    for (const el of list.children) {
      if (!/^[sc]:/.test(el.dataset.key || '')) continue;
      if (el.getBoundingClientRect().bottom > top) return { el, offset: offsetInView(el) };
    }
    return null;
  }

  // A change of members shows in the header (their count, who is online): the messages follow
  // 'pane', which every change of a name also notifies.
  // The jump button's count follows the chat's unread count (read marks come as 'chats').
  const unsubs = [store.on('pane', onChange), store.on('members', () => {
    const chat = store.chats.get(chatId);
    if (chat) renderHead(chat);
  }), store.on('chats', () => {
    if (chatId != null) showJump(gap);
  })];
  el.replaceChildren(empty);
  return {
    setChat,
    onMessage,
    /** showMessage makes the next render of chatId bring its message seq into view. */
    showMessage(id, seq) {
      target = { chatId: id, seq };
      if (id === chatId) render();
    },
    focusComposer: () => composer.focus(),
    destroy() {
      unsettle();
      clearTimeout(announceTimer);
      tracker.destroy();
      resized.disconnect();
      for (const u of unsubs) u();
    },
  };
}
