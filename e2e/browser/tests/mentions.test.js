// Mentions: "@" in the composer completes the chat's members (keyboard and mouse, Escape
// closes), the message carries the chosen ids, the mentioned member sees it highlighted and an
// @ badge on the chat in their list until they read it; @all is offered only where allowed. With
// notify=mentions, a hidden tab notifies only of messages that mention me or @all.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, chatItem, launch, message, openChat, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('mention completion, highlight on the other side, @ badge until read', async () => {
  const tag = unique('m').slice(-6);
  const annEmail = `ann.${tag}@example.com`;
  const benEmail = `ben.${tag}@example.com`;
  const ann = await Api.register(`Ann ${tag}`, annEmail);
  const ben = await Api.register(`Ben ${tag}`, benEmail);
  const cid = await Api.register(`Cid ${tag}`);
  const title = `Team ${tag}`;
  const group = await ann.group(title, [ben.user.id, cid.user.id]);

  const a = await signIn(browser, annEmail);
  const b = await signIn(browser, benEmail);
  await openChat(a.page, title);
  const box = a.page.getByLabel('Message', { exact: true });
  const list = a.page.getByTestId('mention-list');
  const options = a.page.getByTestId('mention-option');

  // "@" offers every other member and @all; Escape closes the list and keeps the text.
  await box.click();
  await a.page.keyboard.type('@');
  await list.waitFor();
  assert.deepEqual(await options.locator('.mention-name').allTextContents(), [`Ben ${tag}`, `Cid ${tag}`, 'all']);
  await a.page.keyboard.press('Escape');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await box.inputValue(), '@');
  await box.fill('');

  // Keyboard: narrow down, arrows move, Enter chooses (and does not send).
  await a.page.keyboard.type('Hi @');
  await list.waitFor();
  await a.page.keyboard.press('ArrowDown'); // Cid
  await a.page.keyboard.press('ArrowUp'); // Ben again
  await a.page.keyboard.press('Enter');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await box.inputValue(), `Hi @Ben ${tag} `);
  // Mouse: the next name by a click.
  await a.page.keyboard.type('and @ci');
  await list.waitFor();
  assert.deepEqual(await options.locator('.mention-name').allTextContents(), [`Cid ${tag}`]);
  await options.first().click();
  assert.equal(await box.inputValue(), `Hi @Ben ${tag} and @Cid ${tag} `);
  await a.page.keyboard.type('look');
  await a.page.keyboard.press('Enter');
  const text = `Hi @Ben ${tag} and @Cid ${tag} look`;
  // Stored: the bubble shows "sent" once the server acknowledged it (before that it is only
  // Ann's pending copy, and the history below may not have it yet).
  await message(a.page, text).locator('[data-testid="msg-status"][data-state="sent"]').waitFor();

  // The stored message mentions both, by id.
  const hist = await ben.req('GET', `/chats/${group.id}/messages`);
  const sent = hist.messages.find((m) => m.body === text);
  assert.deepEqual(sent.mentions, [ben.user.id, cid.user.id]);
  // Ann sees both mentions, neither as hers.
  await message(a.page, text).getByTestId('mention').first().waitFor();
  assert.equal(await message(a.page, text).getByTestId('mention-me').count(), 0);

  // Ben's list shows the @ badge; in the chat, his mention stands out and Cid's does not.
  await chatItem(b.page, title).getByTestId('mention-badge').waitFor();
  await openChat(b.page, title);
  const got = message(b.page, text);
  await got.getByTestId('mention-me').getByText(`@Ben ${tag}`, { exact: true }).waitFor();
  await got.getByTestId('mention').getByText(`@Cid ${tag}`, { exact: true }).waitFor();
  assert.match(await got.getAttribute('class'), /mentions-me/);
  // Read: the badge goes, here and on the server.
  await chatItem(b.page, title).getByTestId('mention-badge').waitFor({ state: 'detached' });
  for (let i = 0; i < 100; i++) {
    const c = (await ben.chats()).find((x) => x.id === group.id);
    if (c.unread_mentions === 0) break;
    assert.ok(i < 99, `unread_mentions stays ${c.unread_mentions}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // Ben may use @all; once Ann keeps it to admins, his completion no longer offers it.
  const bbox = b.page.getByLabel('Message', { exact: true });
  await bbox.click();
  await b.page.keyboard.type('@al');
  await b.page.getByTestId('mention-option').getByText('all', { exact: true }).waitFor();
  await b.page.keyboard.press('Escape');
  await bbox.fill('');
  await a.page.getByTestId('members-button').click();
  const d = a.page.getByTestId('members-dialog');
  await d.getByLabel('Only admins may mention @all').check();
  await d.getByRole('button', { name: 'Save changes' }).click();
  await d.getByText('Saved.').waitFor();
  await a.page.keyboard.press('Escape');
  for (let i = 0; ; i++) { // chat.updated reaches Ben's tab
    await bbox.fill('');
    await bbox.click();
    await b.page.keyboard.type('@');
    await b.page.getByTestId('mention-list').waitFor();
    const names = await b.page.getByTestId('mention-option').locator('.mention-name').allTextContents();
    if (!names.includes('all')) break;
    assert.ok(i < 50, `Ben is still offered @all: ${names}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal((await ben.chats()).find((x) => x.id === group.id).mention_all, 'admins');

  a.page.assertClean();
  b.page.assertClean();
  await a.context.close();
  await b.context.close();
});

// Records notifications and lets the test hide the tab (as notify.test.js does).
async function recordNotifications(page) {
  await page.context().grantPermissions(['notifications']);
  await page.addInitScript(() => {
    window.__shown = [];
    window.__hidden = false;
    class Recorded {
      constructor(title, opts = {}) {
        window.__shown.push({ title, body: opts.body });
      }
      close() {}
      static get permission() { return 'granted'; }
      static requestPermission() { return Promise.resolve('granted'); }
    }
    window.Notification = Recorded;
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => window.__hidden });
    window.__hide = (yes) => {
      window.__hidden = yes;
      document.dispatchEvent(new Event('visibilitychange'));
    };
  });
}

test('notify=mentions: a hidden tab shows only the messages that mention me or @all', async () => {
  const tag = unique('q').slice(-6);
  const email = `dora.${tag}@example.com`;
  const dora = await Api.register(`Dora ${tag}`, email);
  const eli = await Api.register(`Eli ${tag}`);
  const title = `Quiet ${tag}`;
  const group = await eli.group(title, [dora.user.id]);
  await dora.req('PATCH', `/chats/${group.id}/settings`, { notify: 'mentions' });

  const { context, page } = await signIn(browser, email, { setup: recordNotifications });
  await page.evaluate(() => window.__hide(true));
  await eli.send(group.id, 'not for you');
  await chatItem(page, title).getByTestId('chat-preview').getByText('not for you').waitFor();
  await eli.req('POST', `/chats/${group.id}/messages`, { body: `@Dora ${tag} for you`, client_id: unique('c'), mentions: [dora.user.id] });
  await page.waitForFunction(() => window.__shown.length > 0);
  await eli.req('POST', `/chats/${group.id}/messages`, { body: '@all for everyone', client_id: unique('c'), mention_all: true });
  await page.waitForFunction(() => window.__shown.length > 1);
  const shown = await page.evaluate(() => window.__shown.map((n) => n.body));
  assert.deepEqual(shown, [`Eli ${tag}: @Dora ${tag} for you`, `Eli ${tag}: @all for everyone`]);
  await chatItem(page, title).getByTestId('mention-badge').waitFor();
  page.assertClean();
  await context.close();
});
