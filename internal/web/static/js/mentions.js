// Mentions: typing "@" in the composer offers the chat's members (and @all in a group that
// lets me use it); choosing one writes "@Name" and records the member's id, which the message
// carries as mentions (the server keeps only members). Messages show the mentions they carry,
// mine brighter than others'.

import { h, clear } from './dom.js';
import { nameKey, tellApart, twinsIn } from './lookalike.js';

const MAX_OPTIONS = 8;
// The "@word" being typed just before the caret: at the start or after a space.
const TYPING = /(?:^|\s)@([^\s@]{0,32})$/u;
const WORDISH = /[\p{L}\p{N}_]/u;

/** mentionsMe tells whether msg, from someone else, mentions me by name or @all. */
export function mentionsMe(msg, me) {
  if (!msg || msg.sender_id === me || msg.deleted_at) return false;
  return !!msg.mention_all || (msg.mentions || []).includes(me);
}

/** mentionFields are the fields a send of p adds for its mentions. */
export function mentionFields(p) {
  const out = {};
  if (p.mentions?.length) out.mentions = p.mentions;
  if (p.mention_all) out.mention_all = true;
  return out;
}

/**
 * mentionTokens are the "@..." texts of a message to highlight: the names of the members it
 * mentions (as named now) and @all, longest first, each with whether it is me.
 */
export function mentionTokens(msg, store) {
  const me = store.me?.id;
  const out = [];
  for (const id of msg.mentions || []) {
    const name = store.name(id);
    if (name) out.push({ text: `@${name}`, me: id === me });
  }
  if (msg.mention_all) out.push({ text: '@all', me: msg.sender_id !== me });
  return out.sort((a, b) => b.text.length - a.text.length);
}

/** mentionAt matches a token of tokens at s[i] (an "@" not inside a word), or null. */
export function mentionAt(s, i, tokens) {
  if (!tokens?.length || (i > 0 && WORDISH.test(s[i - 1]))) return null;
  for (const t of tokens) {
    if (s.startsWith(t.text, i) && !WORDISH.test(s[i + t.text.length] || '')) return t;
  }
  return null;
}

/** mayMentionAll tells whether I may use @all in chat. */
function mayMentionAll(chat, store) {
  if (chat?.kind !== 'group') return false;
  if (chat.mention_all !== 'admins') return true;
  const role = store.members.get(chat.id)?.get(store.me?.id)?.role;
  return role === 'owner' || role === 'admin';
}

/**
 * mountMentions adds completion to the composer's input. It handles its keys before the
 * composer does (Enter chooses rather than sends while the list is open). take(chatId, body)
 * returns the mentions the body still holds and forgets the chat's; they are kept per chat with
 * the drafts (chosenOf and restore).
 */
