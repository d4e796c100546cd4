// Live changes of groups and people: chat.updated (a group renamed, made public or private,
// described), member.role (an owner or admin changed), user.updated (someone renamed or deleted
// their account). Each updates the store; the views redraw from it.

/** chatUpdated merges what chat.updated says of a group: title, public, description. */
export function chatUpdated(store, d) {
  const c = d?.chat;
  if (!c || !store.chats.has(c.id)) return;
  const chat = store.chats.get(c.id);
  for (const k of ['title', 'public', 'description', 'mention_all']) if (k in c) chat[k] = c[k];
  store.notify('chats', 'pane', 'members');
}

/**
 * groupEvent applies a system message newer than anything the tab has of its chat that records a
 * change of the group: a new title, visibility or role. chat.updated and member.role follow
 * such a message and say the same, but the broker does not replay them when it loses them, while
 * the message itself is healed (docs/PROTOCOL.md, "Running a group"), so the change shows either
 * way. A description_changed does not carry the description: it returns true, and the caller
 * asks for the chat if no chat.updated follows.
 */
export function groupEvent(store, chat, ev) {
  switch (ev?.type) {
    case 'chat_renamed':
      if (typeof ev.title === 'string' && ev.title) chat.title = ev.title;
      break;
    case 'visibility_changed':
      if (typeof ev.public === 'boolean') chat.public = ev.public;
      break;
    case 'description_changed':
      return true;
    case 'role_changed':
      if (ev.role === 'admin' || ev.role === 'member') setRole(store, chat.id, ev.user_id, ev.role);
      break;
    case 'owner_transferred':
      // The new owner is user_id; the one who handed over (actor_id) stays as an admin, unless
      // they left (member_left came first and took them off the list).
      setRole(store, chat.id, ev.user_id, 'owner');
      setRole(store, chat.id, ev.actor_id, 'admin');
      break;
    default:
  }
  return false;
}

function setRole(store, chatId, userId, role) {
  const m = store.members.get(chatId)?.get(userId);
  if (!m) return;
  m.role = role;
  store.notify('members');
}

/** memberRole sets a member's role. */
export function memberRole(store, d) {
  const m = store.members.get(d?.chat_id)?.get(d.user_id);
  if (!m) return;
  m.role = d.role;
  store.notify('members', 'pane');
}

/**
 * userUpdated renames someone everywhere they show: names, member rows, private chats (whose
 * title is the peer's name); a deleted account makes its private chats read-only.
 */
export function userUpdated(store, d) {
  const u = d?.user;
  if (!u) return;
  if (store.me && u.id === store.me.id) {
    store.me = { ...store.me, name: u.name };
  }
  store.names.set(u.id, u.name);
  for (const mems of store.members.values()) {
    const m = mems.get(u.id);
    if (m) {
      m.name = u.name;
      if (u.deleted) m.deleted = true;
    }
  }
  for (const c of store.chats.values()) {
    if (c.peer?.id !== u.id) continue;
    c.peer = { ...c.peer, name: u.name, deleted: !!u.deleted };
    c.title = u.name;
    if (u.deleted) {
      c.read_only = true;
      c.peer.online = false;
    }
  }
  if (u.deleted) store.online.set(u.id, false);
  store.notify('me', 'chats', 'pane', 'members');
}
