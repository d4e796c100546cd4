// Files: a pasted image reaches the other member live as a thumbnail and opens in the lightbox;
// a PDF attached with the button is a card that downloads; uploads show the limits first, can
// be cancelled and retried; hostile files (HTML, SVG with script) never run script in the
// app's origin.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Api, BASE, launch, openChat, screenshot, signIn, unique } from '../lib.js';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe fails on any serious or critical violation axe-core finds on the page. */
async function axe(page, screen) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
  assert.deepEqual(violations, [], `axe on ${screen}`);
}

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

const PDF = Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n', 'latin1');

/** pair makes two users with a private chat, both signed in and looking at it. */
async function pair(tag) {
  const aEmail = `ann.${tag}@example.com`;
  const bEmail = `ben.${tag}@example.com`;
  const ann = await Api.register(`Ann ${tag}`, aEmail);
  const ben = await Api.register(`Ben ${tag}`, bEmail);
  const chat = await ann.private(ben.user.id);
  const a = await signIn(browser, aEmail);
  const b = await signIn(browser, bEmail);
  await openChat(a.page, `Ben ${tag}`);
  await openChat(b.page, `Ann ${tag}`);
  return { ann, ben, chat, a, b };
}

/** pasteImage pastes a w × h PNG drawn on a canvas into the composer, as a screenshot paste does. */
function pasteImage(page, w, h) {
  return page.getByLabel('Message', { exact: true }).evaluate(async (el, [w, h]) => {
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    const g = c.getContext('2d');
    g.fillStyle = '#3366cc';
    g.fillRect(0, 0, w, h);
    g.fillStyle = '#ffcc00';
    g.fillRect(w / 4, h / 4, w / 2, h / 2);
    const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'image.png', { type: 'image/png' }));
    el.focus();
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, [w, h]);
}

test('a pasted image reaches the other member live, opens in the lightbox; a PDF downloads', async () => {
  const tag = unique('f').slice(-6);
  const { a, b, ann, chat } = await pair(tag);

  // The limits are on screen before anything is uploaded.
  assert.match(await a.page.getByTestId('file-limits').textContent(), /per file, 10 files per message/);

  await pasteImage(a.page, 800, 600);
  await a.page.locator('[data-testid="upload"][data-state="done"]').waitFor();
  await a.page.getByTestId('send').click();
  await a.page.locator('[data-testid="upload"]').waitFor({ state: 'detached' });

  // On the other screen, live: the thumbnail, loaded.
  const thumb = b.page.getByTestId('file-thumb').locator('img');
  await thumb.waitFor();
  await b.page.waitForFunction(() => {
    const img = document.querySelector('[data-testid="file-thumb"] img');
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 15000 });
  const natural = await thumb.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  assert.ok(natural[0] <= 320 && natural[1] <= 320, `the thumbnail is ${natural}, not the full image`);

  // Click: the full image in the lightbox.
  await b.page.getByTestId('file-thumb').click();
  const box = b.page.getByTestId('lightbox');
  await box.waitFor();
  await b.page.waitForFunction(() => {
    const img = document.querySelector('[data-testid="lightbox"] img');
    return img && img.complete && img.naturalWidth === 800 && img.naturalHeight === 600;
  }, null, { timeout: 15000 });
  await axe(b.page, 'the lightbox');
  await screenshot(b.page, 'files-lightbox');
  await b.page.keyboard.press('Escape');
  await box.waitFor({ state: 'detached' });

  // A PDF attached with the button, with a caption: a card on the other screen that downloads.
  await a.page.getByTestId('file-input').setInputFiles({ name: 'paper.pdf', mimeType: 'application/pdf', buffer: PDF });
  await a.page.locator('[data-testid="upload"][data-state="done"]').waitFor();
  await a.page.getByLabel('Message', { exact: true }).fill('the paper');
  await a.page.getByLabel('Message', { exact: true }).press('Enter');
  const card = b.page.getByTestId('file-card').filter({ hasText: 'paper.pdf' });
  await card.waitFor();
  assert.match(await card.textContent(), /PDF/);
  await axe(b.page, 'a chat with an image and a PDF');
  await screenshot(b.page, 'files-chat');
  const [download] = await Promise.all([b.page.waitForEvent('download'), card.click()]);
  assert.equal(download.suggestedFilename(), 'paper.pdf');
  assert.deepEqual(readFileSync(await download.path()), PDF);

  // The server has both messages with their files.
  const { messages } = await ann.req('GET', `/chats/${chat.id}/messages`);
  assert.deepEqual(messages.map((m) => [m.body, m.files.map((f) => f.content_type)]),
    [['', ['image/png']], ['the paper', ['application/pdf']]]);
  a.page.assertClean();
  b.page.assertClean();
  await a.context.close();
  await b.context.close();
});

