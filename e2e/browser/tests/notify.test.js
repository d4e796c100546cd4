// Notifications: a chat's settings from the bell (synced to the user's other tab), a
// notification for each new message while the tab is hidden (permission granted in the test
// context; the Notification constructor is recorded), none for a chat set to nothing, the
// unread count on the favicon, and the service worker served for Web Push; a hidden tab's
// notification closes when the chat is read on another device. Headless Chromium has no push
// service to subscribe with, so the push path is tested in Go (internal/push, cmd/chatd) and
// the worker's push handler is driven here through DevTools (ServiceWorker.deliverPushMessage,
// the Application panel's "Push" button): it shows, withdraws and skips notifications. Headless
// Chromium's own notification list loses notifications on a busy machine (showNotification
// resolves and getNotifications never lists it), so the worker runs over a model of that API
// (recordNotifications) and the test reads what the worker showed and closed from the model.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { Api, chatItem, launch, openChat, pauseClock, privatePair, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

// Records every notification and its closing, and lets the test hide the tab (document.hidden,
// visibilityState and a visibilitychange event), which headless Chromium never does by itself.
async function setup(page) {
  await page.context().grantPermissions(['notifications']);
  await page.addInitScript(() => {
    window.__shown = [];
    window.__closed = [];
    window.__hidden = false;
    const Real = window.Notification;
    class Recorded {
      constructor(title, opts = {}) {
        window.__shown.push({ title, body: opts.body, tag: opts.tag });
        this.tag = opts.tag;
        this.onclick = null;
      }
      close() { window.__closed.push(this.tag); }
      static get permission() { return Real ? Real.permission : 'granted'; }
      static requestPermission() { return Promise.resolve('granted'); }
    }
    window.Notification = Recorded;
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => window.__hidden });
    // A hidden tab reads nothing either (reading.js asks visibilityState).
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (window.__hidden ? 'hidden' : 'visible') });
    window.__hide = (yes) => {
      window.__hidden = yes;
      document.dispatchEvent(new Event('visibilitychange'));
    };
  });
}

test('notifications on a hidden tab follow the chat settings; the favicon counts', async () => {
  const { tag, email, reader, writer, chat } = await privatePair('n', 'Nora', 'Olaf');
  await writer.send(chat.id, 'hello');

  const { context, page } = await signIn(browser, email, { setup });
  const other = await signIn(browser, email, { setup }); // the same user's other tab
  await openChat(page, `Olaf ${tag}`);

  // Settings: nothing. The other tab learns it through chat.settings.
  await page.getByTestId('bell-button').click();
  await page.getByTestId('chat-settings').waitFor();
  await page.getByTestId('notify-none').check();
  await openChat(other.page, `Olaf ${tag}`);
  await other.page.getByTestId('bell-button').click();
  await other.page.locator('[data-testid="notify-none"]:checked').waitFor();
  await other.page.keyboard.press('Escape');
  await other.page.getByTestId('pane-title').click(); // leave the chat's pane be; the list keeps counting
  await other.page.evaluate(() => { location.hash = '#/'; });
  const settings = await reader.req('GET', '/chats');
  assert.equal(settings.chats.find((c) => c.id === chat.id).notify, 'none');
  await page.keyboard.press('Escape');

  // A chat that notifies of nothing shows so (a struck bell in its row and its header, a grey
  // badge), and its unread messages do not count in the title or on the favicon.
  await page.getByTestId('chat-item').filter({ hasText: `Olaf ${tag}` }).getByTestId('muted-icon').waitFor();
  assert.equal(await page.getByTestId('bell-button').getAttribute('aria-label'), 'Notifications (muted)');
  await page.evaluate(() => window.__hide(true));
  await writer.send(chat.id, 'quiet one');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="chat-preview"]')].some((e) => e.textContent.includes('quiet one')));
  await page.getByTestId('chat-item').filter({ hasText: `Olaf ${tag}` }).locator('[data-testid="unread-badge"].muted').waitFor();
  assert.equal(await page.title(), 'Chat', 'a chat that notifies of nothing does not count in the title');
  assert.deepEqual(await page.evaluate(() => window.__shown), []);

  // Every message: a hidden tab shows one per message, tagged with the chat.
  await page.evaluate(() => window.__hide(false));
  await page.getByTestId('bell-button').click();
  await page.getByTestId('notify-all').check();
  await page.keyboard.press('Escape');
  await page.evaluate(() => window.__hide(true));
  await writer.send(chat.id, 'loud one');
  await page.waitForFunction(() => window.__shown.length === 1);
  await page.waitForFunction(() => document.title.startsWith('('));
  assert.equal(await page.getByTestId('bell-button').getAttribute('aria-label'), 'Notifications');
  const [n] = await page.evaluate(() => window.__shown);
  assert.deepEqual(n, { title: `Olaf ${tag}`, body: 'loud one', tag: `chat-${chat.id}` });
  // Its links read as the message pane shows them: where they go, without user info.
  await writer.send(chat.id, 'see https://good.example@evil.example and https://аррӏе.com');
  await page.waitForFunction(() => window.__shown.length === 2);
  assert.equal((await page.evaluate(() => window.__shown[1])).body, 'see https://evil.example/ and https://xn--80ak6aa92e.com/');
  // A file sent alone is named, as a push names it (the body was empty).
  const form = new FormData();
  form.append('file', new Blob(['minutes'], { type: 'text/plain' }), 'minutes.txt');
  const up = await fetch(`${process.env.CHAT_E2E_BASE_URL}/api/v1/chats/${chat.id}/files`, { method: 'POST', headers: { Authorization: `Bearer ${writer.token}` }, body: form });
  assert.equal(up.status, 201);
  await writer.req('POST', `/chats/${chat.id}/messages`, { body: '', client_id: unique('f'), file_ids: [(await up.json()).file.id] });
  await page.waitForFunction(() => window.__shown.length === 3);
  assert.equal((await page.evaluate(() => window.__shown[2])).body, '📎 minutes.txt');

  // The favicon carries the unread count while there is one.
  await other.page.waitForFunction(() => document.querySelector('link[rel="icon"]').href.startsWith('data:image/png'));
  // A visible tab shows no notification.
  await other.page.evaluate(() => window.__hide(false));
  assert.equal(await other.page.evaluate(() => window.__shown.length), 0);

  // The service worker is served at the root.
  const sw = await page.evaluate(async () => (await fetch('/sw.js')).status);
  assert.equal(sw, 200);
  page.assertClean();
  other.page.assertClean();
  await context.close();
  await other.context.close();
});

