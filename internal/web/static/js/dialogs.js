// Modal dialogs on the native <dialog> element: focus is trapped and Esc closes them; a click on
// the backdrop closes them too, and focus returns to where it was.

import { h, icon } from './dom.js';

let dialogSeq = 0;

// Back closes a dialog (the phone's back gesture most of all): each open dialog has a history
// entry of its own, at the same address; Back pops it and the dialog closes, and a dialog closed
// otherwise (Esc, its buttons) takes its entry back with history.back(). That is asynchronous:
// what would add an entry meanwhile (a navigation, the next dialog) waits for it (afterDialogs),
// or the going back would undo it.
let backs = 0; // history.back() calls whose popstate has not come yet
let waiting = [];
addEventListener('popstate', () => {
  if (backs > 0 && --backs === 0) {
    const run = waiting;
    waiting = [];
    for (const fn of run) fn();
  }
});
if (history.state?.dialog) history.replaceState(null, ''); // a reload with a dialog open

/** afterDialogs runs fn once the entries of closed dialogs are off the history (now, mostly). */
export function afterDialogs(fn) {
  if (backs > 0) waiting.push(fn);
  else fn();
}

/**
 * openDialog shows a modal. content is a node (or array of nodes). Returns {dialog, body, close}.
 */
export function openDialog({ title, content, className = '', testid, onClose, initialFocus }) {
  dialogSeq += 1;
  const titleId = `dlg${dialogSeq}-title`;
  const opener = document.activeElement;
  const body = h('div', { class: 'dialog-body' }, content);
  const closeBtn = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close', onclick: () => close() }, icon('close'));
  const panel = h('div', { class: 'dialog-panel' },
    h('header', { class: 'dialog-head' }, h('h2', { id: titleId, text: title }), closeBtn),
    body);
  const dialog = h('dialog', { class: `dialog ${className}`.trim(), 'aria-labelledby': titleId, 'data-testid': testid }, panel);

  function close(value) {
    if (dialog.open) dialog.close(value);
  }
  let pushed = false;
  let byBack = false;
  const onPop = () => {
    if (pushed && dialog.open && history.state?.dialog !== titleId) {
      byBack = true;
      close();
    }
  };
  dialog.addEventListener('close', () => {
    removeEventListener('popstate', onPop);
    if (pushed && !byBack && history.state?.dialog === titleId) {
      backs += 1;
      history.back();
    }
    dialog.remove();
    onClose?.(dialog.returnValue);
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
  });
  // Esc closes at once, even from a search field (which would first swallow it to clear itself).
  dialog.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !ev.isComposing) {
      ev.preventDefault();
      ev.stopPropagation();
      close();
    }
  });
  // A press that starts and ends on the backdrop (the dialog element itself) closes it.
  let downOnBackdrop = false;
  dialog.addEventListener('pointerdown', (ev) => {
    downOnBackdrop = ev.target === dialog;
  });
  dialog.addEventListener('click', (ev) => {
    if (ev.target === dialog && downOnBackdrop) close();
  });
  document.body.append(dialog);
  dialog.showModal();
  afterDialogs(() => {
    if (!dialog.open) return;
    history.pushState({ dialog: titleId }, '');
    pushed = true;
    addEventListener('popstate', onPop);
  });
  if (initialFocus) initialFocus.focus();
  return { dialog, body, close };
}

/** confirmDialog asks a yes/no question; resolves true when confirmed. */
export function confirmDialog({ title, message, confirmText = 'OK', danger = false }) {
  return new Promise((resolve) => {
    let ok = false;
    const yes = h('button', {
      type: 'button', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, text: confirmText,
      onclick: () => {
        ok = true;
        d.close();
      },
    });
    const no = h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => d.close() });
    const d = openDialog({
      title,
      className: 'dialog-small',
      testid: 'confirm-dialog',
      content: [h('p', { class: 'confirm-text', text: message }), h('div', { class: 'dialog-actions' }, no, yes)],
      onClose: () => resolve(ok),
      // A destructive action is never one reflex Enter away: Cancel has the focus.
      initialFocus: danger ? no : yes,
    });
  });
}

/**
 * searchBox wires an input to an async search: it calls search(query, signal) as the user
 * types (debounced, aborting the previous request) and render(results, query) with the answer.
 */
export function searchBox(input, search, render, { delay = 180 } = {}) {
  let timer = null;
  let ctrl = null;
  const run = async () => {
    ctrl?.abort();
    ctrl = new AbortController();
    const query = input.value.trim();
    try {
      render(await search(query, ctrl.signal), query, null);
    } catch (err) {
      if (err.name !== 'AbortError') render(null, query, err);
    }
  };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(run, delay);
  });
  return { run, cancel: () => ctrl?.abort() };
}
