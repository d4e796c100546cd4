// Reconnection: the server restarts; the banner shows, the client reconnects and syncs, and
// messages sent meanwhile (by others over REST, and by this tab while offline) appear once.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, launch, message, openChat, send, signIn, startServer, stopServer, unique, waitOnline } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('server restart: banner, reconnect, sync, resend, no duplicates', async () => {
  const second = await Api.login('second@example.com');
  const chat = await second.chatByTitle('First');
  const { context, page } = await signIn(browser, 'first@example.com');
  await openChat(page, 'Second');
  const frames = [];
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => frames.push('> ' + String(f.payload).slice(0, 140)));
    ws.on('framereceived', (f) => frames.push('< ' + String(f.payload).slice(0, 140)));
    ws.on('close', () => frames.push('closed'));
  });
  const banner = page.getByTestId('conn-banner');
  assert.equal(await banner.isVisible(), false);

  await stopServer();
  await banner.getByText('Reconnecting').waitFor();

  // Written while the server is away: it waits ("Waiting for network", not failed) and goes out
  // after the reconnect.
  const offline = unique('offline');
  await send(page, offline);
  await message(page, offline).locator('[data-testid="msg-status"][data-state="waiting"]').waitFor();

  await startServer();
  // Others write while this tab is still away (its next attempt is a backoff away).
  const missed = [unique('missed-1'), unique('missed-2')];
  for (const text of missed) await second.send(chat.id, text);

  await waitOnline(page, 20000);
  await banner.waitFor({ state: 'hidden' });
  for (const text of missed) await message(page, text).waitFor();
  await message(page, offline).locator('[data-testid="msg-status"]:is([data-state="sent"], [data-state="read"])').waitFor();

  // Live again: a new message arrives without a reload.
  const live = unique('live');
  await second.send(chat.id, live);
  await message(page, live).waitFor();

  // Exactly once each, in seq order, and the server has the offline message once.
  for (const text of [...missed, offline, live]) assert.equal(await message(page, text).count(), 1, text);
  const seqs = await page.getByTestId('message').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)).filter(Boolean));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'messages are in seq order');
  assert.equal(new Set(seqs).size, seqs.length, 'no duplicate seqs');
  const history = await second.req('GET', `/chats/${chat.id}/messages?limit=20`);
  assert.equal(history.messages.filter((m) => m.body === offline).length, 1, 'the resend did not duplicate');

  if (process.env.SHOW_FRAMES) console.log(frames.join('\n'));
  page.assertClean();
  await context.close();
});
