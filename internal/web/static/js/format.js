// Formatting of times, names and system events for display.

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'long', year: 'numeric' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const shortDateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** dayKey identifies the local calendar day of an RFC 3339 time. */
export function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

/** dayLabel is the text of a day separator: Today, Yesterday, or the date. */
export function dayLabel(iso, now = new Date()) {
  const d = new Date(iso);
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  return (d.getFullYear() === now.getFullYear() ? dayFmt : dayYearFmt).format(d);
}

export function timeOf(iso) {
  return timeFmt.format(new Date(iso));
}

export function fullTime(iso) {
  return fullFmt.format(new Date(iso));
}

/** filesText is what stands for a message's files where it has no text: "📎 name" or "📎 N files". */
export function filesText(files) {
  if (!files?.length) return '';
  return files.length === 1 ? `📎 ${files[0].name}` : `📎 ${files.length} files`;
}

/** listTime is the compact time of a chat list row: the time today, else weekday or date. */
export function listTime(iso, now = new Date()) {
  if (!iso) return '';
  const d = new Date(iso);
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
  if (days <= 0) return timeFmt.format(d);
  if (days < 7) return weekdayFmt.format(d);
  return shortDateFmt.format(d);
}

export function initials(name) {
  // Words that start with a letter or digit make the initials ("Tom 🚀" is "T", not "T🚀"); a
  // name without any (all emoji) shows its first character.
  const all = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const words = all.filter((w) => /^[\p{L}\p{N}]/u.test(w));
  const parts = words.length ? words : all;
  const chars = parts.length > 1 ? [parts[0], parts[parts.length - 1]] : [parts[0] || '?'];
  return chars.map((p) => Array.from(p)[0]).join('').toUpperCase();
}

/** hue gives each id a stable avatar colour. */
export function hue(id) {
  return (Number(id) * 137.508) % 360;
}

/**
 * systemParts renders a system message event ({type, user_id, actor_id}) as a sentence in
 * parts: strings, and {name} for each person's name (drawn apart by the caller, so that a name
 * like "Ann made you an admin. Also, Zed" cannot pass for the sentence). name(id) gives a
 * display name ("You" for the current user is left to the caller); me is the current user's id.
 */
export function systemParts(event, name, me) {
  if (!event) return ['Something happened'];
  const user = { name: name(event.user_id) };
  const actor = { name: name(event.actor_id) };
  // Who "you" is goes by id, never by the name: a name is anyone's to pick.
  const self = me != null && event.user_id === me;
  const them = self ? 'you' : user;
  switch (event.type) {
    case 'chat_created':
      return [actor, ' created the group'];
    case 'member_joined':
      return [user, ' joined'];
    case 'member_invited':
      return [actor, ' invited ', them];
    case 'member_left':
      return [user, ' left'];
    case 'member_removed':
      return [actor, ' removed ', them];
    case 'chat_renamed':
      return [actor, ` renamed the group to “${event.title || ''}”`];
    case 'visibility_changed':
      return [actor, ` made the group ${event.public ? 'public' : 'private'}`];
    case 'description_changed':
      return [actor, " changed the group's description"];
    case 'role_changed':
      if (event.user_id === event.actor_id && event.role !== 'admin') return [user, self ? ' are no longer an admin' : ' is no longer an admin'];
      return event.role === 'admin' ? [actor, ' made ', them, ' an admin'] : [actor, ' removed ', them, ' as admin'];
    case 'owner_transferred':
      return [actor, ' made ', them, ' the owner'];
    default:
      return [actor, ' changed the chat'];
  }
}

/**
 * lastSeen says, coarsely, when someone offline was last connected: "last seen today at 14:05",
 * "last seen yesterday", "last seen on 3 March"; "offline" when nobody knows.
 */
export function lastSeen(iso, now = new Date()) {
  if (!iso) return 'offline';
  const d = new Date(iso);
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
  if (days <= 0) return `last seen today at ${timeFmt.format(d)}`;
  if (days === 1) return 'last seen yesterday';
  return `last seen on ${(d.getFullYear() === now.getFullYear() ? shortDateFmt : dateFmtLong).format(d)}`;
}

const dateFmtLong = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });

/** roleLabel is the badge of a group role: "Owner", "Admin", or none for members. */
export function roleLabel(role) {
  return role === 'owner' ? 'Owner' : role === 'admin' ? 'Admin' : '';
}

/**
 * count writes a number as the interface's English does, grouped: 1234 → '1,234' (the same on
 * every machine, where toLocaleString() without a locale followed the browser's).
 */
export function count(n) {
  return n.toLocaleString('en-US');
}

/** plural: plural(3, 'member') → '3 members', plural(1200, 'member') → '1,200 members'. */
export function plural(n, word) {
  return `${count(n)} ${word}${n === 1 ? '' : 's'}`;
}

export function describeAgent(ua) {
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari'
    : /curl\//.test(ua) ? 'curl' : null;
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS'
    : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS'
    : /Linux/.test(ua) ? 'Linux' : null;
  if (browser && os) return `${browser} on ${os}`;
  // Anything else is what the client said of itself: without the characters that would make it
  // read as something else (turned around, invisible) or as this device.
  const raw = ua.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '').trim().slice(0, 60);
  return raw && !/^this device/i.test(raw) ? raw : 'Unknown device';
}

const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** ago says how long ago a time was: "just now", "5 minutes ago", "yesterday". */
export function ago(iso, now = Date.now()) {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 90) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return relFmt.format(-m, 'minute');
  const h = Math.round(m / 60);
  if (h < 24) return relFmt.format(-h, 'hour');
  return relFmt.format(-Math.round(h / 24), 'day');
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function dateOf(iso) {
  return dateFmt.format(new Date(iso));
}
