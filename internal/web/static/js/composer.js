// The message composer; drafts are kept per chat. With a keyboard, Enter sends and Shift+Enter
// starts a new line. On touch screens (coarse pointer, no hover: phones, tablets) Enter is a new
// line, as in the messengers, and the button sends.

import { h, icon } from './dom.js';

const MAX = 4000;
const TOUCH = '(pointer: coarse), (hover: none)';

export function mountComposer(ctx, { getChat, onSent }) {
  const { client } = ctx;
  const drafts = new Map();
  const input = h('textarea', {
    class: 'composer-input', rows: 1, 'aria-label': 'Message', placeholder: 'Write a message…',
    'aria-describedby': 'composer-hint', 'data-testid': 'composer',
  });
  const hint = h('span', { id: 'composer-hint', class: 'sr-only' });
  const counter = h('span', { class: 'counter', 'aria-live': 'polite', hidden: true });
  const send = h('button', { type: 'submit', class: 'send-btn', 'aria-label': 'Send', 'data-testid': 'send' }, icon('send'));
  const form = h('form', { class: 'composer', 'aria-label': 'Write a message' }, input, hint, counter, send);

  const touch = matchMedia(TOUCH);
  const enterSends = () => !touch.matches;
  const drawMode = () => {
    input.setAttribute('enterkeyhint', enterSends() ? 'send' : 'enter');
    hint.textContent = enterSends() ? 'Enter sends, Shift+Enter starts a new line.' : 'Enter starts a new line; the Send button sends.';
    send.title = enterSends() ? 'Send (Enter)' : 'Send';
  };
  drawMode();
  touch.addEventListener('change', drawMode);

  const autosize = () => {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 180)}px`;
  };
  const update = () => {
    const n = input.value.trim().length;
    send.disabled = n === 0 || n > MAX;
    counter.hidden = n < MAX - 500;
    counter.textContent = `${n} / ${MAX}`;
    counter.classList.toggle('over', n > MAX);
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
    if (id != null && input.value.trim()) client.typing(id);
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = getChat();
    const body = input.value.trim();
    if (id == null || !body || body.length > MAX) return;
    client.send(id, body);
    input.value = '';
    drafts.delete(id);
    autosize();
    update();
    onSent?.();
    // On a phone, a tap on Send keeps the keyboard up for the next message.
    input.focus();
  });
  update();

  // A read-only chat (its other member deleted their account) keeps the composer, closed, with
  // the reason in its place.
  let readOnly = '';
  const setReadOnly = (reason) => {
    if (reason !== readOnly) {
      readOnly = reason;
      input.disabled = !!reason;
      input.placeholder = reason || 'Write a message…';
      form.classList.toggle('read-only', !!reason);
      if (!reason) update();
    }
    if (reason) send.disabled = true;
  };

  return {
    el: form,
    setReadOnly,
    focus: () => input.focus(),
    /** switchTo keeps the draft of the chat being left and restores the one of chatId. */
    switchTo(from, to) {
      if (from != null) {
        if (input.value) drafts.set(from, input.value);
        else drafts.delete(from);
      }
      input.value = (to != null && drafts.get(to)) || '';
      autosize();
      update();
    },
  };
}
