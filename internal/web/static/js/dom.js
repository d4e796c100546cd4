// Small DOM helpers. User text only ever reaches the page as text nodes or textContent: there is
// no innerHTML anywhere in the client.

const SVG = 'http://www.w3.org/2000/svg';

/**
 * h builds an element: h('button', {class: 'x', type: 'button', onclick: fn}, 'text', child).
 * Props: `class`, `text` (textContent), `dataset` (object), `on<event>` functions, booleans
 * (present when true), anything else as an attribute. Children: nodes, strings (text nodes),
 * arrays, and null/undefined/false (skipped).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

export function setProps(el, props) {
  if (!props) return el;
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** clear removes every child of el. */
export function clear(el) {
  el.replaceChildren();
  return el;
}

// Icon paths (24x24 viewBox, stroked). Static strings of this file, never user data.
const ICONS = {
  send: 'M4 12l16-8-6 16-2.5-6.5L4 12z',
  plus: 'M12 5v14M5 12h14',
  back: 'M15 5l-7 7 7 7',
  users: 'M16 19v-1a4 4 0 00-4-4H7a4 4 0 00-4 4v1M9.5 10a3 3 0 100-6 3 3 0 000 6zM21 19v-1a4 4 0 00-3-3.8M16 4.2a3 3 0 010 5.6',
  menu: 'M12 6h.01M12 12h.01M12 18h.01',
  search: 'M11 18a7 7 0 100-14 7 7 0 000 14zM20 20l-4-4',
  close: 'M6 6l12 12M18 6L6 18',
  devices: 'M4 6h12v9H4zM2 18h16M19 9h3v9h-3z',
  logout: 'M15 4h4v16h-4M10 8l-4 4 4 4M6 12h10',
  userPlus: 'M15 19v-1a4 4 0 00-4-4H7a4 4 0 00-4 4v1M9 10a3 3 0 100-6 3 3 0 000 6zM19 8v6M16 11h6',
  leave: 'M9 4H5v16h4M14 8l4 4-4 4M18 12H9',
  down: 'M6 9l6 6 6-6',
  retry: 'M4 12a8 8 0 0114-5.3M20 12a8 8 0 01-14 5.3M18 3v4h-4M6 21v-4h4',
  chat: 'M4 5h16v11H9l-5 4z',
  clip: 'M20 11.5l-8.1 8.1a5 5 0 01-7.1-7.1l8.5-8.5a3.3 3.3 0 014.7 4.7l-8.5 8.5a1.7 1.7 0 01-2.4-2.4l7.8-7.8',
  file: 'M6 3h8l4 4v14H6zM14 3v4h4',
  download: 'M12 4v11M7 10l5 5 5-5M5 20h14',
  bell: 'M6 16V11a6 6 0 0112 0v5l2 2H4zM10 20a2 2 0 004 0',
  'bell-off': 'M8.5 5.8A6 6 0 0118 11v4M6 11v5l-2 2h12M10 20a2 2 0 004 0M3 3l18 18',
};

/** icon returns an inline SVG icon; it is decorative (aria-hidden) unless given a title. */
export function icon(name, cls = 'icon') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const p = document.createElementNS(SVG, 'path');
  p.setAttribute('d', ICONS[name] || '');
  svg.append(p);
  return svg;
}

/**
 * disable turns btn off while a form's call runs and returns what turns it on again: a button
 * that had the focus (the keyboard pressed it) loses it to the page when disabled, and gets it
 * back then, unless something else took it meanwhile.
 */
export function disable(btn) {
  const had = document.activeElement === btn;
  btn.disabled = true;
  return () => {
    btn.disabled = false;
    if (had && btn.isConnected && document.activeElement === document.body) btn.focus();
  };
}

/**
 * reconcile makes parent's children equal to items ([{key, create, update}]) in order, reusing
 * existing elements by key (dataset.key) so that focus, selection and observers survive.
 */
export function reconcile(parent, items) {
  const old = new Map();
  for (const el of parent.children) if (el.dataset.key) old.set(el.dataset.key, el);
  let cursor = parent.firstElementChild;
  for (const it of items) {
    let el = old.get(it.key);
    if (el) {
      old.delete(it.key);
      if (it.update) it.update(el);
    } else {
      el = it.create();
      el.dataset.key = it.key;
    }
    if (el !== cursor) place(parent, el, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const el of old.values()) el.remove();
}

/**
 * place puts el before ref (null: last) in parent. An element already on the page moves with
 * moveBefore where the browser has it: it keeps its focus (insertBefore takes it away).
 */
export function place(parent, el, ref) {
  if (parent.moveBefore && el.isConnected && parent.isConnected) {
    try {
      parent.moveBefore(el, ref);
      return;
    } catch { /* not movable so (another document): insert it */ }
  }
  parent.insertBefore(el, ref);
}
