// Messages that change (issue 13), live in two browsers: replies (and jumping to the quoted
// message through older history), reactions toggled, edits (from the menu and with ↑ in an
// empty composer), deletes after confirming, who may do what, the chat list's preview, and
// changes made while the other browser was offline arriving after it reconnects.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, NARROW, chatItem, frames, jumpedTo, launch, message, openChat, send, signIn, unique, waitUntil, watchJumps } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/**
 * pair registers two fresh users with a private chat and signs both in, each in its own context;
 * aOpts are signIn's options for Ana's (a setup that watches her frames, say).
 */
async function pair(aOpts = {}) {
  const tag = unique('t').slice(-6);
  const emails = { a: `ana-${tag}@example.com`, b: `ben-${tag}@example.com` };
  const a = await Api.register(`Ana ${tag}`, emails.a);
  const b = await Api.register(`Ben ${tag}`, emails.b);
  const chat = await a.private(b.user.id);
  const A = await signIn(browser, emails.a, aOpts);
  const B = await signIn(browser, emails.b);
  return { a, b, chat, A, B, aName: a.user.name, bName: b.user.name };
}

/** menu opens the actions of a message (hovering it, then its "More actions" button). */
async function menu(page, msg) {
  await msg.hover();
  await msg.getByTestId('message-more').click();
  const m = page.getByTestId('message-menu');
  await m.waitFor();
  return m;
}

/** react picks emoji from the message menu's picker. */
async function react(page, msg, emoji) {
  const m = await menu(page, msg);
  await m.getByTestId('menu-react').click();
  await page.getByTestId('emoji-picker').getByRole('menuitem', { name: `React with ${emoji}` }).click();
}

const chip = (msg, emoji) => msg.locator(`[data-testid="reaction"][data-emoji="${emoji}"]`);

/** watchSent records the frames a page sends (parsed); watchFrames(page, 'framereceived') those it gets. */
function watchSent(page) {
  return watchFrames(page, 'framesent');
}

function watchFrames(page, event) {
  const frames = [];
  page.on('websocket', (ws) => ws.on(event, (ev) => {
    try {
      frames.push(JSON.parse(ev.payload));
    } catch { /* not ours */ }
  }));
  return frames;
}

