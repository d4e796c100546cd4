// Links in message text, read without a DOM: where each http(s) link is, where it goes and
// how it reads. markup.js makes them clickable; the chat list's previews, the page's
// notifications (notify.js) and the service worker's Web Push notifications (sw.js, a module
// worker that imports this file) write them as text the same way (shownLinks).

const URL_AT = /https?:\/\/[^\s<>"'`]+/iy;
const WORDISH = /[\p{L}\p{N}_]/u;

const wordish = (ch) => ch !== undefined && WORDISH.test(ch);

/**
 * shownLinks is plain text with each http(s) link written as the message pane shows it
 * (shownURL): for one-line previews and notifications, where "https://good.example@evil.example"
 * must not read as typed either.
 */
export function shownLinks(text) {
  if (!/https?:\/\//i.test(text)) return text;
  let out = '';
  let plain = 0;
  for (let i = 0; i < text.length; i++) {
    const l = linkAt(text, i);
    if (!l) continue;
    out += text.slice(plain, i) + l.text;
    i += l.length - 1;
    plain = i + 1;
  }
  return out + text.slice(plain);
}

/**
 * linkAt reads a link that starts at i, where a word or a path does not go on before it:
 * { href, text (shownURL), length (of what was typed) }, or null.
 */
export function linkAt(s, i) {
  if ((s[i] !== 'h' && s[i] !== 'H') || wordish(s[i - 1]) || s[i - 1] === '/') return null;
  return link(s, i);
}

/** link reads an http(s) URL at i: trailing punctuation and unbalanced brackets stay text. */
function link(s, i) {
  URL_AT.lastIndex = i;
  const m = URL_AT.exec(s);
  if (!m) return null;
  let url = m[0];
  for (;;) {
    const last = url[url.length - 1];
    if ('.,;:!?*_\'"'.includes(last)) url = url.slice(0, -1);
    else if (last === ')' && count(url, '(') < count(url, ')')) url = url.slice(0, -1);
    else if (last === ']' && count(url, '[') < count(url, ']')) url = url.slice(0, -1);
    else break;
  }
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || !parsed.hostname) return null;
  return { href: parsed.href, text: shownURL(url, parsed), length: url.length };
}

/**
 * shownURL is a link's text: the URL as typed, unless that would say something else than where
 * it goes. Then it is the address the browser opens, without user info: a host in another script
 * shows as punycode (аррӏе.com is not apple.com), a host written as numbers as the address it is,
 * "good.example@evil.example" as evil.example, and invisible or text-direction characters
 * percent-encoded (they turned "evil.example/#moc.knab//:sptth" into "https://bank.com").
 */
function shownURL(url, parsed) {
  const typedHost = url.replace(/^https?:\/\//i, '').split(/[/?#\\]/)[0].toLowerCase();
  if (typedHost === parsed.host && !/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(url)) return url;
  const shown = new URL(parsed.href);
  shown.username = '';
  shown.password = '';
  return shown.href;
}

function count(s, ch) {
  let n = 0;
  for (const c of s) if (c === ch) n += 1;
  return n;
}
