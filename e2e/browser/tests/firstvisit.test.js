// The first visit: what a new browser downloads and how soon it can act, measured from
// Chromium's network events (docs/PERFORMANCE.md, "The web client's first visit"). The test
// asserts what does not depend on the machine: every script and stylesheet comes compressed,
// and every module is requested by the page itself (modulepreload), so there is no second round
// of requests discovered import by import. The times it prints are for the record only.
//
// FIRSTVISIT_MEASURE_ONLY=1 prints the numbers without asserting (to measure an older build:
// CHATD_BIN=old-chatd FIRSTVISIT_MEASURE_ONLY=1 bash e2e/browser/run.sh tests/firstvisit.test.js);
// FIRSTVISIT_RUNS=N visits N times per network and prints the median times.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, waitOnline } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

const measureOnly = process.env.FIRSTVISIT_MEASURE_ONLY === '1';
const runs = Number(process.env.FIRSTVISIT_RUNS) || 1; // more runs, steadier medians

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.floor(s.length / 2)]);
}

// A slow mobile network, as in DevTools: 150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up.
const SLOW = { offline: false, latency: 150, downloadThroughput: (1.6e6 / 8), uploadThroughput: (750e3 / 8) };

/** visit loads the app in a fresh context, signs in as first@example.com and measures. */
async function visit(network) {
  const { context, page } = await newPage(browser);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  if (network) await cdp.send('Network.emulateNetworkConditions', network);
  const reqs = new Map();
  cdp.on('Network.requestWillBeSent', (e) => {
    reqs.set(e.requestId, { url: e.request.url, initiator: e.initiator.type, phase: 'signin', bytes: 0, encoding: '' });
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = reqs.get(e.requestId);
    if (r) r.encoding = e.response.headers['content-encoding'] || e.response.headers['Content-Encoding'] || '';
  });
  cdp.on('Network.loadingFinished', (e) => {
    const r = reqs.get(e.requestId);
    if (r) r.bytes = e.encodedDataLength;
  });
  cdp.on('Network.webSocketCreated', (e) => reqs.set(e.requestId, { url: e.url, initiator: 'script', phase: 'app', bytes: 0, encoding: '' }));
  cdp.on('Network.webSocketFrameReceived', (e) => {
    const r = reqs.get(e.requestId);
    if (r) r.bytes += e.response.payloadData.length;
  });

  // Only the navigation's start is awaited: the load event under the slow network emulation
  // of a busy machine can take longer than goto's 30 s, and what is measured is when the form
  // is usable, below (performance.now() counts from the navigation's start either way).
  await page.goto('/', { waitUntil: 'commit', timeout: 180000 });
  // Usable sign-in form: the email field is on screen and has the focus (the app puts it there).
  const signInReady = await page.waitForFunction(() => {
    const el = document.querySelector('input[type="email"]');
    return el && document.activeElement === el && performance.now();
  }, null, { polling: 'raf', timeout: 180000 }).then((h) => h.jsonValue());
  await settle(reqs);
  for (const r of reqs.values()) r.phase = 'signin';
  const signinIds = new Set(reqs.keys());

  await page.getByLabel('Email').fill('first@example.com');
  await page.getByLabel('Password').fill('password');
  await page.evaluate(() => {
    document.querySelector('form').addEventListener('submit', () => { window.submittedAt = performance.now(); }, { capture: true, once: true });
  });
  await page.getByRole('button', { name: 'Sign in' }).click();
  // The chat list is on screen with the demo chats (the WebSocket may still be saying hello).
  const listShown = await page.waitForFunction(() => document.querySelectorAll('[data-testid="chat-item"]').length >= 3
    && performance.now() - window.submittedAt, null, { polling: 'raf', timeout: 180000 }).then((h) => h.jsonValue());
  await waitOnline(page, 180000);
  await settle(reqs);
  for (const [id, r] of reqs) if (!signinIds.has(id)) r.phase = 'app';
  const list = [...reqs.values()];
  await context.close();
  return { signInReady, listShown, list };
}

/** settle waits until no request has started for half a second (at most 15 s). */
async function settle(reqs) {
  const until = Date.now() + 15000;
  let n = -1;
  while (reqs.size !== n && Date.now() < until) {
    n = reqs.size;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function sum(list) {
  return list.reduce((n, r) => n + r.bytes, 0);
}

test('first visit: compressed, one round of module requests; bytes and time to interactive', async (t) => {
  const rows = [];
  for (const [name, network] of [['loopback', null], ['slow 4G (150 ms, 1.6 Mbit/s)', SLOW]]) {
    const visits = [];
    for (let i = 0; i < runs; i++) visits.push(await visit(network));
    const v = visits[0];
    const signin = v.list.filter((r) => r.phase === 'signin');
    const app = v.list.filter((r) => r.phase === 'app');
    rows.push({
      network: name,
      runs,
      'sign-in requests': signin.length,
      'sign-in KB': +(sum(signin) / 1024).toFixed(1),
      'sign-in usable ms (median)': median(visits.map((x) => x.signInReady)),
      'after sign-in KB': +(sum(app) / 1024).toFixed(1),
      'sign-in to chat list ms (median)': median(visits.map((x) => x.listShown)),
    });
    if (network) continue;
    t.diagnostic(signin.map((r) => `${r.url.replace(/^https?:\/\/[^/]+/, '').replace(/\/assets\/[0-9a-f]+\//, '/assets/…/')} ${r.bytes} B ${r.encoding || 'identity'} (${r.initiator})`).join('\n'));
    if (measureOnly) continue;
    const assets = signin.filter((r) => /\.(js|css)$/.test(new URL(r.url).pathname));
    assert.ok(assets.length >= 20, `the client's scripts and styles were loaded (${assets.length})`);
    for (const r of assets) assert.match(r.encoding, /^(br|gzip)$/, `${r.url} is compressed`);
    const modules = signin.filter((r) => r.url.endsWith('.js'));
    const urls = modules.map((r) => r.url);
    assert.equal(new Set(urls).size, urls.length, 'each module is fetched once');
    for (const r of modules) assert.equal(r.initiator, 'parser', `${r.url} is requested by the page, not discovered by an import`);
  }
  t.diagnostic(JSON.stringify(rows, null, 1));
});
