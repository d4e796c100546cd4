// Running a group from its details: the owner and admins rename it, describe it, make it public
// or private, keep @all to themselves (or not), promote and demote admins, remove members; the
// owner hands it over or deletes it.
// Anyone can start a private chat from a member's row. The server decides: these controls only
// show what the caller's role allows, and every answer is shown as it comes.

import { api, describe } from './api.js';
import { linked } from './markup.js';
import { disable, h, icon } from './dom.js';
import { confirmDialog } from './dialogs.js';

/** myRole is the caller's role in a chat: 'owner', 'admin', 'member', or '' when unknown. */
export function myRole(store, chatId) {
  return store.members.get(chatId)?.get(store.me.id)?.role || '';
}

export const canManage = (role) => role === 'owner' || role === 'admin';

let seq = 0;

/**
 * aboutSection shows a group's description, and to its owner and admins a form to change its
 * name, description and visibility. draw() redraws it from the store (a change made elsewhere
 * shows at once, unless the form holds unsaved edits).
 */
export function aboutSection(ctx, chatId) {
  const { store } = ctx;
  seq += 1;
  const ids = { title: `grp${seq}-title`, desc: `grp${seq}-desc`, pub: `grp${seq}-public`, all: `grp${seq}-all` };
  const el = h('section', { class: 'about', 'data-testid': 'group-about' });
  const title = h('input', { id: ids.title, type: 'text', required: true, maxlength: 100, autocomplete: 'off' });
  const desc = h('textarea', { id: ids.desc, rows: 3, maxlength: 500, placeholder: 'What is this group about?' });
  const pub = h('input', { id: ids.pub, type: 'checkbox' });
  const allAdmins = h('input', { id: ids.all, type: 'checkbox', 'data-testid': 'mention-all-admins' });
  const status = h('p', { class: 'list-status', role: 'status' });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Save changes' });
  const form = h('form', { class: 'group-form', 'aria-label': 'Group settings' },
    h('div', { class: 'field' }, h('label', { for: ids.title, text: 'Group name' }), title),
    h('div', { class: 'field' }, h('label', { for: ids.desc, text: 'Description' }), desc),
    h('label', { class: 'check', for: ids.pub }, pub,
      h('span', {}, h('strong', { text: 'Public group' }), h('br'), h('span', { class: 'muted', text: 'Anyone can find it and join.' }))),
    h('label', { class: 'check', for: ids.all }, allAdmins,
      h('span', {}, h('strong', { text: 'Only admins may mention @all' }), h('br'), h('span', { class: 'muted', text: 'Members can still mention people by name.' }))),
    h('div', { class: 'dialog-actions' }, status, save));
  const text = h('p', { class: 'group-desc', 'data-testid': 'group-description' });
  let dirty = false;
  for (const input of [title, desc, pub, allAdmins]) input.addEventListener('input', () => { dirty = true; });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const chat = store.chats.get(chatId);
    if (!chat) return;
    const fields = {};
    if (title.value.trim() !== chat.title) fields.title = title.value;
    if (desc.value.trim() !== (chat.description || '')) fields.description = desc.value;
    if (pub.checked !== !!chat.public) fields.public = pub.checked;
    if (allAdmins.checked !== (chat.mention_all === 'admins')) fields.mention_all = allAdmins.checked ? 'admins' : 'everyone';
    if (!Object.keys(fields).length) {
      status.textContent = 'Nothing to save.';
      return;
    }
    const enable = disable(save);
    status.textContent = 'Saving…';
    try {
      await store.applyChat(api.updateChat(chatId, fields));
      dirty = false;
      status.textContent = 'Saved.';
      draw();
    } catch (ex) {
      status.textContent = describe(ex);
    } finally {
      enable();
    }
  });

  function draw() {
    const chat = store.chats.get(chatId);
    if (!chat) return;
    if (canManage(myRole(store, chatId))) {
      if (!dirty) {
        title.value = chat.title || '';
        desc.value = chat.description || '';
        pub.checked = !!chat.public;
        allAdmins.checked = chat.mention_all === 'admins';
      }
      if (!form.isConnected) el.replaceChildren(form);
    } else {
      text.replaceChildren(...linked(chat.description || '')); // its links clickable, as in messages
      el.replaceChildren(...(chat.description ? [h('h3', { class: 'section-title', text: 'About' }), text] : []));
    }
  }
  draw();
  return { el, draw };
}

