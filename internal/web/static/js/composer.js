// The message composer; drafts are kept per chat, across reloads (draftStore). With a keyboard,
// Enter sends and Shift+Enter starts a new line. On touch screens (coarse pointer, no hover:
// phones, tablets) Enter is a new line, as in the messengers, and the button sends. Files are
// attached with the clip button, by pasting or by dropping them on the chat (pane.js): each
// chat's draft keeps its uploads, and a message goes once they are all stored, with or without
// text.

import { h, icon } from './dom.js';
import { count } from './format.js';
import { UploadTray, fileLimits, limitsText } from './files.js';
import { mountMentions } from './mentions.js';

// The most characters a message may have (the server's MaxBodyChars); the edit box's too (msgview.js).
export const MAX = 4000;

/**
 * charCount counts a message's characters as the server does (code points, MaxBodyChars): an
 * emoji is one, where a JavaScript string's length counts two. A string shorter than the marks
 * the counter cares about is not gone through: its length is the bound.
 */
export function charCount(s) {
  return s.length < MAX - 500 ? s.length : [...s].length;
}
const TOUCH = '(pointer: coarse), (hover: none)';
const DRAFTS = 'chat.drafts.';
// Each user's drafts where storage is refused, for the tab: key -> Map(chat id -> draft).
const memories = new Map();
// Each user's drafts object as last read (draftsOf), for the chat list, which reads it for
// each row it draws: dropped when this tab writes a draft, and when another tab does (the
// storage event, which also tells watchDrafts which chats' drafts changed).
const cached = new Map(); // key -> drafts object
const watchers = new Set();
addEventListener('storage', (ev) => {
  if (ev.key !== null && !ev.key.startsWith(DRAFTS)) return;
  if (ev.key === null) cached.clear(); // the whole storage cleared
  else cached.delete(ev.key);
  for (const fn of watchers) fn(ev.key && ev.key.slice(DRAFTS.length), changedChats(ev.oldValue, ev.newValue));
});

/** changedChats lists the chats whose draft differs between two stored drafts objects. */
function changedChats(before, after) {
  const parse = (v) => {
    try {
      const o = JSON.parse(v || '{}');
      return o && typeof o === 'object' ? o : {};
    } catch {
      return {};
    }
  };
  const a = parse(before);
  const b = parse(after);
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((id) => JSON.stringify(a[id]) !== JSON.stringify(b[id])).map(Number);
}

/**
 * watchDrafts calls fn(userId, chatIds) when another tab changed drafts (userId null and
 * chatIds empty: every draft may have). It returns the function that stops it.
 */
export function watchDrafts(fn) {
  watchers.add(fn);
  return () => watchers.delete(fn);
}

/**
 * Drafts outlive a reload and a closed tab: each user's are one object in localStorage, chat id
 * to { text, mentions, reply } (the names chosen in it, as mentions.js keeps them, and the quote
 * of the message being answered, as store.replyTo holds it), read and written a chat at a time
 * so that two tabs keep each other's. Where storage is refused they live in memory for the tab.
 * clearDrafts removes them when the user signs out.
 */
function draftStore(userId) {
  const key = DRAFTS + userId;
  if (!memories.has(key)) memories.set(key, new Map());
  const memory = memories.get(key);
  const read = () => readDrafts(userId);
  const none = { text: '', mentions: [], reply: null };
  const clean = (v) => (v && typeof v.text === 'string'
    ? { text: v.text, mentions: Array.isArray(v.mentions) ? v.mentions : [], reply: v.reply && Number.isInteger(v.reply.seq) ? v.reply : null }
    : none);
  return {
    get(chatId) {
      try {
        return clean(read()[chatId]);
      } catch {
        return memory.get(chatId) || none;
      }
    },
    /** update changes some of a chat's draft; one with neither text nor reply is dropped. */
    update(chatId, patch) {
      let o = null;
      try {
        o = read();
      } catch { /* refused: memory only */ }
      const v = { ...(o ? clean(o[chatId]) : memory.get(chatId) || none), ...patch };
      const keep = v.text.trim() || v.reply;
      if (keep) memory.set(chatId, v);
      else memory.delete(chatId);
      cached.delete(key);
      if (!o) return;
      if (keep) o[chatId] = v;
      else delete o[chatId];
      try {
        if (Object.keys(o).length) localStorage.setItem(key, JSON.stringify(o));
        else localStorage.removeItem(key);
      } catch { /* storage full or refused: kept in memory */ }
    },
  };
}

