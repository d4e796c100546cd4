// Text in either direction, on a phone: an Arabic paragraph of a message reads right
// to left and an English one after it left to right; a long Arabic title is cut at its end, not
// its start; an Arabic sender's name does not pull the message's first number into it in the
// chat list's preview; what is written in the composer takes its own direction.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, chatItem, launch, message, signIn, unique } from '../lib.js';

const PHONE = { width: 375, height: 667 };

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/**
 * rectOf returns the box on screen of the first occurrence of text inside the element (across
 * its text nodes, each searched on its own), with the element's own box.
 */
function rectOf(locator, text) {
  return locator.evaluate((el, t) => {
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      const i = n.data.indexOf(t);
      if (i < 0) continue;
      const r = document.createRange();
      r.setStart(n, i);
      r.setEnd(n, i + t.length);
      const b = r.getBoundingClientRect();
      const box = el.getBoundingClientRect();
      return { left: b.left, right: b.right, boxLeft: box.left, boxRight: box.right };
    }
    return null;
  }, text);
}

test('on a phone, Arabic reads right to left in messages, titles and previews', async () => {
  const tag = unique('d').slice(-6);
  const email = `dana.${tag}@example.com`;
  const dana = await Api.register(`Dana ${tag}`, email);
  // The name ends in Arabic letters: a number after it is drawn into its run unless it is set apart.
  const arab = await Api.register(`Q${tag} محمد`);
  const title = 'مجموعة طويلة جدا جدا جدا للعائلة والأصدقاء والجيران وزملاء العمل القدامى والجدد';
  const group = await dana.group(title, [arab.user.id]);
  const body = 'سطر بالعربية.\nEnglish here.';
  await arab.send(group.id, body);
  await arab.send(group.id, '3 apples');

  const { context, page } = await signIn(browser, email, { viewport: PHONE, touch: true });
  const row = chatItem(page, title);
  await row.getByText('3 apples').waitFor();

  // The list: the title shows its first word (its start, at the right), the ellipsis at its end.
  const listTitle = row.getByTestId('chat-title');
  const first = await rectOf(listTitle, 'مجموعة');
  assert.ok(first.right <= first.boxRight + 1 && first.left >= first.boxLeft - 1,
    `the title's first word is in its box (${Math.round(first.left)}..${Math.round(first.right)} in ${Math.round(first.boxLeft)}..${Math.round(first.boxRight)})`);
  // The preview: "name: 3 apples", the 3 after the name, not inside it. The text is looked for
  // whole: the name's tag may hold a 3 of its own.
  const preview = row.getByTestId('chat-preview');
  const name = await rectOf(preview, 'محمد');
  const three = await rectOf(preview, '3 apples');
  assert.ok(three.left >= name.right - 1, `the 3 comes after the sender's name (3 at ${Math.round(three.left)}, the name ends at ${Math.round(name.right)})`);

  await row.click();
  const paneTitle = page.getByTestId('pane-title');
  await paneTitle.waitFor();
  const head = await rectOf(paneTitle, 'مجموعة');
  assert.ok(head.right <= head.boxRight + 1 && head.left >= head.boxLeft - 1, 'the header shows the title\'s first word');

  // The message: the Arabic paragraph ends with its full stop at its left, the English one at its right.
  const text = message(page, body).getByTestId('message-text');
  await text.waitFor();
  const ar = await rectOf(text, 'سطر');
  const arStop = await rectOf(text, '.');
  assert.ok(arStop.right <= ar.left + 1, `the Arabic line's full stop is at its left (stop at ${Math.round(arStop.left)}, first word at ${Math.round(ar.left)})`);
  const en = await rectOf(text, 'English');
  const enStop = await rectOf(text, 'here.');
  assert.ok(enStop.left > en.right, 'the English line reads left to right');

  // What is written takes its own direction, a line at a time.
  for (const box of [page.getByLabel('Message', { exact: true })]) {
    assert.equal(await box.evaluate((el) => getComputedStyle(el).unicodeBidi), 'plaintext');
  }
  page.assertClean();
  await context.close();
});
