// Composing: a refused message shows as failed with Retry and Delete; the filter box; group
// creation with initial members; every control has an accessible name.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, NARROW, chatItem, launch, message, openChat, send, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('a message the server refuses shows as failed, with Retry and Delete', async () => {
  const tag = unique('k').slice(-6);
  const email = `kai.${tag}@example.com`;
  const kai = await Api.register(`Kai ${tag}`, email);
  const lea = await Api.register(`Lea ${tag}`);
  await kai.private(lea.user.id);
  const { context, page } = await signIn(browser, email);
  await openChat(page, `Lea ${tag}`);

  // NUL is not allowed in a body (422): the send fails for good, not silently.
  const bad = 'nul \u0000 inside';
  await page.getByLabel('Message', { exact: true }).evaluate((el, v) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, bad);
  await page.getByLabel('Message', { exact: true }).press('Enter');
  const failed = page.locator('[data-testid="message"]:has([data-testid="msg-status"][data-state="failed"])');
  await failed.waitFor();
  await failed.getByRole('alert').waitFor();
  await failed.getByTestId('retry').click();
  await failed.locator('[data-testid="msg-status"][data-state="failed"]').waitFor();
  await failed.getByRole('button', { name: 'Delete' }).click();
  await failed.waitFor({ state: 'detached' });

  // A good one goes through after that.
  const ok = unique('ok');
  await send(page, ok);
  await message(page, ok).locator('[data-testid="msg-status"][data-state="sent"]').waitFor();
  const server = await kai.req('GET', `/chats/${(await kai.chatByTitle(`Lea ${tag}`)).id}/messages`);
  assert.deepEqual(server.messages.map((m) => m.body), [ok]);
  page.assertClean();
  await context.close();
});

test('create a public group with a member; filter the list; controls are labelled', async () => {
  const tag = unique('m').slice(-6);
  const email = `mo.${tag}@example.com`;
  await Api.register(`Mo ${tag}`, email);
  const nia = await Api.register(`Nia ${tag}`);
  const { context, page } = await signIn(browser, email);
  const title = `Garden ${tag}`;

  await page.getByTestId('new-chat').click();
  const dlg = page.getByTestId('new-chat-dialog');
  await dlg.getByRole('tab', { name: 'New group' }).click();
  await dlg.getByLabel('Group name').fill(title);
  await dlg.getByLabel('Public').check();
  await dlg.getByLabel('Members', { exact: true }).fill(`Nia ${tag}`);
  await dlg.getByRole('button', { name: `Add Nia ${tag}` }).click();
  await dlg.getByRole('button', { name: `Remove Nia ${tag}` }).waitFor();
  await dlg.getByRole('button', { name: 'Create group' }).click();
  await page.getByTestId('pane-title').getByText(title).waitFor();
  await page.getByTestId('pane-sub').getByText('2 members · public').waitFor();
  const seen = (await nia.chats()).find((c) => c.title === title);
  assert.ok(seen, 'the member has the group');
  assert.equal(seen.public, true);
  assert.equal(seen.member_count, 2);

  await Api.register(`Other ${tag}`).then((o) => o.private(nia.user.id)); // unrelated noise
  await page.getByLabel('Filter chats').fill('garden');
  await chatItem(page, title).waitFor();
  assert.equal(await page.getByTestId('chat-item').count(), 1);
  await page.getByLabel('Filter chats').fill('no such chat');
  await page.getByText('No chat matches').waitFor();
  await page.getByLabel('Filter chats').press('Escape');
  await chatItem(page, title).waitFor();

  // Every button and field on the main screen and in the new-chat dialog has a name.
  await page.getByTestId('new-chat').click();
  const unnamed = await page.evaluate(() => {
    const name = (el) => (el.getAttribute('aria-label') || el.labels?.[0]?.textContent || el.textContent || el.title || '').trim();
    return [...document.querySelectorAll('button, input, textarea, select, [role="tab"]')]
      .filter((el) => el.offsetParent !== null || el.closest('dialog[open]'))
      .filter((el) => !name(el))
      .map((el) => el.outerHTML.slice(0, 80));
  });
  assert.deepEqual(unnamed, []);
  page.assertClean();
  await context.close();
});

