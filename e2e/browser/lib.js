// Shared helpers of the browser tests: the server under test, Chromium, signed-in pages and a
// small REST client for arranging data from the test side.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const BASE = (process.env.CHAT_E2E_BASE_URL || '').replace(/\/$/, '');
if (!BASE) throw new Error('CHAT_E2E_BASE_URL is not set: run the suite with e2e/browser/run.sh');

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SHOTS = path.join(REPO, 'test-output', 'screenshots');
export const PASSWORD = 'password';
export const WIDE = { width: 1280, height: 800 };
export const NARROW = { width: 390, height: 844 };

/**
 * launch starts Debian's Chromium (never a downloaded browser). Headless Chromium 156 builds
 * each window's omnibox popups (chrome://omnibox-popup.top-chrome, two WebUI pages in a
 * renderer of their own) though headless never shows them: about 1.5 CPU-seconds per context,
 * nearly half of what a sign-in cost. Without them the single-instance suite took 587 CPU-s
 * instead of 815 (307 s instead of 421 on a 2-core machine). It also starts a spare renderer
 * ahead of the next page, which a page in another context (every test's pages are) cannot use:
 * 36 renderers for 20 blank contexts instead of 20, about 0.2 CPU-s a context
 * (docs/PERFORMANCE.md, "The test suite's cost"). extraArgs are more switches (perf/pagecost.mjs).
 */
export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup,SpareRendererForSitePerProcess', ...extraArgs],
  });
}

