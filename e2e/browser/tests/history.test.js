// History: the "new messages" divider at the first unread, and infinite scroll upwards.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, chatItem, frames, launch, message, openChat, privatePair, signIn, unique, waitUntil } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('long history: unread divider, then older pages load as you scroll up', async () => {
  const { tag, email, reader, writer, chat } = await privatePair('h', 'Hana', 'Ivo');
  const N = 190;
  const text = (i) => `m-${String(i).padStart(3, '0')}`;
  for (let i = 1; i <= N; i++) await writer.send(chat.id, text(i));
  await reader.read(chat.id, 100); // 90 unread: more than one page of 50

  const { context, page } = await signIn(browser, email);
  const item = chatItem(page, `Ivo ${tag}`);
  await item.getByTestId('unread-badge').getByText('90', { exact: true }).waitFor();
  await item.click();

  // The pane opens at the divider, just above the first unread message.
  const divider = page.getByTestId('unread-divider');
  await divider.waitFor();
  const next = await divider.evaluate((el) => el.nextElementSibling?.querySelector('[data-testid="message-text"]')?.textContent);
  assert.equal(next, text(101));
  await message(page, text(101)).waitFor();

  // Scroll up until the first message: older pages arrive and keep the order.
  const scroller = page.getByTestId('messages');
  const first = message(page, text(1));
  for (let i = 0; i < 40 && !(await first.count()); i++) {
    await scroller.evaluate((el) => { el.scrollTop = 0; });
    await page.waitForTimeout(100);
  }
  await first.waitFor();
  await page.getByText('This is the beginning of your conversation.').waitFor();
  const texts = await page.getByTestId('message-text').allTextContents();
  assert.equal(texts.length, N);
  assert.deepEqual(texts, Array.from({ length: N }, (_, i) => text(i + 1)));
  assert.equal(await page.locator('.day-sep').count(), 1);

  // Scrolling to the bottom reads the rest; the badge goes.
  await scroller.evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await item.getByTestId('unread-badge').waitFor({ state: 'detached' });
  page.assertClean();
  await context.close();
});

test('more unread than one page of 200: the divider is still at the first unread message', async () => {
  const { tag, email, reader, writer, chat } = await privatePair('u', 'Uli', 'Vera');
  const mine = await reader.send(chat.id, 'read up to here'); // sending reads everything before
  const N = 260;
  const text = (i) => `u-${String(i).padStart(3, '0')}`;
  for (let i = 1; i <= N; i++) await writer.send(chat.id, text(i));

  const { context, page } = await signIn(browser, email);
  const item = chatItem(page, `Vera ${tag}`);
  await item.getByTestId('unread-badge').getByText(String(N), { exact: true }).waitFor();
  await item.click();
  const divider = page.getByTestId('unread-divider');
  await divider.waitFor();
  const next = await divider.evaluate((el) => el.nextElementSibling?.querySelector('[data-testid="message-text"]')?.textContent);
  assert.equal(next, text(1), 'the divider is just above the first unread message');
  assert.equal(await divider.textContent(), 'New messages');
  // Loaded back to the read mark: my message before them is there too.
  assert.equal(await message(page, mine.body).count(), 1);
  page.assertClean();
  await context.close();
});

