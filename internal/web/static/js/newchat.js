// The "new chat" dialog: a direct message with someone, a new group, or a public group to join.

import { api, describe } from './api.js';
import { h, icon } from './dom.js';
import { avatar } from './avatar.js';
import { openDialog, searchBox } from './dialogs.js';
import { plural } from './format.js';

/** status is a line in a result list (a list holds only items: the line is one). */
function status(text, cls = 'muted') {
  return h('li', { class: `list-status ${cls}` }, h('span', { role: 'status', text }));
}

/** userRow is a person to pick; verb ("Message", "Add") starts its accessible name, before what it shows. */
function userRow(u, { action, verb, online }) {
  return h('li', {},
    h('button', { type: 'button', class: 'pick-row', onclick: action, 'data-testid': 'user-result', dataset: { userId: u.id } },
      avatar(u.id, u.name, { online, size: 'sm' }),
      h('span', { class: 'pick-text' }, h('span', { class: 'sr-only', text: `${verb} ` }), h('span', { class: 'pick-name', text: u.name }),
        h('span', { class: 'sr-only', text: ', ' }), h('span', { class: 'pick-sub', text: u.email || '' }))));
}

function directTab(ctx, done) {
  const input = h('input', { type: 'search', id: 'nc-user-q', placeholder: 'Name or email', autocomplete: 'off' });
  const list = h('ul', { class: 'pick-list', 'aria-label': 'People' });
  const err = h('p', { class: 'form-alert', role: 'alert', hidden: true });
  const box = searchBox(input, (q, signal) => api.searchUsers(q, { signal }), (res, q, e) => {
    if (e) return list.replaceChildren(status(describe(e), 'error'));
    const users = res.users.filter((u) => u.id !== ctx.store.me.id);
    if (!users.length) return list.replaceChildren(status(q ? `Nobody found for “${q}”.` : 'No one else here yet.'));
    list.replaceChildren(...users.map((u) => userRow(u, {
      online: u.online,
      verb: 'Message',
      action: async () => {
        err.hidden = true;
        try {
          done(await ctx.client.createPrivate(u.id));
        } catch (ex) {
          err.textContent = describe(ex);
          err.hidden = false;
        }
      },
    })));
  });
  box.run();
  return {
    panel: h('div', { class: 'tab-panel' },
      h('div', { class: 'field' }, h('label', { for: 'nc-user-q', text: 'Find a person' }), input), err, list),
    focus: input,
  };
}

