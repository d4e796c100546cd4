// Service worker of the chat: shows the Web Push notifications the server sends while none of
// the user's tabs is connected (one per chat: the tag replaces the last one), and opens the
// chat when one is clicked. Served at /sw.js so that its scope is the whole app.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (ev) => ev.waitUntil(self.clients.claim()));

/** notice turns a push payload ({chat_id, seq, title, body, tag}) into showNotification's arguments. */
function notice(data) {
  let d = {};
  try {
    d = data ? data.json() : {};
  } catch {
    d = { body: data ? data.text() : '' };
  }
  return [d.title || 'Chat', { body: d.body || '', tag: d.tag || 'chat', renotify: true, data: { chatId: d.chat_id ?? null } }];
}

self.addEventListener('push', (ev) => {
  ev.waitUntil(self.registration.showNotification(...notice(ev.data)));
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