test('an upload can be cancelled, a failed one retried, a dropped file over the limit is refused before it is sent', async () => {
  const tag = unique('u').slice(-6);
  const { a, b } = await pair(tag);
  const page = a.page;

  // The first upload hangs until cancelled; the second fails once, then goes through.
  let held = null;
  let failedOnce = false;
  await page.route('**/api/v1/chats/*/files', async (route) => {
    const name = route.request().postDataBuffer()?.toString('latin1') || '';
    if (name.includes('slow.txt')) {
      held = route;
      return;
    }
    if (name.includes('flaky.txt') && !failedOnce) {
      failedOnce = true;
      await route.abort('connectionreset');
      return;
    }
    await route.continue();
  });
  await page.getByTestId('file-input').setInputFiles({ name: 'slow.txt', mimeType: 'text/plain', buffer: Buffer.from('slow\n') });
  const slow = page.locator('[data-testid="upload"][data-state="uploading"]').filter({ hasText: 'slow.txt' });
  await slow.waitFor();
  await axe(page, 'the composer with an upload');
  await screenshot(page, 'files-uploading');
  assert.ok(await page.getByTestId('send').isDisabled(), 'nothing can be sent while a file uploads');
  await slow.getByTestId('upload-cancel').click();
  await slow.waitFor({ state: 'detached' });
  assert.ok(held, 'the upload had started');

  await page.getByTestId('file-input').setInputFiles({ name: 'flaky.txt', mimeType: 'text/plain', buffer: Buffer.from('flaky\n') });
  const flaky = page.getByTestId('upload').filter({ hasText: 'flaky.txt' });
  await flaky.locator('[data-testid="upload-retry"]').click();
  await page.locator('[data-testid="upload"][data-state="done"]').filter({ hasText: 'flaky.txt' }).waitFor();
  await page.getByTestId('send').click();
  await b.page.getByTestId('file-card').filter({ hasText: 'flaky.txt' }).waitFor();

  // Larger than the limit: refused on the spot, with the limit, and never sent.
  const limits = await page.evaluate(() => fetch('/api/v1/files/limits').then((r) => r.json()));
  let sentBig = false;
  page.on('request', (r) => {
    if (r.url().includes('/files') && r.method() === 'POST' && (r.postDataBuffer()?.length || 0) > limits.max_file_bytes) sentBig = true;
  });
  // Dropped on the chat (made in the page: a buffer this big is slow to hand to the browser).
  await page.locator('.pane-chat').evaluate((el, n) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(n)], 'big.bin', { type: 'application/octet-stream' }));
    for (const type of ['dragenter', 'dragover', 'drop']) {
      el.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  }, limits.max_file_bytes + 1);
  const big = page.locator('[data-testid="upload"][data-state="failed"]').filter({ hasText: 'big.bin' });
  await big.getByText(/Too large/).waitFor();
  assert.equal(await big.getByTestId('upload-retry').count(), 0, 'no retry for a file over the limit');
  assert.equal(sentBig, false);
  a.page.assertClean();
  await a.context.close();
  await b.context.close();
});

