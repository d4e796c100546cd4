// Message search in the sidebar: the chat filter's text, searched in every message of my chats
// (Enter, or the button under the list). Results show their chat and the matched text marked;
// a click opens the chat at the message. Matches are marked with <mark> around text nodes,
// from the server's offsets (UTF-16, the unit of JavaScript strings).

import { api, describe } from './api.js';
import { h } from './dom.js';
import { listTime } from './format.js';

/** marked is body with the spans [start, end) wrapped in <mark>, as text nodes only. */
export function marked(body, spans) {
  const out = [];
  let at = 0;
  for (const { start, end } of spans || []) {
    if (start < at || end > body.length || end <= start) continue;
    if (start > at) out.push(body.slice(at, start));
    out.push(h('mark', { text: body.slice(start, end) }));
    at = end;
  }
  if (at < body.length) out.push(body.slice(at));
  return out;
}

/**
 * mountSearch returns the results panel (hidden until a search runs) and run(term), which
 * searches and shows the first page. open(chatId, seq) is called on a click; close() when the
 * panel is closed.
 */
export function mountSearch({ open, close }) {
  const heading = h('h2', { class: 'search-head', id: 'search-head' });
  const list = h('ul', { class: 'search-results', 'aria-labelledby': 'search-head', 'data-testid': 'search-results' });
  const status = h('p', { class: 'search-status', role: 'status' });
  const more = h('button', { type: 'button', class: 'btn search-more', text: 'More results', hidden: true });
  const closeBtn = h('button', { type: 'button', class: 'link', text: 'Back to chats', onclick: () => { hide(); close(); } });
  const el = h('section', { class: 'search-panel', 'data-testid': 'search-panel', hidden: true },
    h('div', { class: 'search-bar' }, heading, closeBtn), list, status, more);
  let term = '';
  let next = null;
  let ctl = null;

  const item = (hit) => h('li', {},
    h('button', {
      type: 'button', class: 'search-hit', 'data-testid': 'search-hit', dataset: { chatId: hit.chat.id, seq: hit.message.seq },
      onclick: () => open(hit.chat.id, hit.message.seq),
    },
    h('span', { class: 'hit-top' }, h('span', { class: 'hit-chat', text: hit.chat.title }),
      h('time', { class: 'hit-time', datetime: hit.message.created_at, text: listTime(hit.message.created_at) })),
    h('span', { class: 'hit-body' }, marked(hit.message.body, hit.highlights))));

  async function page(before) {
    ctl?.abort();
    ctl = new AbortController();
    status.textContent = 'Searching…';
    more.hidden = true;
    try {
      const r = await api.searchMessages(term, before, { signal: ctl.signal });
      list.append(...r.hits.map(item));
      next = r.next_before ?? null;
      more.hidden = next == null;
      status.textContent = list.children.length ? '' : next == null ? `No message matches “${term}”.` : 'No match among the recent messages yet.';
    } catch (err) {
      if (err.name === 'AbortError') return;
      status.textContent = describe(err);
    }
  }
  more.addEventListener('click', () => next != null && page(next));

  function hide() {
    ctl?.abort();
    el.hidden = true;
  }

  return {
    el,
    run(t) {
      term = t;
      heading.textContent = `Messages with “${t}”`;
      list.replaceChildren();
      el.hidden = false;
      page(undefined);
    },
    hide,
    get open() { return !el.hidden; },
  };
}