/**
 * lines is how the message with this text is laid out: its rendered lines, and its height in
 * single lines. Found and measured in one step (a bubble is redrawn when its status changes).
 */
function lines(page, text) {
  return page.evaluate((t) => {
    const el = [...document.querySelectorAll('[data-testid="message-text"]')].find((e) => e.textContent === t);
    const style = getComputedStyle(el);
    const lineHeight = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.45;
    return { text: el.innerText.split('\n'), rows: Math.round(el.getBoundingClientRect().height / lineHeight) };
  }, text);
}

test('on a phone Enter is a new line and the button sends; on desktop Shift+Enter; line breaks render', async () => {
  const tag = unique('p').slice(-6);
  const phoneEmail = `uma.${tag}@example.com`;
  const deskEmail = `vik.${tag}@example.com`;
  const uma = await Api.register(`Uma ${tag}`, phoneEmail);
  const vik = await Api.register(`Vik ${tag}`, deskEmail);
  await uma.private(vik.user.id);
  const phone = await signIn(browser, phoneEmail, { viewport: NARROW, touch: true });
  const desk = await signIn(browser, deskEmail);
  assert.ok(await phone.page.evaluate(() => matchMedia('(pointer: coarse), (hover: none)').matches), 'the phone context is a touch screen');
  await openChat(phone.page, `Vik ${tag}`);
  await openChat(desk.page, `Uma ${tag}`);

  // Phone: Enter makes a new line, nothing is sent; the Send button sends both lines as one.
  const box = phone.page.getByLabel('Message', { exact: true });
  assert.equal(await box.getAttribute('enterkeyhint'), 'enter');
  await box.tap();
  await box.pressSequentially('first line');
  await box.press('Enter');
  await box.pressSequentially('second line');
  assert.equal(await box.inputValue(), 'first line\nsecond line');
  assert.equal(await phone.page.getByTestId('message').count(), 0, 'Enter sent nothing');
  await phone.page.getByTestId('send').tap();
  const fromPhone = 'first line\nsecond line';
  for (const { page } of [phone, desk]) {
    await message(page, fromPhone).waitFor();
    assert.deepEqual(await lines(page, fromPhone), { text: ['first line', 'second line'], rows: 2 });
  }
  assert.equal(await box.inputValue(), '');

  // Desktop: Shift+Enter is a new line, Enter sends.
  const deskBox = desk.page.getByLabel('Message', { exact: true });
  assert.equal(await deskBox.getAttribute('enterkeyhint'), 'send');
  await deskBox.pressSequentially('one');
  await deskBox.press('Shift+Enter');
  await deskBox.press('Shift+Enter');
  await deskBox.pressSequentially('three');
  await deskBox.press('Enter');
  const fromDesk = 'one\n\nthree';
  for (const { page } of [phone, desk]) {
    await message(page, fromDesk).waitFor();
    assert.deepEqual(await lines(page, fromDesk), { text: ['one', '', 'three'], rows: 3 });
  }
  const server = await vik.req('GET', `/chats/${(await vik.chatByTitle(`Uma ${tag}`)).id}/messages`);
  assert.deepEqual(server.messages.map((m) => m.body), [fromPhone, fromDesk]);
  phone.page.assertClean();
  desk.page.assertClean();
  await phone.context.close();
  await desk.context.close();
});

