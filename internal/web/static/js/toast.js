// A short notice of what happened elsewhere (removed from a group, a group deleted) or of an
// action that failed, at the bottom of the screen.
//
// It is not gone before its reader could see it: a notice that comes while they are away (another
// tab, another window, reading elsewhere) waits for them. It goes 6 s after their first key or
// click once it is shown, at once with its close button, or when another takes its place; not
// while the pointer rests on it or the focus is in it.

import { h, icon } from './dom.js';

const LINGER = 6000;

/**
 * mountToast returns the region to place in the page, show(text), which puts up a notice in place
 * of any other, and dismiss(), which takes it down.
 */
export function mountToast() {
  // The live region stays in the page (a region added or shown together with its words is often
  // not read out); the notice inside it comes and goes.
  const region = h('div', { class: 'toasts', 'aria-live': 'polite' });
  let current = null;
  let timer = null;

  const dismiss = () => {
    clearTimeout(timer);
    timer = null;
    document.removeEventListener('keydown', armed, true);
    document.removeEventListener('pointerdown', armed, true);
    current?.remove();
    current = null;
  };
  const later = () => {
    if (current?.matches(':hover, :focus-within')) timer = setTimeout(later, LINGER);
    else dismiss();
  };
  // The first key or click after the notice starts its clock (the click on its own close button
  // does not need to).
  function armed(ev) {
    if (current?.contains(ev.target)) return;
    document.removeEventListener('keydown', armed, true);
    document.removeEventListener('pointerdown', armed, true);
    timer = setTimeout(later, LINGER);
  }

  const show = (text) => {
    dismiss();
    current = h('div', { class: 'toast', 'data-testid': 'notice' },
      h('span', { class: 'toast-text', text }),
      h('button', { type: 'button', class: 'icon-btn small', 'aria-label': 'Dismiss', title: 'Dismiss', onclick: dismiss }, icon('close')));
    region.append(current);
    document.addEventListener('keydown', armed, true);
    document.addEventListener('pointerdown', armed, true);
  };
  return { region, show, dismiss };
}
