// Composing: a refused message shows as failed with Retry and Delete; the filter box; group
// creation with initial members; every control has an accessible name.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, chatItem, launch, message, openChat, send, signIn, unique } from '../lib.js';

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