test('a long draft that grows the composer keeps the newest message in view', async () => {
  const tag = unique('g').slice(-6);
  const email = `gus.${tag}@example.com`;
  const gus = await Api.register(`Gus ${tag}`, email);
  const ivy = await Api.register(`Ivy ${tag}`);
  const chat = await gus.private(ivy.user.id);
  let last;
  for (let i = 0; i < 40; i++) last = await ivy.send(chat.id, `line ${i} ${unique('m')}`);
  await gus.read(chat.id, last.seq); // read: the chat opens at its newest message, not at a divider
  const { context, page } = await signIn(browser, email, { viewport: NARROW });
  await openChat(page, `Ivy ${tag}`);
  const newest = message(page, last.body);
  await newest.waitFor();
  const scroller = page.getByTestId('messages');
  const gap = () => scroller.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-testid="messages"]');
    return el.scrollHeight - el.scrollTop - el.clientHeight < 8;
  });
  const box = page.getByLabel('Message', { exact: true });
  const before = await box.evaluate((el) => el.offsetHeight);
  await box.click();
  for (let i = 0; i < 7; i++) {
    await box.type(`draft line ${i}`);
    await box.press('Shift+Enter');
  }
  await page.waitForFunction((h) => document.querySelector('textarea[aria-label="Message"]').offsetHeight > h + 40, before);
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-testid="messages"]');
    return el.scrollHeight - el.scrollTop - el.clientHeight < 8;
  }, null, { timeout: 5000 }).catch(() => {});
  assert.ok(await gap() < 8, `the view left the bottom by ${await gap()} px as the composer grew`);
  page.assertClean();
  await context.close();
});

test('a draft, with the names chosen in it, survives a reload; signing out forgets it', async () => {
  const tag = unique('d').slice(-6);
  const email = `dee.${tag}@example.com`;
  const dee = await Api.register(`Dee ${tag}`, email);
  const eli = await Api.register(`Eli ${tag}`);
  const fay = await Api.register(`Fay ${tag}`);
  const title = `Drafts ${tag}`;
  const group = await dee.group(title, [eli.user.id, fay.user.id]);
  const priv = await dee.private(fay.user.id);
  const { context, page } = await signIn(browser, email);
  const box = page.getByLabel('Message', { exact: true });

  // A draft in the group, with @Eli chosen from the list, and another in the private chat.
  await openChat(page, title);
  await box.click();
  await page.keyboard.type('see @el');
  await page.getByTestId('mention-option').first().click();
  await page.keyboard.type('soon');
  const groupDraft = `see @Eli ${tag} soon`;
  assert.equal(await box.inputValue(), groupDraft);
  await openChat(page, `Fay ${tag}`);
  await box.click();
  await page.keyboard.type('half a thought');
  // In the private chat the draft answers Fay's message.
  const asked = await fay.send(priv.id, 'are you coming?');
  const q = message(page, asked.body);
  await q.hover();
  await q.getByTestId('message-more').click();
  await page.getByTestId('menu-reply').click();
  await page.getByTestId('reply-bar').getByText(asked.body).waitFor();

  // The list shows each draft in place of the last message, but the open chat's.
  const previewOf = (title) => chatItem(page, title).getByTestId('chat-preview');
  assert.equal(await previewOf(title).textContent(), `Draft: ${groupDraft}`);
  assert.notEqual(await previewOf(`Fay ${tag}`).textContent(), 'Draft: half a thought');

  await page.reload(); // back in the private chat (the address names it)
  await page.getByTestId('chat-list').waitFor();
  await page.waitForFunction((t) => [...document.querySelectorAll('[data-testid="chat-preview"]')].some((e) => e.textContent === t), `Draft: ${groupDraft}`);
  await openChat(page, `Fay ${tag}`);
  assert.equal(await box.inputValue(), 'half a thought', 'the private chat\'s draft after a reload');
  await page.getByTestId('reply-bar').getByText(asked.body).waitFor(); // and what it answers
  await openChat(page, title);
  assert.equal(await box.inputValue(), groupDraft, 'the group\'s draft after a reload');
  // Sent, it still mentions Eli by id: the chosen name was kept with the text.
  await box.press('Enter');
  await message(page, groupDraft).locator('[data-testid="msg-status"][data-state="sent"]').waitFor();
  const hist = await eli.req('GET', `/chats/${group.id}/messages`);
  const sent = hist.messages.find((m) => m.body === groupDraft);
  assert.deepEqual(sent?.mentions, [eli.user.id]);
  await page.reload();
  await openChat(page, title);
  assert.equal(await box.inputValue(), '', 'a sent draft is gone after a reload');

  // Sent, the private chat's draft is a reply to Fay's question.
  await openChat(page, `Fay ${tag}`);
  await box.press('Enter');
  await message(page, 'half a thought').locator('[data-testid="msg-status"][data-state="sent"]').waitFor();
  const privHist = await fay.req('GET', `/chats/${priv.id}/messages`);
  assert.equal(privHist.messages.find((m) => m.body === 'half a thought')?.reply_to?.seq, asked.seq);
  await box.click();
  await page.keyboard.type('another thought');

  // Signing out leaves no draft in the browser.
  const kept = () => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('chat.drafts.')));
  assert.equal((await kept()).length, 1, 'the private chat\'s draft is kept before signing out');
  await page.getByTestId('account-button').click();
  await page.getByTestId('sign-out').click();
  await page.getByText('You signed out.').waitFor();
  assert.deepEqual(await kept(), []);
  page.assertClean();
  await context.close();
});