test('the title counts the unread messages of every chat as they come, are read and are muted', async () => {
  const tag = unique('c').slice(-6);
  const email = `cara.${tag}@example.com`;
  const cara = await Api.register(`Cara ${tag}`, email);
  const dan = await Api.register(`Dan ${tag}`);
  const eve = await Api.register(`Eve ${tag}`);
  const withDan = await cara.private(dan.user.id);
  const withEve = await cara.private(eve.user.id);
  const { context, page } = await signIn(browser, email);
  const title = (t) => page.waitForFunction((want) => document.title === want, t);
  await title('Chat');
  await dan.send(withDan.id, 'one');
  await dan.send(withDan.id, 'two');
  await eve.send(withEve.id, 'three');
  await title('(3) Chat');
  // Read on another device: the count goes down by that chat's.
  const last = await dan.send(withDan.id, 'four');
  await title('(4) Chat');
  await cara.read(withDan.id, last.seq);
  await title('(1) Chat');
  // Eve's chat muted: it counts no more; unmuted, it counts again.
  await cara.req('PATCH', `/chats/${withEve.id}/settings`, { notify: 'none' });
  await title('Chat');
  await eve.send(withEve.id, 'five');
  await chatItem(page, `Eve ${tag}`).locator('[data-testid="unread-badge"]').getByText('2').waitFor();
  assert.equal(await page.title(), 'Chat');
  await cara.req('PATCH', `/chats/${withEve.id}/settings`, { notify: 'all' });
  await title('(2) Chat');
  page.assertClean();
  await context.close();
});

