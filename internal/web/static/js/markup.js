// Message text as DOM: clickable links and a small, safe Markdown subset, built from elements and
// text nodes only (never HTML), so nothing in a message can become markup or script.
//
// Blocks: ``` fenced code ``` (an unterminated fence runs to the end, as in CommonMark) and
// "> " quotes. Inline: **bold**, _italic_, `code`, and http(s) URLs. Everything else is text,
// line breaks included (the bubble keeps them: white-space: pre-wrap). The stored text does not
// change: this is only how it is shown.

import { h } from './dom.js';
import { mentionAt } from './mentions.js';
import { linkAt } from './links.js';

const MAX_DEPTH = 3; // bold in italic in bold, and no deeper
const WORDISH = /[\p{L}\p{N}_]/u;
const FENCE = /^ {0,3}(`{3,})([^`]*)$/;
const QUOTE = /^ {0,3}>/;

const wordish = (ch) => ch !== undefined && WORDISH.test(ch);
const space = (ch) => ch === undefined || /\s/.test(ch);

/** hasBlocks tells whether text renders any block (code block, quote). */
export function hasBlocks(text) {
  return text.split('\n').some((l) => FENCE.test(l) || QUOTE.test(l));
}

/**
 * renderBody turns a message's text into a DocumentFragment. mentions are the "@..." texts to
 * show as mentions (mentions.js mentionTokens), outside code.
 */
export function renderBody(text, mentions = []) {
  const frag = document.createDocumentFragment();
  const lines = String(text).split('\n');
  let para = [];
  const flush = () => {
    if (para.length) frag.append(...inline(para.join('\n'), 0, mentions));
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const fence = lines[i].match(FENCE);
    if (fence) {
      const close = new RegExp(`^ {0,3}\`{${fence[1].length},}\\s*$`);
      let j = i + 1;
      while (j < lines.length && !close.test(lines[j])) j++;
      flush();
      const lang = fence[2].trim().split(/\s/)[0];
      frag.append(h('pre', { class: 'md-pre' }, h('code', { text: lines.slice(i + 1, j).join('\n'), dataset: lang ? { lang } : undefined })));
      i = j;
      continue;
    }
    if (QUOTE.test(lines[i])) {
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) quoted.push(lines[i++].replace(/^ {0,3}> ?/, ''));
      i -= 1;
      flush();
      frag.append(h('blockquote', { class: 'md-quote' }, inline(quoted.join('\n'), 0, mentions)));
      continue;
    }
    para.push(lines[i]);
  }
  flush();
  return frag;
}

/** inline renders one run of text: code spans, bold, italic and links; the rest as text. */
function inline(s, depth, mentions) {
  const out = [];
  let buf = '';
  const text = () => {
    if (buf) out.push(document.createTextNode(buf));
    buf = '';
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '`') {
      const j = s.indexOf('`', i + 1);
      if (j > i + 1) {
        text();
        out.push(h('code', { class: 'md-code', text: s.slice(i + 1, j) }));
        i = j + 1;
        continue;
      }
    } else if (c === '*' && s[i + 1] === '*' && depth < MAX_DEPTH) {
      const j = closeBold(s, i + 2);
      if (j > 0) {
        text();
        out.push(h('strong', {}, inline(s.slice(i + 2, j), depth + 1, mentions)));
        i = j + 2;
        continue;
      }
    } else if (c === '_' && depth < MAX_DEPTH && !wordish(s[i - 1]) && !space(s[i + 1]) && s[i + 1] !== '_') {
      const j = closeItalic(s, i + 1);
      if (j > 0) {
        text();
        out.push(h('em', {}, inline(s.slice(i + 1, j), depth + 1, mentions)));
        i = j + 1;
        continue;
      }
    } else if (c === '@') {
      const m = mentionAt(s, i, mentions);
      if (m) {
        text();
        out.push(h('span', { class: m.me ? 'mention mention-me' : 'mention', 'data-testid': m.me ? 'mention-me' : 'mention', text: m.text }));
        i += m.text.length;
        continue;
      }
    } else if (c === 'h' || c === 'H') {
      const a = linkAt(s, i);
      if (a) {
        text();
        out.push(anchor(a));
        i += a.length;
        continue;
      }
    }
    buf += c;
    i += 1;
  }
  text();
  return out;
}

/** closeBold finds the "**" that closes a bold run opened before from: content neither empty nor space-edged. */
function closeBold(s, from) {
  if (space(s[from])) return -1;
  for (let j = s.indexOf('**', from + 1); j > 0; j = s.indexOf('**', j + 1)) {
    if (!space(s[j - 1])) return j;
  }
  return -1;
}

/** closeItalic finds the "_" that closes an italic run: after a non-space, before a non-word. */
function closeItalic(s, from) {
  for (let j = s.indexOf('_', from + 1); j > 0; j = s.indexOf('_', j + 1)) {
    if (!space(s[j - 1]) && s[j - 1] !== '_' && !wordish(s[j + 1])) return j;
  }
  return -1;
}

/** linked is plain text with its http(s) links made clickable, and nothing else read into it. */
export function linked(text) {
  const out = [];
  let plain = 0;
  for (let i = 0; i < text.length; i++) {
    const l = linkAt(text, i);
    if (!l) continue;
    if (i > plain) out.push(text.slice(plain, i));
    out.push(anchor(l));
    i += l.length - 1;
    plain = i + 1;
  }
  if (plain < text.length) out.push(text.slice(plain));
  return out;
}

/** anchor is the element of a link read by linkAt: it opens in a new tab, without a referrer. */
function anchor(l) {
  return h('a', { href: l.href, target: '_blank', rel: 'noopener noreferrer', class: 'md-link', text: l.text });
}