/**
 * draftsOf is every draft of the user, chat id to { text, mentions, reply }, for the chat list
 * (read from storage once, then again after a change: cached). The caller must not change it.
 */
export function draftsOf(userId) {
  const key = DRAFTS + userId;
  let o = cached.get(key);
  if (o) return o;
  try {
    o = readDrafts(userId);
  } catch {
    o = {};
  }
  cached.set(key, o);
  return o;
}

/** readDrafts parses the user's drafts object; it throws where storage is refused. */
function readDrafts(userId) {
  const o = JSON.parse(localStorage.getItem(DRAFTS + userId) || '{}');
  return o && typeof o === 'object' ? o : {};
}

/** forgetReply takes the reply to message seq out of the user's draft of a chat (it was deleted). */
export function forgetReply(userId, chatId, seq) {
  const drafts = draftStore(userId);
  if (drafts.get(chatId).reply?.seq === seq) drafts.update(chatId, { reply: null });
}

/** clearDrafts forgets the drafts of the user signing out of this browser. */
export function clearDrafts(userId) {
  memories.delete(DRAFTS + userId);
  cached.delete(DRAFTS + userId);
  try {
    localStorage.removeItem(DRAFTS + userId);
  } catch { /* ignore */ }
}

export function mountComposer(ctx, { getChat, onSent, keepBottom = (fn) => fn() }) {
  const { client } = ctx;
  const drafts = draftStore(ctx.store.me?.id ?? '');
  const input = h('textarea', {
    class: 'composer-input', rows: 1, 'aria-label': 'Message', placeholder: 'Write a message…',
    'aria-describedby': 'composer-hint', 'data-testid': 'composer',
  });
  const hint = h('span', { id: 'composer-hint', class: 'sr-only' });
  // The count shows each character; a screen reader hears only when it passes a mark (500 and
  // 100 left, over the limit), not a number a keystroke. It sits above the row, beside the
  // files' limits: in the row, a count over the limit left a 320 px phone a composer 100 px wide.
  const counter = h('span', { class: 'counter', 'data-testid': 'counter', hidden: true });
  const counterSaid = h('span', { class: 'sr-only', 'aria-live': 'polite', 'data-testid': 'counter-said' });
  const send = h('button', { type: 'submit', class: 'send-btn', 'aria-label': 'Send', 'data-testid': 'send' }, icon('send'));
  const picker = h('input', { type: 'file', multiple: true, hidden: true, tabindex: '-1', 'aria-hidden': 'true', 'data-testid': 'file-input' });
  const attach = h('button', {
    type: 'button', class: 'icon-btn attach-btn', 'aria-label': 'Attach files', title: 'Attach files', 'data-testid': 'attach',
    'aria-describedby': 'attach-limits', onclick: () => picker.click(),
  }, icon('clip'));
  const limitsLine = h('span', { id: 'attach-limits', class: 'attach-limits', 'data-testid': 'file-limits' });
  const trayEl = h('div', { class: 'uploads', 'data-testid': 'uploads', 'aria-live': 'polite', hidden: true });
  // Completion of "@" names; its keys come before the composer's (Enter chooses a name).
  const mentions = mountMentions(input, { store: ctx.store, getChat });
  const form = h('form', { class: 'composer', 'aria-label': 'Write a message' },
    mentions.el,
    h('div', { class: 'composer-files' }, trayEl, h('div', { class: 'composer-info' }, limitsLine, counter)),
    h('div', { class: 'composer-row' }, attach, picker, input, hint, counterSaid, send));
  fileLimits().then((l) => {
    const text = limitsText(l);
    limitsLine.textContent = text;
    attach.title = `Attach files (${text.charAt(0).toLowerCase()}${text.slice(1)})`;
  });

  // The uploads of each chat's draft; the one of the open chat is shown.
  const trays = new Map();
  let current = null;
  const trayOf = (id) => {
    let t = trays.get(id);
    if (!t) {
      t = new UploadTray(id, () => {
        if (t === current) {
          t.render(trayEl, () => input.focus());
          update();
        }
      });
      trays.set(id, t);
    }
    return t;
  };
  const addFiles = (files) => {
    const id = getChat();
    if (id == null || readOnly || !files.length) return;
    trayOf(id).add(files);
  };
  picker.addEventListener('change', () => {
    addFiles([...picker.files]);
    picker.value = '';
  });
  input.addEventListener('paste', (ev) => {
    const files = [...(ev.clipboardData?.files || [])];
    if (!files.length) return;
    ev.preventDefault();
    addFiles(files);
  });

  let readOnly = '';
  const touch = matchMedia(TOUCH);
  const enterSends = () => !touch.matches;
  const drawMode = () => {
    input.setAttribute('enterkeyhint', enterSends() ? 'send' : 'enter');
    hint.textContent = enterSends() ? 'Enter sends, Shift+Enter starts a new line.' : 'Enter starts a new line; the Send button sends.';
    send.title = enterSends() ? 'Send (Enter)' : 'Send';
  };
  drawMode();
  touch.addEventListener('change', drawMode);

  // The box grows with the draft up to its CSS max-height (a share of the screen's height).
  const autosize = () => keepBottom(() => {
    input.style.height = 'auto';
    input.style.height = `${input.scrollHeight}px`;
  });
  const update = () => {
    const n = charCount(input.value.trim());
    const files = current ? current.done.length : 0;
    send.disabled = (n === 0 && files === 0) || n > MAX || !!current?.busy;
    counter.hidden = n < MAX - 500;
    // Over the limit it says by how much: what to take out before it can be sent.
    counter.textContent = `${count(n)} / ${count(MAX)}` + (n > MAX ? `: ${count(n - MAX)} too many` : '');
    counter.classList.toggle('over', n > MAX);
    const say = n > MAX ? `Too long: at most ${count(MAX)} characters` : n > MAX - 100 ? 'Fewer than 100 characters left' : n > MAX - 500 ? 'Fewer than 500 characters left' : '';
    if (counterSaid.textContent !== say) counterSaid.textContent = say;
  };

  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && enterSends() && !ev.shiftKey && !ev.altKey && !ev.ctrlKey && !ev.metaKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener('input', () => {
    autosize();
    update();
    const id = getChat();
    if (id == null) return;
    drafts.update(id, { text: input.value, mentions: mentions.chosenOf(id) });
    if (input.value.trim()) client.typing(id);
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = getChat();
    const body = input.value.trim();
    if (id == null) return;
    const tray = trayOf(id);
    if ((!body && !tray.done.length) || charCount(body) > MAX || tray.busy) return;
    client.send(id, body, tray.takeDone(), mentions.take(id, body));
    input.value = '';
    drafts.update(id, { text: '', mentions: [], reply: null });
    autosize();
    update();
    onSent?.();
    // On a phone, a tap on Send keeps the keyboard up for the next message.
    input.focus();
  });
  update();

  // A read-only chat (its other member deleted their account) keeps the composer, closed, with
  // the reason in its place.
  const setReadOnly = (reason) => {
    if (reason !== readOnly) {
      readOnly = reason;
      input.disabled = !!reason;
      attach.disabled = !!reason;
      input.placeholder = reason || 'Write a message…';
      form.classList.toggle('read-only', !!reason);
      if (!reason) update();
    }
    if (reason) send.disabled = true;
  };

  return {
    el: form,
    setReadOnly,
    /** keepReply writes chatId's reply (store.replyTo) into its draft, or takes it out. */
    keepReply: (chatId) => drafts.update(chatId, { reply: ctx.store.replyTo.get(chatId) || null }),
    focus: () => input.focus(),
    addFiles,
    /** switchTo keeps the draft of the chat being left and restores the one of chatId. */
    switchTo(from, to) {
      if (from != null) drafts.update(from, { text: input.value, mentions: mentions.chosenOf(from) });
      mentions.close();
      const draft = to != null ? drafts.get(to) : { text: '', mentions: [], reply: null };
      input.value = draft.text;
      if (to != null) {
        mentions.restore(to, draft.mentions);
        if (draft.reply && !ctx.store.replyTo.has(to)) ctx.store.replyTo.set(to, draft.reply);
      }
      current = to != null ? trayOf(to) : null;
      if (current) current.render(trayEl, () => input.focus());
      else trayEl.hidden = true;
      autosize();
      update();
    },
  };
}