test('a draft written in another tab shows in this tab\'s list, and goes when it is sent', async () => {
  const tag = unique('t').slice(-6);
  const email = `tam.${tag}@example.com`;
  const tam = await Api.register(`Tam ${tag}`, email);
  const uma = await Api.register(`Uma ${tag}`);
  const chat = await tam.private(uma.user.id);
  await uma.send(chat.id, `hi ${tag}`);
  const { context, page } = await signIn(browser, email);
  // The same browser's second tab (the same storage), on the list.
  const other = await context.newPage();
  await other.goto('/');
  await other.getByTestId('chat-list').waitFor();
  const preview = chatItem(other, `Uma ${tag}`).getByTestId('chat-preview');
  await preview.getByText(`hi ${tag}`).waitFor();

  await openChat(page, `Uma ${tag}`);
  await page.getByLabel('Message', { exact: true }).click();
  await page.keyboard.type('from the first tab');
  // Well before the list's minutely redraw of its times, which would show it too.
  await other.waitForFunction((t) => [...document.querySelectorAll('[data-testid="chat-preview"]')].some((e) => e.textContent === t), 'Draft: from the first tab', { timeout: 20000 });
  // A message arriving draws the row with the draft still in place of the message.
  await uma.send(chat.id, `again ${tag}`);
  await chatItem(other, `Uma ${tag}`).locator('[data-testid="unread-badge"]').getByText('1').waitFor();
  assert.equal(await preview.textContent(), 'Draft: from the first tab');
  // Sent, the draft is gone from the other tab's list too.
  await page.keyboard.press('Enter');
  await other.waitForFunction((t) => [...document.querySelectorAll('[data-testid="chat-preview"]')].some((e) => e.textContent === t), 'You: from the first tab');
  page.assertClean();
  await context.close();
});

test('layout: a full-width message of mine leaves no blank strip under it; "No chats yet" sits under the filter', async () => {
  const tag = unique('w').slice(-6);
  const email = `wes.${tag}@example.com`;
  const wes = await Api.register(`Wes ${tag}`, email);
  const first = await signIn(browser, email);
  await first.page.getByText('No chats yet.').waitFor();
  const empty = await first.page.getByText('No chats yet.').boundingBox();
  const filter = await first.page.getByLabel('Filter chats').boundingBox();
  assert.ok(empty.y - (filter.y + filter.height) < 80, `"No chats yet" is ${Math.round(empty.y - filter.y)} px below the filter`);
  await first.context.close();

  const xan = await Api.register(`Xan ${tag}`);
  const chat = await wes.private(xan.user.id);
  const long = await wes.send(chat.id, `long ${'word '.repeat(200)}`);
  await wes.send(chat.id, 'right after');
  const { context, page } = await signIn(browser, email);
  await openChat(page, `Xan ${tag}`);
  const next = page.getByTestId('messages').getByText('right after');
  await next.waitFor();
  const a = await message(page, long.body.trim()).locator('.bubble').boundingBox();
  const b = await message(page, 'right after').locator('.bubble').boundingBox();
  const gap = b.y - (a.y + a.height);
  assert.ok(gap < 12, `${Math.round(gap)} px between a full-width bubble and the next one`);
  page.assertClean();
  await context.close();
});
