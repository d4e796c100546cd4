// Telling the user of new messages when they are not looking: a notification for each chat
// while the tab is hidden (the Notification API, with permission asked only when the user
// turns notifications on), a count on the favicon, and Web Push through the service worker
// (sw.js) for when every tab is closed.

import { api } from './api.js';
import { filesText } from './format.js';
import { mentionsMe } from './mentions.js';
import { shownLinks } from './links.js';

const supported = () => typeof Notification !== 'undefined';

/** permission is the page's notification permission: granted, denied, default or unsupported. */
export function permission() {
  return supported() ? Notification.permission : 'unsupported';
}

/**
 * enableNotifications asks for permission (call it from a click) and, once granted,
 * subscribes this browser to Web Push. It returns the permission. Push is best effort: a
 * browser without it, or a server without a key, still gets notifications while a tab is open.
 */
export async function enableNotifications() {
  if (!supported()) return 'unsupported';
  const p = await Notification.requestPermission();
  if (p === 'granted') subscribePush().catch(() => {});
  return p;
}

/** subscribePush registers the service worker and hands its push subscription to the server. */
export async function subscribePush() {
  if (!('serviceWorker' in navigator) || !('PushManager' in window)) return false;
  const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/', type: 'module' });
  await navigator.serviceWorker.ready;
  const { public_key: key } = await api.pushKey();
  let sub = await reg.pushManager.getSubscription();
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromBase64url(key) });
  const { endpoint, keys } = sub.toJSON();
  await api.pushSubscribe({ endpoint, keys });
  return true;
}

/**
 * unsubscribePush stops Web Push to this browser, for a user signing out (call it while still
 * signed in): the server forgets the subscription and the browser drops it. Best effort.
 */
export async function unsubscribePush() {
  try {
    const reg = await navigator.serviceWorker?.getRegistration('/');
    const sub = await reg?.pushManager?.getSubscription();
    if (sub) await api.pushUnsubscribe(sub.endpoint).catch(() => {});
  } catch { /* no service worker or push here */ }
  await forgetPush();
}

/**
 * forgetPush leaves nothing of a user who is no longer signed in here, however that came
 * about (signed out, the session ended elsewhere, the account deleted): what the worker showed
 * stays on the screen otherwise, message text and all, out of reach of any withdrawal; the read
 * marks it kept were this user's; and the browser's subscription goes (the server pushes no
 * ended session). Best effort.
 */
export async function forgetPush() {
  try {
    const reg = await navigator.serviceWorker?.getRegistration('/');
    for (const n of (await reg?.getNotifications?.()) || []) n.close();
    await globalThis.caches?.delete(READ_CACHE);
    await (await reg?.pushManager?.getSubscription())?.unsubscribe();
  } catch { /* no service worker or push here */ }
}

/** READ_CACHE is the service worker's cache of read marks (sw.js), gone at sign-out. */
const READ_CACHE = 'chat-read-marks';

function fromBase64url(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

/**
 * wants reports whether a chat's settings let a message of it notify now: notify all, or
 * mentions and the message mentions me (by name or @all).
 */
export function wants(chat, now = Date.now(), mentioned = false) {
  if (!chat || quiet(chat, now)) return false;
  return (chat.notify || 'all') === 'all' || (chat.notify === 'mentions' && mentioned);
}

/** quiet reports whether a chat is muted now, or set to notify of nothing: shown so. */
export function quiet(chat, now = Date.now()) {
  if (!chat) return false;
  return chat.notify === 'none' || !!(chat.muted_until && Date.parse(chat.muted_until) > now);
}

/**
 * counted is what a chat adds to the unread count of the tab's title and favicon: what would
 * notify. A muted chat adds nothing, one that notifies of mentions only its unread mentions.
 */
export function counted(chat, now = Date.now()) {
  if (quiet(chat, now)) return 0;
  return chat.notify === 'mentions' ? chat.unread_mentions || 0 : chat.unread_count || 0;
}

/**
 * mountNotifier shows a notification for each new message of someone else while the page is
 * hidden, one per chat (a later one replaces it), that opens the chat when clicked. It is
 * closed when the page shows again, or when the chat is read up to its message on another
 * device (read.updated raises the chat's my_last_read_seq).
 */
export function mountNotifier(store, { go, name }) {
  const shown = new Map(); // chat id -> {n: Notification, seq}
  const onVisible = () => {
    if (document.hidden) return;
    for (const { n } of shown.values()) n.close();
    shown.clear();
  };
  const onRead = () => {
    for (const [id, { n, seq }] of shown) {
      const chat = store.chats.get(id);
      if (!chat || (chat.my_last_read_seq || 0) >= seq) {
        n.close();
        shown.delete(id);
      }
    }
  };
  document.addEventListener('visibilitychange', onVisible);
  const offChats = store.on('chats', onRead);
  return {
    onMessage(msg) {
      if (!document.hidden || permission() !== 'granted' || msg.kind !== 'text' || msg.sender_id === store.me?.id) return;
      const chat = store.chats.get(msg.chat_id);
      if (!wants(chat, Date.now(), mentionsMe(msg, store.me.id))) return;
      // Links read as the message pane shows them: "https://good.example@evil.example" goes to evil.example.
      const text = shownLinks(msg.body || '') || filesText(msg.files);
      const body = chat.kind === 'group' ? `${name(msg.sender_id)}: ${text}` : text;
      const n = new Notification(chat.title || 'Chat', { body: body.slice(0, 200), tag: `chat-${chat.id}` });
      n.onclick = () => {
        window.focus();
        go(chat.id);
        n.close();
      };
      shown.set(chat.id, { n, seq: msg.seq });
    },
    destroy() {
      document.removeEventListener('visibilitychange', onVisible);
      offChats();
      onVisible();
    },
  };
}

let iconImg = null;

/** badge draws the unread count on the favicon (none: the plain icon). */
export function badge(count) {
  const link = document.querySelector('link[rel="icon"]');
  if (!link) return;
  if (!link.dataset.plain) link.dataset.plain = link.href;
  if (!count) {
    if (link.href !== link.dataset.plain) {
      link.type = 'image/svg+xml';
      link.href = link.dataset.plain;
    }
    link.dataset.count = '0';
    return;
  }
  const text = count > 99 ? '99+' : String(count);
  if (link.dataset.count === text) return;
  link.dataset.count = text;
  const draw = () => {
    const c = document.createElement('canvas');
    c.width = c.height = 64;
    const g = c.getContext('2d');
    if (!g) return;
    if (iconImg?.complete && iconImg.naturalWidth) g.drawImage(iconImg, 0, 0, 64, 64);
    g.fillStyle = '#d93025';
    g.beginPath();
    g.arc(44, 20, 20, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = '#fff';
    g.font = `bold ${text.length > 2 ? 16 : 24}px sans-serif`;
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText(text, 44, 21);
    link.type = 'image/png';
    link.href = c.toDataURL('image/png');
  };
  if (!iconImg) {
    iconImg = new Image();
    iconImg.onload = () => {
      if (link.dataset.count !== '0') {
        const t = link.dataset.count;
        link.dataset.count = '';
        badge(t === '99+' ? 100 : Number(t));
      }
    };
    iconImg.src = link.dataset.plain;
  }
  draw();
}
