// A chat's notification settings (PATCH /chats/{id}/settings): notify all, mentions or
// nothing, and mute for a while. Every device of the user follows through chat.settings.

import { api, describe } from './api.js';
import { h } from './dom.js';
import { fullTime } from './format.js';
import { openDialog } from './dialogs.js';
import { enableNotifications, permission } from './notify.js';

const MUTES = [['', 'Not muted'], ['1h', 'For an hour'], ['8h', 'For 8 hours'], ['1w', 'For a week']];
const HOURS = { '1h': 1, '8h': 8, '1w': 24 * 7 };

export function chatSettingsDialog(ctx, chatId) {
  const { store } = ctx;
  const chat = store.chats.get(chatId);
  if (!chat) return;
  const alert = h('p', { class: 'form-alert', role: 'alert', hidden: true });
  const notifyRadios = [];
  const radio = (value, label) => {
    const input = h('input', { type: 'radio', name: 'notify', value, checked: (chat.notify || 'all') === value, 'data-testid': `notify-${value}`, onchange: () => save({ notify: value }) });
    notifyRadios.push(input);
    return h('label', { class: 'radio' }, input, h('span', { text: label }));
  };
  const muted = chat.muted_until && Date.parse(chat.muted_until) > Date.now();
  let muteShown = ''; // the mute choice the store holds, to put back when a change is refused
  const mute = h('select', { 'aria-label': 'Mute', 'data-testid': 'mute-select', onchange: () => {
    const hrs = HOURS[mute.value];
    const shown = muteShown;
    save({ muted_until: hrs ? new Date(Date.now() + hrs * 3600e3).toISOString() : null }, () => { mute.value = shown; });
    muteShown = mute.value;
  } }, MUTES.map(([v, label]) => h('option', { value: v, text: label })));
  if (muted) {
    const until = new Date(chat.muted_until);
    mute.prepend(h('option', { value: 'keep', text: `Until ${fullTime(until.toISOString())}`, selected: true }));
    muteShown = 'keep';
  }
  const perm = h('p', { class: 'hint' });
  const enable = h('button', { type: 'button', class: 'btn', 'data-testid': 'enable-notifications', text: 'Turn on notifications on this device',
    onclick: async () => { await enableNotifications(); drawPerm(); } });
  const drawPerm = () => {
    const p = permission();
    enable.hidden = p !== 'default';
    perm.textContent = p === 'granted' ? 'Notifications are on for this device.'
      : p === 'denied' ? 'This browser blocks notifications from this site.'
        : p === 'unsupported' ? 'This browser cannot show notifications.' : '';
  };
  drawPerm();

  // A choice holds from the click (a message that comes before the server's answer follows
  // it). A refused one is put back, in the store and in the dialog, unless a later choice
  // has been made since (that one stands or falls on its own).
  let saves = 0;
  async function save(fields, putBack = () => {}) {
    alert.hidden = true;
    const cur = store.chats.get(chatId) || chat;
    const was = { chat_id: chatId, notify: cur.notify, muted_until: cur.muted_until };
    const mine = ++saves;
    applySettings(store, { ...was, ...fields });
    try {
      const st = await api.chatSettings(chatId, fields);
      if (mine === saves) applySettings(store, st); // an earlier answer: the later choice holds
    } catch (err) {
      if (mine === saves) {
        applySettings(store, was);
        for (const r of notifyRadios) r.checked = r.value === (was.notify || 'all');
        putBack();
      }
      alert.textContent = describe(err);
      alert.hidden = false;
    }
  }

  openDialog({
    title: 'Notifications', testid: 'chat-settings',
    content: [
      h('fieldset', { class: 'radios' }, h('legend', { text: `Tell me about “${chat.title}”` }),
        radio('all', 'Every message'), radio('mentions', 'Only when I am mentioned'), radio('none', 'Nothing')),
      h('label', { class: 'field' }, h('span', { text: 'Mute' }), mute),
      perm, enable, alert,
    ],
  });
}

/** applySettings stores a chat.settings frame's (or PATCH answer's) settings. */
export function applySettings(store, d) {
  const chat = store.chats.get(d?.chat_id);
  if (!chat) return;
  chat.notify = d.notify;
  chat.muted_until = d.muted_until;
  store.notify('chats', 'pane');
}
