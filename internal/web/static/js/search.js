// Message search in the sidebar: the chat filter's text, searched in every message of my chats
// (Enter, or the button under the list). Results show their chat, who wrote the message and the
// matched text marked (the text around the first match, for a long message);
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

/** LEAD is about how much text an excerpt keeps before the first match. */
const LEAD = 40;

/**
 * excerpt cuts a long body's beginning so that its first match shows within the lines a hit
 * has (a match 600 characters in would be clamped away): from a word start about LEAD
 * characters before the match, with "…" in front, the spans shifted to match.
 */
export function excerpt(body, spans) {
  const first = spans?.[0]?.start ?? 0;
  if (first <= LEAD + 20) return { text: body, spans };
  let from = first - LEAD;
  const space = body.lastIndexOf(' ', from);
  if (space > first - LEAD - 20) from = space + 1;
  // Never in the middle of a surrogate pair.
  if (from > 0 && body.charCodeAt(from) >= 0xdc00 && body.charCodeAt(from) <= 0xdfff) from += 1;
  const cut = from - 1; // the "…" takes one unit
  return { text: `…${body.slice(from)}`, spans: spans.map(({ start, end }) => ({ start: start - cut, end: end - cut })) };
}

/**
 * mountSearch returns the results panel (hidden until a search runs) and run(term), which
 * searches and shows the first page. open(chatId, seq) is called on a click; close() when the
 * panel is closed.
 */
export function mountSearch({ open, close, who = () => '' }) {
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

  const item = (hit) => {
    const { text, spans } = excerpt(hit.message.body, hit.highlights);
    const by = who(hit.message.sender_id, hit.chat);
    return h('li', {},
      h('button', {
        type: 'button', class: 'search-hit', 'data-testid': 'search-hit', dataset: { chatId: hit.chat.id, seq: hit.message.seq },
        onclick: () => open(hit.chat.id, hit.message.seq),
      },
      h('span', { class: 'hit-top' }, h('span', { class: 'hit-chat', text: hit.chat.title }),
        h('time', { class: 'hit-time', datetime: hit.message.created_at, text: listTime(hit.message.created_at) })),
      h('span', { class: 'hit-body' }, by ? h('span', { class: 'hit-by', text: `${by}: ` }) : null, marked(text, spans))));
  };

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