test('more than 1,000 unread: the divider tops what was loaded and says so; no read mark passes what was not loaded', async () => {
  const { tag, email, reader, writer, chat } = await privatePair('k', 'Kim', 'Lou');
  const mine = await reader.send(chat.id, 'read up to here');
  const N = 1100;
  for (let i = 0; i < N; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, N - i) }, (_, j) => writer.send(chat.id, `k-${i + j + 1}`)));
  }
  const firstUnread = mine.seq + 1;
  const firstLoaded = mine.seq + N - 999; // the first load fetches the newest 1,000

  const { context, page } = await signIn(browser, email, {
    setup: (p) => {
      p.reads = [];
      p.on('websocket', (ws) => ws.on('framesent', (ev) => {
        try {
          const f = JSON.parse(ev.payload);
          if (f.type === 'read') p.reads.push(f.data.seq);
        } catch { /* not ours */ }
      }));
    },
  });
  await chatItem(page, `Lou ${tag}`).click();
  const divider = page.getByTestId('unread-divider');
  const nextSeq = () => divider.evaluate((el) => Number(el.nextElementSibling?.dataset.seq));
  await divider.getByText('New messages (more above)').waitFor();
  // (The view opens at the top of what was loaded, which may load a page more at once.)
  const at = await divider.evaluate((el) => ({
    label: el.textContent,
    next: Number(el.nextElementSibling?.dataset.seq),
    oldest: Number(document.querySelector('[data-testid="message"][data-seq]')?.dataset.seq),
  }));
  assert.equal(at.label, 'New messages (more above)');
  assert.equal(at.next, at.oldest, 'the divider tops the loaded messages');
  assert.ok(at.next > firstUnread && at.next <= firstLoaded, `the first unread was not loaded yet (${at.next})`);

  // Scrolling up loads the rest; the divider goes to the first unread message.
  const scroller = page.getByTestId('messages');
  const first = page.locator(`[data-testid="message"][data-seq="${firstUnread}"]`);
  // Until it is there, however long each page takes (the suite's 60 s wait, not a count of tries).
  for (const until = Date.now() + 60000; !(await first.count()) && Date.now() < until;) {
    await scroller.evaluate((el) => { el.scrollTop = 0; });
    await page.waitForTimeout(100);
  }
  await divider.getByText('New messages', { exact: true }).waitFor();
  assert.ok(await page.getByTestId('unread-bar').isHidden(), 'nothing more to mark once all is loaded');
  assert.equal(await nextSeq(), firstUnread);
  // Now what is seen is read; the first read mark came only once the older messages were there.
  assert.ok(await waitUntil(() => page.reads.length > 0, 60000), 'a read mark was sent');
  assert.ok(page.reads[0] < firstLoaded, `the first read mark (${page.reads[0]}) passed messages not loaded then (before ${firstLoaded})`);
  page.assertClean();
  await context.close();
});

