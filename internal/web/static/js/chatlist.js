// The chat list: title, presence, last message preview and time, unread badge; sorted by
// activity, live, with a filter box.

import { h, icon, place, reconcile } from './dom.js';
import { byActivity } from './store.js';
import { avatar } from './avatar.js';
import { filesText, fullTime, listTime, systemParts } from './format.js';
import { mountSearch } from './search.js';
import { draftsOf, watchDrafts } from './composer.js';
import { quiet } from './notify.js';
import { shownLinks } from './links.js';

/** who names a user for previews and system notes: "You" for the current user. */
export function who(store, id) {
  if (store.me && id === store.me.id) return 'You';
  return store.name(id) || 'Someone';
}

function typingText(store, chat) {
  const ids = store.typists(chat.id);
  if (!ids.length) return '';
  if (chat.kind === 'private') return 'typing…';
  if (ids.length === 1) return `${who(store, ids[0])} is typing…`;
  return 'several people are typing…';
}

/**
 * firstLineOf is what a preview shows of a message: its first line with text, its links as the
 * message pane shows them, or its files.
 */
export function firstLineOf(m) {
  const line = shownLinks((m.body || '').split('\n').find((l) => l.trim()) || m.body || '');
  return line || filesText(m.files);
}

/** unsentText previews a message of mine the server has not acknowledged (offline, failed). */
function unsentText(p) {
  const line = firstLineOf(p);
  if (p.state === 'failed') return `Not sent: ${line}`;
  if (p.state === 'waiting') return `Waiting for network: ${line}`;
  return `You: ${line}`; // on its way: as it will read once stored, without a flicker
}

function preview(ctx, chat) {
  const { store, client } = ctx;
  const m = chat.last_message;
  if (m?.sender_id) client.ensureName(m.sender_id);
  if (m?.event) {
    client.ensureName(m.event.user_id);
    client.ensureName(m.event.actor_id);
  }
  if (!m) return chat.kind === 'group' ? 'No messages yet' : 'Say hello';
  // A system note's parts: each name is drawn apart (fill), as in the pane.
  if (m.kind === 'system') return systemParts(m.event, (id) => who(store, id), store.me?.id);
  if (m.deleted_at) return m.sender_id === store.me.id ? 'You deleted a message' : 'Message deleted';
  // The sender's name and the message each keep their own direction: an Arabic name before
  // "3 apples" drew as "3 :name apples", the number pulled into the name's right-to-left run.
  const body = { text: firstLineOf(m) };
  if (m.sender_id === store.me.id) return ['You: ', body];
  if (chat.kind === 'group') return [{ text: who(store, m.sender_id) }, ': ', body];
  return [body];
}

/**
 * mountChatList renders the sidebar into el. actions: go(chatId), newChat(), account().
 * Returns {focusFilter, focusChat, destroy}.
 */
