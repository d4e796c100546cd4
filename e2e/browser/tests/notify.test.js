// Notifications: a chat's settings from the bell (synced to the user's other tab), a
// notification for each new message while the tab is hidden (permission granted in the test
// context; the Notification constructor is recorded), none for a chat set to nothing, the
// unread count on the favicon, and the service worker served for Web Push. Headless Chromium
// has no push service to subscribe with, so the push path is tested in Go (internal/push,
// cmd/chatd) and the worker's file is checked to be served here.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, launch, openChat, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

// Records every notification, and lets the test hide the tab (document.hidden and a
// visibilitychange event), which headless Chromium never does by itself.
async function setup(page) {
  await page.context().grantPermissions(['notifications']);
  await page.addInitScript(() => {
    window.__shown = [];
    window.__hidden = false;
    const Real = window.Notification;
    class Recorded {
      constructor(title, opts = {}) {
        window.__shown.push({ title, body: opts.body, tag: opts.tag });
        this.onclick = null;
      }
      close() {}
      static get permission() { return Real ? Real.permission : 'granted'; }
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

test('notifications on a hidden tab follow the chat settings; the favicon counts', async () => {
  const tag = unique('n').slice(-6);
  const email = `nora.${tag}@example.com`;
  const reader = await Api.register(`Nora ${tag}`, email);
  const writer = await Api.register(`Olaf ${tag}`);
  const chat = await writer.private(reader.user.id);
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

  await page.evaluate(() => window.__hide(true));
  await writer.send(chat.id, 'quiet one');
  await page.waitForFunction(() => document.title.startsWith('('));
  assert.deepEqual(await page.evaluate(() => window.__shown), []);

  // Every message: a hidden tab shows one per message, tagged with the chat.
  await page.evaluate(() => window.__hide(false));
  await page.getByTestId('bell-button').click();
  await page.getByTestId('notify-all').check();
  await page.keyboard.press('Escape');
  await page.evaluate(() => window.__hide(true));
  await writer.send(chat.id, 'loud one');
  await page.waitForFunction(() => window.__shown.length === 1);
  const [n] = await page.evaluate(() => window.__shown);
  assert.deepEqual(n, { title: `Olaf ${tag}`, body: 'loud one', tag: `chat-${chat.id}` });

  // The favicon carries the unread count while there is one.
  const icon = await other.page.locator('link[rel="icon"]').getAttribute('href');
  assert.match(icon, /^data:image\/png/);
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
