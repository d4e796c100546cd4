// Member list of a chat (roles, presence, invite, leave) and "read by" of a group message.

import { api, describe } from './api.js';
import { h, icon } from './dom.js';
import { avatar } from './avatar.js';
import { confirmDialog, openDialog, searchBox } from './dialogs.js';
import { plural } from './format.js';

function memberRow(store, m) {
  const me = m.id === store.me.id;
  const online = store.isOnline(m.id);
  return h('li', { class: 'member', 'data-testid': 'member', dataset: { userId: m.id } },
    avatar(m.id, m.name, { online, size: 'sm' }),
    h('span', { class: 'pick-text' },
      h('span', { class: 'pick-name' }, m.name, me ? h('span', { class: 'muted', text: ' (you)' }) : null),
      h('span', { class: `pick-sub ${online ? 'is-online' : ''}`, text: online ? 'online' : 'offline' })),
    m.role === 'owner' ? h('span', { class: 'role-badge', text: 'Owner' }) : null);
}

/** membersDialog shows who is in a chat; in a group it also invites and leaves. */
export function membersDialog(ctx, chatId, { focusInvite = false } = {}) {
  const { store, client } = ctx;
  const chat = store.chats.get(chatId);
  if (!chat) return null;
  const group = chat.kind === 'group';
  const list = h('ul', { class: 'member-list', 'aria-label': 'Members' });
  const heading = h('h3', { class: 'section-title' });

  const draw = () => {
    const c = store.chats.get(chatId);
    const mems = store.members.get(chatId);
    if (!c) {
      d.close();
      return;
    }
    if (!mems) {
      list.replaceChildren(h('li', { class: 'muted', text: 'Loading…' }));
      return;
    }
    const sorted = [...mems.values()].sort((a, b) => (a.role === 'owner' ? -1 : 0) - (b.role === 'owner' ? -1 : 0)
      || Number(store.isOnline(b.id)) - Number(store.isOnline(a.id)) || a.name.localeCompare(b.name));
    heading.textContent = plural(sorted.length, 'member');
    list.replaceChildren(...sorted.map((m) => memberRow(store, m)));
  };

  const content = [];
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
  content.push(h('section', {}, heading, list));
  if (group) {
    const leave = h('button', { type: 'button', class: 'btn btn-danger-outline', 'data-testid': 'leave-group' }, icon('leave'), 'Leave group');
    leave.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: 'Leave group?', message: `You will stop receiving messages from “${chat.title}”.`, confirmText: 'Leave', danger: true,
      });
      if (!ok) return;
      try {
        await client.leave(chatId);
        d.close();
      } catch (ex) {
        leave.after(h('p', { class: 'error', role: 'alert', text: describe(ex) }));
      }
    });
    content.push(h('div', { class: 'dialog-actions start' }, leave));
  }

  const d = openDialog({
    title: group ? chat.title : 'Contact', content, className: 'dialog-members', testid: 'members-dialog',
    onClose: () => unsub(),
    initialFocus: focusInvite ? inviteInput : undefined,
  });
  const unsub = store.on('members', draw);
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
    const done = others.filter((m) => (m.last_read_seq || 0) >= msg.seq);
    const not = others.filter((m) => (m.last_read_seq || 0) < msg.seq);
    readTitle.textContent = `Read by ${done.length} of ${others.length}`;
    readers.replaceChildren(...(done.length ? done.map((m) => memberRow(store, m)) : [h('li', { class: 'muted', text: 'Nobody yet.' })]));
    unread.replaceChildren(...not.map((m) => memberRow(store, m)));
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
