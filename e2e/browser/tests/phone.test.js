// The client as a daily driver on a small phone: a paste over the length limit is kept whole
// and says by how much, in the composer and the edit box, and the count is the server's (an
// emoji is one character); a message arriving below a view scrolled up shows on the jump button;
// the message menu and the emoji picker fit the screen, their targets 44 px; with the keyboard
// up a long draft leaves the messages room; the small buttons grow to a finger's size; a long
// unbroken name in a system note breaks instead of making the messages scroll sideways; long
// names and titles end in an ellipsis and the lines that should stay one line do (the chat
// list, search results, dialogs); a long press on a link is the browser's.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, frames, launch, message, openChat, signIn, unique } from '../lib.js';

const SMALL = { width: 320, height: 568 };

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/** pair registers a user who signs in with the returned email and a peer, with a private chat. */
async function pair(prefix) {
  const tag = unique(prefix).slice(-6);
  const email = `ada.${tag}@example.com`;
  const me = await Api.register(`Ada ${tag}`, email);
  const peer = await Api.register(`Bo ${tag}`);
  const chat = await me.private(peer.user.id);
  return { email, me, peer, chat };
}

test('on a 320 px phone, a paste over the length limit is kept whole and says by how much; an emoji counts once', async () => {
  const { email, peer, chat, me } = await pair('l');
  const { context, page } = await signIn(browser, email, { viewport: SMALL, touch: true });
  await openChat(page, peer.user.name);
  const box = page.getByLabel('Message', { exact: true });
  const width = await box.evaluate((el) => el.getBoundingClientRect().width);

  // 5,000 characters pasted: all of them stay, the count says 1,000 too many, Send waits.
  await box.focus();
  await page.keyboard.insertText('word '.repeat(999) + 'words');
  assert.equal(await box.evaluate((el) => el.value.length), 5000, 'nothing of the paste is lost');
  const counter = page.getByTestId('counter');
  assert.equal(await counter.textContent(), '5,000 / 4,000: 1,000 too many');
  assert.ok(await page.getByTestId('send').isDisabled(), 'Send waits until it is short enough');
  // The count is not squeezed in beside the text: the composer keeps its width.
  assert.equal(await box.evaluate((el) => el.getBoundingClientRect().width), width, 'the composer keeps its width');
  assert.ok(await page.evaluate(() => document.scrollingElement.scrollWidth <= innerWidth), 'nothing is wider than the screen');

  // 2,100 emoji are 2,100 characters for the server (4,200 UTF-16 units): they may be sent.
  const smiles = '😀'.repeat(2100);
  await box.fill(smiles);
  assert.equal(await counter.isVisible(), false, 'no count far below the limit');
  await page.getByTestId('send').tap();
  await page.getByTestId('message').locator('[data-testid="msg-status"][data-state="sent"]').waitFor();
  const stored = await me.req('GET', `/chats/${chat.id}/messages`);
  assert.deepEqual(stored.messages.map((m) => m.body), [smiles]);
  page.assertClean();
  await context.close();
});

test('a paste over the length limit into the edit box is kept whole and says what is too long', async () => {
  const { email, peer, me, chat } = await pair('e');
  const sent = await me.send(chat.id, unique('short'));
  const { context, page } = await signIn(browser, email, { viewport: SMALL });
  await openChat(page, peer.user.name);
  const msg = message(page, sent.body);
  await msg.hover();
  await msg.getByTestId('message-more').click();
  await page.getByTestId('menu-edit').click();
  const edit = page.getByTestId('edit-input');
  await edit.waitFor();
  await edit.press('ControlOrMeta+a');
  await page.keyboard.insertText('x'.repeat(4100));
  assert.equal(await edit.evaluate((el) => el.value.length), 4100, 'nothing of the paste is cut off');
  await edit.press('Enter');
  await page.getByRole('alert').getByText('Too long: 4,100 characters, at most 4,000. Take out 100.').waitFor();
  assert.equal(await edit.evaluate((el) => el.value.length), 4100, 'the text stays to be shortened');
  const stored = await me.req('GET', `/chats/${chat.id}/messages`);
  assert.deepEqual(stored.messages.map((m) => m.body), [sent.body], 'nothing was saved');
  page.assertClean();
  await context.close();
});