test('react and toggle, edit and delete, live on the other screen', async () => {
  const { A, B, aName, bName } = await pair();
  const a = A.page;
  const b = B.page;
  await openChat(a, bName);
  await openChat(b, aName);

  const first = unique('first');
  await send(a, first);
  await message(b, first).waitFor();

  // Ben reacts 👍 to Ana's message: Ana sees the chip live (not hers), Ben's is highlighted.
  await react(b, message(b, first), '👍');
  await chip(message(b, first), '👍').and(b.locator('[aria-pressed="true"]')).waitFor();
  const aChip = chip(message(a, first), '👍');
  await aChip.getByText('1', { exact: true }).waitFor();
  assert.equal(await aChip.getAttribute('aria-pressed'), 'false');
  // Ana clicks the chip: 2, hers highlighted, live on Ben's screen; Ben takes his back: 1.
  await aChip.click();
  await aChip.and(a.locator('[aria-pressed="true"]')).getByText('2', { exact: true }).waitFor();
  const bChip = chip(message(b, first), '👍');
  await bChip.getByText('2', { exact: true }).waitFor();
  await bChip.click();
  await bChip.and(b.locator('[aria-pressed="false"]')).getByText('1', { exact: true }).waitFor();
  await aChip.getByText('1', { exact: true }).waitFor();
  // Ana takes hers back too: the chip goes on both screens.
  await aChip.click();
  await aChip.waitFor({ state: 'detached' });
  await chip(message(b, first), '👍').waitFor({ state: 'detached' });

  // Who may do what: Ben has no Edit or Delete on Ana's message in a private chat.
  const bMenu = await menu(b, message(b, first));
  assert.equal(await bMenu.getByTestId('menu-edit').count(), 0);
  assert.equal(await bMenu.getByTestId('menu-delete').count(), 0);
  await b.keyboard.press('Escape');
  await bMenu.waitFor({ state: 'detached' });

  // Ana edits her message from the menu: Esc cancels, Enter saves; Ben sees it live, "edited".
  await (await menu(a, message(a, first))).getByTestId('menu-edit').click();
  const editor = a.getByTestId('edit-input');
  await editor.fill('never saved');
  await editor.press('Escape');
  await editor.waitFor({ state: 'detached' });
  await message(a, first).waitFor();
  await (await menu(a, message(a, first))).getByTestId('menu-edit').click();
  // Emptied, it is not saved, and says why (it used to close, the old text kept without a word).
  await editor.fill('   ');
  await editor.press('Enter');
  await a.getByTestId('editor').getByRole('alert').getByText('use Delete', { exact: false }).waitFor();
  assert.ok(await editor.isVisible(), 'the editor stays open');
  const fixed = unique('fixed');
  await editor.fill(fixed);
  await editor.press('Enter');
  for (const p of [a, b]) await message(p, fixed).getByTestId('edited').waitFor();
  assert.equal(await message(b, first).count(), 0);

  // ↑ in Ana's empty composer edits her last message.
  const last = unique('last');
  await send(a, last);
  await message(b, last).waitFor();
  // Stored on Ana's side too (acknowledged), so that ↑ finds it.
  await message(a, last).locator('[data-testid="msg-status"][data-state="sent"], [data-testid="msg-status"][data-state="read"]').waitFor();
  const box = a.getByLabel('Message', { exact: true });
  await box.press('ArrowUp');
  await editor.waitFor();
  assert.equal(await editor.inputValue(), last);
  const lastFixed = unique('lastfixed');
  await editor.fill(lastFixed);
  await editor.press('Enter');
  await message(b, lastFixed).getByTestId('edited').waitFor();
  await chatItem(b, aName).getByTestId('chat-preview').getByText(lastFixed).waitFor();

  // Ana deletes it: nothing happens until she confirms; then "Message deleted" on both screens
  // and in Ben's chat list.
  await (await menu(a, message(a, lastFixed))).getByTestId('menu-delete').click();
  const dlg = a.getByTestId('confirm-dialog');
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  await dlg.waitFor({ state: 'detached' });
  await message(b, lastFixed).waitFor();
  await (await menu(a, message(a, lastFixed))).getByTestId('menu-delete').click();
  await dlg.getByRole('button', { name: 'Delete' }).click();
  for (const p of [a, b]) {
    await message(p, lastFixed).waitFor({ state: 'detached' });
    await p.getByTestId('message-deleted').waitFor();
  }
  await chatItem(b, aName).getByTestId('chat-preview').getByText('Message deleted').waitFor();

  A.page.assertClean();
  B.page.assertClean();
  await A.context.close();
  await B.context.close();
});

test('reply: the quote on both screens, a click shows the quoted message, the quote follows edits and deletes', async () => {
  const { A, B, aName, bName } = await pair();
  const a = A.page;
  const b = B.page;
  await openChat(a, bName);
  await openChat(b, aName);
  const first = unique('first');
  await send(a, first);
  await message(b, first).waitFor();

  // Ben answers it: Reply from the menu, the bar above the composer, then the quote on both screens.
  await (await menu(b, message(b, first))).getByTestId('menu-reply').click();
  await b.getByTestId('reply-bar').getByText(first).waitFor();
  const answer = unique('answer');
  await send(b, answer);
  await b.getByTestId('reply-bar').waitFor({ state: 'hidden' });
  for (const p of [a, b]) {
    const quote = message(p, answer).getByTestId('reply-quote');
    await quote.getByText(first).waitFor();
  }
  // A click on the quote shows and highlights the quoted message (a redraw of it meanwhile,
  // its read mark arriving, keeps the highlight).
  await watchJumps(a);
  await message(a, answer).getByTestId('reply-quote').click();
  assert.ok((await jumpedTo(a, first)).inView, 'the quoted message is in view');

  // Esc in the composer drops a reply being written.
  await (await menu(b, message(b, first))).getByTestId('menu-reply').click();
  await b.getByTestId('reply-bar').waitFor();
  await b.getByLabel('Message', { exact: true }).press('Escape');
  await b.getByTestId('reply-bar').waitFor({ state: 'hidden' });

  // The quote follows an edit of the quoted message, and a delete.
  await (await menu(a, message(a, first))).getByTestId('menu-edit').click();
  const fixed = unique('fixed');
  await a.getByTestId('edit-input').fill(fixed);
  await a.getByTestId('edit-input').press('Enter');
  await message(b, answer).getByTestId('reply-quote').getByText(fixed).waitFor();
  const dlg = a.getByTestId('confirm-dialog');
  // Deleting the quoted message turns the quote into "deleted".
  await (await menu(a, message(a, fixed))).getByTestId('menu-delete').click();
  await dlg.getByRole('button', { name: 'Delete' }).click();
  await message(b, answer).locator('[data-testid="reply-quote"].deleted').waitFor();

  A.page.assertClean();
  B.page.assertClean();
  await A.context.close();
  await B.context.close();
});