function groupTab(ctx, done) {
  const title = h('input', { id: 'nc-title', type: 'text', required: true, maxlength: 100, autocomplete: 'off', placeholder: 'e.g. Weekend trip' });
  const pub = h('input', { id: 'nc-public', type: 'checkbox' });
  const q = h('input', { id: 'nc-members-q', type: 'search', placeholder: 'Add people by name or email', autocomplete: 'off' });
  const chosen = new Map();
  const chips = h('ul', { class: 'chips', 'aria-label': 'Members to add' });
  const list = h('ul', { class: 'pick-list compact', 'aria-label': 'People to add' });
  const err = h('p', { class: 'form-alert', role: 'alert', hidden: true });
  const titleErr = h('p', { class: 'field-error', id: 'nc-title-err', hidden: true });
  title.setAttribute('aria-describedby', 'nc-title-err');

  const drawChips = () => chips.replaceChildren(...[...chosen.values()].map((u) => h('li', { class: 'chip' },
    h('span', { text: u.name }),
    h('button', {
      type: 'button', class: 'chip-x', 'aria-label': `Remove ${u.name}`,
      onclick: () => {
        chosen.delete(u.id);
        drawChips();
        box.run();
      },
    }, icon('close')))));

  const box = searchBox(q, (s, signal) => api.searchUsers(s, { signal }), (res, s, e) => {
    if (e) return list.replaceChildren(status(describe(e), 'error'));
    const users = res.users.filter((u) => u.id !== ctx.store.me.id && !chosen.has(u.id));
    if (!users.length) return list.replaceChildren(status(s ? `Nobody found for “${s}”.` : 'Everyone is added.'));
    list.replaceChildren(...users.map((u) => userRow(u, {
      online: u.online,
      verb: 'Add',
      action: () => {
        chosen.set(u.id, u);
        drawChips();
        box.run();
        q.focus();
      },
    })));
  });
  box.run();

  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Create group' });
  const form = h('form', { class: 'tab-panel', novalidate: true },
    err,
    h('div', { class: 'field' }, h('label', { for: 'nc-title', text: 'Group name' }), title, titleErr),
    h('div', { class: 'check' }, pub, h('label', { for: 'nc-public' }, h('strong', { text: 'Public' }), h('span', { class: 'muted', text: ' — anyone can find and join it' }))),
    h('div', { class: 'field' }, h('label', { for: 'nc-members-q', text: 'Members' }), chips, q),
    list,
    h('div', { class: 'dialog-actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    titleErr.hidden = true;
    title.removeAttribute('aria-invalid');
    const t = title.value.trim();
    if (!t) {
      titleErr.textContent = 'Give the group a name.';
      titleErr.hidden = false;
      title.setAttribute('aria-invalid', 'true');
      title.focus();
      return;
    }
    submit.disabled = true;
    try {
      done(await ctx.client.createGroup(t, pub.checked, [...chosen.keys()]));
    } catch (ex) {
      err.textContent = describe(ex);
      err.hidden = false;
      submit.disabled = false;
    }
  });
  return { panel: form, focus: title };
}

function discoverTab(ctx, done) {
  const input = h('input', { type: 'search', id: 'nc-disc-q', placeholder: 'Group name', autocomplete: 'off' });
  const list = h('ul', { class: 'pick-list', 'aria-label': 'Public groups' });
  const box = searchBox(input, (q, signal) => api.discover(q, { signal }), (res, q, e) => {
    if (e) return list.replaceChildren(status(describe(e), 'error'));
    if (!res.chats.length) return list.replaceChildren(status(q ? `No public group matches “${q}”.` : 'No public groups to join right now.'));
    list.replaceChildren(...res.chats.map((c) => {
      const join = h('button', { type: 'button', class: 'btn btn-small', text: 'Join', 'aria-label': `Join ${c.title}` });
      join.addEventListener('click', async () => {
        join.disabled = true;
        try {
          done(await ctx.client.join(c.id));
        } catch (ex) {
          join.disabled = false;
          join.replaceWith(h('span', { class: 'error', text: describe(ex) }));
        }
      });
      return h('li', { class: 'pick-row static', 'data-testid': 'discover-result' },
        avatar(c.id, c.title, { size: 'sm', group: true }),
        h('span', { class: 'pick-text' }, h('span', { class: 'pick-name', text: c.title }), h('span', { class: 'pick-sub', text: plural(c.member_count, 'member') })),
        join);
    }));
  });
  box.run();
  return {
    panel: h('div', { class: 'tab-panel' }, h('div', { class: 'field' }, h('label', { for: 'nc-disc-q', text: 'Search public groups' }), input), list),
    focus: input,
  };
}

/** newChatDialog opens the dialog; go(chatId) opens the chat that was created or joined. */
export function newChatDialog(ctx, go, start = 'direct') {
  let d;
  const done = (chatId) => {
    d.close();
    go(chatId);
  };
  const tabs = [
    ['direct', 'Direct', directTab],
    ['group', 'New group', groupTab],
    ['discover', 'Discover', discoverTab],
  ];
  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Kind of chat' });
  const holder = h('div', { class: 'tab-holder' });
  const buttons = [];
  const select = (key, focusTab = false) => {
    for (const b of buttons) {
      const on = b.dataset.tab === key;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
      if (on && focusTab) b.focus();
    }
    const [, , make] = tabs.find((t) => t[0] === key);
    const { panel, focus } = make(ctx, done);
    panel.setAttribute('role', 'tabpanel');
    panel.id = 'nc-panel';
    panel.setAttribute('aria-labelledby', `nc-tab-${key}`);
    holder.replaceChildren(panel);
    if (!focusTab) focus?.focus();
  };
  for (const [key, label] of tabs) {
    const b = h('button', {
      type: 'button', role: 'tab', id: `nc-tab-${key}`, 'aria-controls': 'nc-panel', class: 'tab', text: label,
      dataset: { tab: key }, onclick: () => select(key),
    });
    buttons.push(b);
    tablist.append(b);
  }
  tablist.addEventListener('keydown', (ev) => {
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    let j = -1;
    if (ev.key === 'ArrowRight') j = (i + 1) % buttons.length;
    if (ev.key === 'ArrowLeft') j = (i + buttons.length - 1) % buttons.length;
    if (j >= 0) {
      ev.preventDefault();
      select(buttons[j].dataset.tab, true);
    }
  });
  d = openDialog({ title: 'New chat', content: [tablist, holder], className: 'dialog-newchat', testid: 'new-chat-dialog' });
  select(start);
  return d;
}
