// Spoofing in what the client draws: members whose names look alike are told apart (their
// email beside the name in message headers, the member list and mention completion).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, launch, message, openChat, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('members with look-alike names are told apart by their email', async () => {
  const tag = unique('l').slice(-6);
  const name = `Ann ${tag}`;
  // The same name twice, and once more in full-width lower case: all three read as "Ann ...".
  const anns = [];
  for (const n of [name, name, `ａｎｎ ${tag}`]) {
    const email = `ann.${anns.length}.${tag}@example.com`;
    anns.push({ api: await Api.register(n, email), email, name: n });
  }
  const cidEmail = `cid.${tag}@example.com`;
  const cid = await Api.register(`Cid ${tag}`, cidEmail);
  const title = `Twins ${tag}`;
  const group = await cid.group(title, anns.map((a) => a.api.user.id));
  for (const [i, a] of anns.entries()) await a.api.send(group.id, `hello ${i} ${tag}`);
  await cid.send(group.id, `hi all ${tag}`);

  const { page } = await signIn(browser, cidEmail);
  await openChat(page, title);
  // Each Ann's message header shows her email, so the three differ; Cid's own has no header.
  for (const [i, a] of anns.entries()) {
    const sender = message(page, `hello ${i} ${tag}`).getByTestId('sender');
    await sender.getByTestId('sender-apart').getByText(a.email, { exact: true }).waitFor();
    assert.equal((await sender.textContent()).trim(), `${a.name}${a.email}`);
  }

  // The member list: each Ann with her email, Cid (no look-alike) without.
  await page.getByTestId('members-button').click();
  const dialog = page.getByTestId('members-dialog');
  for (const a of anns) {
    await dialog.locator(`[data-testid="member"][data-user-id="${a.api.user.id}"]`).getByTestId('member-apart').getByText(a.email, { exact: true }).waitFor();
  }
  assert.equal(await dialog.locator(`[data-testid="member"][data-user-id="${cid.user.id}"]`).getByTestId('member-apart').count(), 0);
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });

  // Mention completion: the three Anns, each with her email as the hint.
  const box = page.getByLabel('Message', { exact: true });
  await box.click();
  await page.keyboard.type('@ann');
  const options = page.getByTestId('mention-option');
  await page.getByTestId('mention-list').waitFor();
  assert.deepEqual((await options.locator('.mention-hint').allTextContents()).sort(), anns.map((a) => a.email).sort());
  page.assertClean();
});
