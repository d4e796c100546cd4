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