test('in a group, the owner deletes a member\'s message; a member edits and deletes only their own', async () => {
  const tag = unique('g').slice(-6);
  const emails = { a: `olga-${tag}@example.com`, b: `max-${tag}@example.com` };
  const a = await Api.register(`Olga ${tag}`, emails.a);
  const b = await Api.register(`Max ${tag}`, emails.b);
  const title = `Crew ${tag}`;
  const group = await a.group(title, [b.user.id]);
  const hers = await a.send(group.id, unique('hers'));
  const his = await b.send(group.id, unique('his'));
  const A = await signIn(browser, emails.a);
  const B = await signIn(browser, emails.b);
  await openChat(A.page, title);
  await openChat(B.page, title);
  // Wait for the member list (roles), which the pane loads with the chat's details: the header
  // counts who is online only from it.
  await A.page.getByTestId('pane-sub').getByText('1 online', { exact: false }).waitFor();

  // Max, a member: no Edit or Delete on Olga's message; both on his own.
  let m = await menu(B.page, message(B.page, hers.body));
  assert.equal(await m.getByTestId('menu-edit').count(), 0);
  assert.equal(await m.getByTestId('menu-delete').count(), 0);
  await B.page.keyboard.press('Escape');
  m = await menu(B.page, message(B.page, his.body));
  await m.getByTestId('menu-edit').waitFor();
  await m.getByTestId('menu-delete').waitFor();
  await B.page.keyboard.press('Escape');

  // Olga, the owner: Delete (no Edit) on Max's message; it goes on both screens.
  m = await menu(A.page, message(A.page, his.body));
  assert.equal(await m.getByTestId('menu-edit').count(), 0);
  await m.getByTestId('menu-delete').click();
  await A.page.getByTestId('confirm-dialog').getByRole('button', { name: 'Delete' }).click();
  for (const p of [A.page, B.page]) {
    await message(p, his.body).waitFor({ state: 'detached' });
    await p.getByTestId('message-deleted').waitFor();
  }
  A.page.assertClean();
  B.page.assertClean();
  await A.context.close();
  await B.context.close();
});

// phoneChat signs a new user in on a touch phone, with a private chat that holds one message,
// the user's own (mine) or the other member's; longPress opens a message's menu there, on the
// message's row, which stays while its bubble is redrawn (names, read marks).
async function phoneChat(mine) {
  const tag = unique('p').slice(-6);
  const email = `pia-${tag}@example.com`;
  const a = await Api.register(`Pia ${tag}`, email);
  const b = await Api.register(`Rob ${tag}`);
  const chat = await a.private(b.user.id);
  const sent = await (mine ? a : b).send(chat.id, unique('hi'));
  const P = await signIn(browser, email, { viewport: NARROW, touch: true });
  return { peer: b.user.name, sent, P };
}

async function longPress(page, msg) {
  const at = { pointerType: 'touch', isPrimary: true, bubbles: true, clientX: 40, clientY: 300 };
  await msg.dispatchEvent('pointerdown', at);
  const m = page.getByTestId('message-menu');
  await m.waitFor();
  await msg.dispatchEvent('pointerup', at);
  return m;
}

test('on a phone, a long press opens the message menu', async () => {
  const { peer, sent, P } = await phoneChat(false);
  await openChat(P.page, peer);
  const msg = message(P.page, sent.body);
  await msg.locator('.bubble').waitFor();
  // Touch screens have no hover: the More actions button is not shown; a press of 500 ms opens the menu.
  assert.equal(await msg.getByTestId('message-more').isVisible(), false);
  const m = await longPress(P.page, msg);
  await m.getByTestId('menu-react').click();
  await P.page.getByTestId('emoji-picker').getByRole('menuitem', { name: 'React with 🎉' }).click();
  await chip(msg, '🎉').and(P.page.locator('[aria-pressed="true"]')).waitFor();
  P.page.assertClean();
  await P.context.close();
});

