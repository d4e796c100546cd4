// The account dialog: who you are, your name, your devices (sessions), your password, signing
// out, and deleting the account (settings.js).

import { api, describe } from './api.js';
import { h, icon } from './dom.js';
import { avatar } from './avatar.js';
import { confirmDialog, openDialog } from './dialogs.js';
import { ago, dateOf, describeAgent } from './format.js';
import { deleteAccountButton, nameSection, passwordSection } from './settings.js';

/**
 * accountDialog opens the dialog; signOut(all) signs this device (or all) out, gone(notice)
 * leaves the app once the account is deleted.
 */
export function accountDialog(ctx, signOut, gone) {
  const { store } = ctx;
  const me = store.me;
  const list = h('ul', { class: 'device-list', 'aria-label': 'Devices', 'data-testid': 'device-list' }, h('li', { class: 'muted', text: 'Loading…' }));
  const err = h('p', { class: 'form-alert', role: 'alert', hidden: true });

  const load = async () => {
    try {
      const { sessions } = await api.sessions();
      sessions.sort((a, b) => Number(b.current) - Number(a.current) || b.last_seen_at.localeCompare(a.last_seen_at));
      list.replaceChildren(...sessions.map((s) => {
        const row = h('li', { class: 'device', 'data-testid': 'device', dataset: { sessionId: s.id, current: String(!!s.current) } },
          h('span', { class: 'device-icon' }, icon('devices')),
          h('span', { class: 'pick-text' },
            h('span', { class: 'pick-name' }, describeAgent(s.user_agent), s.current ? h('span', { class: 'tag', text: 'This device' }) : null),
            h('span', { class: 'pick-sub', text: `Signed in ${dateOf(s.created_at)} · active ${s.current ? 'now' : ago(s.last_seen_at)}` })));
        if (!s.current) {
          row.append(h('button', {
            type: 'button', class: 'btn btn-small', text: 'Sign out', 'aria-label': `Sign out ${describeAgent(s.user_agent)}`,
            // Busy while it runs, not disabled (that would drop the focus); the row goes with
            // it, and the focus to the next device's button (or the one above, or "all").
            onclick: async (ev) => {
              const b = ev.currentTarget;
              if (b.getAttribute('aria-disabled') === 'true') return;
              b.setAttribute('aria-disabled', 'true');
              try {
                await api.revokeSession(s.id);
                const all = [...list.querySelectorAll('button')];
                const to = all[all.indexOf(b) + 1] || all[all.indexOf(b) - 1] || outAll;
                const had = row.contains(document.activeElement);
                row.remove();
                if (had) to.focus();
              } catch (ex) {
                err.textContent = describe(ex);
                err.hidden = false;
                b.removeAttribute('aria-disabled');
              }
            },
          }));
        }
        return row;
      }));
    } catch (ex) {
      list.replaceChildren(h('li', { class: 'error', text: describe(ex) }));
    }
  };

  const outOne = h('button', { type: 'button', class: 'btn', 'data-testid': 'sign-out' }, icon('logout'), 'Sign out');
  const outAll = h('button', { type: 'button', class: 'btn btn-danger-outline', 'data-testid': 'sign-out-all' }, 'Sign out of all devices');
  outOne.addEventListener('click', () => {
    d.close();
    signOut(false);
  });
  outAll.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: 'Sign out everywhere?', message: 'Every device signed in to this account, this one included, will be signed out.',
      confirmText: 'Sign out everywhere', danger: true,
    });
    if (!ok) return;
    d.close();
    signOut(true);
  });

  const profileName = h('span', { class: 'profile-name', text: me.name });
  const profileAvatar = h('span', {}, avatar(me.id, me.name, { size: 'lg' }));
  const d = openDialog({
    title: 'Account',
    className: 'dialog-account',
    testid: 'account-dialog',
    onClose: () => unsub(),
    content: [
      h('div', { class: 'profile' }, profileAvatar,
        h('span', { class: 'pick-text' }, profileName, h('span', { class: 'pick-sub', text: me.email || '' }))),
      h('h3', { class: 'section-title', text: 'Profile' }),
      nameSection(ctx),
      h('h3', { class: 'section-title', text: 'Devices' }),
      err,
      list,
      h('div', { class: 'dialog-actions' }, outAll, outOne),
      h('h3', { class: 'section-title', text: 'Password' }),
      passwordSection((others) => others && load()),
      h('h3', { class: 'section-title', text: 'Delete account' }),
      h('div', { class: 'dialog-actions start' }, deleteAccountButton(() => {
        d.close();
        gone('Your account was deleted.');
      })),
    ],
  });
  const unsub = store.on('me', () => {
    profileName.textContent = store.me.name;
    profileAvatar.replaceChildren(avatar(store.me.id, store.me.name, { size: 'lg' }));
  });
  load();
  return d;
}