test('hostile files (HTML, SVG with script) never run script in the app origin', async () => {
  const tag = unique('h').slice(-6);
  const { a, b, ann, chat } = await pair(tag);
  const html = '<!doctype html><script>alert("html ran");parent.postMessage("pwned","*")</script><p>hi</p>';
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert("svg ran")</script><rect width="10" height="10"/></svg>';
  const ids = [];
  for (const [name, body] of [['page.html', html], ['pic.svg', svg]]) {
    const form = new FormData();
    form.append('file', new Blob([body], { type: name.endsWith('svg') ? 'image/svg+xml' : 'text/html' }), name);
    const res = await fetch(`${BASE}/api/v1/chats/${chat.id}/files`, { method: 'POST', headers: { Authorization: `Bearer ${ann.token}` }, body: form });
    assert.equal(res.status, 201);
    const { file } = await res.json();
    ids.push(file);
  }
  await ann.req('POST', `/chats/${chat.id}/messages`, { body: 'look', client_id: unique('c'), file_ids: ids.map((f) => f.id) });

  // In the chat: cards, never images or frames.
  const cards = b.page.getByTestId('file-card');
  await cards.filter({ hasText: 'pic.svg' }).waitFor();
  await cards.filter({ hasText: 'page.html' }).waitFor();
  assert.equal(await b.page.getByTestId('messages').locator('img, iframe, object, embed').count(), 0);
  // A click downloads; nothing is rendered in the app.
  for (const name of ['page.html', 'pic.svg']) {
    const [download] = await Promise.all([b.page.waitForEvent('download'), cards.filter({ hasText: name }).click()]);
    assert.equal(download.suggestedFilename(), name);
  }
  // Opened directly in the app's origin, each is an attachment under a sandbox: no script runs.
  for (const f of ids) {
    const page = await b.context.newPage();
    const dialogs = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      d.dismiss().catch(() => {});
    });
    const res = await page.request.get(f.url);
    assert.match(res.headers()['content-security-policy'], /^sandbox;/);
    assert.match(res.headers()['content-disposition'], /^attachment/);
    assert.equal(res.headers()['x-content-type-options'], 'nosniff');
    await page.goto(f.url).catch(() => {}); // a download, not a page
    await page.waitForTimeout(300);
    assert.deepEqual(dialogs, []);
    await page.close();
  }
  await b.page.waitForTimeout(300);
  a.page.assertClean();
  b.page.assertClean();
  await a.context.close();
  await b.context.close();
});

test('a refused file in the tray does not count towards the files a message may carry', async () => {
  const tag = unique('n').slice(-6);
  const aEmail = `ann.${tag}@example.com`;
  const ann = await Api.register(`Ann ${tag}`, aEmail);
  const ben = await Api.register(`Ben ${tag}`);
  await ann.private(ben.user.id);
  const { context, page } = await signIn(browser, aEmail);
  await openChat(page, `Ben ${tag}`);
  const { max_files_per_message: max } = await page.evaluate(() => fetch('/api/v1/files/limits').then((r) => r.json()));

  await page.getByTestId('file-input').setInputFiles({ name: 'empty.txt', mimeType: 'text/plain', buffer: Buffer.alloc(0) });
  await page.locator('[data-testid="upload"][data-state="failed"]').getByText('The file is empty.').waitFor();
  const files = Array.from({ length: max }, (_, i) => ({ name: `f${i + 1}.txt`, mimeType: 'text/plain', buffer: Buffer.from(`file ${i + 1}\n`) }));
  await page.getByTestId('file-input').setInputFiles(files);
  // All of them upload: the empty file goes with no message, so it takes no place of theirs.
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="upload"][data-state="done"]').length === n
    || document.querySelectorAll('[data-testid="upload"][data-state="failed"]').length > 1, max);
  const failed = await page.locator('[data-testid="upload"][data-state="failed"]').allTextContents();
  assert.equal(failed.length, 1, `only the empty file is refused: ${failed.join(' | ')}`);
  await page.getByTestId('send').click();
  await page.getByTestId('message').filter({ has: page.getByTestId('message-files') }).getByTestId('file-card').nth(max - 1).waitFor();
  page.assertClean();
  await context.close();
});