test('a burst of messages writes the title and the favicon once, with the count as it is then', async () => {
  const tag = unique('b').slice(-6);
  const email = `bea.${tag}@example.com`;
  const bea = await Api.register(`Bea ${tag}`, email);
  const cal = await Api.register(`Cal ${tag}`);
  const chat = await bea.private(cal.user.id);
  // The page's timers run when the test says: what is written within one wait is written once.
  const { context, page } = await signIn(browser, email, { clock: true });
  await page.clock.runFor(1000);
  await page.waitForFunction(() => document.title === 'Chat');
  // Paused: the sends below take as long as the machine makes them, and a title written between
  // two of them would be a second write.
  await pauseClock(page);
  await page.evaluate(() => {
    window.titles = [];
    window.icons = [];
    new MutationObserver(() => window.titles.push(document.title)).observe(document.querySelector('title'), { childList: true, characterData: true, subtree: true });
    const icon = document.querySelector('link[rel="icon"]');
    new MutationObserver(() => window.icons.push(icon.dataset.count)).observe(icon, { attributeFilter: ['href'] });
  });
  for (const text of ['one', 'two', 'three']) await cal.send(chat.id, text);
  await chatItem(page, `Cal ${tag}`).getByTestId('unread-badge').getByText('3').waitFor();
  await page.clock.runFor(1000);
  await page.waitForFunction(() => document.title === '(3) Chat');
  assert.deepEqual(await page.evaluate(() => window.titles), ['(3) Chat']);
  // The favicon is drawn with 3 only (a second time when its image first loads).
  assert.deepEqual([...new Set(await page.evaluate(() => window.icons))], ['3']);
  page.assertClean();
  await context.close();
});

test('a notification choice the server refuses is put back, in the dialog and in effect', async () => {
  const { tag, email, reader, writer, chat } = await privatePair('f', 'Fay', 'Gus');
  await writer.send(chat.id, 'hello');
  const { context, page } = await signIn(browser, email, { setup });
  await openChat(page, `Gus ${tag}`);
  await page.route('**/api/v1/chats/*/settings', (route) => route.fulfill({
    status: 503, contentType: 'application/problem+json',
    body: JSON.stringify({ title: 'Service Unavailable', status: 503, detail: 'try again' }),
  }));
  await page.getByTestId('bell-button').click();
  // click, not check: check verifies the radio stays checked, and the refusal may already
  // have put it back.
  await page.getByTestId('notify-none').click();
  const dialog = page.getByTestId('chat-settings');
  await dialog.getByRole('alert').filter({ hasText: /./ }).waitFor();
  await dialog.locator('[data-testid="notify-all"]:checked').waitFor();
  // Still in effect: a hidden tab is told of the next message.
  await page.keyboard.press('Escape');
  await page.evaluate(() => window.__hide(true));
  await writer.send(chat.id, 'still told');
  await page.waitForFunction(() => window.__shown.length === 1);
  assert.equal((await reader.req('GET', '/chats')).chats.find((c) => c.id === chat.id).notify, 'all');
  page.assertClean();
  await context.close();
});

test('a hidden tab\'s notification closes when the chat is read on another device', async () => {
  const { tag, email, reader, writer, chat } = await privatePair('r', 'Rita', 'Sam');
  const other = await writer.group(`Other ${tag}`, [reader.user.id]);
  await writer.send(chat.id, 'hello');

  const { context, page } = await signIn(browser, email, { setup });
  await page.evaluate(() => window.__hide(true));
  await writer.send(other.id, 'in the other chat');
  const m = await writer.send(chat.id, 'read me on the phone');
  await page.waitForFunction(() => window.__shown.length === 2);
  // Read up to an older message: the notification stays; up to its message: it closes, and
  // only that chat's.
  // Unread: 'hello' and its answer here, the other chat's one (the title is written a moment after).
  await page.waitForFunction(() => document.title === '(3) Chat');
  await reader.read(chat.id, m.seq - 1);
  await page.waitForFunction(() => document.title === '(2) Chat');
  assert.deepEqual(await page.evaluate(() => window.__closed), []);
  await reader.read(chat.id, m.seq);
  await page.waitForFunction(() => window.__closed.length > 0);
  assert.deepEqual(await page.evaluate(() => window.__closed), [`chat-${chat.id}`]);
  page.assertClean();
  await context.close();
});

// NOTIFICATIONS is the Cache API store of the model below, one entry per shown notification.
const NOTIFICATIONS = 'test-notifications';

/**
 * recordNotifications serves /sw.js with a prelude that replaces the registration's
 * showNotification and getNotifications with a model of them kept in the Cache API (shared
 * with the page, and kept while the worker is stopped between pushes): a notification with
 * the tag of a shown one replaces it, getNotifications filters by tag, close removes it.
 */