test('on a phone, a message that arrives below a view scrolled up a little brings out the jump button with a count', async () => {
  const { email, peer, me, chat } = await pair('j');
  let last;
  for (let i = 0; i < 40; i++) last = await peer.send(chat.id, `line ${i} ${unique('m')}`);
  await me.read(chat.id, last.seq); // read: the chat opens at its newest message
  const { context, page } = await signIn(browser, email, { viewport: { width: 375, height: 667 }, touch: true });
  await openChat(page, peer.user.name);
  await message(page, last.body).waitFor();
  const scroller = page.getByTestId('messages');
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-testid="messages"]');
    return el.scrollHeight - el.scrollTop - el.clientHeight < 8;
  });
  // A little up (200 px: less than the 400 px that bring the button out by themselves).
  await scroller.evaluate((el) => new Promise((resolve) => {
    el.addEventListener('scroll', () => resolve(), { once: true });
    el.scrollTop = el.scrollHeight - el.clientHeight - 200;
  }));
  const jump = page.getByTestId('jump');
  assert.equal(await jump.isVisible(), false, 'no button 200 px from the bottom with nothing unread');

  const fresh = await peer.send(chat.id, unique('new'));
  await message(page, fresh.body).waitFor({ state: 'attached' });
  // The frame after the message is drawn shows or hides the button.
  await frames(page);
  assert.ok(await jump.isVisible(), 'the jump button shows that something new is below');
  assert.equal(await page.getByTestId('jump-count').textContent(), '1');
  assert.equal(await jump.getAttribute('aria-label'), 'Jump to the latest message, 1 unread');
  assert.ok(await scroller.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight > 150), 'the view stayed where it was');

  // A tap takes the view down, the message is read, the button goes.
  await jump.tap();
  await jump.waitFor({ state: 'hidden' });
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-testid="messages"]');
    return el.scrollHeight - el.scrollTop - el.clientHeight < 8;
  });
  page.assertClean();
  await context.close();
});

test('on a 320 px phone, the message menu and the emoji picker fit the screen, with targets a finger can hit', async () => {
  const { email, peer, chat } = await pair('t');
  const sent = await peer.send(chat.id, unique('hi'));
  const { context, page } = await signIn(browser, email, { viewport: SMALL, touch: true });
  await openChat(page, peer.user.name);
  const msg = message(page, sent.body);
  await msg.locator('.bubble').waitFor();
  const at = { pointerType: 'touch', isPrimary: true, bubbles: true, clientX: 60, clientY: 300 };
  await msg.dispatchEvent('pointerdown', at);
  const menu = page.getByTestId('message-menu');
  await menu.waitFor();
  await msg.dispatchEvent('pointerup', at);
  const boxes = (loc) => loc.getByRole('menuitem').evaluateAll((els) => els.map((e) => {
    const r = e.getBoundingClientRect();
    return { name: e.getAttribute('aria-label') || e.textContent, left: r.left, right: r.right, width: r.width, height: r.height, innerWidth };
  }));
  const fits = (items) => {
    for (const b of items) {
      assert.ok(b.left >= 0 && b.right <= b.innerWidth, `${b.name} is on the screen (${Math.round(b.left)}..${Math.round(b.right)} of ${b.innerWidth})`);
      assert.ok(b.height >= 44, `${b.name} is 44 px high (${b.height})`);
    }
  };
  fits(await boxes(menu));
  await menu.getByTestId('menu-react').tap();
  const picker = page.getByTestId('emoji-picker');
  await picker.waitFor();
  const emoji = await boxes(picker);
  assert.equal(emoji.length, 8);
  fits(emoji);
  for (const b of emoji) assert.ok(b.width >= 44, `${b.name} is 44 px wide (${b.width})`);
  await picker.getByRole('menuitem', { name: 'React with 👀' }).tap();
  await msg.locator('[data-testid="reaction"][data-emoji="👀"]').waitFor();
  page.assertClean();
  await context.close();
});

test('on a phone with the keyboard up, a long draft leaves the messages room and the newest in view', async () => {
  const { email, peer, me, chat } = await pair('k');
  let last;
  for (let i = 0; i < 12; i++) last = await peer.send(chat.id, `line ${i} ${unique('m')}`);
  await me.read(chat.id, last.seq);
  const { context, page } = await signIn(browser, email, { viewport: { width: 375, height: 667 }, touch: true });
  // The keyboard shrinks the page (Chrome on Android), not only what is shown of it.
  const viewport = await page.locator('meta[name="viewport"]').getAttribute('content');
  assert.match(viewport, /interactive-widget=resizes-content/);
  await openChat(page, peer.user.name);
  await message(page, last.body).waitFor();
  const box = page.getByLabel('Message', { exact: true });
  await box.tap();
  // The keyboard takes 307 px of the 667.
  await page.setViewportSize({ width: 375, height: 360 });
  await page.keyboard.insertText('a line of the draft\n'.repeat(20));
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-testid="messages"]');
    return el.scrollHeight - el.scrollTop - el.clientHeight < 8;
  });
  const room = await page.getByTestId('messages').evaluate((el) => el.clientHeight);
  assert.ok(room >= 120, `the messages keep a third of the screen (${room} px)`);
  assert.ok(await message(page, last.body).isVisible(), 'the newest message is in view');
  const bottom = await page.getByTestId('send').evaluate((el) => el.getBoundingClientRect().bottom);
  assert.ok(bottom <= 360, 'Send is on the screen');
  page.assertClean();
  await context.close();
});

