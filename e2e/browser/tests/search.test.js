// Message search: the chat filter's text searched in every message, results with the matched
// text marked, and a click that opens the chat at the message, deep in its history.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, message, privatePair, signIn } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('search messages and jump to a hit in its history', async () => {
  const { tag, email, writer, chat } = await privatePair('s', 'Sara', 'Tom');
  const needle = `Krankenversicherungskarte-${tag}`;
  await writer.send(chat.id, `Bitte die ${needle} mitbringen`);
  for (let i = 1; i <= 120; i++) await writer.send(chat.id, `filler ${i}`); // the hit is pages back
  await writer.send(chat.id, `東京で会議 ${tag}`);

  const { context, page } = await signIn(browser, email);
  const filter = page.getByRole('searchbox', { name: 'Filter chats' });
  // The index catches up within a moment: search until the hit shows.
  let hits = page.getByTestId('search-hit');
  for (let i = 0; i < 50; i++) {
    await filter.fill(`versicherung ${tag}`);
    await filter.press('Enter');
    await page.getByTestId('search-panel').waitFor();
    await page.waitForTimeout(200);
    if (await hits.count()) break;
    await filter.fill('');
  }
  assert.equal(await hits.count(), 1);
  assert.equal(await hits.first().locator('mark').first().textContent(), 'versicherung');
  assert.match(await hits.first().textContent(), new RegExp(`Tom ${tag}`));

  // A click opens the chat with the message in view, older pages loaded on the way.
  await hits.first().click();
  const hit = message(page, `Bitte die ${needle} mitbringen`);
  await hit.waitFor();
  await page.waitForFunction((text) => {
    const el = [...document.querySelectorAll('[data-testid="message-text"]')].find((e) => e.textContent === text);
    const sc = document.querySelector('[data-testid="messages"]');
    if (!el || !sc) return false;
    const r = el.getBoundingClientRect(), v = sc.getBoundingClientRect();
    return r.bottom > v.top && r.top < v.bottom;
  }, `Bitte die ${needle} mitbringen`);

  // A two-character Japanese query finds the newest message.
  await filter.fill('東京');
  await filter.press('Enter');
  await page.getByTestId('search-hit').first().waitFor();
  assert.equal(await page.getByTestId('search-hit').first().locator('mark').textContent(), '東京');
  await page.getByRole('button', { name: 'Back to chats' }).click();
  await page.getByTestId('chat-list').waitFor();
  page.assertClean();
  await context.close();
});

test('a match far into a long message shows in its hit, with who wrote it', async () => {
  const { tag, email, reader, writer, chat } = await privatePair('x', 'Uma', 'Vic');
  const word = `needle${tag.replace(/\W/g, '')}`;
  const body = `${'A'.repeat(600)} and then the ${word} at last`;
  await writer.send(chat.id, body);
  await reader.send(chat.id, `my own ${word} too`);
  const { context, page } = await signIn(browser, email);
  const filter = page.getByRole('searchbox', { name: 'Filter chats' });
  const hits = page.getByTestId('search-hit');
  for (let i = 0; i < 50; i++) {
    await filter.fill(word);
    await filter.press('Enter');
    await page.getByTestId('search-panel').waitFor();
    await page.waitForTimeout(200);
    if (await hits.count() === 2) break;
    await filter.fill('');
  }
  assert.equal(await hits.count(), 2);
  const far = hits.filter({ hasText: 'at last' });
  // The mark is on screen: inside the hit's clamped lines, not cut away below them.
  const mark = await far.locator('mark').boundingBox();
  const box = await far.locator('.hit-body').boundingBox();
  assert.ok(mark && mark.y + mark.height <= box.y + box.height + 1, 'the match is within the hit\'s lines');
  assert.match(await far.locator('.hit-body').textContent(), /^…/);
  // Mine says so; the other member's, in a private chat, needs no name (the chat is theirs).
  assert.equal(await hits.filter({ hasText: 'my own' }).locator('.hit-by').textContent(), 'You: ');
  assert.equal(await far.locator('.hit-by').count(), 0);
  page.assertClean();
  await context.close();
});
