// Service worker of the chat: shows the Web Push notifications the server sends while none of
// the user's tabs is connected (one per chat: the tag replaces the last one), withdraws them
// when the chat is read on another device, and opens the chat when one is clicked. Served at
// /sw.js so that its scope is the whole app.
//
// Browsers want every push to show a notification (Chromium subscribes only with
// userVisibleOnly: true). A withdrawal, and a message push for a chat already read, show
// nothing on purpose: Chromium lets it pass while another notification of the site is shown
// or one of its tabs is visible, and otherwise charges a small budget of silent pushes, past
// which it shows its own "This site has been updated in the background". That is no worse
// than the stale notification it replaces, so the worker never shows a message the user has
// read; the server bounds withdrawals to one per push shown and sends none to Safari, which
// revokes the subscription of a site whose pushes show nothing (docs/API-NOTES.md).
//
// A module worker (registered with type: 'module'): it writes a message's links as the message
// pane does, with the page's own links.js. The server fills in the asset path of its release
// ([[.Assets]]), so a new release is a new worker that imports that release's module.

import { shownLinks } from '[[.Assets]]/js/links.js';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (ev) => ev.waitUntil(self.clients.claim()));

// Read marks learned from withdrawals, per chat, kept in the Cache API: the worker is stopped
// between pushes, and a message push may arrive after the withdrawal of a later read.
const READ_CACHE = 'chat-read-marks';
const readKey = (chatId) => new URL(`/__read/${chatId}`, self.location.origin).href;

async function readUpTo(chatId) {
  try {
    const r = await (await caches.open(READ_CACHE)).match(readKey(chatId));
    return r ? Number(await r.text()) || 0 : 0;
  } catch {
    return 0;
  }
}

async function rememberRead(chatId, seq) {
  try {
    if (seq <= await readUpTo(chatId)) return;
    await (await caches.open(READ_CACHE)).put(readKey(chatId), new Response(String(seq)));
  } catch {
    // No storage: the withdrawal still closes what is shown.
  }
}

/** payload parses a push's data: {type: "message", chat_id, seq, title, body, tag} or {type: "withdraw", chat_id, seq, tag}. */
function payload(data) {
  try {
    return data ? data.json() : {};
  } catch {
    return { body: data ? data.text() : '' };
  }
}

/**
 * shown is a push's text with its links written as the message pane shows them
 * ("https://good.example@evil.example" reads https://evil.example/): the server sends the
 * message's text as typed, cut with an "…" when long, which is kept out of the last link.
 */
function shown(text) {
  const cut = text.endsWith('…');
  const links = shownLinks(cut ? text.slice(0, -1) : text);
  return cut ? `${links}…` : links;
}

/** notice turns a message payload into showNotification's arguments. */
function notice(d) {
  return [d.title || 'Chat', {
    body: shown(String(d.body || '')), tag: d.tag || 'chat', renotify: true, data: { chatId: d.chat_id ?? null, seq: d.seq ?? null },
  }];
}

/**
 * withdraw closes the chat's notifications that tell of nothing past seq (the chat was read
 * up to seq on another device); one of a later message stays.
 */
async function withdraw(d) {
  if (d.chat_id == null || typeof d.seq !== 'number') return;
  await rememberRead(d.chat_id, d.seq);
  const shown = await self.registration.getNotifications({ tag: d.tag || `chat-${d.chat_id}` });
  for (const n of shown) {
    if ((n.data?.chatId ?? d.chat_id) === d.chat_id && (n.data?.seq ?? 0) <= d.seq) n.close();
  }
}

async function onPush(d) {
  if (d.type === 'withdraw') return withdraw(d);
  // Read elsewhere already (the withdrawal came first): showing it would tell of nothing new.
  if (d.chat_id != null && typeof d.seq === 'number' && d.seq <= await readUpTo(d.chat_id)) return undefined;
  return self.registration.showNotification(...notice(d));
}

self.addEventListener('push', (ev) => {
  ev.waitUntil(onPush(payload(ev.data)));
});

self.addEventListener('notificationclick', (ev) => {
  ev.notification.close();
  const id = ev.notification.data?.chatId;
  const url = new URL(id != null ? `/#/chat/${id}` : '/', self.location.origin).href;
  ev.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const win = wins.find((w) => new URL(w.url).origin === self.location.origin);
    if (win) {
      await win.focus();
      return win.navigate(url);
    }
    return self.clients.openWindow(url);
  })());
});