test('on a phone, the small buttons grow to a finger\'s size: reactions, a member\'s actions, a device\'s Sign out', async () => {
  const tag = unique('f').slice(-6);
  const email = `fin.${tag}@example.com`;
  const me = await Api.register(`Fin ${tag}`, email); // this session is a second device to sign out
  const peer = await Api.register(`Gil ${tag}`);
  const group = await me.group(`Touch ${tag}`, [peer.user.id]);
  const sent = await peer.send(group.id, unique('hi'));
  await peer.req('PUT', `/chats/${group.id}/messages/${sent.seq}/reactions/${encodeURIComponent('👍')}`);
  const { context, page } = await signIn(browser, email, { viewport: SMALL, touch: true });
  await openChat(page, `Touch ${tag}`);
  const size = (loc) => loc.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return { w: r.width, h: r.height };
  });
  const chipSize = await size(message(page, sent.body).getByTestId('reaction'));
  assert.ok(chipSize.h >= 36, `a reaction chip is 36 px high (${chipSize.h})`);

  await page.getByTestId('members-button').tap();
  const actions = page.getByRole('button', { name: `Actions for Gil ${tag}` });
  const act = await size(actions);
  assert.ok(act.w >= 40 && act.h >= 40, `a member's actions button is 40 px (${act.w}x${act.h})`);
  await page.keyboard.press('Escape');
  await actions.waitFor({ state: 'detached' });

  await page.getByRole('button', { name: 'Back to chats' }).tap();
  await page.getByTestId('account-button').tap();
  const signOut = page.getByRole('button', { name: /^Sign out / }).first();
  const so = await size(signOut);
  assert.ok(so.h >= 40, `a device's Sign out is 40 px high (${so.h})`);
  page.assertClean();
  await context.close();
});

test('on a 320 px phone, a system note with a long unbroken name stays inside the screen', async () => {
  const tag = unique('n').slice(-6);
  const email = `hal.${tag}@example.com`;
  const me = await Api.register(`Hal ${tag}`, email);
  const long = await Api.register(`Wolfeschlegelsteinhausenbergerdorffvoralternwaren${tag}`);
  const group = await me.group(`Names ${tag}`);
  await me.req('POST', `/chats/${group.id}/members`, { user_id: long.user.id });
  const { context, page } = await signIn(browser, email, { viewport: SMALL, touch: true });
  await openChat(page, `Names ${tag}`);
  const note = page.getByTestId('system-message').filter({ hasText: long.user.name });
  await note.waitFor();
  const r = await note.evaluate((el) => {
    const b = el.getBoundingClientRect();
    const s = el.closest('[data-testid="messages"]');
    return { left: b.left, right: b.right, sw: s.scrollWidth, cw: s.clientWidth };
  });
  assert.ok(r.left >= 0 && r.right <= 320, `the note is on the screen (${Math.round(r.left)}..${Math.round(r.right)})`);
  assert.ok(r.sw <= r.cw, `the messages do not scroll sideways (${r.sw} > ${r.cw})`);
  page.assertClean();
  await context.close();
});

