// Account settings, in the account dialog: the display name, the password (with "sign out my
// other devices"), and deleting the account (the password confirms it).

import { api, describe } from './api.js';
import { disable, h } from './dom.js';
import { openDialog } from './dialogs.js';

let seq = 0;

/** nameSection changes the display name; everyone who shares a chat sees it change live. */
export function nameSection(ctx) {
  const { store } = ctx;
  seq += 1;
  const id = `acc${seq}-name`;
  const input = h('input', { id, type: 'text', required: true, maxlength: 64, autocomplete: 'name', value: store.me.name });
  const status = h('p', { class: 'list-status', role: 'status' });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Save name' });
  const form = h('form', { class: 'settings-form', 'aria-label': 'Change your name', 'data-testid': 'name-form' },
    h('div', { class: 'field' }, h('label', { for: id, text: 'Display name' }), input),
    h('div', { class: 'dialog-actions' }, status, save));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (input.value.trim() === store.me.name) {
      status.textContent = 'That is your name already.';
      return;
    }
    const enable = disable(save);
    status.textContent = 'Saving…';
    try {
      const me = await api.rename(input.value);
      store.me = { ...store.me, ...me };
      input.value = me.name;
      store.notify('me', 'chats', 'pane', 'members');
      status.textContent = 'Saved.';
    } catch (ex) {
      status.textContent = describe(ex);
    } finally {
      enable();
    }
  });
  return form;
}

/** passwordSection changes the password; it can sign out every other device at once. */
export function passwordSection(onChanged) {
  seq += 1;
  const ids = { cur: `acc${seq}-cur`, next: `acc${seq}-new`, others: `acc${seq}-others` };
  // A wrong current password is said under its field, which screen readers read with it.
  const curErr = h('p', { class: 'field-error', id: `${ids.cur}-err`, hidden: true });
  const cur = h('input', { id: ids.cur, type: 'password', required: true, autocomplete: 'current-password', 'aria-describedby': curErr.id });
  const next = h('input', { id: ids.next, type: 'password', required: true, minlength: 8, maxlength: 128, autocomplete: 'new-password', 'aria-describedby': `${ids.next}-hint` });
  const others = h('input', { id: ids.others, type: 'checkbox', checked: true });
  const status = h('p', { class: 'list-status', role: 'status' });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Change password' });
  const form = h('form', { class: 'settings-form', 'aria-label': 'Change password', 'data-testid': 'password-form' },
    h('div', { class: 'field' }, h('label', { for: ids.cur, text: 'Current password' }), cur, curErr),
    h('div', { class: 'field' }, h('label', { for: ids.next, text: 'New password' }), next,
      h('span', { class: 'hint muted', id: `${ids.next}-hint`, text: 'At least 8 characters.' })),
    h('label', { class: 'check', for: ids.others }, others, h('span', { text: 'Sign out my other devices' })),
    h('div', { class: 'dialog-actions' }, status, save));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const enable = disable(save);
    status.textContent = 'Saving…';
    curErr.hidden = true;
    cur.removeAttribute('aria-invalid');
    try {
      await api.changePassword(cur.value, next.value, others.checked);
      status.textContent = others.checked ? 'Password changed. Your other devices were signed out.' : 'Password changed.';
      cur.value = '';
      next.value = '';
      onChanged?.(others.checked);
    } catch (ex) {
      if (ex.code === 'wrong_password') {
        status.textContent = '';
        curErr.textContent = 'The current password is wrong.';
        curErr.hidden = false;
        cur.setAttribute('aria-invalid', 'true');
        cur.focus();
      } else {
        status.textContent = describe(ex);
      }
    } finally {
      enable();
    }
  });
  return form;
}

/** deleteAccountButton asks for the password, deletes the account and calls onDeleted. */
export function deleteAccountButton(onDeleted) {
  const btn = h('button', { type: 'button', class: 'btn btn-danger-outline', 'data-testid': 'delete-account', text: 'Delete my account' });
  btn.addEventListener('click', () => {
    seq += 1;
    const id = `acc${seq}-confirm`;
    const err = h('p', { class: 'form-alert', id: `${id}-err`, role: 'alert', hidden: true });
    const pw = h('input', { id, type: 'password', required: true, autocomplete: 'current-password', 'aria-describedby': err.id });
    const yes = h('button', { type: 'submit', class: 'btn btn-danger', text: 'Delete my account' });
    const no = h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => d.close() });
    const form = h('form', { class: 'settings-form' },
      h('p', { class: 'confirm-text', text: 'You leave every group; your messages stay, signed “Deleted user”; the people you talk to privately can read your chats but no longer reply. You are signed out everywhere. This cannot be undone.' }),
      h('div', { class: 'field' }, h('label', { for: id, text: 'Your password' }), pw),
      err,
      h('div', { class: 'dialog-actions' }, no, yes));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      yes.disabled = true;
      err.hidden = true;
      pw.removeAttribute('aria-invalid');
      try {
        await api.deleteAccount(pw.value);
        d.close();
        onDeleted();
      } catch (ex) {
        err.textContent = ex.code === 'wrong_password' ? 'The password is wrong.' : describe(ex);
        err.hidden = false;
        pw.setAttribute('aria-invalid', 'true');
        yes.disabled = false;
        pw.focus();
      }
    });
    const d = openDialog({ title: 'Delete your account?', className: 'dialog-small', testid: 'delete-account-dialog', content: form, initialFocus: pw });
  });
  return btn;
}
