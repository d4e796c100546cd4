// Two users live: sending, delivery marks, unread badges and the typing indicator.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chatItem, launch, message, openChat, send, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('first and second chat live: delivery, ✓✓ on read, badges, typing', async () => {
  const first = await signIn(browser, 'first@example.com');
  const second = await signIn(browser, 'second@example.com');
  const A = first.page;
  const B = second.page;

  // Second reads the private chat, then looks at another chat.
  await openChat(B, 'First');
  await chatItem(B, 'First').getByTestId('unread-badge').waitFor({ state: 'detached' });
  await openChat(B, 'General');

  // Presence: each sees the other online, in the list and in the pane header.
  await chatItem(A, 'Second').locator('[data-testid="presence"][data-online="true"]').waitFor();
  await openChat(A, 'Second');
  await A.getByTestId('pane-sub').getByText('online', { exact: true }).waitFor();
  const hello = unique('hello');
  await send(A, hello);
  // The sender sees it at once, then acknowledged with one tick.
  const mine = message(A, hello);
  await mine.waitFor();
  assert.equal(await mine.getAttribute('data-own'), 'true');
  await mine.locator('[data-testid="msg-status"][data-state="sent"]').waitFor();
  assert.equal(await mine.getByTestId('msg-status').textContent(), '✓');

  // Second's list shows the preview and an unread badge, live.
  const item = chatItem(B, 'First');
  await item.getByTestId('unread-badge').getByText('1', { exact: true }).waitFor();
  await item.getByTestId('chat-preview').getByText(hello).waitFor();
  // The chat moved above the one Second is looking at (sorted by activity).
  const order = await B.getByTestId('chat-title').allTextContents();
  assert.ok(order.indexOf('First') < order.indexOf('General'), `list order: ${order}`);

  // Second opens it: the message is read, the badge goes, and First sees ✓✓.
  await openChat(B, 'First');
  const theirs = message(B, hello);
  await theirs.waitFor();
  assert.equal(await theirs.getAttribute('data-own'), 'false');
  await B.getByTestId('unread-divider').waitFor();
  await item.getByTestId('unread-badge').waitFor({ state: 'detached' });
  await mine.locator('[data-testid="msg-status"][data-state="read"]').waitFor();
  assert.equal(await mine.getByTestId('msg-status').textContent(), '✓✓');

  // Typing: Second types, First sees it; it fades when Second sends.
  await B.getByLabel('Message', { exact: true }).pressSequentially('typing…', { delay: 20 });
  await A.getByTestId('typing').getByText('Second is typing…').waitFor();
  await B.getByLabel('Message', { exact: true }).fill('');
  const reply = unique('reply');
  await send(B, reply);
  await message(A, reply).waitFor();
  await A.locator('[data-testid="typing"]:empty').waitFor();
  // First is looking at the chat, so the reply is read at once: Second sees ✓✓.
  await message(B, reply).locator('[data-testid="msg-status"][data-state="read"]').waitFor();
  // No badge for First: the chat is open in an active window.
  assert.equal(await chatItem(A, 'Second').getByTestId('unread-badge').count(), 0);

  // Shift+Enter makes a new line; Enter sends both lines as one message.
  const box = A.getByLabel('Message', { exact: true });
  await box.fill('line one');
  await box.press('Shift+Enter');
  await box.pressSequentially('line two');
  await box.press('Enter');
  await message(B, 'line one\nline two').waitFor();

  // Each message is on screen once.
  for (const p of [A, B]) {
    const seqs = await p.getByTestId('message').evaluateAll((els) => els.map((e) => e.dataset.seq).filter(Boolean));
    assert.equal(new Set(seqs).size, seqs.length, 'no duplicate seqs');
    assert.equal(await message(p, hello).count(), 1);
    p.assertClean();
  }
  await first.context.close();
  await second.context.close();
});
