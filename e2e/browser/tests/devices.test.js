// One user on two devices: read state and own messages stay in sync.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, chatItem, launch, message, openChat, send, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('first on two devices: reading on one clears the badge on the other; sends show as own', async () => {
  const d1 = await signIn(browser, 'first@example.com');
  const d2 = await signIn(browser, 'first@example.com');
  const third = await Api.login('third@example.com');
  const general = await third.chatByTitle('General');

  // Both devices sit on another chat while Third writes in General.
  await openChat(d1.page, 'Random');
  await openChat(d2.page, 'Random');
  const text = unique('from-third');
  await third.send(general.id, text);
  for (const d of [d1, d2]) {
    await chatItem(d.page, 'General').getByTestId('unread-badge').waitFor();
    await chatItem(d.page, 'General').getByTestId('chat-preview').getByText(`Third: ${text}`).waitFor();
  }

  // Reading it on device 1 clears the badge on device 2, with no action there.
  await openChat(d1.page, 'General');
  await message(d1.page, text).waitFor();
  await chatItem(d1.page, 'General').getByTestId('unread-badge').waitFor({ state: 'detached' });
  await chatItem(d2.page, 'General').getByTestId('unread-badge').waitFor({ state: 'detached' });

  // A message sent from device 1 appears on device 2 as its own (right side, with a mark).
  await openChat(d2.page, 'General');
  const mine = unique('from-d1');
  await send(d1.page, mine);
  const onD2 = message(d2.page, mine);
  await onD2.waitFor();
  assert.equal(await onD2.getAttribute('data-own'), 'true');
  await onD2.getByTestId('msg-status').waitFor();
  await chatItem(d2.page, 'General').getByTestId('chat-preview').getByText(`You: ${mine}`).waitFor();
  assert.equal(await chatItem(d2.page, 'General').getByTestId('unread-badge').count(), 0);
  assert.equal(await message(d2.page, mine).count(), 1);
  assert.equal(await message(d1.page, mine).count(), 1);

  d1.page.assertClean();
  d2.page.assertClean();
  await d1.context.close();
  await d2.context.close();
});