let uniq = 0;
/** unique returns a string no other test run uses. */
export function unique(prefix = 'x') {
  uniq += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${uniq}`;
}

/**
 * pauseClock pauses a page's installed clock (newPage's clock) a moment ahead of its time.
 * The clock runs until then: on a busy machine the moment asked for can pass before pauseAt
 * gets there, which then refuses it ("Cannot fast-forward to the past", seen in CI), so a
 * moment is asked for again.
 */
export async function pauseClock(page) {
  for (let tries = 1; ; tries++) {
    try {
      await page.clock.pauseAt(await page.evaluate(() => Date.now() + 100));
      return;
    } catch (err) {
      if (tries === 20 || !/fast-forward to the past/.test(String(err))) throw err;
    }
  }
}

/**
 * newPage opens a page in a fresh context (its own cookies: one "device") and watches it: page
 * errors, CSP violations and JavaScript dialogs are collected, and assertClean() fails on any.
 * base is the server the page talks to (BASE unless a cluster test pins it to one instance);
 * clock installs Playwright's controllable clock; touch makes a phone (hasTouch, isMobile).
 */
export async function newPage(browser, { viewport = WIDE, colorScheme = 'light', base = BASE, clock = false, touch = false } = {}) {
  const context = await browser.newContext({
    viewport, colorScheme, baseURL: base, locale: 'en-US', timezoneId: 'UTC', hasTouch: touch, isMobile: touch,
  });
  // A wait that takes a second on a quiet machine took over 30 s (Playwright's default) in a CI
  // run at load 10 on two cores; a real failure still fails, only later.
  context.setDefaultTimeout(60000);
  const page = await context.newPage();
  // A page whose timers the test can fast-forward (page.clock.fastForward); time flows as usual otherwise.
  if (clock) await page.clock.install();
  const problems = [];
  const dialogs = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content Security Policy|Refused to (load|execute|apply)/i.test(text)) problems.push(`CSP: ${text}`);
  });
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.problems = problems;
  page.dialogs = dialogs;
  page.assertClean = () => {
    assert.deepEqual(dialogs, [], 'no JavaScript dialog may open');
    assert.deepEqual(problems, [], 'no page errors or CSP violations');
  };
  return { context, page };
}

/**
 * signIn opens the app signed in, in a new context: the session comes from a login request of
 * the context (its cookies), and the app opens as on a return visit. The form is tested where
 * it is the subject (auth.test.js, firstvisit.test.js); a page signed in through it cost about
 * 0.25 CPU-s more. opts are newPage's, plus password and setup(page), which runs before the
 * first navigation (routes, for instance).
 */
export async function signIn(browser, email, opts = {}) {
  const { context, page } = await newPage(browser, opts);
  if (opts.setup) await opts.setup(page);
  const res = await context.request.post('/api/v1/auth/login', { data: { email, password: opts.password || PASSWORD } });
  if (!res.ok()) throw new Error(`sign-in of ${email}: ${res.status()} ${await res.text()}`);
  // What the form's sign-in leaves in the browser (main.js, SIGNED_IN), set once in this tab
  // (window.name lasts across its reloads; a sign-out clears sessionStorage): a sign-out and a
  // reload then find it gone, and the page asks the server nothing, as after the form.
  await page.addInitScript(() => {
    if (window.top !== window || window.name.includes('e2e-signed-in')) return;
    window.name += ' e2e-signed-in';
    try {
      localStorage.setItem('chat.signedIn', '1');
    } catch { /* no storage */ }
  });
  await page.goto('/');
  await page.getByTestId('chat-list').waitFor();
  await waitOnline(page);
  return { context, page };
}

/**
 * frames waits for two frames of the page: every redraw a change makes, the store's batch and
 * the pane's scroll settling (requestAnimationFrame), is done by then. Checks that nothing more
 * was drawn run after it, not after a guess at time.
 */
export function frames(page) {
  return page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/** waitUntil asks cond() every 50 ms until it is true, for at most ms; it answers whether it came true. */
export async function waitUntil(cond, ms = 30000) {
  for (const end = Date.now() + ms; !(await cond());) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/**
 * reloadAfterDialog reloads a page whose dialog was just closed by one of its buttons. The
 * dialog takes its history entry back as it closes (dialogs.js), and history.back() is
 * asynchronous: here it lands up to 80 ms later, on a busy machine later still, and a reload
 * before it lands is cancelled by it (page.reload fails: net::ERR_ABORTED).
 */
export async function reloadAfterDialog(page) {
  await page.waitForFunction(() => !history.state?.dialog);
  await page.reload();
}

/** waitOnline waits until the tab's WebSocket said hello (the banner is gone and stays gone). */
export async function waitOnline(page, timeout = 15000) {
  await page.waitForFunction(() => {
    const b = document.querySelector('[data-testid="conn-banner"]');
    return b && ['online', 'back'].includes(b.dataset.state);
  }, null, { timeout });
}

export function chatItem(page, title) {
  return page.getByTestId('chat-item').filter({ has: page.getByTestId('chat-title').getByText(title, { exact: true }) });
}

export async function openChat(page, title) {
  await chatItem(page, title).click();
  await page.getByTestId('pane-title').getByText(title, { exact: true }).waitFor();
  await page.locator('[data-testid="history-status"]:not(:has(.spinner))').waitFor();
}

/** messages returns the message bubbles of the open chat that contain text. */
export function message(page, text) {
  return page.getByTestId('message').filter({ has: page.getByTestId('message-text').getByText(text, { exact: true }) });
}

/**
 * watchJumps records in the page each message that a quote's jump highlights (class flash,
 * data-flash set), with whether it was in view then. The highlight lasts 2.5 s, and on a
 * loaded machine a wait for it can start after that: jumpedTo waits for the record instead.
 */
export async function watchJumps(page) {
  await page.evaluate(() => {
    window.jumps = [];
    new MutationObserver((records) => {
      for (const { target: el } of records) {
        if (el.dataset?.testid !== 'message' || !el.dataset.flash || !el.classList.contains('flash')) continue;
        const r = el.getBoundingClientRect();
        window.jumps.push({ text: el.textContent, inView: r.bottom > 0 && r.top < window.innerHeight });
      }
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['class', 'data-flash'] });
  });
}

/** jumpedTo waits until watchJumps saw a message saying text highlighted, and returns its record. */
export async function jumpedTo(page, text) {
  const h = await page.waitForFunction((t) => window.jumps.find((j) => j.text.includes(t)), text);
  return h.jsonValue();
}

export async function send(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

// ---- REST from the test side (Bearer tokens, like a non-browser client) ----------------------

export class Api {
  constructor(token, user) {
    this.token = token;
    this.user = user;
  }

  static async login(email, password = PASSWORD) {
    const r = await call('POST', '/auth/login', { email, password });
    return new Api(r.access_token, r.user);
  }

  static async register(name, email = `${unique('u')}@example.com`, password = PASSWORD) {
    const r = await call('POST', '/auth/register', { name, email, password });
    return new Api(r.access_token, r.user);
  }

  req(method, p, body) {
    return call(method, p, body, this.token);
  }

  chats() {
    return this.req('GET', '/chats').then((r) => r.chats);
  }

  send(chatId, body, clientId = unique('c')) {
    return this.req('POST', `/chats/${chatId}/messages`, { body, client_id: clientId });
  }

  group(title, memberIds = [], isPublic = false) {
    return this.req('POST', '/chats', { kind: 'group', title, public: isPublic, member_ids: memberIds });
  }

  private(userId) {
    return this.req('POST', '/chats', { kind: 'private', member_ids: [userId] });
  }

  read(chatId, seq) {
    return this.req('POST', `/chats/${chatId}/read`, { seq });
  }

  async chatByTitle(title) {
    const c = (await this.chats()).find((x) => x.title === title);
    assert.ok(c, `chat ${title} exists`);
    return c;
  }
}

// privatePair registers a reader, who signs in with the returned email, and a writer, named
// "<readerName> <tag>" and "<writerName> <tag>", and has the writer open a private chat with
// the reader.
export async function privatePair(prefix, readerName, writerName) {
  const tag = unique(prefix).slice(-6);
  const email = `${readerName.toLowerCase()}.${tag}@example.com`;
  const reader = await Api.register(`${readerName} ${tag}`, email);
  const writer = await Api.register(`${writerName} ${tag}`);
  const chat = await writer.private(reader.user.id);
  return { tag, email, reader, writer, chat };
}

async function call(method, p, body, token) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${BASE}/api/v1${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return data;
}

// ---- the server process (run.sh starts it; tests may restart it) ------------------------------

export async function waitHealthy(timeout = 20000) {
  const until = Date.now() + timeout;
  for (;;) {
    try {
      const r = await fetch(`${BASE}/healthz`);
      if (r.ok) return;
    } catch { /* not up yet */ }
    if (Date.now() > until) throw new Error('chatd did not become healthy');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** stopServer stops chatd gracefully (SIGTERM: its sockets close with 1012). */
export async function stopServer() {
  const pidFile = process.env.CHAT_E2E_PID_FILE;
  assert.ok(pidFile, 'CHAT_E2E_PID_FILE is set by run.sh');
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  process.kill(pid, 'SIGTERM');
  const until = Date.now() + 15000;
  while (alive(pid)) {
    if (Date.now() > until) throw new Error(`chatd ${pid} did not stop`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** startServer starts chatd again with the same binary, address and data directory. */
export async function startServer() {
  const env = { ...process.env };
  const log = openSync(process.env.CHAT_E2E_LOG, 'a');
  const child = spawn(process.env.CHAT_E2E_BIN, [], { env, stdio: ['ignore', log, log], detached: true });
  child.unref();
  writeFileSync(process.env.CHAT_E2E_PID_FILE, String(child.pid));
  await waitHealthy();
}

export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), animations: 'disabled', caret: 'hide' });
}
