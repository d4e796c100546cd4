// Offline: the banner says so, a message written meanwhile waits (never "failed") and goes out
// exactly once when the network is back; the same when the line dies without the browser noticing.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, chatItem, launch, message, openChat, send, signIn, unique, waitOnline } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

const SENT = '[data-testid="msg-status"]:is([data-state="sent"], [data-state="read"])';

async function pair(tag) {
  const emailA = `olga.${tag}@example.com`;
  const emailB = `piet.${tag}@example.com`;
  const a = await Api.register(`Olga ${tag}`, emailA);
  const b = await Api.register(`Piet ${tag}`, emailB);
  const chat = await a.private(b.user.id);
  return { emailA, emailB, a, b, chat };
}

async function stateOf(locator) {
  return locator.getByTestId('msg-status').getAttribute('data-state');
}

test('network off for 45 s: offline banner, the message waits, then goes out once', async () => {
  const tag = unique('o').slice(-6);
  const { emailA, emailB, a, chat } = await pair(tag);
  const A = await signIn(browser, emailA, { clock: true });
  const B = await signIn(browser, emailB);
  await openChat(A.page, `Piet ${tag}`);
  await openChat(B.page, `Olga ${tag}`);
  const banner = A.page.getByTestId('conn-banner');

  await A.context.setOffline(true);
  await A.page.locator('[data-testid="conn-banner"][data-state="offline"]').waitFor();
  assert.match(await banner.textContent(), /You are offline/);
  assert.ok(await banner.isVisible(), 'the offline banner shows at once');

  const text = unique('while-offline');
  await send(A.page, text);
  const mine = message(A.page, text);
  await mine.locator('[data-testid="msg-status"][data-state="waiting"]').waitFor();
  assert.equal(await mine.getByTestId('msg-status').textContent(), 'Waiting for network');
  // The chat list shows it too, as the chat's newest message, not the last one the server has.
  const preview = chatItem(A.page, `Piet ${tag}`).getByTestId('chat-preview');
  assert.equal(await preview.textContent(), `Waiting for network: ${text}`);

  // 45 s without network: every timer of the page runs; nothing turns into a failure.
  for (let s = 0; s < 45; s += 5) await A.page.clock.fastForward(5000);
  assert.equal(await stateOf(mine), 'waiting');
  assert.equal(await mine.getByRole('alert').count(), 0, 'no "Not sent" alert');
  assert.equal(await banner.getAttribute('data-state'), 'offline');
  assert.ok(await banner.isVisible());

  // "Back online." shows for 2.5 s: what the banner said is recorded as it changes, so that a
  // busy machine's slow polling cannot miss it.
  await A.page.evaluate(() => {
    const el = document.querySelector('[data-testid="conn-banner"]');
    window.bannerSaid = [];
    new MutationObserver(() => {
      if (!el.hidden) window.bannerSaid.push(`${el.dataset.state}: ${el.textContent}`);
    }).observe(el, { attributes: true, childList: true, subtree: true, characterData: true });
  });
  await A.context.setOffline(false);
  await mine.locator(SENT).waitFor();
  await message(B.page, text).waitFor();
  await banner.waitFor({ state: 'hidden' });
  assert.ok((await A.page.evaluate(() => window.bannerSaid)).includes('back: Back online.'), 'the banner said "Back online."');
  await A.page.waitForFunction((t) => [...document.querySelectorAll('[data-testid="chat-preview"]')].some((e) => e.textContent === `You: ${t}`), text);

  // Exactly once, on both sides and on the server.
  assert.equal(await message(B.page, text).count(), 1);
  assert.equal(await message(A.page, text).count(), 1);
  const history = await a.req('GET', `/chats/${chat.id}/messages?limit=10`);
  assert.equal(history.messages.filter((m) => m.body === text).length, 1);
  A.page.assertClean();
  B.page.assertClean();
  await A.context.close();
  await B.context.close();
});

test('a line that dies silently: no "failed" after 10 s; the probe reconnects and the message lands once', async () => {
  const tag = unique('d').slice(-6);
  const { emailA, emailB, a, chat } = await pair(tag);
  // A's WebSockets go through the test. The first one carries the send to the server and then
  // goes silent both ways, without closing: the browser cannot tell.
  let sockets = 0;
  const text = unique('into-the-void');
  const route = (ws) => {
    sockets += 1;
    const first = sockets === 1;
    let dead = false;
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      if (dead) return;
      server.send(m);
      if (first && String(m).includes(text)) dead = true;
    });
    server.onMessage((m) => {
      if (!dead) ws.send(m);
    });
  };
  const A = await signIn(browser, emailA, { clock: true, setup: (page) => page.routeWebSocket(/\/api\/v1\/ws/, route) });
  const B = await signIn(browser, emailB);
  await openChat(A.page, `Piet ${tag}`);
  await openChat(B.page, `Olga ${tag}`);
  assert.equal(sockets, 1, 'the page is connected through the route');

  await send(A.page, text);
  const mine = message(A.page, text);
  await message(B.page, text).waitFor(); // the server has it; its ack is lost on the way back
  await A.page.clock.fastForward(10500);
  await mine.locator('[data-testid="msg-status"][data-state="waiting"]').waitFor();
  assert.equal(await mine.getByRole('alert').count(), 0, 'no "Not sent" alert after 10 s');

  // The probe's ping gets no answer: the socket is dropped, a new one resends with the same client_id.
  await A.page.clock.fastForward(5500);
  await mine.locator(SENT).waitFor();
  assert.ok(sockets >= 2, `reconnected (${sockets} sockets)`);
  assert.equal(await message(B.page, text).count(), 1);
  assert.equal(await message(A.page, text).count(), 1);
  const history = await a.req('GET', `/chats/${chat.id}/messages?limit=10`);
  assert.equal(history.messages.filter((m) => m.body === text).length, 1, 'the resend did not duplicate');
  A.page.assertClean();
  B.page.assertClean();
  await A.context.close();
  await B.context.close();
});