test('on a 320 px phone, long names and titles fit: the list, search results, group and notification settings, the new chat tabs and the devices', async () => {
  const tag = unique('w').slice(-6);
  const email = `max.${tag}@example.com`;
  const me = await Api.register(`Maximilian Alexander Featherstonehaugh ${tag}`, email);
  const peer = await Api.register(`Bartholomew Montgomery-Smythe ${tag}`);
  const title = `The quarterly planning group of the northern region ${tag}`;
  const group = await me.group(title, [peer.user.id]);
  await me.send(group.id, 'a message long enough to be cut short in the preview of the chat list');
  const { context, page } = await signIn(browser, email, { viewport: SMALL, touch: true });
  const row = page.getByTestId('chat-item').filter({ hasText: tag });
  await row.waitFor();
  const r = await page.evaluate(() => ({
    sw: document.scrollingElement.scrollWidth,
    newChat: document.querySelector('[data-testid="new-chat"]').getBoundingClientRect().right,
    list: document.querySelector('[data-testid="chat-list"]').getBoundingClientRect().right,
    cut: [...document.querySelectorAll('.me-name, [data-testid="chat-title"]')].map((el) => el.scrollWidth > el.clientWidth),
  }));
  assert.ok(r.sw <= 320, `nothing is wider than the screen (${r.sw} px)`);
  assert.ok(r.newChat <= 320, `the New chat button is on the screen (its right edge at ${Math.round(r.newChat)} px)`);
  assert.ok(r.list <= 320, `the chat list fits the screen (${Math.round(r.list)} px)`);
  assert.deepEqual(r.cut, [true, true], 'the name and the title are cut short (an ellipsis), not pushed past the edge');
  // Search results: the time and "Back to chats" keep one line beside the long title and the
  // search's heading (two lines are more than twice the font's size high).
  await page.getByLabel('Filter chats').fill('long enough');
  await page.getByLabel('Filter chats').press('Enter');
  await page.getByTestId('search-hit').first().waitFor();
  const back = page.getByRole('button', { name: 'Back to chats' });
  const lines = await page.evaluate(() => [document.querySelector('.hit-time'), [...document.querySelectorAll('.search-bar button')].find((b) => b.textContent === 'Back to chats')]
    .map((el) => el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).fontSize)));
  assert.ok(lines.every((n) => n < 2), `the time and "Back to chats" are one line high each (${lines.map((n) => n.toFixed(1)).join(', ')} times their font size)`);
  await back.tap();
  await page.getByLabel('Filter chats').fill('');
  // The group's settings: each checkbox keeps its size beside a line of text that fills the row.
  await openChat(page, title);
  await page.getByTestId('members-button').tap();
  const boxes = page.getByTestId('members-dialog').locator('.check input');
  await boxes.nth(1).waitFor();
  const sizes = await boxes.evaluateAll((els) => els.map((el) => Math.round(el.getBoundingClientRect().width)));
  assert.deepEqual(sizes, [18, 18], 'the checkboxes of the group\'s settings are all 18 px wide');
  await page.keyboard.press('Escape');
  await page.getByTestId('members-dialog').waitFor({ state: 'detached' });
  // The notification settings: each choice is a row a finger can hit, the box to choose a mute
  // as high as the other fields.
  await page.getByTestId('bell-button').tap();
  const settings = page.getByTestId('chat-settings');
  await settings.getByTestId('mute-select').waitFor();
  const heights = await settings.locator('.radio, select').evaluateAll((els) => els.map((el) => Math.round(el.getBoundingClientRect().height)));
  assert.ok(heights.length === 4 && heights.every((h) => h >= 36), `the three choices and the mute box are 36 px high or more (${heights.join(', ')})`);
  await page.keyboard.press('Escape');
  await settings.waitFor({ state: 'detached' });
  // The new chat dialog: its tabs keep one line each ("New group" took two).
  await page.goBack();
  await page.getByTestId('new-chat').tap();
  const tabs = page.getByTestId('new-chat-dialog').getByRole('tab');
  await tabs.first().waitFor();
  const tabHeights = await tabs.evaluateAll((els) => els.map((el) => Math.round(el.getBoundingClientRect().height)));
  assert.deepEqual(tabHeights, [36, 36, 36], 'each tab is one line high');
  await page.keyboard.press('Escape');
  await page.getByTestId('new-chat-dialog').waitFor({ state: 'detached' });
  // The account dialog: this device's tag is whole, beside its name or under it.
  await page.getByTestId('account-button').tap();
  const here = page.getByTestId('account-dialog').getByTestId('device').locator('.tag');
  await here.waitFor();
  const t = await here.evaluate((el) => ({
    right: el.getBoundingClientRect().right,
    room: el.parentElement.getBoundingClientRect().right, // the name's line, which clips
    text: el.textContent,
  }));
  assert.equal(t.text, 'This device');
  assert.ok(t.right <= t.room + 0.5, `"This device" is whole: it ends at ${Math.round(t.right)} px, its line at ${Math.round(t.room)}`);
  page.assertClean();
  await context.close();
});

test('on a phone, a long press on a link leaves it to the browser; on the text it opens the message menu', async () => {
  const { email, peer, chat } = await pair('p');
  await peer.send(chat.id, `see https://example.org/${unique('x')} now`);
  const { context, page } = await signIn(browser, email, { viewport: SMALL, touch: true, clock: true });
  await openChat(page, peer.user.name);
  const msg = page.getByTestId('message').filter({ hasText: 'example.org' });
  const link = msg.getByRole('link');
  await link.waitFor();
  // The page's clock is the test's: the press lasts 600 ms of it whatever the machine's speed.
  const press = async (target) => {
    const at = { pointerType: 'touch', isPrimary: true, bubbles: true, clientX: 60, clientY: 300 };
    await target.dispatchEvent('pointerdown', at);
    await page.clock.runFor(600);
    await target.dispatchEvent('pointerup', at);
  };
  await press(link);
  assert.equal(await page.getByTestId('message-menu').count(), 0, 'no message menu over the browser\'s own for the link');
  await press(msg.locator('.meta'));
  await page.getByTestId('message-menu').waitFor();
  page.assertClean();
  await context.close();
});