/**
 * memberActions are what the caller may do about member m of a group, as buttons: message them
 * privately, promote or demote, hand the group over, remove them. close() shuts the dialog the
 * row is in (after starting a private chat).
 */
export function memberActions(ctx, chatId, m, { close, announce }) {
  const { store, client } = ctx;
  const mine = myRole(store, chatId);
  const me = m.id === store.me.id;
  const out = [];
  // Busy while it runs, not disabled: a disabled button cannot take the focus back when its
  // confirmation closes, and the focus would fall out of the dialog.
  const act = (label, fn, cls = 'btn btn-small') => h('button', { type: 'button', class: cls, 'data-testid': 'member-action', text: label, onclick: async (ev) => {
    const b = ev.currentTarget;
    if (b.getAttribute('aria-disabled') === 'true') return;
    b.setAttribute('aria-disabled', 'true');
    announce('');
    try {
      await fn();
    } catch (ex) {
      announce(describe(ex));
    } finally {
      b.removeAttribute('aria-disabled');
    }
  } });
  const setRole = (role) => store.applyChat(api.setRole(chatId, m.id, role));

  if (!me && !m.deleted) {
    out.push(act('Message', async () => {
      const id = await client.createPrivate(m.id);
      close();
      ctx.go?.(id);
    }));
  }
  if (m.role === 'member' && canManage(mine) && !me) out.push(act('Make admin', () => setRole('admin')));
  if (m.role === 'admin' && (mine === 'owner' || (me && mine === 'admin'))) {
    out.push(act(me ? 'Step down as admin' : 'Remove as admin', () => setRole('member')));
  }
  if (mine === 'owner' && !me) {
    out.push(act('Make owner', async () => {
      const ok = await confirmDialog({
        title: `Make ${m.name} the owner?`,
        message: `${m.name} will own the group and be able to delete it. You will stay on as an admin.`,
        confirmText: 'Make owner',
      });
      if (ok) await store.applyChat(api.transfer(chatId, m.id));
    }));
  }
  const removable = !me && m.role !== 'owner' && (mine === 'owner' || (mine === 'admin' && m.role === 'member'));
  if (removable) {
    out.push(act('Remove', async () => {
      const ok = await confirmDialog({
        title: `Remove ${m.name}?`,
        message: `${m.name} will leave the group at once and stop receiving its messages.`,
        confirmText: 'Remove', danger: true,
      });
      if (!ok) return;
      await api.removeMember(chatId, m.id);
      client.onMemberLeft({ chat_id: chatId, user_id: m.id });
    }, 'btn btn-small btn-danger-outline'));
  }
  return out;
}

/** deleteGroupButton deletes the group after a confirmation (its owner only). */
export function deleteGroupButton(ctx, chatId, { close, announce }) {
  const { store, client } = ctx;
  const btn = h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'delete-group' }, icon('close'), 'Delete group');
  btn.addEventListener('click', async () => {
    const chat = store.chats.get(chatId);
    if (!chat) return;
    const ok = await confirmDialog({
      title: 'Delete this group?',
      message: `“${chat.title}” and all its messages will be deleted for everyone. This cannot be undone.`,
      confirmText: 'Delete group', danger: true,
    });
    if (!ok) return;
    try {
      await api.deleteChat(chatId);
      close();
      client.chatGone(chatId);
    } catch (ex) {
      announce(describe(ex));
    }
  });
  return btn;
}