test('more than 1,000 unread: "Mark all as read" clears them without paging back, on every device', async () => {
  const { tag, email, reader, writer, chat } = await privatePair('j', 'Jo', 'Kai');
  await reader.send(chat.id, 'read up to here');
  const N = 1200; // well past the first load's 1,000 and the page more it may fetch
  let last;
  for (let i = 0; i < N; i += 25) {
    const sent = await Promise.all(Array.from({ length: Math.min(25, N - i) }, (_, j) => writer.send(chat.id, `j-${i + j + 1}`)));
    last = Math.max(last ?? 0, ...sent.map((m) => m.seq));
  }
  const { context, page } = await signIn(browser, email);
  const item = chatItem(page, `Kai ${tag}`);
  await item.getByTestId('unread-badge').getByText('999+', { exact: true }).waitFor();
  await item.click();
  const divider = page.getByTestId('unread-divider');
  await divider.getByText('New messages (more above)').waitFor();
  // Looking at what was loaded reads nothing: older unread messages were not seen.
  await page.waitForTimeout(500);
  assert.equal(await item.getByTestId('unread-badge').textContent(), '999+');

  const bar = page.getByTestId('unread-bar');
  await bar.getByText('1,200 unread').waitFor();
  await bar.getByTestId('mark-all-read').click();
  await item.getByTestId('unread-badge').waitFor({ state: 'detached' });
  await bar.waitFor({ state: 'hidden' });
  assert.equal(await divider.textContent(), 'New messages');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Message', 'the focus goes to the composer');
  // The server has the mark at the newest message: another device of mine sees it all read.
  const deadline = Date.now() + 30000;
  let mine;
  while (Date.now() < deadline) {
    mine = (await reader.chats()).find((c) => c.id === chat.id);
    if (mine.unread_count === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(mine.unread_count, 0);
  assert.equal(mine.my_last_read_seq, last);
  page.assertClean();
  await context.close();
});

/**
 * scrollUp scrolls a chat of 150 messages from the bottom to the beginning in steps of `step` px
 * while older pages answer after `delay` ms, and checks what the user sees: the message at the
 * top of the view stays exactly where it was when a page arrives above it, and each approach to
 * the top loads one page (so 150 messages take the first page and two more, one per approach).
 */
async function scrollUp({ step, delay, pause }) {
  const tag = unique('sc').slice(-6);
  const email = `sara.${tag}@example.com`;
  const reader = await Api.register(`Sara ${tag}`, email);
  const writer = await Api.register(`Tom ${tag}`);
  const chat = await writer.private(reader.user.id);
  const N = 150;
  const text = (i) => `line ${String(i).padStart(3, '0')}`;
  for (let i = 1; i <= N; i++) await writer.send(chat.id, text(i));
  await reader.read(chat.id, N);

  const { context, page } = await signIn(browser, email);
  const scroller = page.getByTestId('messages');
  // The first message whose bottom is inside the view, and how far its top is from the view's top.
  const topVisible = () => scroller.evaluate((sc) => {
    const top = sc.getBoundingClientRect().top;
    for (const el of sc.querySelectorAll('[data-testid="message"][data-seq]')) {
      const r = el.getBoundingClientRect();
      if (r.bottom > top) return { seq: Number(el.dataset.seq), offset: r.top - top };
    }
    return null;
  });
  const offsetOf = (seq) => scroller.evaluate((sc, s) => {
    const el = sc.querySelector(`[data-testid="message"][data-seq="${s}"]`);
    return el ? el.getBoundingClientRect().top - sc.getBoundingClientRect().top : null;
  }, seq);

  const loads = []; // one entry per older page: {before_seq, anchor, offsetBefore, offsetAfter, step}
  let steps = 0;
  let busy = null; // while a page is being handed over, the "user" holds still
  await page.route(/\/api\/v1\/chats\/\d+\/messages\?/, async (route) => {
    const url = new URL(route.request().url());
    const before = Number(url.searchParams.get('before_seq'));
    if (!before) return route.continue();
    const response = await route.fetch();
    await new Promise((r) => setTimeout(r, delay));
    let release;
    busy = new Promise((r) => { release = r; });
    try {
      const load = { before, step: steps, anchor: await topVisible() };
      loads.push(load);
      await route.fulfill({ response });
      await page.locator(`[data-testid="message"][data-seq="${before - 1}"]`).waitFor({ state: 'attached' });
      load.after = await offsetOf(load.anchor.seq);
      load.scrollTop = await scroller.evaluate((el) => el.scrollTop);
    } finally {
      busy = null;
      release();
    }
  });

  await openChat(page, `Tom ${tag}`);
  await message(page, text(N)).waitFor();
  const beginning = page.getByText('This is the beginning of your conversation.');
  for (; steps < 400 && !(await beginning.isVisible()); steps++) {
    if (busy) await busy;
    await scroller.evaluate((el, dy) => el.scrollBy(0, -dy), step);
    // Let the scroll event fire, then give the "user" a moment before the next step.
    await frames(page);
    await page.waitForTimeout(pause);
    if (!delay) await page.locator('[data-testid="history-status"]:not(:has(.spinner))').waitFor();
  }
  await beginning.waitFor();
  if (busy) await busy;
  await scroller.evaluate((el) => { el.scrollTop = 0; });
  await message(page, text(1)).waitFor();

  assert.equal(loads.length, 2, `one request per older page: ${JSON.stringify(loads)}`);
  for (const l of loads) {
    assert.ok(l.anchor, 'a message was in view when the page arrived');
    assert.ok(Math.abs(l.after - l.anchor.offset) < 1.5,
      `message ${l.anchor.seq} stayed in place when seqs before ${l.before} arrived (${l.anchor.offset} → ${l.after})`);
  }
  // Each page put the view back outside the top zone (300 px), so the next page needed another
  // approach: the two pages came at two steps, with the user scrolling in between.
  for (const l of loads) assert.ok(l.scrollTop >= 300, `after a page the view is out of the top zone (${l.scrollTop})`);
  assert.ok(loads[1].step - loads[0].step >= 2, `pages loaded at steps ${loads[0].step} and ${loads[1].step}`);
  const texts = await page.getByTestId('message-text').allTextContents();
  assert.deepEqual(texts, Array.from({ length: N }, (_, i) => text(i + 1)));
  page.assertClean();
  await context.close();
}

test('scrolling up 800 px at a time keeps the place and loads one page per approach', () => scrollUp({ step: 800, delay: 0, pause: 30 }));

test('on a slow network (700 ms per page) gentle 200 px steps keep the place too', () => scrollUp({ step: 200, delay: 700, pause: 60 }));
