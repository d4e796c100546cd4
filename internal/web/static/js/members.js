// Member list of a chat (roles, presence or last seen, invite, leave) with what its owner and
// admins may do (admin.js), and "read by" of a group message.

import { api, describe } from './api.js';
import { h, icon, reconcile } from './dom.js';
import { avatar } from './avatar.js';
import { confirmDialog, openDialog, searchBox } from './dialogs.js';
import { count, lastSeen, plural, roleLabel } from './format.js';
import { aboutSection, deleteGroupButton, memberActions, myRole } from './admin.js';
import { tellApart, twinsIn } from './lookalike.js';

/** presenceText is "online", or when someone offline was last seen (coarse). */
export function presenceText(store, id) {
  return store.isOnline(id) ? 'online' : lastSeen(store.lastSeen.get(id));
}

/** apartOf is what tells a member apart from those with look-alike names (twins), or ''. */
function apartOf(store, twins, id) {
  return twins.has(id) ? tellApart(store, id) : '';
}

function memberRow(store, m, actions = null, apart = '') {
  const me = m.id === store.me.id;
  const online = store.isOnline(m.id);
  const badge = roleLabel(m.role);
  return h('li', { class: 'member', 'data-testid': 'member', dataset: { userId: m.id, role: m.role || '' } },
    h('div', { class: 'member-main' },
      avatar(m.id, m.name, { online, size: 'sm' }),
      h('span', { class: 'pick-text' },
        h('span', { class: 'pick-name' }, h('bdi', { text: m.name }), me ? h('span', { class: 'muted', text: ' (you)' }) : null,
          apart ? h('span', { class: 'name-apart', 'data-testid': 'member-apart', text: apart }) : null),
        h('span', { class: `pick-sub ${online ? 'is-online' : ''}`, 'data-testid': 'member-presence', text: presenceText(store, m.id) })),
      badge ? h('span', { class: `role-badge role-${m.role}`, 'data-testid': 'role-badge', text: badge }) : null,
      actions?.toggle || null),
    actions?.panel || null);
}

const rank = { owner: 0, admin: 1, member: 2 };