async function recordNotifications(page) {
  await page.context().route('**/sw.js', async (route) => {
    const real = await route.fetch();
    const prelude = `(() => {
      const key = (tag) => new URL('/__notification/' + encodeURIComponent(tag), self.location.origin).href;
      const store = () => caches.open(${JSON.stringify(NOTIFICATIONS)});
      const live = (rec) => ({ ...rec, close() { store().then((c) => c.delete(key(rec.tag))); } });
      self.registration.showNotification = async (title, opts = {}) => {
        const rec = { title, body: opts.body ?? '', tag: opts.tag ?? '', data: opts.data ?? null };
        await (await store()).put(key(rec.tag), new Response(JSON.stringify(rec)));
      };
      self.registration.getNotifications = async (filter = {}) => {
        const c = await store();
        const out = [];
        for (const req of await c.keys()) {
          const r = await c.match(req);
          const rec = r && await r.json();
          if (rec && (filter.tag == null || rec.tag === filter.tag)) out.push(live(rec));
        }
        return out;
      };
    })();\n`;
    await route.fulfill({ response: real, body: prelude + await real.text() });
  });
  await setup(page);
}

test('the service worker shows a push, withdraws it when read elsewhere, and skips a push already read', async () => {
  const tag = unique('w').slice(-6);
  const email = `wendy.${tag}@example.com`;
  await Api.register(`Wendy ${tag}`, email);
  const { context, page } = await signIn(browser, email, { setup: recordNotifications });
  const cdp = await context.newCDPSession(page);
  const registered = new Promise((resolve) => {
    cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
      const r = registrations.find((x) => x.scopeURL.startsWith(new URL('/', page.url()).href) && !x.isDeleted);
      if (r) resolve(r.registrationId);
    });
  });
  await cdp.send('ServiceWorker.enable');
  await page.evaluate(async () => {
    await navigator.serviceWorker.register('/sw.js', { scope: '/', type: 'module' });
    await navigator.serviceWorker.ready;
  });
  const registrationId = await registered;
  const origin = new URL(page.url()).origin;
  const push = (data) => cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data: JSON.stringify(data) });
  const shown = () => page.evaluate(async (name) => {
    const c = await caches.open(name);
    const all = [];
    for (const req of await c.keys()) {
      const r = await c.match(req);
      if (r) all.push(await r.json());
    }
    return all.map((n) => ({ title: n.title, body: n.body, tag: n.tag, seq: n.data?.seq }))
      .sort((a, b) => a.tag.localeCompare(b.tag));
  }, NOTIFICATIONS);
  const waitShown = async (want) => {
    const deadline = Date.now() + 15000;
    for (;;) {
      const got = await shown();
      if (JSON.stringify(got) === JSON.stringify(want) || Date.now() > deadline) return got;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const team = (seq, body) => ({ title: 'Team', body, tag: 'chat-7', seq });
  const bob = { title: 'Bob', body: 'yo', tag: 'chat-8', seq: 2 };
  // A push of a third chat after another push: once it shows, the push before it was handled.
  const mark = (seq) => ({ title: 'Cy', body: `mark ${seq}`, tag: 'chat-9', seq });
  const pushMessage = (chatId, n) => push({ type: 'message', chat_id: chatId, ...n });

  await pushMessage(7, team(5, 'Ann: hi'));
  await pushMessage(8, bob);
  assert.deepEqual(await waitShown([team(5, 'Ann: hi'), bob]), [team(5, 'Ann: hi'), bob]);
  // Read up to an older message: the notification tells of a later one and stays.
  await push({ type: 'withdraw', chat_id: 7, seq: 4, tag: 'chat-7' });
  await pushMessage(9, mark(1));
  assert.deepEqual(await waitShown([team(5, 'Ann: hi'), bob, mark(1)]), [team(5, 'Ann: hi'), bob, mark(1)]);
  // Read up to its message: closed; the other chats' stay.
  await push({ type: 'withdraw', chat_id: 7, seq: 5, tag: 'chat-7' });
  assert.deepEqual(await waitShown([bob, mark(1)]), [bob, mark(1)]);
  // A push of a message already read (it came after the withdrawal) shows nothing; a newer one does.
  await pushMessage(7, team(5, 'Ann: hi'));
  await pushMessage(9, mark(2));
  assert.deepEqual(await waitShown([bob, mark(2)]), [bob, mark(2)]);
  await pushMessage(7, team(6, 'Ann: more'));
  assert.deepEqual(await waitShown([team(6, 'Ann: more'), bob, mark(2)]), [team(6, 'Ann: more'), bob, mark(2)]);
  // Links read as the message pane shows them, also in a text the server cut ("…").
  await pushMessage(7, team(7, 'Ann: see https://good.example@evil.example/a and https://good.example@evil.example/lo…'));
  const linked = team(7, 'Ann: see https://evil.example/a and https://evil.example/lo…');
  assert.deepEqual(await waitShown([linked, bob, mark(2)]), [linked, bob, mark(2)]);
  page.assertClean();
  await context.close();
});

