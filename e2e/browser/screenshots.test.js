// Screenshots of the main screens, light and dark, narrow (390x844) and wide (1280x800), into
// test-output/screenshots/: `make screenshot` runs it (bash e2e/browser/run.sh screenshots.test.js)
// after screenshot.js, which makes the README's picture from the demo data. Not in make test.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Api, NARROW, SHOTS, WIDE, launch, newPage, openChat, screenshot, signIn, unique } from './lib.js';

let browser;
let cast;
before(async () => {
  browser = await launch();
  cast = await seed();
});
after(() => browser?.close());

/** seed makes a small, friendly world: four people, two groups, two direct chats. */
async function seed() {
  const tag = unique('s').slice(-8);
  const mk = (name, local) => Api.register(name, `${local}.${tag}@example.com`);
  const [alice, bruno, chloe, dev] = await Promise.all([
    mk('Alice Martin', 'alice'), mk('Bruno Costa', 'bruno'), mk('Chloé Dubois', 'chloe'), mk('Dev Patel', 'dev'),
  ]);
  const ids = (...u) => u.map((x) => x.user.id);

  const book = await alice.group('Book club', ids(chloe, dev), true);
  await chloe.send(book.id, 'Next month: “The Left Hand of Darkness”?');
  await dev.send(book.id, 'Yes! I have a copy to lend.');

  const chloeChat = await alice.private(chloe.user.id);
  await alice.send(chloeChat.id, 'Thanks for the review this morning!');
  await chloe.send(chloeChat.id, 'Any time :)');

  const design = await alice.group('Design review', ids(bruno, chloe, dev));
  const say = async (who, text) => (await who.send(design.id, text)).seq;
  await say(bruno, 'Morning! I pushed the new onboarding mockups to the shared folder.');
  await say(chloe, 'Nice — the empty states look so much friendlier now.');
  await say(alice, 'Agreed. Can we tighten the spacing on the sign-up card a little?\nIt feels a bit loose on phones.');
  await say(bruno, 'Sure, I’ll do a pass after lunch.');
  await say(dev, 'Also: the dark theme contrast on the badges is much better now.');
  const last = await say(alice, 'Great, let’s ship it on Thursday.');
  await bruno.read(design.id, last);
  await chloe.read(design.id, last);

  const brunoChat = await bruno.private(alice.user.id);
  await bruno.send(brunoChat.id, 'Lunch at 12:30?');
  await chloe.read(book.id, 3);
  return { alice, bruno, tag };
}

const schemes = ['light', 'dark'];
const sizes = [['wide', WIDE], ['narrow', NARROW]];

/** assertShot checks that a screenshot was written as a PNG of the viewport's size. */
function assertShot(name, viewport) {
  const png = readFileSync(path.join(SHOTS, `${name}.png`));
  assert.equal(png.subarray(1, 4).toString(), 'PNG', `${name}.png is a PNG`);
  assert.deepEqual({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) }, viewport, `${name}.png is the viewport's size`);
}

test('sign-in screen', async () => {
  for (const colorScheme of schemes) {
    for (const [size, viewport] of sizes) {
      const { context, page } = await newPage(browser, { viewport, colorScheme });
      await page.goto('/');
      await page.getByRole('heading', { name: 'Welcome back' }).waitFor();
      await page.getByLabel('Email').fill('alice@example.com');
      await page.getByLabel('Password').fill('wrong password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByTestId('auth-error').waitFor();
      await screenshot(page, `signin-error-${colorScheme}-${size}`);
      await page.getByRole('button', { name: 'Create an account' }).click();
      await page.getByRole('heading', { name: 'Create your account' }).waitFor();
      await screenshot(page, `signup-${colorScheme}-${size}`);
      assertShot(`signin-error-${colorScheme}-${size}`, viewport);
      assertShot(`signup-${colorScheme}-${size}`, viewport);
      page.assertClean();
      await context.close();
    }
  }
});

test('chat list, chat, dialogs', async () => {
  // Bruno is online, so his presence dot shows.
  const bruno = await signIn(browser, cast.bruno.user.email);
  const email = cast.alice.user.email;
  for (const colorScheme of schemes) {
    for (const [size, viewport] of sizes) {
      const { context, page } = await signIn(browser, email, { viewport, colorScheme });
      const name = (screen) => `${screen}-${colorScheme}-${size}`;
      await page.getByTestId('chat-item').nth(3).waitFor();
      if (size === 'narrow') {
        await screenshot(page, name('chat-list'));
      }
      await openChat(page, 'Design review');
      await page.evaluate(() => document.activeElement?.blur());
      await screenshot(page, name('chat'));

      await page.getByTestId('members-button').click();
      await page.getByTestId('members-dialog').getByTestId('member').nth(3).waitFor();
      await screenshot(page, name('members'));
      await page.keyboard.press('Escape');

      await page.getByTestId(size === 'narrow' ? 'pane-title' : 'new-chat').waitFor();
      if (size === 'narrow') await page.getByRole('button', { name: 'Back to chats' }).click();
      await page.getByTestId('new-chat').click();
      const dlg = page.getByTestId('new-chat-dialog');
      await dlg.getByRole('tab', { name: 'New group' }).click();
      await dlg.getByLabel('Group name').fill('Weekend trip');
      const who = dlg.getByLabel('Members', { exact: true });
      await who.fill('Bruno Costa');
      await dlg.getByRole('button', { name: 'Add Bruno Costa' }).first().click();
      await who.fill('Chlo');
      await dlg.getByRole('button', { name: 'Add Chloé Dubois' }).first().waitFor();
      await screenshot(page, name('new-group'));
      await page.keyboard.press('Escape');

      await page.getByTestId('account-button').click();
      await page.getByTestId('account-dialog').getByTestId('device').first().waitFor();
      await screenshot(page, name('devices'));
      await page.keyboard.press('Escape');

      for (const screen of ['chat', 'members', 'new-group', 'devices']) assertShot(name(screen), viewport);
      page.assertClean();
      await context.close();
    }
  }
  await bruno.context.close();
});