test('on a phone, the message menu closes when Esc or back leaves the chat', async () => {
  // The user's own message: its menu has Delete, which an orphaned menu left pressable.
  const { peer, sent, P } = await phoneChat(true);
  for (const leave of ['Escape', 'back']) {
    await openChat(P.page, peer);
    const msg = message(P.page, sent.body);
    await msg.locator('.bubble').waitFor();
    const m = await longPress(P.page, msg);
    if (leave === 'Escape') {
      // The first Esc closes the menu and stays in the chat; the next goes back to the list.
      await P.page.locator('body').press('Escape');
      await m.waitFor({ state: 'detached' });
      assert.ok(await msg.isVisible(), 'the chat is still on screen after the Esc that closed the menu');
      await P.page.locator('body').press('Escape');
    } else {
      await P.page.goBack();
    }
    await P.page.waitForFunction(() => location.hash === '#/' || location.hash === '');
    // The menu is gone with its chat: nothing of it is left to press over the list.
    assert.equal(await m.count(), 0, `the message menu outlived the chat (${leave})`);
  }
  P.page.assertClean();
  await P.context.close();
});

test('reading a message does not draw it anew, so a press on its quote keeps its click', async () => {
  // The messages of others show no read state; drawing one again when the chat's read mark grew
  // replaced its quote under a press that had begun, and the click was lost (no jump).
  let received = [];
  const { a, b, chat, A, B, bName } = await pair({ setup: (page) => { received = watchFrames(page, 'framereceived'); } });
  const origin = await a.send(chat.id, unique('origin'));
  const answer = unique('answer');
  const x = await b.req('POST', `/chats/${chat.id}/messages`, { body: answer, client_id: unique('c'), reply_to_seq: origin.seq });
  const page = A.page;
  // Counts each time a message on screen has its insides replaced (drawn anew), by its seq.
  await page.evaluate(() => {
    window.redrawn = {};
    new MutationObserver((records) => {
      for (const { target: el, type } of records) {
        if (type === 'childList' && el.dataset?.testid === 'message') window.redrawn[el.dataset.seq] = (window.redrawn[el.dataset.seq] || 0) + 1;
      }
    }).observe(document.body, { subtree: true, childList: true });
  });
  await openChat(page, bName);
  await message(page, answer).getByTestId('reply-quote').waitFor();
  // Ana's own read mark, which makes the answer read by everyone.
  const readAll = (f) => f.type === 'chat.read_all' && f.data.chat_id === chat.id && f.data.read_all_seq >= x.seq;
  for (const until = Date.now() + 60000; !received.some(readAll);) {
    assert.ok(Date.now() < until, 'no chat.read_all for the answer in 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50))));
  assert.equal(await page.evaluate((seq) => window.redrawn[seq] || 0, x.seq), 0, 'the answer was drawn anew when it was read');
  await watchJumps(page);
  await message(page, answer).getByTestId('reply-quote').click();
  assert.ok((await jumpedTo(page, origin.body)).inView, 'the quoted message is in view');
  page.assertClean();
  await A.context.close();
  await B.context.close();
});

test('a quote jumps to a message far back, loading older history', async () => {
  const { a, b, chat, A, B, aName, bName } = await pair();
  const origin = unique('origin');
  const o = await a.send(chat.id, origin);
  for (let i = 0; i < 130; i++) await a.send(chat.id, `filler ${i}`);
  const answer = unique('answer');
  await b.req('POST', `/chats/${chat.id}/messages`, { body: answer, client_id: unique('c'), reply_to_seq: o.seq });
  const page = A.page;
  await openChat(page, bName);
  const quote = message(page, answer).getByTestId('reply-quote');
  await quote.getByText(origin).waitFor();
  assert.equal(await message(page, origin).count(), 0, 'the quoted message is not loaded yet');
  await watchJumps(page);
  await quote.click();
  assert.ok((await jumpedTo(page, origin)).inView, 'the quoted message is in view');
  void aName;
  page.assertClean();
  await A.context.close();
  await B.context.close();
});

test('changes made while a device was offline show after it reconnects, asked for by rev', async () => {
  const { a, chat, A, B, aName, bName } = await pair();
  const msgs = [];
  for (const t of ['keep', 'edit', 'gone', 'react']) msgs.push(await a.send(chat.id, unique(t)));
  const [keep, edit, gone, reacted] = msgs;
  const b = B.page;
  const sent = watchSent(b);
  await openChat(b, aName);
  await openChat(A.page, bName);
  for (const m of msgs) await message(b, m.body).waitFor();

  await B.context.setOffline(true);
  await b.locator('[data-testid="conn-banner"][data-state="offline"]').waitFor();
  // Changes while Ben is away, from Ana's screen and from her REST client.
  const edited = unique('edited');
  await a.req('PATCH', `/chats/${chat.id}/messages/${edit.seq}`, { body: edited });
  await a.req('DELETE', `/chats/${chat.id}/messages/${gone.seq}`);
  await a.req('PUT', `/chats/${chat.id}/messages/${reacted.seq}/reactions/${encodeURIComponent('🎉')}`);
  await message(A.page, edited).getByTestId('edited').waitFor();
  // Give a live frame every chance to get through if offline were leaky: none may.
  await b.waitForTimeout(300);
  assert.equal(await message(b, edited).count(), 0, 'offline: nothing arrived');

  await B.context.setOffline(false);
  await message(b, edited).getByTestId('edited').waitFor({ timeout: 30000 });
  await message(b, gone.body).waitFor({ state: 'detached' });
  await chip(message(b, reacted.body), '🎉').getByText('1', { exact: true }).waitFor();
  await message(b, keep.body).waitFor();
  assert.equal(await b.getByTestId('message-deleted').count(), 1);
  // The reconnect's sync asked for changes after the rev Ben had.
  const syncs = sent.filter((f) => f.type === 'sync');
  const cursor = syncs.at(-1)?.data?.cursors?.[chat.id];
  assert.equal(typeof cursor, 'object', `sync cursor of the chat: ${JSON.stringify(syncs.map((s) => s.data))}`);
  assert.equal(cursor.seq, reacted.seq);
  assert.equal(typeof cursor.rev, 'number');

  A.page.assertClean();
  B.page.assertClean();
  await A.context.close();
  await B.context.close();
});

test('from the keyboard, a reaction or a dismissed delete gives the focus back to the message; Delete asks with Cancel focused', async () => {
  const tag = unique('k').slice(-6);
  const kemail = `kit-${tag}@example.com`;
  const kit = await Api.register(`Kit ${tag}`, kemail);
  const lou = await Api.register(`Lou ${tag}`);
  const chat = await kit.private(lou.user.id);
  const body = unique('keys');
  await kit.send(chat.id, body);
  const { context, page } = await signIn(browser, kemail);
  await openChat(page, `Lou ${tag}`);
  const msg = message(page, body);
  await msg.locator('.bubble').waitFor();
  const more = msg.getByTestId('message-more');
  const focusedIsMore = () => page.evaluate((b) => document.activeElement?.dataset.testid === 'message-more'
    && document.activeElement.closest('[data-testid="message"]')?.textContent.includes(b), body);

  // React… then an emoji, all with Enter.
  await more.focus();
  await page.keyboard.press('Enter');
  await page.getByTestId('message-menu').waitFor();
  await page.getByTestId('menu-react').focus();
  await page.keyboard.press('Enter');
  await page.getByTestId('emoji-picker').getByRole('menuitem', { name: 'React with 🎉' }).focus();
  await page.keyboard.press('Enter');
  await chip(msg, '🎉').waitFor();
  await page.waitForFunction(() => document.activeElement?.dataset.testid === 'message-more', null, { timeout: 5000 }).catch(() => {});
  assert.ok(await focusedIsMore(), 'after a reaction the focus is back on the message\'s More actions');

  // Delete… opens a confirm whose focus is on Cancel; Esc dismisses it and the focus comes back.
  await page.keyboard.press('Enter');
  await page.getByTestId('menu-delete').focus();
  await page.keyboard.press('Enter');
  const confirm = page.getByTestId('confirm-dialog');
  await confirm.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel');
  await page.keyboard.press('Escape');
  await confirm.waitFor({ state: 'detached' });
  await page.waitForFunction(() => document.activeElement?.dataset.testid === 'message-more', null, { timeout: 5000 }).catch(() => {});
  assert.ok(await focusedIsMore(), 'after a dismissed delete the focus is back on the message\'s More actions');
  assert.equal(await msg.getByTestId('message-deleted').count(), 0);
  page.assertClean();
  await context.close();
});

test('on a phone, Back closes an open dialog and leaves the chat where it was', async () => {
  const { peer, P } = await phoneChat(false);
  await openChat(P.page, peer);
  const inChat = await P.page.evaluate(() => location.hash);
  await P.page.getByRole('button', { name: 'Contact info' }).click();
  const dialog = P.page.locator('dialog[open]');
  await dialog.waitFor();
  await P.page.goBack();
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await P.page.evaluate(() => location.hash), inChat, 'Back closed the dialog, not the chat');
  // The next Back leaves the chat, as always; a dialog closed with its button leaves no extra step.
  await P.page.getByRole('button', { name: 'Contact info' }).click();
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Close' }).click();
  await dialog.waitFor({ state: 'detached' });
  await P.page.waitForFunction(() => !history.state?.dialog); // its entry taken back (asynchronous)
  assert.equal(await P.page.evaluate(() => location.hash), inChat);
  await P.page.goBack();
  await P.page.waitForFunction(() => location.hash === '#/' || location.hash === '');
  P.page.assertClean();
  await P.context.close();
});

test('a deleted unread message leaves the unread and @ counts of a device that has not opened the chat', async () => {
  const tag = unique('c').slice(-6);
  const email = `bea-${tag}@example.com`;
  const ana = await Api.register(`Ana ${tag}`);
  const bea = await Api.register(`Bea ${tag}`, email);
  const title = `Counts ${tag}`;
  const g = await ana.group(title, [bea.user.id]);
  const B = await signIn(browser, email);
  const item = chatItem(B.page, title);
  const unread = (n) => item.and(B.page.locator(`[data-unread="${n}"]`)).waitFor();
  const server = async () => {
    const c = (await bea.chats()).find((x) => x.id === g.id);
    return [c.unread_count, c.unread_mentions];
  };
  const one = await ana.send(g.id, unique('one'));
  const two = await ana.req('POST', `/chats/${g.id}/messages`, { body: `@Bea ${tag} look`, client_id: unique('c'), mentions: [bea.user.id] });
  await ana.send(g.id, unique('three'));
  await unread(3);
  await item.getByTestId('mention-badge').waitFor();

  // Neither is loaded here, nor the chat's last message: the frame of the delete is all there is.
  await ana.req('DELETE', `/chats/${g.id}/messages/${one.seq}`);
  await unread(2);
  assert.deepEqual(await server(), [2, 1]);
  assert.ok(await item.getByTestId('mention-badge').isVisible(), 'the mention is still unread');
  await ana.req('DELETE', `/chats/${g.id}/messages/${two.seq}`);
  await unread(1);
  await item.getByTestId('mention-badge').waitFor({ state: 'detached' });
  assert.deepEqual(await server(), [1, 0]);
  B.page.assertClean();
  await B.context.close();
});

test('a reply being written to a message that is deleted goes from the saved draft too', async () => {
  const { a: ana, b: ben, A, B, aName, bName } = await pair();
  const a = A.page;
  const b = B.page;
  const other = `Other ${unique('o').slice(-6)}`;
  await ana.group(other, [ben.user.id]);
  await openChat(a, bName);
  await openChat(b, aName);
  const quoted = unique('quoted');
  await send(a, quoted);
  await (await menu(b, message(b, quoted))).getByTestId('menu-reply').click();
  await b.getByTestId('reply-bar').getByText(quoted).waitFor();
  await b.getByLabel('Message', { exact: true }).fill('my answer');

  await (await menu(a, message(a, quoted))).getByTestId('menu-delete').click();
  await a.getByTestId('confirm-dialog').getByRole('button', { name: 'Delete' }).click();
  await b.getByTestId('message-deleted').waitFor();
  await b.getByTestId('reply-bar').waitFor({ state: 'hidden' });

  // Ben looks at another chat and comes back: his draft's text is there, the reply is not.
  await openChat(b, other);
  await openChat(b, aName);
  assert.equal(await b.getByLabel('Message', { exact: true }).inputValue(), 'my answer');
  await b.getByLabel('Message', { exact: true }).press('Enter');
  await message(a, 'my answer').waitFor();
  assert.equal(await message(a, 'my answer').getByTestId('reply-quote').count(), 0, 'the answer went as a reply to the deleted message');
  assert.equal(await b.getByTestId('reply-bar').isVisible(), false);
  A.page.assertClean();
  B.page.assertClean();
  await A.context.close();
  await B.context.close();
});

test('on a phone, the back arrow and Esc go back to the list: Back from there reopens no chat', async () => {
  const tag = unique('n').slice(-6);
  const email = `nia-${tag}@example.com`;
  const nia = await Api.register(`Nia ${tag}`, email);
  const bo = await Api.register(`Bo ${tag}`);
  const cy = await Api.register(`Cy ${tag}`);
  await nia.private(bo.user.id);
  await nia.private(cy.user.id);
  const P = await signIn(browser, email, { viewport: NARROW, touch: true });
  const page = P.page;
  const atList = () => page.waitForFunction(() => !location.hash.startsWith('#/chat/') && document.querySelector('.shell')?.dataset.view === 'list');

  await openChat(page, bo.user.name);
  await page.getByRole('button', { name: 'Back to chats' }).click();
  await atList();
  await openChat(page, cy.user.name);
  await page.locator('body').press('Escape');
  await atList();
  await openChat(page, bo.user.name);
  await page.getByRole('button', { name: 'Back to chats' }).click();
  await atList();

  // The phone's Back from the list leaves it (or stays, with nowhere to go): never a chat again.
  await page.goBack();
  assert.ok(!(await page.evaluate(() => location.hash)).startsWith('#/chat/'), 'Back from the list reopened a chat');
  P.page.assertClean();
  await P.context.close();
});

/**
 * groupOfTwo registers a user who signs in with the returned email and a second one, named
 * `${first} ${tag}` and `${second} ${tag}`, both in a group titled `${title} ${tag}`.
 */
async function groupOfTwo(first, second, title) {
  const tag = unique(first.toLowerCase()).slice(-6);
  const email = `${first.toLowerCase()}-${tag}@example.com`;
  const one = await Api.register(`${first} ${tag}`, email);
  const two = await Api.register(`${second} ${tag}`);
  const group = await one.group(`${title} ${tag}`, [two.user.id]);
  return { tag, email, one, two, group };
}

test('a quote names its sender once the name is learnt, not "Someone" for good', async () => {
  const { tag, email, one: ada, two: cy, group } = await groupOfTwo('Ada', 'Cy', 'Quotes');
  const asked = await cy.send(group.id, 'Who brings the cake?');
  await ada.req('POST', `/chats/${group.id}/messages`, { body: 'I do.', client_id: unique('c'), reply_to_seq: asked.seq });
  // Cy's name comes with the group's details or on its own: both are held until the quote is drawn.
  const held = [];
  let hold = true;
  const paths = [`/api/v1/chats/${group.id}`, `/api/v1/users/${cy.user.id}`];
  const { context, page } = await signIn(browser, email, {
    setup: (p) => p.route((url) => paths.includes(url.pathname), (route) => (hold ? held.push(route) : route.continue())),
  });
  await chatItem(page, `Quotes ${tag}`).click();
  const quote = message(page, 'I do.').getByTestId('reply-quote');
  await quote.getByText('Someone', { exact: true }).waitFor();
  hold = false;
  for (const r of held) await r.continue();
  // Cy's own message and the quote of it are drawn again in the same pass.
  await message(page, 'Who brings the cake?').getByTestId('sender').getByText(`Cy ${tag}`).waitFor();
  assert.equal(await quote.locator('.reply-quote-who').textContent(), `Cy ${tag}`);
  page.assertClean();
  await context.close();
});

/**
 * invitedWhileAsked: the signed-in user opens a group of theirs and invites Kai; his invitation's
 * system message asks the page for his name, each request of it handed to onAsked(route), and
 * member.joined, which follows the message, brings the name first. Returns once the note names him.
 */
async function invitedWhileAsked(prefix, onAsked) {
  const tag = unique(prefix).slice(-6);
  const email = `${prefix}-${tag}@example.com`;
  const owner = await Api.register(`Owner ${tag}`, email);
  const kai = await Api.register(`Kai ${tag}`);
  const group = await owner.group(`Names ${tag}`, []);
  const { context, page } = await signIn(browser, email, {
    setup: (p) => p.route((url) => url.pathname === `/api/v1/users/${kai.user.id}`, onAsked),
  });
  // The group's details, asked for as it opens, are answered before the invitation: on a busy
  // machine a later answer listed Kai with his name, and the page had nothing to ask.
  const detail = page.waitForResponse((r) => new URL(r.url()).pathname === `/api/v1/chats/${group.id}`);
  await openChat(page, `Names ${tag}`);
  await detail;
  await owner.req('POST', `/chats/${group.id}/members`, { user_id: kai.user.id });
  const note = page.getByTestId('system-message').filter({ hasText: 'invited' });
  await note.getByText(`Kai ${tag}`).waitFor();
  return { tag, kai, group, context, page, note };
}

/** afterwards: Kai's message comes after what the test did, and is drawn; then two frames. */
async function afterwards(page, kai, group, text) {
  await kai.send(group.id, text);
  await message(page, text).waitFor();
  await frames(page);
}

test('a name learnt while its own fetch fails keeps showing, not "Someone"', async () => {
  const held = [];
  const { tag, kai, group, context, page, note } = await invitedWhileAsked('eve', (route) => held.push(route));
  assert.ok(await waitUntil(() => held.length > 0), 'the invitation asked for Kai\'s name');
  const failed = page.waitForEvent('requestfailed', (r) => new URL(r.url()).pathname === `/api/v1/users/${kai.user.id}`);
  for (const r of held) await r.abort();
  await failed;
  // Kai's message comes after the failure: it and the note name him.
  await afterwards(page, kai, group, `hello ${tag}`);
  assert.match(await note.textContent(), new RegExp(`invited Kai ${tag}`));
  assert.equal(await message(page, `hello ${tag}`).getByTestId('sender').textContent(), `Kai ${tag}`);
  page.assertClean();
  await context.close();
});

test('a name fetched before a rename and answered after it does not bring the old name back', async () => {
  // The page's question for Kai's name is answered by the server at once, and the answer held.
  const held = [];
  const { tag, kai, group, context, page, note } = await invitedWhileAsked('liv', async (route) => {
    held.push({ route, answer: await route.fetch() });
  });
  await kai.req('PATCH', '/users/me', { name: `Kai Renamed ${tag}` });
  await note.getByText(`Kai Renamed ${tag}`).waitFor();
  assert.ok(await waitUntil(() => held.length > 0), 'the invitation asked for Kai\'s name');
  const answered = page.waitForResponse((r) => new URL(r.url()).pathname === `/api/v1/users/${kai.user.id}`);
  for (const { route, answer } of held) await route.fulfill({ response: answer });
  await answered;
  await afterwards(page, kai, group, `later ${tag}`);
  assert.match(await note.textContent(), new RegExp(`invited Kai Renamed ${tag}`));
  page.assertClean();
  await context.close();
});

test('a name whose fetch failed is asked for again, and shows without a reload', async () => {
  const { tag, email, two: kai, group } = await groupOfTwo('Ned', 'Kai', 'Retry');
  await kai.send(group.id, `hello ${tag}`);
  // The list's preview names Kai, and only his own fetch can bring the name: its first request
  // fails, as when the network drops it; the next ones go through.
  let asked = 0;
  const { context, page } = await signIn(browser, email, {
    setup: (p) => p.route((url) => url.pathname === `/api/v1/users/${kai.user.id}`, (route) => {
      asked += 1;
      return asked === 1 ? route.abort() : route.continue();
    }),
  });
  const row = chatItem(page, `Retry ${tag}`);
  await row.getByText(`hello ${tag}`).waitFor();
  await row.getByText(`Kai ${tag}`).waitFor();
  assert.equal(asked, 2, 'asked once more, not again and again');
  page.assertClean();
  await context.close();
});
