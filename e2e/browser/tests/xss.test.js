// User text is text: markup in messages, names and titles never becomes HTML.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, chatItem, launch, message, openChat, send, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

const IMG = '<img src=x onerror=alert(1)>';
const SCRIPT = '<script>alert(1)</script>';

test('markup in a message body renders as text, and no dialog fires', async () => {
  const first = await signIn(browser, 'first@example.com');
  const second = await signIn(browser, 'second@example.com');
  await openChat(first.page, 'Second');
  await openChat(second.page, 'First');

  await send(first.page, IMG);
  await send(first.page, SCRIPT);
  for (const { page } of [first, second]) {
    await message(page, IMG).waitFor();
    await message(page, SCRIPT).waitFor();
    const html = await page.getByTestId('messages').evaluate((el) => ({
      imgs: el.querySelectorAll('img').length,
      scripts: el.querySelectorAll('script').length,
    }));
    assert.deepEqual(html, { imgs: 0, scripts: 0 });
    // The chat list preview is text too.
    await chatItem(page, page === first.page ? 'Second' : 'First').getByTestId('chat-preview').getByText(SCRIPT).waitFor();
  }
  // Give a handler that would fire a moment to do so.
  await first.page.waitForTimeout(300);
  for (const { page } of [first, second]) {
    assert.equal(await page.evaluate(() => document.querySelectorAll('img, script:not([src])').length), 0);
    page.assertClean(); // fails on any alert() dialog, page error or CSP report
  }
  await first.context.close();
  await second.context.close();
});

test('markup in names and titles renders as text', async () => {
  const evil = await Api.register(IMG);
  const title = `${SCRIPT} ${unique('g').slice(-5)}`;
  const third = await Api.login('third@example.com');
  const g = await evil.group(title, [third.user.id]);
  await evil.send(g.id, `hello from ${IMG}`);

  const { context, page } = await signIn(browser, 'third@example.com');
  await chatItem(page, title).waitFor();
  await openChat(page, title);
  await page.getByTestId('system-message').getByText(`${IMG} created the group`).waitFor();
  await message(page, `hello from ${IMG}`).getByTestId('sender').getByText(IMG).waitFor();
  assert.equal(await page.evaluate(() => document.querySelectorAll('img, script:not([src])').length), 0);
  page.assertClean();
  await context.close();
});

test('a name cannot pass for a system note: each name in one is set apart, in the chat and in its preview', async () => {
  // "Second made you an admin. Also, Zed joined" read as two events.
  const forged = `Second made you an admin. Also, Zed ${unique('z').slice(-4)}`;
  const owner = await Api.register(`Owner ${unique('o').slice(-5)}`);
  const third = await Api.login('third@example.com');
  const g = await owner.group(`Forged ${unique('g').slice(-5)}`, [third.user.id], true);
  const evil = await Api.register(forged);
  await evil.req('POST', `/chats/${g.id}/join`);

  const { context, page } = await signIn(browser, 'third@example.com');
  // The chat list's preview of the note too.
  const row = chatItem(page, g.title).getByTestId('chat-preview');
  await row.getByText(`${forged} joined`).waitFor();
  assert.equal(await row.locator('.sys-name').count(), 1, 'the preview sets the name apart from " joined"');
  assert.equal(await row.locator('.sys-name').textContent(), forged);
  assert.equal(await row.locator('.sys-name').evaluate((el) => getComputedStyle(el).fontWeight), '600');
  await openChat(page, g.title);
  const note = page.getByTestId('system-message').filter({ hasText: `${forged} joined` });
  await note.waitFor();
  assert.equal(await note.locator('.sys-name').textContent(), forged, 'the whole name is one element, apart from " joined"');
  assert.equal(await note.locator('.sys-name').evaluate((el) => getComputedStyle(el).fontWeight), '600');
  page.assertClean();
  await context.close();
});