export function mountChatList(ctx, el, actions) {
  const { store } = ctx;
  const meBtn = h('button', { type: 'button', class: 'me-btn', title: 'Account and devices', 'data-testid': 'account-button', onclick: () => actions.account() });
  const newBtn = h('button', { type: 'button', class: 'icon-btn accent', 'aria-label': 'New chat', title: 'New chat', 'data-testid': 'new-chat', onclick: () => actions.newChat() }, icon('plus'));
  // maxlength: the server searches messages for at most 200 characters (MaxSearchChars).
  const filter = h('input', { type: 'search', id: 'chat-filter', class: 'filter', placeholder: 'Search chats', autocomplete: 'off', 'aria-label': 'Filter chats', maxlength: 200 });
  const list = h('ul', { class: 'chat-list', 'aria-label': 'Chats', 'data-testid': 'chat-list' });
  // The list is one Tab stop (roving tabindex): Tab enters at the open chat (or the one last
  // focused, or the first), the arrow keys, Home and End move within it.
  let rover = null; // chat id of the button that takes the Tab stop
  const empty = h('div', { class: 'list-empty', hidden: true });
  // Message search: Enter in the filter, or this button, searches the messages of every chat.
  const search = mountSearch({
    open: (chatId, seq) => actions.openMessage(chatId, seq),
    who: (id, chat) => {
      ctx.client.ensureName(id);
      return chat?.kind === 'private' && id !== store.me?.id ? '' : who(store, id);
    },
    close: () => { list.hidden = false; draw(); filter.focus(); },
  });
  const searchBtn = h('button', { type: 'button', class: 'btn search-btn', 'data-testid': 'search-messages', hidden: true,
    onclick: () => runSearch() });
  const runSearch = () => {
    const term = filter.value.trim();
    if (!term) return;
    list.hidden = true;
    empty.hidden = true;
    searchBtn.hidden = true;
    search.run(term);
  };
  filter.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      runSearch();
    }
  });

  el.replaceChildren(
    h('header', { class: 'side-head' }, meBtn, newBtn),
    h('div', { class: 'filter-wrap' }, icon('search', 'icon filter-icon'), filter),
    // Before the list, which takes the column's height: "No chats yet" sits under the filter.
    empty,
    list,
    searchBtn,
    search.el);

  const drawMe = () => {
    const me = store.me;
    if (!me) return;
    meBtn.replaceChildren(avatar(me.id, me.name, { size: 'sm' }), h('span', { class: 'me-name', text: me.name }),
      h('span', { class: 'sr-only', text: ': account and devices' }));
  };

  let drafts = {}; // as of each draw (composer.js keeps them, and caches what it read)
  // The rows in the list's order, each li carrying its chat's id and activity (store.activity):
  // a row that changes moves to its place alone (updateRows), the others stay put.
  let rows = [];
  const matches = (c) => {
    const term = filter.value.trim().toLowerCase();
    return !term || (c.title || '').toLowerCase().includes(term);
  };
  const rowOf = (c) => {
    const btn = h('button', { type: 'button', class: 'chat-item', 'data-testid': 'chat-item', dataset: { chatId: c.id }, onclick: () => actions.go(c.id) });
    btn.tabIndex = c.id === rover ? 0 : -1;
    fill(btn, c);
    const li = h('li', {}, btn);
    li.dataset.key = String(c.id);
    return li;
  };
  const draw = () => {
    drafts = draftsOf(store.me?.id ?? '');
    if (search.open) {
      if (filter.value.trim()) return;
      search.hide();
      list.hidden = false;
    }
    const typed = filter.value.trim();
    searchBtn.hidden = !typed;
    searchBtn.textContent = `Search messages for “${typed}”`;
    const chats = store.sortedChats().filter((x) => matches(x.chat));
    reconcile(list, chats.map(({ chat: c, at }) => ({
      key: String(c.id),
      create: () => Object.assign(rowOf(c), { at, chatId: c.id }),
      update: (li) => {
        li.at = at;
        fill(li.firstElementChild, c);
      },
    })));
    rows = [...list.children];
    rove();
    drawEmpty(chats.length);
  };
  const drawEmpty = (shown) => {
    if (!store.chats.size) {
      empty.replaceChildren(h('p', { text: 'No chats yet.' }),
        h('button', { type: 'button', class: 'btn btn-primary', text: 'Start a chat', onclick: () => actions.newChat() }));
      empty.hidden = false;
    } else if (!shown) {
      empty.replaceChildren(h('p', { text: `No chat matches “${filter.value.trim()}”.` }));
      empty.hidden = false;
    } else {
      empty.hidden = true;
    }
  };

  /**
   * updateRows redraws the rows of these chats only, each moved to its place by activity (the
   * rest of the list is in order already): a new message costs one row, not a thousand. A row
   * moves with moveBefore where the browser has it, which keeps the focus on a focused row.
   */
  const updateRows = (ids) => {
    drafts = draftsOf(store.me?.id ?? '');
    let roverGone = false;
    for (const id of ids) {
      const c = store.chats.get(id);
      const i = rows.findIndex((li) => li.chatId === id);
      let li = i >= 0 ? rows[i] : null;
      if (i >= 0) rows.splice(i, 1);
      if (!c || !matches(c)) {
        if (li) {
          roverGone ||= id === rover;
          li.remove();
        }
        continue;
      }
      if (li) fill(li.firstElementChild, c);
      else li = Object.assign(rowOf(c), { chatId: c.id });
      li.at = store.activity(c);
      // The first row that goes after this one (byActivity), by binary search.
      const me = { chat: c, at: li.at };
      let lo = 0;
      let hi = rows.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (byActivity(me, { chat: { id: rows[mid].chatId }, at: rows[mid].at }) > 0) lo = mid + 1;
        else hi = mid;
      }
      const next = rows[lo] || null;
      rows.splice(lo, 0, li);
      if (li.nextElementSibling !== next || !li.isConnected) place(list, li, next);
    }
    if (roverGone || rover == null) rove();
    drawEmpty(rows.length);
  };

  /** redraw follows the store: the rows named when only they changed, else all of them. */
  const redraw = () => {
    const { allRows, rows: ids } = store.changed;
    if (allRows || search.open) draw();
    else if (ids.size) updateRows(ids);
  };

  const buttons = () => [...list.querySelectorAll('.chat-item')];
  const rove = () => {
    const all = buttons();
    const ids = all.map((b) => Number(b.dataset.chatId));
    if (!ids.includes(rover)) rover = ids.includes(store.activeChatId) ? store.activeChatId : ids[0] ?? null;
    for (const b of all) b.tabIndex = Number(b.dataset.chatId) === rover ? 0 : -1;
  };
  list.addEventListener('focusin', (ev) => {
    const b = ev.target.closest?.('.chat-item');
    if (!b) return;
    rover = Number(b.dataset.chatId);
    rove();
  });
  list.addEventListener('keydown', (ev) => {
    const all = buttons();
    const i = all.indexOf(document.activeElement);
    if (i < 0 || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const j = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: all.length - 1 }[ev.key];
    if (j === undefined) return;
    ev.preventDefault();
    all[Math.max(0, Math.min(all.length - 1, j))].focus();
  });

  const fill = (btn, c) => {
    const active = store.activeChatId === c.id;
    const typing = typingText(store, c);
    const unread = c.unread_count || 0;
    const mentioned = unread > 0 && (c.unread_mentions || 0) > 0;
    const online = c.kind === 'private' && c.peer ? store.isOnline(c.peer.id) : undefined;
    // A message of mine not acknowledged yet (offline, failed) is the newest thing in the chat.
    const p = store.unsent(c.id);
    const unsent = p && (!c.last_message || p.created_at > c.last_message.created_at) ? p : null;
    // A draft shows in place of the last message (but in the open chat, whose composer has it).
    const draft = !active && !unsent && typeof drafts[c.id]?.text === 'string' ? firstLineOf({ body: drafts[c.id].text.trim() }) : '';
    const shown = typing || (unsent ? unsentText(unsent) : draft ? `Draft: ${draft}` : preview(ctx, c));
    // A system note's names are set apart from its words, so a name cannot pass for the sentence;
    // a message's sender and text are set apart from each other (preview).
    const text = typeof shown === 'string' ? shown : JSON.stringify(shown);
    const at = unsent ? unsent.created_at : c.last_message?.created_at;
    const when = listTime(at);
    const muted = quiet(c);
    const sig = [active, typing, unread, mentioned, online, c.title, c.public, text, when, unsent?.state, muted].join('\u0001');
    if (btn.sig === sig) return;
    btn.sig = sig;
    const parts = typeof shown === 'string' ? [shown] : shown.map((p) => (typeof p === 'string' ? p
      : p.text !== undefined ? h('bdi', { text: p.text }) : h('bdi', { class: 'sys-name', text: p.name })));
    if (active) btn.setAttribute('aria-current', 'true');
    else btn.removeAttribute('aria-current');
    btn.classList.toggle('has-unread', unread > 0);
    btn.dataset.unread = String(unread);
    // The accessible name is the row's own text (what it shows, so voice control finds it by what
    // is on screen), with the parts only a picture shows spelled out: "Ann, online, 10:04, Hi, 2 unread".
    const status = c.kind === 'private' ? (online ? 'online' : '') : 'group';
    btn.replaceChildren(
      c.kind === 'private' && c.peer
        ? avatar(c.peer.id, c.title, { online })
        : avatar(c.id, c.title, { group: true }),
      h('span', { class: 'ci-main' },
        h('span', { class: 'ci-top' },
          h('span', { class: 'ci-title', 'data-testid': 'chat-title', text: c.title }),
          status ? h('span', { class: 'sr-only', text: `, ${status}` }) : null,
          c.public ? h('span', { class: 'ci-public', title: 'Public group', text: 'public' }) : null,
          muted ? h('span', { class: 'ci-muted', title: 'Muted', 'data-testid': 'muted-icon' }, icon('bell-off'), h('span', { class: 'sr-only', text: ', muted' })) : null,
          when ? h('span', { class: 'sr-only', text: ', ' }) : null,
          h('time', { class: 'ci-time', datetime: at || '', title: at ? fullTime(at) : '', text: when })),
        h('span', { class: 'ci-bottom' },
          h('span', { class: 'sr-only', text: ', ' }),
          typing
            ? h('span', { class: 'ci-preview typing', text: typing })
            : draft
              ? h('span', { class: 'ci-preview draft', 'data-testid': 'chat-preview' }, h('span', { class: 'draft-label', text: 'Draft: ' }), draft)
              : h('span', { class: unsent ? `ci-preview unsent ${unsent.state}` : 'ci-preview', 'data-testid': 'chat-preview' }, ...parts),
          mentioned ? h('span', { class: 'badge mention-badge', 'data-testid': 'mention-badge', 'aria-hidden': 'true', title: 'You were mentioned', text: '@' }) : null,
          unread ? h('span', { class: muted ? 'badge muted' : 'badge', 'data-testid': 'unread-badge', 'aria-hidden': 'true', text: unread > 999 ? '999+' : String(unread) }) : null,
          unread ? h('span', { class: 'sr-only', text: `, ${unread} unread${mentioned ? ', you were mentioned' : ''}` }) : null)));
  };

  filter.addEventListener('input', draw);
  filter.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && filter.value) {
      filter.value = '';
      draw();
    }
  });
  // A draft written in another tab shows here too: its chat's row is drawn again.
  const unwatch = watchDrafts((userId, ids) => {
    if (userId === null) store.notify('chats');
    else if (userId === String(store.me?.id ?? '')) store.notifyChats(ids.filter((id) => store.chats.has(id)));
  });
  const unsubs = [store.on('chats', redraw), store.on('me', drawMe), unwatch];
  drawMe();
  draw();
  // Relative times ("Tue", "10:04") age; redraw them now and then.
  const timer = setInterval(draw, 60000);
  return {
    focusFilter: () => filter.focus(),
    /** focusChat focuses chat id's row (it takes the list's Tab stop), or the filter without one. */
    focusChat: (id) => {
      const b = list.hidden ? null : list.querySelector(`.chat-item[data-chat-id="${id}"]`);
      if (!b) return filter.focus();
      rover = id;
      rove();
      b.focus();
    },
    destroy: () => {
      clearInterval(timer);
      for (const u of unsubs) u();
    },
  };
}
