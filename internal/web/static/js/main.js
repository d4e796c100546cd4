// Entry point: signs in (or restores the session), then lays out the chat list and the message
// pane, routes between chats with the URL hash (#/chat/7), and shows the connection banner.

import { api, ApiError, describe, onSignedOut } from './api.js';
import { h, icon } from './dom.js';
import { Store } from './store.js';
import { Client } from './client.js';
import { renderAuth } from './auth.js';
import { mountChatList } from './chatlist.js';
import { mountPane } from './pane.js';
import { newChatDialog } from './newchat.js';
import { accountDialog } from './account.js';
import { clearDrafts } from './composer.js';
import { afterDialogs } from './dialogs.js';
import { plural } from './format.js';
import { mountToast } from './toast.js';
import { badge, counted, forgetPush, mountNotifier, permission, subscribePush, unsubscribePush } from './notify.js';

const root = document.getElementById('app');
let app = null; // the signed-in app, or null on the auth screens

function chatFromHash() {
  const m = location.hash.match(/^#\/chat\/(\d+)$/);
  return m ? Number(m[1]) : null;
}

const atList = (hash) => hash === '' || hash === '#/';

/**
 * go opens a chat (a new history entry, which remembers the entry it came from), or the list.
 * Going to the list goes back when the entry before is the list, and otherwise takes the
 * chat's entry's place: the phone's Back from the list must not reopen a chat already left.
 */
function go(chatId) {
  // After a dialog that just closed has taken its history entry back (dialogs.js).
  afterDialogs(() => {
    const target = chatId == null ? '#/' : `#/chat/${chatId}`;
    if (location.hash === target) {
      app?.route();
    } else if (chatId != null) {
      history.pushState({ from: location.hash }, '', target);
      app?.route();
    } else if (atList(history.state?.from ?? null)) {
      history.back(); // its hashchange routes
    } else {
      history.replaceState(null, '', target);
      app?.route();
    }
  });
}

// The session cookies are HttpOnly, so the page cannot see them. This flag in localStorage says
// whether this browser signed in (and has not signed out since): without it a visit shows the
// sign-in screen at once instead of asking the server and logging a 401.
const SIGNED_IN = 'chat.signedIn';

// The most often the title and the favicon are written (startApp's writeTitle).
const TITLE_MS = 250;

function signedInHere() {
  try {
    return localStorage.getItem(SIGNED_IN) === '1';
  } catch {
    return true; // no storage: ask the server
  }
}

function rememberSignedIn(yes) {
  try {
    if (yes) localStorage.setItem(SIGNED_IN, '1');
    else localStorage.removeItem(SIGNED_IN);
  } catch { /* storage disabled */ }
}

function showAuth(notice = '') {
  rememberSignedIn(false);
  if (app) {
    app.destroy();
    app = null;
    forgetPush(); // however the session ended
  }
  document.title = 'Chat — sign in';
  renderAuth(root, {
    notice,
    onSignedIn: () => {
      rememberSignedIn(true);
      if (signedInHere()) startApp();
      else showAuth();
    },
  });
}

async function startApp() {
  const store = new Store();
  const ctx = { store };
  const client = new Client(store, {
    onSignedOut: () => showAuth('Your session has ended. Please sign in again.'),
    onChatGone: (id, reason, title, unsent = 0) => {
      if (store.activeChatId === id) go(null);
      const lost = unsent ? ` ${unsent === 1 ? 'Your unsent message was' : `Your ${plural(unsent, 'unsent message')} were`} not sent.` : '';
      if (reason === 'removed') notice(`You were removed from “${title}”.${lost}`);
      else if (reason === 'deleted') notice(`“${title}” was deleted.${lost}`);
      else if (reason === 'gone') notice(`You are no longer a member of “${title}”.${lost}`);
      else if (lost) notice(`You left “${title}”.${lost}`);
    },
    onMessage: (msg) => {
      app?.pane.onMessage(msg);
      app?.notifier.onMessage(msg);
    },
  });
  ctx.client = client;
  ctx.go = (id) => go(id);

  // A short notice of what happened to a chat elsewhere (removed, deleted), read out politely.
  const { region: toasts, show: notice, dismiss: dismissToast } = mountToast();
  ctx.toast = notice;

  const banner = h('div', { class: 'banner', role: 'status', 'data-testid': 'conn-banner', hidden: true });
  const side = h('aside', { class: 'sidebar', 'aria-label': 'Chats' });
  const main = h('main', { class: 'pane' });
  const shell = h('div', { class: 'shell', dataset: { view: 'list' } },
    h('h1', { class: 'sr-only', text: 'Chat' }), banner, h('div', { class: 'columns' }, side, main), toasts);

  root.replaceChildren(h('p', { class: 'boot', role: 'status', text: 'Loading your chats…' }));
  try {
    await client.start();
  } catch (err) {
    client.stop();
    if (err instanceof ApiError && err.status === 401) {
      showAuth();
      return;
    }
    root.replaceChildren(h('div', { class: 'auth' }, h('div', { class: 'auth-card' },
      h('h1', { text: 'Cannot load your chats' }),
      h('p', { class: 'form-alert', role: 'alert', text: describe(err) }),
      h('button', { type: 'button', class: 'btn btn-primary', text: 'Try again', onclick: () => startApp() }))));
    return;
  }

  const signOut = async (all) => {
    client.stop();
    // While still signed in: this browser's pushes were this user's.
    await unsubscribePush();
    try {
      await (all ? api.logoutAll() : api.logout());
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        // It did not get through (offline, a server restarting): the session and its
        // cookies live on, and whoever opened this page next would be signed in. So this is
        // no sign-out: the page stays as it was and says so.
        client.resume();
        if (permission() === 'granted') subscribePush().catch(() => {});
        notice(`Could not sign out: ${describe(err)}`);
        return;
      }
      // 401: the session had ended already.
    }
    clearDrafts(store.me?.id ?? '');
    try {
      sessionStorage.clear();
    } catch { /* ignore */ }
    showAuth(all ? 'You signed out of all devices.' : 'You signed out.');
  };

  const list = mountChatList(ctx, side, {
    go,
    openMessage: (chatId, seq) => {
      app?.pane.showMessage(chatId, seq);
      go(chatId);
    },
    newChat: () => newChatDialog(ctx, go),
    account: () => accountDialog(ctx, signOut, (text) => {
      client.stop();
      clearDrafts(store.me?.id ?? '');
      try {
        sessionStorage.clear();
      } catch { /* ignore */ }
      showAuth(text);
    }),
  });
  const pane = mountPane(ctx, main, { back: () => go(null) });

  // The connection banner. Offline (the browser says so) shows at once; a lost socket shows after
  // a moment, so routine reconnects (the access token expired: 4001, refresh, reconnect) do not
  // flash it; after either, "Back online" shows briefly. banner.dataset.state is the state:
  // connecting | offline | reconnecting | back | online.
  let bannerTimer = null;
  let troubleShown = false;
  const showBanner = (state, text, ...extra) => {
    banner.dataset.state = state;
    banner.className = `banner banner-${state}`;
    banner.replaceChildren(h('span', { class: 'banner-dot' }), h('span', { text }), ...extra);
    banner.hidden = false;
  };
  const drawConn = () => {
    const st = store.conn;
    const was = banner.dataset.state;
    if (st === was || (st === 'online' && was === 'back')) return;
    clearTimeout(bannerTimer);
    if (st === 'offline') {
      showBanner('offline', 'You are offline. Messages you write will be sent when the connection is back.');
      troubleShown = true;
    } else if (st === 'reconnecting' || st === 'connecting') {
      banner.dataset.state = st;
      if (was === 'offline') banner.hidden = true;
      bannerTimer = setTimeout(() => {
        showBanner(st, st === 'reconnecting' ? 'Connection lost. Reconnecting…' : 'Connecting…',
          h('button', { type: 'button', class: 'link', text: 'Retry now', onclick: () => client.conn.reconnectNow() }));
        troubleShown = true;
      }, st === 'reconnecting' ? 800 : 2000);
    } else if (st === 'online' && troubleShown) {
      troubleShown = false;
      showBanner('back', 'Back online.');
      bannerTimer = setTimeout(() => {
        banner.hidden = true;
        banner.dataset.state = 'online';
      }, 2500);
    } else {
      banner.hidden = true;
      banner.dataset.state = st;
    }
  };

  // The unread count of the title and favicon, kept by chat (counted): a batch that names some
  // chats' rows counts those again only. A chat's mute that runs out counts everything again at
  // the first batch after it (recountAt), as does a batch about every chat.
  const countedBy = new Map();
  let unread = 0;
  let recountAt = 0;
  const count = (id, now) => {
    const c = store.chats.get(id);
    const n = c ? counted(c, now) : 0;
    unread += n - (countedBy.get(id) || 0);
    if (n) countedBy.set(id, n);
    else countedBy.delete(id);
    const until = Date.parse(c?.muted_until || '');
    if (until > now) recountAt = Math.min(recountAt, until);
  };
  const drawTitle = () => {
    const now = Date.now();
    const { allRows, rows } = store.changed;
    if (allRows || now >= recountAt) {
      countedBy.clear();
      unread = 0;
      recountAt = Infinity;
      for (const id of store.chats.keys()) count(id, now);
    } else {
      for (const id of rows) count(id, now);
    }
    titleTimer ||= setTimeout(writeTitle, TITLE_MS);
  };
  // The title and the favicon are written at most once per TITLE_MS, with the count as it is
  // then: a message into the open chat counts as unread until it is seen, a frame later, so a
  // burst there wrote both twice a message (the favicon drawn on a canvas), most of the chat
  // list's time a message in docs/PERFORMANCE.md's burst.
  let titleTimer = 0;
  const writeTitle = () => {
    titleTimer = 0;
    const text = unread ? `(${unread}) Chat` : 'Chat';
    if (document.title !== text) document.title = text;
    badge(unread);
  };

  const route = () => {
    let id = chatFromHash();
    if (id != null && !store.chats.has(id)) {
      id = null;
      if (location.hash !== '#/') history.replaceState(null, '', '#/');
    }
    const left = store.activeChatId;
    // The focus in the chat left (its Back button, Escape in the composer) would fall to the
    // page's start: it goes to the chat's row, where a keyboard user came from.
    const lost = left != null && id !== left && (main.contains(document.activeElement) || document.activeElement === document.body);
    store.activeChatId = id;
    shell.dataset.view = id == null ? 'list' : 'chat';
    pane.setChat(id);
    store.notify('chats');
    if (lost && id == null) list.focusChat(left);
  };

  const onKey = (ev) => {
    if (ev.key === 'Escape' && !ev.defaultPrevented && !document.querySelector('dialog[open]') && store.activeChatId != null
      && matchMedia('(max-width: 759px)').matches) {
      go(null);
    }
  };

  const unsubs = [store.on('conn', drawConn), store.on('chats', drawTitle)];
  window.addEventListener('hashchange', route);
  document.addEventListener('keydown', onKey);
  const stopSignedOut = onSignedOut(() => {
    if (app) showAuth('Your session has ended. Please sign in again.');
  });

  const notifier = mountNotifier(store, { go, name: (id) => store.name(id) || 'Someone' });
  // A browser that allowed notifications before renews its push subscription on each visit.
  if (permission() === 'granted') subscribePush().catch(() => {});

  app = {
    pane,
    notifier,
    route,
    destroy() {
      client.stop();
      list.destroy();
      pane.destroy();
      notifier.destroy();
      badge(0);
      for (const u of unsubs) u();
      stopSignedOut();
      window.removeEventListener('hashchange', route);
      document.removeEventListener('keydown', onKey);
      clearTimeout(bannerTimer);
      clearTimeout(titleTimer);
      dismissToast();
      for (const d of document.querySelectorAll('dialog')) d.remove();
    },
  };
  root.replaceChildren(shell);
  drawConn();
  drawTitle();
  route();
}

if (signedInHere()) startApp();
else showAuth();
