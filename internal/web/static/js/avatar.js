// Avatars: initials on a colour derived from the id, with an optional presence dot.

import { h } from './dom.js';
import { hue, initials } from './format.js';

export function avatar(id, name, { online, size = '', group = false } = {}) {
  const el = h('span', { class: `avatar ${size} ${group ? 'avatar-group' : ''}`.trim(), 'aria-hidden': 'true', text: initials(name) });
  el.style.setProperty('--hue', String(Math.round(hue(id) + (group ? 40 : 0))));
  const wrap = h('span', { class: 'avatar-wrap' }, el);
  if (online !== undefined) {
    wrap.append(h('span', { class: `presence ${online ? 'on' : 'off'}`, 'data-testid': 'presence', dataset: { online: String(!!online) } }));
  }
  return wrap;
}