export function mountMentions(input, { store, getChat }) {
  const chosen = new Map(); // chat id -> Map(text "@Name" -> user id, or 'all')
  const list = h('ul', { class: 'mention-list', role: 'listbox', id: 'mention-list', 'aria-label': 'Mention someone', 'data-testid': 'mention-list', hidden: true });
  let options = [];
  let active = 0;
  let start = -1; // where the "@" being completed is

  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', 'mention-list');

  const close = () => {
    list.hidden = true;
    options = [];
    start = -1;
    input.removeAttribute('aria-activedescendant');
  };

  const draw = () => {
    clear(list);
    options.forEach((o, i) => {
      const li = h('li', {
        class: i === active ? 'mention-option active' : 'mention-option', role: 'option', id: `mention-opt-${i}`,
        'aria-selected': i === active ? 'true' : 'false', 'data-testid': 'mention-option',
        // mousedown, not click: the input keeps the focus and the caret.
        onmousedown: (ev) => {
          ev.preventDefault();
          choose(i);
        },
        onmousemove: () => {
          if (active !== i) {
            active = i;
            draw();
          }
        },
      }, h('span', { class: 'mention-name', text: o.label }), o.hint ? h('span', { class: 'mention-hint', text: o.hint }) : null);
      list.append(li);
    });
    list.hidden = options.length === 0;
    // A textarea has no aria-expanded (it is no combobox); the active option is announced.
    if (options.length) input.setAttribute('aria-activedescendant', `mention-opt-${active}`);
    else input.removeAttribute('aria-activedescendant');
  };

  const refresh = () => {
    const id = getChat();
    const chat = id == null ? null : store.chats.get(id);
    const before = input.value.slice(0, input.selectionStart ?? input.value.length);
    const m = chat && input.selectionStart === input.selectionEnd ? before.match(TYPING) : null;
    if (!m) {
      close();
      return;
    }
    const q = nameKey(m[1]); // "@ann" finds Ann, ＡＮＮ and a Cyrillic Аnn alike
    start = before.length - m[1].length - 1;
    const me = store.me?.id;
    const found = [];
    const twins = twinsIn(store, id);
    for (const mem of store.members.get(id)?.values() || []) {
      if (mem.id === me || mem.deleted) continue;
      const name = mem.name || store.name(mem.id) || '';
      const lower = nameKey(name);
      const rank = lower.startsWith(q) ? 0 : lower.split(/\s+/).some((w) => w.startsWith(q)) ? 1 : -1;
      // A look-alike name shows what tells it apart; "@Name" is written all the same, the
      // message carries the id.
      if (rank >= 0) found.push({ rank, label: name, id: mem.id, hint: twins.has(mem.id) ? tellApart(store, mem.id) : '' });
    }
    found.sort((a, b) => a.rank - b.rank || a.label.localeCompare(b.label));
    options = found.slice(0, MAX_OPTIONS);
    if (mayMentionAll(chat, store) && 'all'.startsWith(q)) options.push({ label: 'all', id: 'all', hint: 'everyone in this chat' });
    active = 0;
    draw();
  };

  const choose = (i) => {
    const o = options[i];
    const id = getChat();
    if (!o || start < 0 || id == null) return;
    const text = `@${o.label}`;
    const end = input.selectionStart ?? input.value.length;
    input.setRangeText(`${text} `, start, end, 'end');
    let map = chosen.get(id);
    if (!map) chosen.set(id, (map = new Map()));
    map.set(text, o.id);
    close();
    input.dispatchEvent(new Event('input', { bubbles: true }));
  };

  input.addEventListener('keydown', (ev) => {
    if (list.hidden || !options.length || ev.isComposing) return;
    const handled = () => {
      ev.preventDefault();
      ev.stopImmediatePropagation();
    };
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      handled();
      active = (active + (ev.key === 'ArrowDown' ? 1 : options.length - 1)) % options.length;
      draw();
    } else if ((ev.key === 'Enter' || ev.key === 'Tab') && !ev.shiftKey && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      handled();
      choose(active);
    } else if (ev.key === 'Escape') {
      handled();
      close();
    }
  });
  input.addEventListener('input', refresh);
  input.addEventListener('click', refresh);
  input.addEventListener('blur', close);

  return {
    el: list,
    close,
    /** chosenOf lists the names chosen in chatId's draft, as [text, id] pairs, for keeping. */
    chosenOf: (chatId) => [...(chosen.get(chatId) || [])],
    /** restore puts back the names chosen in a kept draft of chatId. */
    restore(chatId, pairs) {
      const ok = (pairs || []).filter((p) => Array.isArray(p) && typeof p[0] === 'string' && (Number.isInteger(p[1]) || p[1] === 'all'));
      if (ok.length) chosen.set(chatId, new Map(ok));
    },
    /** take returns the mentions body still holds and forgets chatId's. */
    take(chatId, body) {
      const map = chosen.get(chatId);
      chosen.delete(chatId);
      const out = { mentions: [], mention_all: false };
      if (!map) return out;
      for (const [text, id] of map) {
        let there = false;
        for (let i = body.indexOf(text); i >= 0 && !there; i = body.indexOf(text, i + 1)) there = !!mentionAt(body, i, [{ text }]);
        if (!there) continue;
        if (id === 'all') out.mention_all = true;
        else if (!out.mentions.includes(id)) out.mentions.push(id);
      }
      return out;
    },
  };
}
