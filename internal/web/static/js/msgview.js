// Messages that change, on screen: the message menu (Reply, React, Edit, Delete; on hover, by
// long-press or right-click, and by keyboard through each message's "More actions" button), the
// emoji picker, inline editing (Enter saves, Esc cancels, ↑ in an empty composer edits my last
// message), the "edited" marker, reaction chips, the quote above a reply (a click jumps to the
// quoted message, loading older history as needed), deleted messages, and the bar above the
// composer that says which message is being answered.
//
// pane.js calls decorate() on each message bubble it builds and adds sig() to the bubble's
// signature, so that a change redraws the message.

import { h, icon } from './dom.js';
import { count, timeOf } from './format.js';
import { ApiError, describe } from './api.js';
import { confirmDialog } from './dialogs.js';
import { EMOJI, deleteMessage, editMessage, quoteOf, toggleReaction } from './msgchanges.js';
import { MAX, charCount } from './composer.js';

const LONG_PRESS = 500;

/** mountChanges wires message changes into a pane. Returns {sig, decorate}. */
export function mountChanges(ctx, { composer, getChat }) {
  const { store } = ctx;
  const input = composer.el.querySelector('textarea');
  let editing = null; // {chatId, seq, input, error}
  let menu = null; // the open menu: {el, close}

  // ---- reply bar above the composer ---------------------------------------------------------

  const replyText = h('span', { class: 'reply-bar-text', 'data-testid': 'reply-bar-text' });
  const replyBar = h('div', { class: 'reply-bar', 'data-testid': 'reply-bar', hidden: true },
    h('div', { class: 'reply-bar-quote' }, h('span', { class: 'reply-bar-label', text: 'Replying to ' }), replyText),
    h('button', {
      type: 'button', class: 'icon-btn', 'aria-label': 'Cancel the reply', title: 'Cancel the reply', 'data-testid': 'reply-cancel',
      onclick: () => cancelReply(),
    }, icon('close')));
  composer.el.before(replyBar);

  const nameOf = (id) => (id === store.me.id ? 'you' : store.name(id) || 'Someone');
  function drawReplyBar() {
    const q = store.replyTo.get(getChat());
    replyBar.hidden = !q;
    // The name and the quote each in their own direction (as the chat list's previews).
    if (q) replyText.replaceChildren(h('bdi', { text: nameOf(q.sender_id) }), ': ', h('bdi', { text: q.body_preview }));
  }
  function cancelReply() {
    store.replyTo.delete(getChat());
    composer.keepReply(getChat());
    drawReplyBar();
    composer.focus();
  }
  store.on('pane', drawReplyBar);

  function startReply(chatId, m) {
    store.replyTo.set(chatId, quoteOf(m));
    composer.keepReply(chatId);
    drawReplyBar();
    composer.focus();
  }

  // ---- keys in the composer: ↑ edits my last message, Esc drops the reply -----------------

  input.addEventListener('keydown', (ev) => {
    if (ev.isComposing || ev.shiftKey || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const chatId = getChat();
    if (ev.key === 'ArrowUp' && input.value === '' && chatId != null) {
      const box = store.messages.get(chatId);
      // A message still being sent has no seq to edit yet: the last stored one is meant.
      const last = box?.list().findLast((m) => m.seq && m.sender_id === store.me.id && m.kind === 'text' && !m.deleted_at);
      if (last) {
        ev.preventDefault();
        startEdit(chatId, last);
      }
    } else if (ev.key === 'Escape' && store.replyTo.has(chatId)) {
      ev.preventDefault();
      cancelReply();
    }
  });

  // ---- editing ------------------------------------------------------------------------------

  function startEdit(chatId, m) {
    closeMenu();
    const ta = h('textarea', {
      class: 'edit-input', rows: 2, 'aria-label': 'Edit message', 'aria-describedby': 'edit-hint', 'data-testid': 'edit-input',
    });
    // No maxlength: it cut a long paste short without a word (and counted an emoji as two).
    // Saving says what is too long instead.
    ta.value = m.body;
    editing = { chatId, seq: m.seq, input: ta, error: '', focus: true };
    ta.addEventListener('keydown', (ev) => {
      if (ev.isComposing) return;
      if (ev.key === 'Escape') {
        ev.preventDefault();
        ev.stopPropagation();
        stopEdit();
      } else if (ev.key === 'Enter' && !ev.shiftKey && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
        ev.preventDefault();
        saveEdit();
      }
    });
    store.notify('pane');
  }

  function stopEdit() {
    if (!editing) return;
    editing = null;
    store.notify('pane');
    composer.focus();
  }

  async function saveEdit() {
    const ed = editing;
    if (!ed || ed.saving) return;
    const body = ed.input.value.trim();
    const m = store.messages.get(ed.chatId)?.bySeq.get(ed.seq);
    if (!body) {
      // Emptied: say so rather than keep the old text without a word (an edit needs text,
      // as a send does; Delete removes a message).
      ed.error = 'An edited message needs some text: to remove it, use Delete.';
      ed.focus = true;
      store.notify('pane');
      return;
    }
    if (!m || body === m.body) {
      stopEdit();
      return;
    }
    const n = charCount(body);
    if (n > MAX) {
      ed.error = `Too long: ${count(n)} characters, at most ${count(MAX)}. Take out ${count(n - MAX)}.`;
      ed.focus = true;
      store.notify('pane');
      return;
    }
    ed.saving = true;
    try {
      await editMessage(store, ed.chatId, ed.seq, body);
      if (editing === ed) stopEdit();
    } catch (err) {
      ed.saving = false;
      ed.error = describe(err);
      ed.focus = true;
      store.notify('pane');
    }
  }

  function editorOf(el, m) {
    const ed = editing;
    // The same textarea is kept across redraws; moving it loses the focus, so it is given back.
    if (document.activeElement === ed.input) ed.focus = true;
    if (ed.focus) {
      ed.focus = false;
      requestAnimationFrame(() => {
        ed.input.focus();
        if (ed.input.selectionStart === 0 && ed.input.selectionEnd === 0) ed.input.setSelectionRange(ed.input.value.length, ed.input.value.length);
      });
    }
    return h('div', { class: 'editor', 'data-testid': 'editor' },
      ed.input,
      h('div', { class: 'editor-row' },
        h('span', { id: 'edit-hint', class: 'editor-hint', text: 'Enter saves · Esc cancels' }),
        h('button', { type: 'button', class: 'link muted', text: 'Cancel', onclick: () => stopEdit() }),
        h('button', { type: 'button', class: 'link', 'data-testid': 'edit-save', text: 'Save', onclick: () => saveEdit() })),
      ed.error ? h('p', { class: 'editor-error', role: 'alert', text: ed.error }) : null);
  }

  // ---- the message menu ---------------------------------------------------------------------

  function myRole(chat) {
    if (chat.kind !== 'group') return 'member';
    return store.members.get(chat.id)?.get(store.me.id)?.role || chat.my_role || 'member';
  }

  function closeMenu(refocus) {
    if (!menu) return;
    const { el, opener } = menu;
    menu = null;
    el.remove();
    opener?.removeAttribute('aria-expanded');
    document.removeEventListener('pointerdown', outside, true);
    if (refocus && opener?.isConnected) opener.focus();
  }
  function outside(ev) {
    if (menu && !menu.el.contains(ev.target)) closeMenu(false);
  }
  // A menu belongs to its chat on screen: leaving the chat (back to the list on a phone, another
  // chat) closes it, and so does Esc wherever the focus is, before Esc does anything else (on a
  // phone Esc also goes back to the list).
  const menuGone = () => {
    if (menu && menu.chatId !== getChat()) closeMenu(false);
  };
  store.on('pane', menuGone);
  store.on('chats', menuGone);
  document.addEventListener('keydown', (ev) => {
    if (menu && ev.key === 'Escape' && !ev.isComposing) {
      ev.preventDefault();
      ev.stopPropagation();
      closeMenu(true);
    }
  }, true);

  function placeMenu(el, at) {
    const r = el.getBoundingClientRect();
    const x = Math.max(8, Math.min(at.x, innerWidth - r.width - 8));
    const y = at.y + r.height + 8 > innerHeight ? Math.max(8, at.y - r.height) : at.y;
    el.style.left = `${x}px`;
    el.style.top = `${y}px`;
  }

  function menuKeys(el) {
    el.addEventListener('keydown', (ev) => {
      const items = [...el.querySelectorAll('[role="menuitem"]')];
      const i = items.indexOf(document.activeElement);
      if (ev.key === 'Escape') {
        ev.preventDefault();
        ev.stopPropagation();
        closeMenu(true);
      } else if (ev.key === 'ArrowDown' || ev.key === 'ArrowRight') {
        ev.preventDefault();
        items[(i + 1) % items.length]?.focus();
      } else if (ev.key === 'ArrowUp' || ev.key === 'ArrowLeft') {
        ev.preventDefault();
        items[(i - 1 + items.length) % items.length]?.focus();
      } else if (ev.key === 'Home' || ev.key === 'End') {
        ev.preventDefault();
        items[ev.key === 'Home' ? 0 : items.length - 1]?.focus();
      } else if (ev.key === 'Tab') {
        closeMenu(false);
      }
    });
  }

  /** openMenu shows the actions of message m at the point at; opener gets the focus back. */
  function openMenu(chat, m, at, opener, picker = false) {
    closeMenu(false);
    const mine = m.sender_id === store.me.id;
    const role = myRole(chat);
    const item = (label, testid, fn, cls = '') => h('button', {
      type: 'button', role: 'menuitem', class: `menu-item ${cls}`.trim(), 'data-testid': testid, tabindex: '-1', text: label,
      onclick: fn,
    });
    // An action chosen from the keyboard (a click of detail 0: Enter or Space) gives the focus
    // back to the message's button once done, or cancelled (a confirm dismissed), or to the
    // composer when the message is gone from the screen; a pointer's leaves it where it is.
    const run = (fn) => async (ev) => {
      const keyboard = ev?.detail === 0;
      closeMenu(false);
      try {
        await fn();
      } catch (err) {
        ctx.toast?.(describe(err));
        if (!(err instanceof ApiError)) console.error(err);
      } finally {
        if (keyboard && (!document.activeElement || document.activeElement === document.body)) {
          // The message may have been drawn anew meanwhile (its reactions changed): its button then.
          const again = opener?.isConnected ? opener : document.querySelector(`[data-testid="messages"] [data-seq="${m.seq}"] [data-testid="message-more"]`);
          if (again) again.focus();
          else composer.focus();
        }
      }
    };
    let kids;
    if (picker) {
      kids = EMOJI.map((e) => h('button', {
        type: 'button', role: 'menuitem', class: 'emoji-item', tabindex: '-1', 'aria-label': `React with ${e}`, 'data-testid': 'emoji', 'data-emoji': e, text: e,
        onclick: run(() => toggleReaction(store, chat.id, m.seq, e)),
      }));
    } else {
      // A read-only chat (the other member deleted their account) takes no reply, reaction or edit.
      const open = !chat.read_only;
      kids = [
        open ? item('Reply', 'menu-reply', () => {
          closeMenu(false);
          startReply(chat.id, m);
        }) : null,
        open ? item('React…', 'menu-react', () => openMenu(chat, m, at, opener, true)) : null,
        mine && open ? item('Edit', 'menu-edit', () => startEdit(chat.id, m)) : null,
        mine || role === 'owner' || role === 'admin'
          ? item('Delete', 'menu-delete', run(async () => {
            const ok = await confirmDialog({
              title: 'Delete this message?',
              message: mine ? 'It is deleted for everyone in the chat.' : 'It is deleted for everyone in the chat. You delete it as the group’s ' + role + '.',
              confirmText: 'Delete', danger: true,
            });
            if (ok) await deleteMessage(store, chat.id, m.seq);
          }), 'danger')
          : null,
      ];
    }
    const el = h('div', {
      class: picker ? 'msg-menu emoji-picker' : 'msg-menu', role: 'menu', 'aria-label': picker ? 'Pick a reaction' : 'Message actions',
      'aria-orientation': picker ? 'horizontal' : 'vertical', 'data-testid': picker ? 'emoji-picker' : 'message-menu',
    }, kids);
    document.body.append(el);
    placeMenu(el, at);
    menuKeys(el);
    menu = { el, opener, chatId: chat.id };
    opener?.setAttribute('aria-expanded', 'true');
    setTimeout(() => document.addEventListener('pointerdown', outside, true));
    el.querySelector('[role="menuitem"]')?.focus();
  }

  function menuAt(target) {
    const r = target.getBoundingClientRect();
    return { x: r.left, y: r.bottom + 4 };
  }

  // ---- jumping to a quoted message ----------------------------------------------------------

  async function jumpTo(chatId, seq, from) {
    const list = from.closest('.msg-list');
    for (let i = 0; i < 200 && getChat() === chatId; i++) {
      const target = list?.querySelector(`.msg[data-seq="${seq}"], .system-note[data-seq="${seq}"]`);
      if (target) {
        target.scrollIntoView({ block: 'center' });
        target.classList.remove('flash');
        void target.offsetWidth; // restart the animation
        target.classList.add('flash');
        const at = String(Date.now()); // a redraw keeps the highlight (pane.js)
        target.dataset.flash = at;
        setTimeout(() => {
          if (target.dataset.flash !== at) return; // a later jump to it owns it
          target.classList.remove('flash');
          delete target.dataset.flash;
        }, 2500);
        return;
      }
      const box = store.messages.get(chatId);
      if (!box?.loaded || (!box.hasOlder && !box.loadingOlder) || seq >= box.oldest) return;
      // Pages of 200, the most one takes: each page draws the pane again over all it holds.
      if (!box.loadingOlder) await ctx.client.loadOlder(chatId, 200);
      else await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => requestAnimationFrame(r));
    }
  }

  // ---- long-press on touch screens ----------------------------------------------------------

  function longPress(el, open) {
    let timer = null;
    let start = null;
    const cancel = () => {
      clearTimeout(timer);
      timer = null;
    };
    // A press on a link (or in the editor) is the browser's: its own menu for the link (Copy
    // link address) opened with this one over it.
    const own = (t) => !t.closest?.('a, textarea, .editor');
    el.addEventListener('pointerdown', (ev) => {
      if (ev.pointerType !== 'touch' || !own(ev.target)) return;
      start = { x: ev.clientX, y: ev.clientY };
      timer = setTimeout(() => {
        timer = null;
        open(start);
      }, LONG_PRESS);
    });
    el.addEventListener('pointermove', (ev) => {
      if (timer && Math.hypot(ev.clientX - start.x, ev.clientY - start.y) > 10) cancel();
    });
    el.addEventListener('pointerup', cancel);
    el.addEventListener('pointercancel', cancel);
    el.addEventListener('contextmenu', (ev) => {
      if (!own(ev.target)) return;
      ev.preventDefault();
      cancel();
      open({ x: ev.clientX, y: ev.clientY });
    });
  }

  // ---- drawing a message --------------------------------------------------------------------

  const isEditing = (m) => !!editing && editing.chatId === m.chat_id && editing.seq === m.seq;

  /** sig is what of a message's changes its drawing depends on. */
  function sig(m) {
    const q = m.reply_to;
    return [m.rev || 0, m.deleted_at ? 'd' : '', m.edited_at || '', q ? `${q.seq}${q.deleted ? 'd' : ''}:${nameOf(q.sender_id)}:${q.body_preview}` : '',
      isEditing(m) ? `e${editing.error}` : ''].join('~');
  }

  function quoteEl(chatId, q) {
    const who = nameOf(q.sender_id);
    // The name is the visible text, with what it is for screen readers around it.
    return h('button', {
      type: 'button', class: `reply-quote${q.deleted ? ' deleted' : ''}`, 'data-testid': 'reply-quote',
      onclick: (ev) => jumpTo(chatId, q.seq, ev.currentTarget),
    },
    h('span', { class: 'sr-only', text: 'In reply to ' }),
    h('span', { class: 'reply-quote-who', text: who === 'you' ? 'You' : who }),
    h('span', { class: 'sr-only', text: ': ' }),
    h('span', { class: 'reply-quote-text', text: q.deleted ? 'Message deleted' : q.body_preview }),
    h('span', { class: 'sr-only', text: '. Show it.' }));
  }

  function reactionsEl(chat, m) {
    return h('div', { class: 'reactions', 'data-testid': 'reactions' }, m.reactions.map((r) => {
      const mine = (r.user_ids || []).includes(store.me.id);
      return h('button', {
        type: 'button', class: `reaction${mine ? ' mine' : ''}`, 'data-testid': 'reaction', 'data-emoji': r.emoji, 'aria-pressed': String(mine),
        'aria-label': `${r.emoji} ${r.count}${mine ? ', including you' : ''}. ${mine ? 'Take back your reaction' : 'React with it too'}`,
        onclick: async () => {
          try {
            await toggleReaction(store, chat.id, m.seq, r.emoji);
          } catch (err) {
            ctx.toast?.(describe(err));
          }
        },
      }, h('span', { class: 'reaction-emoji', 'aria-hidden': 'true', text: r.emoji }), h('span', { class: 'reaction-count', 'aria-hidden': 'true', text: String(r.count) }));
    }));
  }

  /**
   * decorate adds a message's changes to its freshly built bubble (and its actions button to
   * kids, the message row's children): the quote, the editor or "message deleted", the
   * "edited" marker and the reaction chips.
   */
  function decorate(el, bubble, kids, chat, m) {
    if (!m.seq || m.kind !== 'text') {
      if (m.pending?.reply_to_seq) {
        const q = store.messages.get(chat.id)?.bySeq.get(m.pending.reply_to_seq);
        if (q) bubble.insertBefore(quoteEl(chat.id, quoteOf(q)), bubble.querySelector(':scope > .files, [data-testid="message-text"]') || bubble.lastChild);
      }
      return;
    }
    if (!el.menuWired) {
      // The element is kept across redraws (the message it shows may change): it asks the store.
      el.menuWired = true;
      longPress(el, (at) => {
        const cur = store.messages.get(chat.id)?.bySeq.get(Number(el.dataset.seq));
        const c = store.chats.get(chat.id);
        if (cur && c && !cur.deleted_at && !isEditing(cur)) openMenu(c, cur, at, el.querySelector('.msg-more'));
      });
    }
    el.classList.toggle('deleted', !!m.deleted_at);
    const text = bubble.querySelector('[data-testid="message-text"]');
    const meta = bubble.querySelector('.meta');
    if (m.deleted_at) {
      const gone = h('div', { class: 'text deleted-text', 'data-testid': 'message-deleted', text: 'Message deleted' });
      if (text) text.replaceWith(gone);
      else bubble.insertBefore(gone, meta);
      for (const f of bubble.querySelectorAll('.files, .file-card, .thumb')) f.remove();
      return;
    }
    // The quote goes above the files (files.js) and the text.
    if (m.reply_to) bubble.insertBefore(quoteEl(chat.id, m.reply_to), bubble.querySelector(':scope > .files') || text || meta);
    if (isEditing(m)) {
      const ed = editorOf(el, m);
      if (text) text.replaceWith(ed);
      else bubble.insertBefore(ed, meta);
      bubble.classList.add('editing');
    }
    if (m.edited_at) {
      meta?.prepend(h('span', { class: 'edited', 'data-testid': 'edited', title: `Edited ${new Date(m.edited_at).toLocaleString()}`, text: 'edited' }));
    }
    if (m.reactions?.length) bubble.append(reactionsEl(chat, m));
    // Its name says whose message, and when: Tab goes from one to the next, away from the text.
    const whose = m.sender_id === store.me.id ? 'your message' : `message from ${store.name(m.sender_id) || 'Someone'}`;
    const more = h('button', {
      type: 'button', class: 'icon-btn msg-more', 'aria-label': `More actions: ${whose}, ${timeOf(m.created_at)}`, title: 'More actions', 'aria-haspopup': 'menu', 'data-testid': 'message-more',
      onclick: (ev) => {
        const c = store.chats.get(chat.id);
        if (menu?.opener === ev.currentTarget) closeMenu(true);
        else if (c) openMenu(c, store.messages.get(chat.id)?.bySeq.get(m.seq) || m, menuAt(ev.currentTarget), ev.currentTarget);
      },
    }, icon('menu'));
    kids.push(more);
  }

  return { sig, decorate };
}
