// History: the "new messages" divider at the first unread, and infinite scroll upwards.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, chatItem, launch, message, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('long history: unread divider, then older pages load as you scroll up', async () => {
  const tag = unique('h').slice(-6);
  const email = `hana.${tag}@example.com`;
  const reader = await Api.register(`Hana ${tag}`, email);
  const writer = await Api.register(`Ivo ${tag}`);
  const chat = await writer.private(reader.user.id);
  const N = 190;
  const text = (i) => `m-${String(i).padStart(3, '0')}`;
  for (let i = 1; i <= N; i++) await writer.send(chat.id, text(i));
  await reader.read(chat.id, 100); // 90 unread: more than one page of 50

  const { context, page } = await signIn(browser, email);
  const item = chatItem(page, `Ivo ${tag}`);
  await item.getByTestId('unread-badge').getByText('90', { exact: true }).waitFor();
  await item.click();

  // The pane opens at the divider, just above the first unread message.
  const divider = page.getByTestId('unread-divider');
  await divider.waitFor();
  const next = await divider.evaluate((el) => el.nextElementSibling?.querySelector('[data-testid="message-text"]')?.textContent);
  assert.equal(next, text(101));
  await message(page, text(101)).waitFor();

  // Scroll up until the first message: older pages arrive and keep the order.
  const scroller = page.getByTestId('messages');
  const first = message(page, text(1));
  for (let i = 0; i < 40 && !(await first.count()); i++) {
    await scroller.evaluate((el) => { el.scrollTop = 0; });
    await page.waitForTimeout(100);
  }
  await first.waitFor();
  await page.getByText('This is the beginning of your conversation.').waitFor();
  const texts = await page.getByTestId('message-text').allTextContents();
  assert.equal(texts.length, N);
  assert.deepEqual(texts, Array.from({ length: N }, (_, i) => text(i + 1)));
  assert.equal(await page.locator('.day-sep').count(), 1);

  // Scrolling to the bottom reads the rest; the badge goes.
  await scroller.evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await item.getByTestId('unread-badge').waitFor({ state: 'detached' });
  page.assertClean();
  await context.close();
});