/** membersDialog shows who is in a chat; in a group it also invites, leaves, and runs the group. */
export function membersDialog(ctx, chatId, { focusInvite = false } = {}) {
  const { store, client } = ctx;
  const chat = store.chats.get(chatId);
  if (!chat) return null;
  const group = chat.kind === 'group';
  const list = h('ul', { class: 'member-list', 'aria-label': 'Members' });
  const heading = h('h3', { class: 'section-title' });
  const alert = h('p', { class: 'form-alert', role: 'alert', hidden: true });
  const announce = (text) => {
    alert.textContent = text;
    alert.hidden = !text;
  };
  const open = new Set(); // members whose actions are shown
  const about = group ? aboutSection(ctx, chatId) : null;
  const ownerOnly = h('div', { class: 'dialog-actions start', hidden: true });

  const rowActions = (m) => {
    if (!group) return null;
    const buttons = memberActions(ctx, chatId, m, { close: () => d.close(), announce });
    if (!buttons.length) return null;
    const shown = open.has(m.id);
    const panelId = `member-actions-${chatId}-${m.id}`;
    const toggle = h('button', {
      type: 'button', class: 'icon-btn small', 'aria-expanded': String(shown), 'aria-controls': panelId,
      'aria-label': `Actions for ${m.name}`, title: 'Actions', 'data-testid': 'member-menu',
      onclick: () => {
        if (open.has(m.id)) open.delete(m.id);
        else open.add(m.id);
        draw();
        list.querySelector(`[aria-controls="${panelId}"]`)?.focus();
      },
    }, icon('menu'));
    const panel = h('div', { id: panelId, class: 'member-actions', role: 'group', 'aria-label': `Actions for ${m.name}`, hidden: !shown }, buttons);
    return { toggle, panel };
  };

  const draw = () => {
    const c = store.chats.get(chatId);
    const mems = store.members.get(chatId);
    if (!c) {
      d.close();
      return;
    }
    d.dialog.querySelector('.dialog-head h2').textContent = group ? c.title : 'Contact';
    about?.draw();
    if (!mems) {
      list.replaceChildren(h('li', { class: 'muted', text: 'Loading…' }));
      return;
    }
    const sorted = [...mems.values()].sort((a, b) => (rank[a.role] ?? 3) - (rank[b.role] ?? 3)
      || Number(store.isOnline(b.id)) - Number(store.isOnline(a.id)) || a.name.localeCompare(b.name));
    heading.textContent = plural(sorted.length, 'member');
    const twins = twinsIn(store, chatId);
    if (twins.size) client.ensureEmails(twins);
    const focused = document.activeElement;
    const keep = list.contains(focused) ? focused.getAttribute('aria-controls') || focused.textContent : null;
    const rowAt = keep ? [...list.children].findIndex((li) => li.contains(focused)) : -1;
    const whose = keep ? list.children[rowAt]?.dataset.key.split(':')[0] : null;
    reconcile(list, sorted.map((m) => ({
      key: `${m.id}:${m.role}:${m.name}:${store.isOnline(m.id)}:${open.has(m.id)}:${myRole(store, chatId)}:${presenceText(store, m.id)}:${apartOf(store, twins, m.id)}`,
      create: () => memberRow(store, m, rowActions(m), apartOf(store, twins, m.id)),
    })));
    // A redrawn row takes the focus back where it was (its toggle, or the same action).
    if (keep && !list.contains(document.activeElement)) {
      const row = [...list.children].find((li) => li.dataset.key.split(':')[0] === whose);
      const again = row && [...row.querySelectorAll('button')].find((b) => b.getAttribute('aria-controls') === keep || b.textContent === keep);
      // A member removed takes their row, and the focus, away: it goes to the row now in its
      // place (or the one above), else to the dialog's first control.
      const near = [...(list.children[Math.min(rowAt, list.children.length - 1)]?.querySelectorAll('button') || [])].find((b) => b.checkVisibility());
      (again || near || d.dialog.querySelector('input, button'))?.focus();
    }
    ownerOnly.hidden = !group || myRole(store, chatId) !== 'owner';
  };

  const content = [];
  if (about) content.push(about.el);
  let inviteInput = null;
  if (group) {
    inviteInput = h('input', { id: 'inv-q', type: 'search', placeholder: 'Name or email', autocomplete: 'off' });
    const results = h('ul', { class: 'pick-list compact', 'aria-label': 'People to invite' });
    const msg = h('p', { class: 'list-status', role: 'status' });
    searchBox(inviteInput, (q, signal) => (q ? api.searchUsers(q, { signal }) : Promise.resolve({ users: [] })), (res, q, e) => {
      if (e) return results.replaceChildren(h('li', { class: 'error', text: describe(e) }));
      const mems = store.members.get(chatId) || new Map();
      const users = res.users.filter((u) => !mems.has(u.id));
      if (!q) return results.replaceChildren();
      if (!users.length) return results.replaceChildren(h('li', { class: 'list-status muted', text: `No one to invite for “${q}”.` }));
      results.replaceChildren(...users.map((u) => h('li', {},
        h('button', {
          type: 'button', class: 'pick-row', 'data-testid': 'invite-result',
          onclick: async () => {
            msg.textContent = '';
            try {
              await client.invite(chatId, u.id);
              msg.textContent = `${u.name} was added.`;
              inviteInput.value = '';
              results.replaceChildren();
              inviteInput.focus();
            } catch (ex) {
              msg.textContent = describe(ex);
            }
          },
        }, avatar(u.id, u.name, { size: 'sm', online: u.online }),
        h('span', { class: 'pick-text' }, h('span', { class: 'sr-only', text: 'Invite ' }), h('span', { class: 'pick-name', text: u.name }),
          h('span', { class: 'sr-only', text: ', ' }), h('span', { class: 'pick-sub', text: u.email || '' })),
        h('span', { class: 'pick-action' }, icon('userPlus'))))));
    });
    content.push(h('section', { class: 'invite' },
      h('div', { class: 'field' }, h('label', { for: 'inv-q', text: 'Invite someone' }), inviteInput), msg, results));
  }
  content.push(alert, h('section', {}, heading, list));
  if (group) {
    const leave = h('button', { type: 'button', class: 'btn btn-danger-outline', 'data-testid': 'leave-group' }, icon('leave'), 'Leave group');
    leave.addEventListener('click', async () => {
      const mine = myRole(store, chatId);
      const ok = await confirmDialog({
        title: 'Leave group?',
        message: `You will stop receiving messages from “${store.chats.get(chatId)?.title || chat.title}”.${mine === 'owner' ? ' An admin, or else the member here longest, will own it.' : ''}`,
        confirmText: 'Leave', danger: true,
      });
      if (!ok) return;
      try {
        await client.leave(chatId);
        d.close();
      } catch (ex) {
        announce(describe(ex));
      }
    });
    content.push(h('div', { class: 'dialog-actions start' }, leave));
    content.push(ownerOnly);
  }

  const d = openDialog({
    title: group ? chat.title : 'Contact', content, className: 'dialog-members', testid: 'members-dialog',
    onClose: () => unsub(),
    initialFocus: focusInvite ? inviteInput : undefined,
  });
  if (group) ownerOnly.append(deleteGroupButton(ctx, chatId, { close: () => d.close(), announce }));
  const unsubs = [store.on('members', draw), store.on('chats', draw)];
  const unsub = () => unsubs.forEach((u) => u());
  draw();
  client.loadDetail(chatId);
  return d;
}

/** readByDialog lists who has read a group message (last_read_seq >= seq) and who has not. */
export async function readByDialog(ctx, chatId, msg) {
  const { store, client } = ctx;
  const readers = h('ul', { class: 'member-list', 'aria-label': 'Read by' });
  const unread = h('ul', { class: 'member-list', 'aria-label': 'Not read yet' });
  const readTitle = h('h3', { class: 'section-title', text: 'Read by' });
  const unreadTitle = h('h3', { class: 'section-title', text: 'Not read yet' });
  const draw = () => {
    const mems = store.members.get(chatId);
    if (!mems) return;
    const others = [...mems.values()].filter((m) => m.id !== msg.sender_id);
    const twins = twinsIn(store, chatId);
    const done = others.filter((m) => (m.last_read_seq || 0) >= msg.seq);
    const not = others.filter((m) => (m.last_read_seq || 0) < msg.seq);
    readTitle.textContent = `Read by ${count(done.length)} of ${count(others.length)}`;
    readers.replaceChildren(...(done.length ? done.map((m) => memberRow(store, m, null, apartOf(store, twins, m.id))) : [h('li', { class: 'muted', text: 'Nobody yet.' })]));
    unread.replaceChildren(...not.map((m) => memberRow(store, m, null, apartOf(store, twins, m.id))));
    unreadTitle.hidden = !not.length;
  };
  const d = openDialog({
    title: 'Message info', className: 'dialog-members', testid: 'read-by-dialog',
    content: [h('blockquote', { class: 'quote', text: msg.body }), readTitle, readers, unreadTitle, unread],
    onClose: () => unsub(),
  });
  const unsub = store.on('members', draw);
  draw();
  await client.loadDetail(chatId); // fresh last_read_seq of every member
  draw();
  return d;
}
