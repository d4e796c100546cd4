// Spoofing in what the client draws: members whose names look alike are told apart (their
// email beside the name in message headers, the member list and mention completion); a message
// paints nothing outside its bubble, however many combining marks it stacks.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, launch, message, newPage, openChat, signIn, unique } from '../lib.js';

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

test('a message with a letter under 1,500 combining marks draws nothing over its neighbours', async () => {
  const tag = unique('z').slice(-6);
  const annEmail = `ann.${tag}@example.com`;
  await Api.register(`Ann ${tag}`, annEmail);
  const ann = await Api.login(annEmail);
  const ben = await Api.register(`Ben ${tag}`);
  const chat = await ben.private(ann.user.id);
  const texts = [`above ${tag}`, `zalgo ${tag}`, `below ${tag}`];
  for (const t of texts) await ben.send(chat.id, t);
  // The server refuses more than 8 marks on a letter (MaxStackedMarks) since; one stored before,
  // or sent through another server, still reaches the page: the history answer brings it here.
  const zalgo = `Z${'\u0301'.repeat(750)}${'\u0316'.repeat(750)}algo`;
  const { page } = await signIn(browser, annEmail, {
    setup: (p) => p.route(`**/api/v1/chats/${chat.id}/messages*`, async (route) => {
      const res = await route.fetch();
      const json = await res.json();
      for (const m of json.messages || []) if (m.body === texts[1]) m.body = zalgo;
      await route.fulfill({ response: res, json });
    }),
  });
  await openChat(page, `Ben ${tag}`);
  await message(page, texts[0]).waitFor();
  await message(page, texts[2]).waitFor();
  const zalgoText = page.getByTestId('message-text').filter({ hasText: 'algo' });
  await zalgoText.waitFor();

  // Each neighbour's text is what a click at its own place hits.
  for (const t of [texts[0], texts[2]]) {
    const hit = await message(page, t).getByTestId('message-text').evaluate((el) => {
      const r = el.getBoundingClientRect();
      const at = document.elementFromPoint(r.left + 4, r.top + r.height / 2);
      return el.contains(at);
    });
    assert.ok(hit, `the text of "${t}" is hit at its place`);
  }
  // And the neighbours look the same whether the marks are drawn or not: none reach them.
  const shots = async () => {
    const out = [];
    for (const t of [texts[0], texts[2]]) {
      const box = await message(page, t).locator('.bubble').boundingBox();
      out.push(await page.screenshot({ clip: { x: box.x, y: box.y, width: box.width, height: box.height }, animations: 'disabled' }));
    }
    return out;
  };
  const drawn = await shots();
  await zalgoText.evaluate((el) => { el.style.visibility = 'hidden'; });
  const hidden = await shots();
  assert.ok(drawn[0].equals(hidden[0]), 'nothing of the marks is drawn over the message above');
  assert.ok(drawn[1].equals(hidden[1]), 'nothing of the marks is drawn over the message below');
  page.assertClean();
});

test('names in other scripts drawn like Latin ones read as the Latin name', async () => {
  const { context, page } = await newPage(browser);
  await page.goto('/');
  const keys = await page.evaluate(async (names) => {
    const src = document.querySelector('script[type=module]').src.replace('main.js', 'lookalike.js');
    const { nameKey } = await import(src);
    return names.map(nameKey);
  }, ['Kau', 'Καυ', 'SAM', 'ᏚᎪᎷ', 'JAKE', 'ᎫᎪᏦᎬ', 'Ann', '𝐀𝐧𝐧', 'Anna', 'Bob']);
  assert.equal(keys[1], keys[0], 'Greek Καυ reads as Kau');
  assert.equal(keys[3], keys[2], 'Cherokee ᏚᎪᎷ reads as SAM');
  assert.equal(keys[5], keys[4], 'Cherokee ᎫᎪᏦᎬ reads as JAKE');
  assert.equal(keys[7], keys[6], 'bold 𝐀𝐧𝐧 reads as Ann');
  assert.notEqual(keys[8], keys[6]);
  assert.notEqual(keys[9], keys[6]);
  await context.close();
});
