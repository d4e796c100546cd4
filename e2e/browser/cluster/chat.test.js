// Two users live across two chatd instances of a real cluster (run-cluster.sh): First's page
// talks to instance 1 directly and Second's to instance 2, so every live event (message, read
// mark, typing, presence) has to cross Redis; a third page, Second's other device, goes through
// nginx. /metrics of each instance proves where each WebSocket is.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, chatItem, launch, message, openChat, send, signIn, unique } from '../lib.js';

const INSTANCES = (process.env.CHAT_E2E_INSTANCES || '').split(',').filter(Boolean).map((u) => u.replace(/\/$/, ''));
if (INSTANCES.length < 2) throw new Error('CHAT_E2E_INSTANCES needs two instance URLs: run this suite with e2e/browser/run-cluster.sh');

/** wsConns reads chat_ws_connections and the instance id from one instance's /metrics. */
async function wsConns(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = text.match(/^chat_ws_connections\{[^}]*instance_id="([^"]+)"[^}]*\}\s+(\S+)$/m);
  assert.ok(m, `chat_ws_connections in ${url}/metrics`);
  return { id: m[1], conns: Number(m[2]) };
}

/**
 * waitConns polls until every instance has the expected number of WebSockets (want, one count
 * per instance), or until ok(counts) holds.
 */
async function waitConns(want, ok = (got) => got.every((g, i) => g.conns === want[i]), timeout = 10000) {
  const until = Date.now() + timeout;
  for (;;) {
    const got = await Promise.all(INSTANCES.map(wsConns));
    if (ok(got)) return got;
    if (Date.now() > until) assert.fail(`WebSockets per instance: want ${want || ok}, got ${got.map((g) => `${g.id}=${g.conns}`)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The dot of a chat's other member; waitFor() on it waits for it in the DOM (an offline dot is
// hidden by the style sheet).
const presence = (page, title, online) => {
  const dot = chatItem(page, title).locator(`[data-testid="presence"][data-online="${online}"]`);
  return { waitFor: (opts = {}) => dot.waitFor({ state: 'attached', ...opts }) };
};

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('first and second on different instances: delivery, ✓✓, typing, presence, and a device through nginx', async (t) => {
  const [i1, i2] = INSTANCES;
  const idle = await waitConns([0, 0]);
  assert.notEqual(idle[0].id, idle[1].id, 'two distinct instances');

  // First on instance 1. Nobody else is online yet (a fresh database).
  const first = await signIn(browser, 'first@example.com', { base: i1 });
  const A = first.page;
  await waitConns([1, 0]);
  await presence(A, 'Second', false).waitFor();

  // Second on instance 2: First sees the presence dot turn on, live, across instances.
  const second = await signIn(browser, 'second@example.com', { base: i2 });
  const B = second.page;
  const pinned = await waitConns([1, 1]);
  t.diagnostic(`first on ${pinned[0].id} (${i1}), second on ${pinned[1].id} (${i2})`);
  await presence(A, 'Second', true).waitFor();
  await presence(B, 'First', true).waitFor();

  // Second's other device, through nginx; it looks at another chat.
  const phone = await signIn(browser, 'second@example.com', { base: BASE });
  const P = phone.page;
  const withPhone = await waitConns(null, (got) => got[0].conns + got[1].conns === 3);
  t.diagnostic(`second's nginx page landed on ${withPhone[0].conns === 2 ? withPhone[0].id : withPhone[1].id}`);
  await openChat(P, 'General');
  await presence(P, 'First', true).waitFor();

  // Second opens the private chat; First opens it too and sees Second online in the header.
  await openChat(B, 'First');
  await openChat(A, 'Second');
  await A.getByTestId('pane-sub').getByText('online', { exact: true }).waitFor();

  // Typing crosses instances: First types, Second sees it. (Before First's first send: the
  // client sends at most one typing frame per chat every 2 s, and filling the box to send counts.)
  const boxA = A.getByLabel('Message', { exact: true });
  await boxA.pressSequentially('typing…', { delay: 20 });
  await B.getByTestId('typing').getByText('First is typing…').waitFor();
  await boxA.fill('');

  // First sends: Second sees it live, its open window reads it, and First's message turns ✓✓.
  const hello = unique('hello');
  await send(A, hello);
  const mine = message(A, hello);
  await mine.waitFor();
  assert.equal(await mine.getAttribute('data-own'), 'true');
  const theirs = message(B, hello);
  await theirs.waitFor();
  assert.equal(await theirs.getAttribute('data-own'), 'false');
  await mine.locator('[data-testid="msg-status"][data-state="read"]').waitFor();
  assert.equal(await mine.getByTestId('msg-status').textContent(), '✓✓');
  // The nginx device got it too (preview), and no unread badge: the other device read it.
  await chatItem(P, 'First').getByTestId('chat-preview').getByText(hello).waitFor();
  await chatItem(P, 'First').getByTestId('unread-badge').waitFor({ state: 'detached' });
  assert.equal(await chatItem(B, 'First').getByTestId('unread-badge').count(), 0);

  // The message ended First's typing on Second's screen. Now the other way: Second types.
  await B.locator('[data-testid="typing"]:empty').waitFor();
  await B.getByLabel('Message', { exact: true }).pressSequentially('typing…', { delay: 20 });
  await A.getByTestId('typing').getByText('Second is typing…').waitFor();
  await B.getByLabel('Message', { exact: true }).fill('');

  // Second answers from the nginx device: First reads it at once (✓✓ there), Second's other
  // window shows it as its own.
  await openChat(P, 'First');
  const reply = unique('reply');
  await send(P, reply);
  await message(A, reply).waitFor();
  await A.locator('[data-testid="typing"]:empty').waitFor();
  assert.equal(await message(B, reply).getAttribute('data-own'), 'true');
  await message(P, reply).locator('[data-testid="msg-status"][data-state="read"]').waitFor();
  await message(B, reply).locator('[data-testid="msg-status"][data-state="read"]').waitFor();

  // Each message is on screen once, and nothing went wrong on any page.
  for (const p of [A, B, P]) {
    for (const text of [hello, reply]) assert.equal(await message(p, text).count(), 1, `${text} once`);
    const seqs = await p.getByTestId('message').evaluateAll((els) => els.map((e) => e.dataset.seq).filter(Boolean));
    assert.equal(new Set(seqs).size, seqs.length, 'no duplicate seqs');
    p.assertClean();
  }

  // Second leaves on both devices: after the offline grace (3 s) First, on the other instance,
  // sees the dot go off.
  await phone.context.close();
  await second.context.close();
  await waitConns([1, 0]);
  await presence(A, 'Second', false).waitFor({ timeout: 10000 });
  await A.getByTestId('pane-sub').getByText('online', { exact: true }).waitFor({ state: 'detached' });
  A.assertClean();
  await first.context.close();
});