/**
 * fakePush stands in for the browser's push service, which headless Chromium lacks: PushManager
 * hands out a subscription of the test's, with real keys and a public https endpoint that the
 * server accepts (nothing is pushed), and the worker's registration shows one notification
 * until it is closed. setup is signIn's; calls lists the push and logout requests; subscribed()
 * is the answer to the app's subscribe at start.
 */
function fakePush(tag) {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const sub = {
    endpoint: `https://push.example.com/send/${tag}`,
    keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
  };
  const calls = [];
  let answer;
  const setup = async (p) => {
    await p.context().grantPermissions(['notifications']);
    await p.addInitScript((s) => {
      let on = false;
      window.__unsubscribed = false;
      const fake = {
        endpoint: s.endpoint,
        toJSON: () => ({ endpoint: s.endpoint, expirationTime: null, keys: s.keys }),
        unsubscribe: async () => {
          on = false;
          window.__unsubscribed = true;
          return true;
        },
      };
      PushManager.prototype.getSubscription = async () => (on ? fake : null);
      PushManager.prototype.subscribe = async () => {
        on = true;
        return fake;
      };
      // One notification the worker showed, with a message's text in it.
      let shown = true;
      window.__closedShown = 0;
      ServiceWorkerRegistration.prototype.getNotifications = async () => (shown ? [{
        close() {
          shown = false;
          window.__closedShown += 1;
        },
      }] : []);
    }, sub);
    answer = p.waitForResponse((r) => r.url().endsWith('/api/v1/push/subscriptions') && r.request().method() === 'POST');
    p.on('request', (r) => {
      if (/\/api\/v1\/(push\/subscriptions|auth\/logout)$/.test(r.url())) calls.push(`${r.method()} ${new URL(r.url()).pathname}`);
    });
  };
  return { sub, calls, setup, subscribed: () => answer };
}

test('signing out stops Web Push to this browser: the server forgets it and the browser drops it', async () => {
  const tag = unique('p').slice(-6);
  const email = `pia.${tag}@example.com`;
  const user = await Api.register(`Pia ${tag}`, email);
  const { sub, calls, setup, subscribed } = fakePush(tag);
  const { context, page } = await signIn(browser, email, { setup });
  // Notifications were allowed: the app subscribes at start, with just the endpoint and keys.
  const res = await subscribed();
  assert.equal(res.status(), 204);
  assert.deepEqual(JSON.parse(res.request().postData()), sub);

  // The worker's read marks, this user's.
  await page.evaluate(async () => (await caches.open('chat-read-marks')).put('/__read/1', new Response('5')));

  await page.getByTestId('account-button').click();
  await page.getByTestId('sign-out').click();
  await page.getByText('You signed out.').waitFor();
  assert.equal(await page.evaluate(() => window.__closedShown), 1, 'what the worker showed is closed');
  assert.equal(await page.evaluate(() => caches.has('chat-read-marks')), false, 'the read marks are forgotten');
  assert.deepEqual(calls, ['POST /api/v1/push/subscriptions', 'DELETE /api/v1/push/subscriptions', 'POST /api/v1/auth/logout'],
    'the subscription is deleted while still signed in');
  assert.equal(await page.evaluate(() => window.__unsubscribed), true, 'the browser dropped its subscription');
  // The server has it no more: a second delete finds nothing.
  await assert.rejects(user.req('DELETE', '/push/subscriptions', { endpoint: sub.endpoint }), /: 404 /);
  page.assertClean();
  await context.close();
});

test('a session ended elsewhere leaves nothing of the user\'s pushes in this browser', async () => {
  const tag = unique('q').slice(-6);
  const email = `quinn.${tag}@example.com`;
  await Api.register(`Quinn ${tag}`, email);
  const { setup, subscribed } = fakePush(tag);
  const { context, page } = await signIn(browser, email, { setup });
  assert.equal((await subscribed()).status(), 204);
  await page.evaluate(async () => (await caches.open('chat-read-marks')).put('/__read/1', new Response('5')));

  // Signed out of every device from another one: this tab learns it from its socket.
  await (await Api.login(email)).req('POST', '/auth/logout-all');
  await page.getByText('Your session has ended').waitFor();
  await page.waitForFunction(() => window.__unsubscribed);
  assert.equal(await page.evaluate(() => window.__closedShown), 1, 'what the worker showed is closed');
  assert.equal(await page.evaluate(() => caches.has('chat-read-marks')), false, 'the read marks are forgotten');
  await context.close();
});