test('a chat opened offline loads once the network is back; what was written meanwhile shows all along', async () => {
  const tag = unique('f').slice(-6);
  const { emailB, a, chat } = await pair(tag);
  await a.send(chat.id, 'first words');
  const B = await signIn(browser, emailB);
  const page = B.page;
  await chatItem(page, `Olga ${tag}`).waitFor();

  await B.context.setOffline(true);
  await page.locator('[data-testid="conn-banner"][data-state="offline"]').waitFor();
  await chatItem(page, `Olga ${tag}`).click();
  await page.getByTestId('history-status').getByText('Could not load the messages.').waitFor();
  const text = unique('offline-open');
  await send(page, text);
  const mine = message(page, text);
  await mine.locator('[data-testid="msg-status"][data-state="waiting"]').waitFor();

  // Back online: the history loads by itself, the message goes out, and new ones show.
  await B.context.setOffline(false);
  await message(page, 'first words').waitFor();
  await mine.locator(SENT).waitFor();
  assert.equal(await page.getByTestId('history-status').getByText('Could not load the messages.').count(), 0);
  await a.send(chat.id, 'are you there?');
  await message(page, 'are you there?').waitFor();
  assert.equal(await message(page, text).count(), 1);
  page.assertClean();
  await B.context.close();
});

test('a socket that opens but never says hello is dropped and tried again; the tab syncs', async () => {
  const tag = unique('h').slice(-6);
  const { emailA, b, chat } = await pair(tag);
  // A's WebSockets go through the test. The first carries on as usual until the test ends it;
  // the second is accepted and then says nothing, as an upgrade a stalled line or a proxy sat
  // on; later ones reach the server.
  const sockets = [];
  const route = (ws) => {
    sockets.push(ws);
    if (sockets.length === 2) return; // open, silent both ways, never closed
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => ws.send(m));
  };
  // Once the line stalls, the API does not answer either (a dropped socket that never said
  // hello makes the page ask whether its session is alive) until the test lets it.
  let stalled = false;
  const held = [];
  const setup = async (page) => {
    await page.routeWebSocket(/\/api\/v1\/ws/, route);
    await page.route('**/api/v1/users/me', (r) => (stalled ? held.push(r) : r.continue()));
  };
  const A = await signIn(browser, emailA, { clock: true, setup });
  await openChat(A.page, `Piet ${tag}`);
  assert.equal(sockets.length, 1, 'the page is connected through the route');

  stalled = true;
  await sockets[0].close({ code: 1011, reason: 'test' });
  await A.page.waitForFunction(() => document.querySelector('[data-testid="conn-banner"]')?.dataset.state === 'reconnecting');
  for (let i = 0; sockets.length < 2; i += 1) {
    assert.ok(i < 600, `the page opened a second socket (${sockets.length})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const text = unique('while-silent');
  await b.send(chat.id, text);

  // A minute of the page's time on the silent socket: it is given up and a new one says hello.
  for (let s = 0; s < 60; s += 5) await A.page.clock.fastForward(5000);
  await waitOnline(A.page);
  assert.ok(sockets.length >= 3, `a new socket after the silent one (${sockets.length})`);
  assert.ok(held.length >= 1, 'the page asked whether its session is alive, and got no answer');
  for (const r of held) await r.abort().catch(() => {});
  await message(A.page, text).waitFor();
  assert.equal(await message(A.page, text).count(), 1);
  A.page.assertClean();
  await A.context.close();
});

test('the session check after a failed handshake clears its 5 s bound once answered', async () => {
  // A socket that closes before its hello makes the connection ask GET /users/me whether the
  // session is alive, for 5 s at most; the timer of that bound was left running after the
  // answer. The page's own Connection class drives a socket that closed before its hello.
  const tag = unique('p').slice(-6);
  const email = `quinn.${tag}@example.com`;
  await Api.register(`Quinn ${tag}`, email);
  const A = await signIn(browser, email);
  const got = await A.page.evaluate(async () => {
    const src = document.querySelector('script[type="module"]').src;
    const { Connection } = await import(src.replace(/main\.js$/, 'connection.js'));
    // The 5 s timers started from here on that have neither fired nor been cleared.
    const pending = new Set();
    const set = window.setTimeout;
    const clear = window.clearTimeout;
    window.setTimeout = (fn, ms, ...args) => {
      const id = set.call(window, (...a) => {
        pending.delete(id);
        fn(...a);
      }, ms, ...args);
      if (ms === 5000) pending.add(id);
      return id;
    };
    window.clearTimeout = (id) => {
      pending.delete(id);
      clear.call(window, id);
    };
    const statuses = [];
    const c = new Connection({ onFrame() {}, onStatus: (s) => statuses.push(s), onSignedOut: () => statuses.push('signed out') });
    try {
      c.stopped = false;
      const ws = {};
      c.ws = ws;
      c.gotHello = false;
      await c.closed(ws, { code: 1006 });
      return { pending: pending.size, statuses: [...statuses] };
    } finally {
      c.stop(); // its reconnect
      window.setTimeout = set;
      window.clearTimeout = clear;
    }
  });
  assert.deepEqual(got.statuses, ['reconnecting', 'reconnecting'], 'the session was found alive and a reconnect planned');
  assert.equal(got.pending, 0, 'no 5 s timer of the session check is left running');
  A.page.assertClean();
  await A.context.close();
});
