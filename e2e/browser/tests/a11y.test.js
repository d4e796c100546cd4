// Accessibility: axe-core finds no serious or critical violation on any screen, in light and
// dark; the page has an h1; the chat list is one Tab stop with arrow keys; focus rings are
// never clipped nor faint (3:1); messages and chats carry what a screen reader needs; in a
// contrast theme (forced colors) every state still shows.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Api, NARROW, chatItem, frames, launch, message, newPage, openChat, pauseClock, signIn, unique } from '../lib.js';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let browser;
let cast;
before(async () => {
  browser = await launch();
  cast = await seed();
});
after(() => browser?.close());

/** seed: Yara in a group with two others and in a private chat, with a message of hers in each. */
async function seed() {
  const tag = unique('a').slice(-6);
  const email = `yara.${tag}@example.com`;
  const yara = await Api.register(`Yara ${tag}`, email);
  // Their emails start with the tag: the New group dialog finds both by it (an email prefix
  // finds only people who share a chat with the one searching).
  const zed = await Api.register(`Zed ${tag}`, `${tag}.zed@example.com`);
  const abe = await Api.register(`Abe ${tag}`, `${tag}.abe@example.com`);
  const group = await yara.group(`Orchard ${tag}`, [zed.user.id, abe.user.id]);
  await zed.send(group.id, 'Apples are ripe — **pick** them this week.');
  await yara.send(group.id, 'I will bring baskets: https://example.com/baskets');
  const dm = await yara.private(zed.user.id);
  await zed.send(dm.id, 'Thanks for the baskets!');
  await yara.send(dm.id, 'Any time.');
  return { tag, email, group: `Orchard ${tag}`, dm: `Zed ${tag}`, zedName: `Zed ${tag}` };
}

/** axe runs axe-core on the page and returns the serious and critical violations, described. */
async function axe(page, screen) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
  assert.deepEqual(violations, [], `axe on ${screen}`);
  assert.ok(await page.locator('h1').count() >= 1, `${screen} has an h1`);
}

/** clippedRing describes the focused element when its focus ring is cut off by a scrolling or clipping ancestor. */
function clippedRing(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const cs = getComputedStyle(el);
    let ring = cs.outlineStyle === 'none' ? 0 : parseFloat(cs.outlineWidth) + (parseFloat(cs.outlineOffset) || 0);
    for (const m of cs.boxShadow.matchAll(/(-?[\d.]+)px (-?[\d.]+)px (-?[\d.]+)px (-?[\d.]+)px/g)) ring = Math.max(ring, Number(m[4]));
    const r = el.getBoundingClientRect();
    const desc = (e) => `${e.localName}${e.id ? '#' + e.id : ''}.${[...e.classList].join('.')}${e.getAttribute('aria-label') ? `[${e.getAttribute('aria-label')}]` : ''}`;
    for (let p = el.parentElement; p; p = p.parentElement) {
      const ps = getComputedStyle(p);
      if (!/(auto|scroll|hidden|clip)/.test(ps.overflowX + ps.overflowY)) continue;
      const pr = p.getBoundingClientRect();
      const l = pr.left + p.clientLeft;
      const t = pr.top + p.clientTop;
      const cut = r.left - ring < l - 0.5 || r.top - ring < t - 0.5
        || r.right + ring > l + p.clientWidth + 0.5 || r.bottom + ring > t + p.clientHeight + 0.5;
      if (cut) return `${desc(el)} (ring ${ring}px) clipped by ${desc(p)}`;
    }
    return null;
  });
}

/**
 * faintRing describes the focused element when its focus ring (an outline) contrasts less than
 * 3:1 (WCAG 1.4.11) with what it is drawn on: the element's own background for a ring drawn
 * inside it (a negative offset), else its parent's; the first background that is not
 * transparent, going up.
 */
function faintRing(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const cs = getComputedStyle(el);
    if (cs.outlineStyle === 'none' || !parseFloat(cs.outlineWidth)) return null;
    const rgb = (c) => c.match(/[\d.]+/g).map(Number);
    const lum = ([r, g, b]) => [r, g, b].map((v) => {
      const x = v / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    }).reduce((sum, x, i) => sum + x * [0.2126, 0.7152, 0.0722][i], 0);
    let under = [255, 255, 255];
    for (let p = parseFloat(cs.outlineOffset) < 0 ? el : el.parentElement; p; p = p.parentElement) {
      const c = rgb(getComputedStyle(p).backgroundColor);
      if (c.length < 4 || c[3] > 0) {
        under = c;
        break;
      }
    }
    const [hi, lo] = [lum(rgb(cs.outlineColor)), lum(under)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio >= 3) return null;
    return `${el.localName}.${[...el.classList].join('.')}[${el.dataset.testid || ''}] ring ${cs.outlineColor} on rgb(${under.slice(0, 3)}): ${ratio.toFixed(2)}:1`;
  });
}

/** tabThrough presses Tab up to n times and returns the focus rings that were clipped or faint. */
async function tabThrough(page, n) {
  const bad = [];
  for (let i = 0; i < n; i++) {
    await page.keyboard.press('Tab');
    for (const c of [await clippedRing(page), await faintRing(page)]) if (c) bad.push(c);
  }
  return bad;
}

for (const colorScheme of ['light', 'dark']) {
  test(`axe: sign-in and sign-up screens (${colorScheme})`, async () => {
    const { context, page } = await newPage(browser, { colorScheme });
    await page.goto('/');
    await page.getByRole('heading', { name: 'Welcome back' }).waitFor();
    await axe(page, 'sign-in');
    await page.getByLabel('Email').fill('nobody@example.com');
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('auth-error').waitFor();
    await axe(page, 'sign-in with an error');
    await page.getByRole('button', { name: 'Create an account' }).click();
    await page.getByRole('heading', { name: 'Create your account' }).waitFor();
    await axe(page, 'sign-up');
    page.assertClean();
    await context.close();
  });

  test(`axe: chat list, chats and every dialog (${colorScheme})`, async () => {
    const { context, page } = await signIn(browser, cast.email, { colorScheme });
    await chatItem(page, cast.group).waitFor();
    await axe(page, 'chat list');
    await openChat(page, cast.group);
    await axe(page, 'group chat');
    await openChat(page, cast.dm);
    await axe(page, 'private chat');

    await page.getByTestId('members-button').click();
    await page.getByTestId('members-dialog').getByTestId('member').nth(1).waitFor();
    await axe(page, 'contact dialog');
    await page.keyboard.press('Escape');

    await openChat(page, cast.group);
    await page.getByTestId('members-button').click();
    await page.getByTestId('members-dialog').getByTestId('member').nth(2).waitFor();
    await axe(page, 'members dialog');
    // The owner's view of the group's details: its settings, a member's actions, deleting it.
    const members = page.getByTestId('members-dialog');
    await members.getByLabel('Group name').waitFor();
    await members.getByTestId('member').filter({ hasText: cast.zedName }).getByTestId('member-menu').click();
    await members.getByRole('button', { name: 'Make admin', exact: true }).waitFor();
    await axe(page, 'group details: settings and member actions');
    // An admin's badge, then back as it was (the next run starts from the same cast).
    await members.getByRole('button', { name: 'Make admin', exact: true }).click();
    await members.getByTestId('member').filter({ hasText: cast.zedName }).getByTestId('role-badge').getByText('Admin').waitFor();
    await axe(page, 'group details: an admin');
    await members.getByRole('button', { name: 'Remove as admin', exact: true }).click();
    await members.getByTestId('member').filter({ hasText: cast.zedName }).getByTestId('role-badge').waitFor({ state: 'detached' });
    await page.getByTestId('delete-group').click();
    await page.getByTestId('confirm-dialog').waitFor();
    await axe(page, 'delete group confirmation');
    await page.getByTestId('confirm-dialog').getByRole('button', { name: 'Cancel' }).click();
    await page.getByTestId('leave-group').click();
    await page.getByTestId('confirm-dialog').waitFor();
    await axe(page, 'confirm dialog');
    await page.getByTestId('confirm-dialog').getByRole('button', { name: 'Cancel' }).click();
    await page.keyboard.press('Escape');
    await page.getByTestId('members-dialog').waitFor({ state: 'detached' });

    await page.locator('[data-own="true"] button[data-testid="msg-status"]').last().click();
    await page.getByTestId('read-by-dialog').getByText(/Read by \d of 2/).waitFor();
    await axe(page, 'read-by dialog');
    await page.keyboard.press('Escape');

    await page.getByTestId('new-chat').click();
    const dlg = page.getByTestId('new-chat-dialog');
    await dlg.getByTestId('user-result').first().waitFor();
    await axe(page, 'new chat: direct');
    await dlg.getByRole('tab', { name: 'New group' }).click();
    await dlg.getByLabel('Members', { exact: true }).fill(cast.zedName);
    await dlg.getByRole('button', { name: `Add ${cast.zedName}` }).click();
    await axe(page, 'new chat: group');
    await dlg.getByRole('tab', { name: 'Discover' }).click();
    await dlg.getByLabel('Search public groups').waitFor();
    await axe(page, 'new chat: discover');
    await page.keyboard.press('Escape');

    await page.getByTestId('account-button').click();
    await page.getByTestId('account-dialog').getByTestId('device').first().waitFor();
    await axe(page, 'account: name, devices, password');
    await page.getByTestId('delete-account').click();
    await page.getByTestId('delete-account-dialog').getByLabel('Your password').waitFor();
    await axe(page, 'delete account dialog');
    await page.keyboard.press('Escape');
    await page.getByTestId('delete-account-dialog').waitFor({ state: 'detached' });
    await page.keyboard.press('Escape');
    page.assertClean();
    await context.close();
  });
}

test('axe on a phone: the chat list and a chat (dark)', async () => {
  const { context, page } = await signIn(browser, cast.email, { colorScheme: 'dark', viewport: NARROW, touch: true });
  await chatItem(page, cast.group).waitFor();
  await axe(page, 'phone: chat list');
  await openChat(page, cast.dm);
  await axe(page, 'phone: chat');
  page.assertClean();
  await context.close();
});

test('axe and keyboard: the message menu, emoji picker, editing, replying, reactions, quotes and deleted messages', async () => {
  const tag = unique('m').slice(-6);
  const email = `uma.${tag}@example.com`;
  const uma = await Api.register(`Uma ${tag}`, email);
  const vic = await Api.register(`Vic ${tag}`);
  const dm = await uma.private(vic.user.id);
  const lunch = await vic.send(dm.id, 'Lunch at noon?');
  await uma.send(dm.id, 'Sounds good.');
  const gone = await vic.send(dm.id, 'Never mind this one.');
  await vic.req('POST', `/chats/${dm.id}/messages`, { body: 'See you there.', client_id: unique('c'), reply_to_seq: lunch.seq });
  await vic.req('PATCH', `/chats/${dm.id}/messages/${lunch.seq}`, { body: 'Lunch at one?' });
  await uma.req('PUT', `/chats/${dm.id}/messages/${lunch.seq}/reactions/${encodeURIComponent('👍')}`);
  await vic.req('PUT', `/chats/${dm.id}/messages/${lunch.seq}/reactions/${encodeURIComponent('🎉')}`);
  await vic.req('DELETE', `/chats/${dm.id}/messages/${gone.seq}`);
  const focused = (page) => page.evaluate(() => document.activeElement?.dataset.testid || document.activeElement?.localName);

  for (const colorScheme of ['light', 'dark']) {
    const { context, page } = await signIn(browser, email, { colorScheme });
    await openChat(page, `Vic ${tag}`);
    await page.getByTestId('reaction').nth(1).waitFor();
    await page.getByTestId('message-deleted').waitFor();
    await page.getByTestId('reply-quote').waitFor();
    await page.getByTestId('edited').waitFor();
    await axe(page, `reactions, a quote, edited and deleted messages (${colorScheme})`);

    // Each message's actions are a button the keyboard reaches; the menu is arrow keys and Esc.
    const lunchMore = page.getByTestId('message').filter({ hasText: 'Lunch at one?' }).first().getByTestId('message-more');
    await lunchMore.focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('message-menu').waitFor();
    assert.equal(await focused(page), 'menu-reply');
    await axe(page, `message menu (${colorScheme})`);
    await page.keyboard.press('ArrowDown');
    assert.equal(await focused(page), 'menu-react');
    await page.keyboard.press('Enter');
    await page.getByTestId('emoji-picker').waitFor();
    assert.equal(await focused(page), 'emoji');
    await axe(page, `emoji picker (${colorScheme})`);
    await page.keyboard.press('Escape');
    await page.getByTestId('emoji-picker').waitFor({ state: 'detached' });
    assert.equal(await focused(page), 'message-more');

    // Replying: Enter on Reply shows the bar above the composer and focuses the composer.
    await page.keyboard.press('Enter');
    await page.keyboard.press('Enter');
    await page.getByTestId('reply-bar').waitFor();
    assert.equal(await focused(page), 'composer');
    await axe(page, `replying (${colorScheme})`);
    await page.keyboard.press('Escape');
    await page.getByTestId('reply-bar').waitFor({ state: 'hidden' });

    // Editing my message: ↑ in the empty composer; the editor has the focus; Esc gives it back.
    await page.keyboard.press('ArrowUp');
    await page.getByTestId('edit-input').waitFor();
    await page.waitForFunction(() => document.activeElement?.dataset.testid === 'edit-input');
    await axe(page, `editing a message (${colorScheme})`);
    await page.keyboard.press('Escape');
    await page.getByTestId('edit-input').waitFor({ state: 'detached' });
    assert.equal(await focused(page), 'composer');
    page.assertClean();
    await context.close();
  }
});

test('keyboard: the chat list is one Tab stop with arrow keys; focus rings are never clipped nor faint', async () => {
  const { context, page } = await signIn(browser, cast.email);
  const items = page.getByTestId('chat-item');
  await items.nth(1).waitFor();
  assert.equal(await page.locator('[data-testid="chat-item"][tabindex="0"]').count(), 1, 'one item takes the Tab stop');

  await page.getByLabel('Filter chats').focus();
  await page.keyboard.press('Tab');
  const focusedChat = () => page.evaluate(() => document.activeElement?.dataset?.chatId || null);
  const first = await focusedChat();
  assert.equal(first, await items.nth(0).getAttribute('data-chat-id'), 'Tab enters the list at its first chat');
  await page.keyboard.press('ArrowDown');
  assert.equal(await focusedChat(), await items.nth(1).getAttribute('data-chat-id'));
  await page.keyboard.press('Home');
  assert.equal(await focusedChat(), first);
  await page.keyboard.press('End');
  assert.equal(await focusedChat(), await items.last().getAttribute('data-chat-id'));
  await page.keyboard.press('Tab');
  assert.equal(await focusedChat(), null, 'one Tab leaves the list');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await focusedChat(), await items.last().getAttribute('data-chat-id'), 'Shift+Tab comes back to where it was');
  await page.keyboard.press('Enter');
  await page.getByTestId('pane-title').getByText(await items.last().getByTestId('chat-title').textContent()).waitFor();

  // Every focus ring on the chat screen and in the dialogs is whole.
  await openChat(page, cast.group);
  await page.getByLabel('Filter chats').focus();
  const clipped = await tabThrough(page, 25);
  await page.getByTestId('new-chat').click();
  const dlg = page.getByTestId('new-chat-dialog');
  await dlg.getByRole('tab', { name: 'New group' }).click();
  await dlg.getByLabel('Members', { exact: true }).fill(cast.tag);
  await dlg.getByTestId('user-result').filter({ hasText: `Abe ${cast.tag}` }).waitFor();
  await dlg.getByTestId('user-result').filter({ hasText: cast.zedName }).waitFor();
  clipped.push(...await tabThrough(page, 12));
  await page.keyboard.press('Escape');
  await page.getByTestId('account-button').click();
  await page.getByTestId('account-dialog').getByTestId('device').first().waitFor();
  clipped.push(...await tabThrough(page, 6));
  await page.keyboard.press('Escape');
  await page.getByTestId('members-button').click();
  const details = page.getByTestId('members-dialog');
  await details.getByTestId('member').nth(2).waitFor();
  await details.getByTestId('member-menu').first().click();
  clipped.push(...await tabThrough(page, 16));
  assert.deepEqual([...new Set(clipped)], []);
  page.assertClean();
  await context.close();
});

test('screen readers: who sent each message, whose message each actions button is, and a chat\'s preview and time in its name', async () => {
  const { context, page } = await signIn(browser, cast.email);
  // The private chat's row says who it is, the last message and when.
  const row = chatItem(page, cast.dm);
  await row.getByTestId('chat-preview').getByText('You: Any time.').waitFor();
  const snapshot = (await row.ariaSnapshot()).replace(/\s+/g, ' ');
  // (Chromium puts a space around the visually hidden commas; screen readers read the same.)
  assert.match(snapshot, new RegExp(`button "${cast.dm} ?, \\d{1,2}:\\d\\d [AP]M ?, You: Any time\\."`), snapshot);
  await openChat(page, cast.dm);
  const said = await page.getByTestId('message').evaluateAll((els) => els.map((e) => e.querySelector('.bubble').innerText.split('\n')[0]));
  assert.deepEqual(said.map((s) => s.replace(/^(.*?:) .*$/, '$1')), [`${cast.zedName}:`, 'You:']);
  // Each message's actions button, reached with Tab away from its text, says whose and when.
  const more = await page.getByRole('log').getByRole('button', { name: /^More actions/ }).evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
  assert.equal(more.length, 2);
  assert.match(more[0], new RegExp(`^More actions: message from ${cast.zedName}, \\d{1,2}:\\d\\d [AP]M$`));
  assert.match(more[1], /^More actions: your message, \d{1,2}:\d\d [AP]M$/);
  page.assertClean();
  await context.close();
});

/**
 * watchLive records in the page what is added to a live region (an element with aria-live
 * other than off, or role log, status or alert without one): what a screen reader would read
 * out unasked. liveSaid returns the record.
 */
async function watchLive(page) {
  await page.evaluate(() => {
    window.liveSaid = [];
    const live = (n) => {
      for (let e = n.nodeType === 1 ? n : n.parentElement; e; e = e.parentElement) {
        const l = e.getAttribute('aria-live');
        if (l) return l === 'off' ? null : e;
        if (['log', 'status', 'alert'].includes(e.getAttribute('role'))) return e;
      }
      return null;
    };
    new MutationObserver((records) => {
      for (const r of records) {
        const added = r.type === 'characterData' ? [r.target] : [...r.addedNodes];
        for (const n of added) {
          const region = live(n);
          const text = n.textContent.trim();
          if (region && text) window.liveSaid.push(`${region.dataset.testid || region.getAttribute('role') || region.className}: ${text}`);
        }
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  return () => page.evaluate(() => window.liveSaid);
}

test('screen readers: a new message from someone else is announced once; opening chats and changes are not', async () => {
  const tag = unique('l').slice(-6);
  const email = `lia.${tag}@example.com`;
  const lia = await Api.register(`Lia ${tag}`, email);
  const bo = await Api.register(`Bo ${tag}`);
  const group = await lia.group(`Choir ${tag}`, [bo.user.id]);
  const dm = await bo.private(lia.user.id);
  const old = await bo.send(group.id, 'Rehearsal moved to Friday.');
  await lia.send(group.id, 'Noted, thanks.');
  await bo.send(dm.id, 'Did you get the sheet music?');

  // The page's timers run when the test says: what waits for the announcer's next turn is told
  // (or not) before the record is read, however fast the messages came.
  const { context, page } = await signIn(browser, email, { clock: true });
  const said = await watchLive(page);
  await openChat(page, `Choir ${tag}`);
  await message(page, 'Noted, thanks.').waitFor();
  await openChat(page, `Bo ${tag}`);
  await message(page, 'Did you get the sheet music?').waitFor();
  await openChat(page, `Choir ${tag}`);
  await message(page, 'Rehearsal moved to Friday.').waitFor();

  await bo.send(group.id, 'Bring a pencil.');
  await message(page, 'Bring a pencil.').waitFor();
  await bo.req('PATCH', `/chats/${group.id}/messages/${old.seq}`, { body: 'Rehearsal moved to Saturday.' });
  await message(page, 'Rehearsal moved to Saturday.').waitFor();
  await lia.send(group.id, 'Will do.');
  await message(page, 'Will do.').getByTestId('msg-status').waitFor();
  await page.clock.runFor(2000);

  const messages = ['Rehearsal', 'Noted', 'sheet music', 'pencil', 'Will do'];
  assert.deepEqual((await said()).filter((s) => messages.some((m) => s.includes(m))), [`announcer: Bo ${tag}: Bring a pencil.`]);
  page.assertClean();
  await context.close();
});

test('screen readers: a burst of new messages is one announcement, not one a message', async () => {
  const tag = unique('u').slice(-6);
  const email = `una.${tag}@example.com`;
  const una = await Api.register(`Una ${tag}`, email);
  const vic = await Api.register(`Vic ${tag}`);
  const chat = await vic.private(una.user.id);
  await vic.send(chat.id, 'Are you there?');
  // The page's timers run when the test says: the burst below comes within one wait.
  const { context, page } = await signIn(browser, email, { clock: true });
  await openChat(page, `Vic ${tag}`);
  await message(page, 'Are you there?').waitFor();
  await pauseClock(page);
  const said = await watchLive(page);
  await vic.send(chat.id, 'First.');
  await page.getByTestId('announcer').getByText(`Vic ${tag}: First.`).waitFor();
  // Each message comes in a frame of its own: they were said one by one.
  for (const text of ['Second.', 'Third.', 'Fourth.']) await vic.send(chat.id, text);
  await message(page, 'Fourth.').waitFor();
  await page.clock.runFor(2000);
  await page.getByTestId('announcer').filter({ hasText: /3 new messages|Fourth/ }).waitFor();
  assert.deepEqual((await said()).filter((s) => s.startsWith('announcer:')), [`announcer: Vic ${tag}: First.`, 'announcer: 3 new messages']);
  page.assertClean();
  await context.close();
});

/** field returns how Chromium's accessibility tree presents the text field named name. */
async function field(page, name) {
  const cdp = await page.context().newCDPSession(page);
  const { nodes } = await cdp.send('Accessibility.getFullAXTree');
  await cdp.detach();
  const n = nodes.find((x) => !x.ignored && x.role?.value === 'textbox' && x.name?.value === name);
  assert.ok(n, `a text field named ${name}`);
  const prop = (p) => n.properties?.find((x) => x.name === p)?.value.value;
  return { description: n.description?.value || '', invalid: prop('invalid') || 'false', focused: !!prop('focused') };
}

test('screen readers: an error in the account dialog is read with its field, which takes the focus', async () => {
  const tag = unique('f').slice(-6);
  const email = `fay.${tag}@example.com`;
  await Api.register(`Fay ${tag}`, email);
  const { context, page } = await signIn(browser, email);
  await page.getByTestId('account-button').click();
  const acc = page.getByTestId('account-dialog');
  assert.equal((await field(page, 'New password')).description, 'At least 8 characters.');
  await acc.getByLabel('Current password').fill('not my password');
  await acc.getByLabel('New password').fill('brand new password');
  await acc.getByRole('button', { name: 'Change password' }).click();
  await acc.getByText('The current password is wrong.').waitFor();
  assert.deepEqual(await field(page, 'Current password'), { description: 'The current password is wrong.', invalid: 'true', focused: true });

  await acc.getByTestId('delete-account').click();
  const del = page.getByTestId('delete-account-dialog');
  await del.getByLabel('Your password').fill('not my password');
  await del.getByRole('button', { name: 'Delete my account' }).click();
  await del.getByText('The password is wrong.').waitFor();
  assert.deepEqual(await field(page, 'Your password'), { description: 'The password is wrong.', invalid: 'true', focused: true });
  page.assertClean();
  await context.close();
});

test('keyboard on a phone: back from a chat (its button or Escape) puts the focus on the chat\'s row', async () => {
  const { context, page } = await signIn(browser, cast.email, { viewport: { width: 320, height: 640 } });
  const row = chatItem(page, cast.group);
  const id = await row.getAttribute('data-chat-id');
  const focusedChat = () => page.evaluate(() => document.activeElement?.dataset?.chatId || document.activeElement?.localName);
  for (const how of ['button', 'Escape']) {
    await row.focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('pane-title').getByText(cast.group, { exact: true }).waitFor();
    await page.waitForFunction(() => document.activeElement?.dataset.testid === 'composer');
    if (how === 'button') {
      await page.getByRole('button', { name: 'Back to chats' }).focus();
      await page.keyboard.press('Enter');
    } else {
      await page.keyboard.press('Escape');
    }
    await page.getByTestId('pane-title').waitFor({ state: 'detached' });
    assert.equal(await focusedChat(), id, `after ${how}`);
    assert.ok(await row.isVisible());
  }
  page.assertClean();
  await context.close();
});

test('reduced motion: the jump to the latest message does not glide; what pulses stands still', async () => {
  const tag = unique('r').slice(-6);
  const email = `rae.${tag}@example.com`;
  const rae = await Api.register(`Rae ${tag}`, email);
  const sol = await Api.register(`Sol ${tag}`);
  const dm = await sol.private(rae.user.id);
  for (let i = 1; i <= 40; i++) await sol.send(dm.id, `Line ${i} of the poem.`);
  await rae.read(dm.id, 40);
  const { context, page } = await signIn(browser, email);
  await openChat(page, `Sol ${tag}`);
  await message(page, 'Line 40 of the poem.').waitFor();
  for (const [reducedMotion, glides] of [['reduce', false], ['no-preference', true]]) {
    await page.emulateMedia({ reducedMotion });
    await page.getByTestId('messages').evaluate((s) => { s.scrollTop = 0; });
    const jump = page.getByRole('button', { name: 'Jump to the latest message' });
    await jump.waitFor();
    // Right after the click a glide has not moved yet (it moves in the frames after); a jump is there.
    const left = await jump.evaluate((b) => {
      b.click();
      const s = document.querySelector('[data-testid="messages"]');
      return s.scrollHeight - s.scrollTop - s.clientHeight;
    });
    assert.equal(left > 1, glides, `${reducedMotion}: ${left} px from the bottom right after the click`);
    await page.waitForFunction(() => {
      const s = document.querySelector('[data-testid="messages"]');
      return s.scrollHeight - s.scrollTop - s.clientHeight < 2;
    });
  }
  // Offline, the banner's dot pulses without end; with reduced motion it stands still (an
  // endless animation only made short would flicker).
  await page.emulateMedia({ reducedMotion: 'reduce' });
  await context.setOffline(true);
  const dot = page.locator('[data-testid="conn-banner"][data-state="offline"] .banner-dot');
  await dot.waitFor();
  const running = () => dot.evaluate((el) => el.getAnimations().filter((a) => a.playState === 'running').length);
  await frames(page);
  assert.equal(await running(), 0);
  await page.emulateMedia({ reducedMotion: 'no-preference' });
  assert.equal(await running(), 1, 'without reduced motion the dot pulses');
  await context.setOffline(false);
  page.assertClean();
  await context.close();
});

test('keyboard: an upload finishing leaves the focus on the other file\'s button and says nothing of it; removing one hands the focus on', async () => {
  const tag = unique('u').slice(-6);
  const email = `ivo.${tag}@example.com`;
  const ivo = await Api.register(`Ivo ${tag}`, email);
  const kim = await Api.register(`Kim ${tag}`);
  const dm = await ivo.private(kim.user.id);
  // The second upload waits here until the test lets it go.
  let hold = false;
  let arrived;
  const held = new Promise((resolve) => { arrived = resolve; });
  const { context, page } = await signIn(browser, email, {
    setup: (p) => p.route(`**/api/v1/chats/${dm.id}/files`, (route) => (hold ? arrived(route) : route.continue())),
  });
  await openChat(page, `Kim ${tag}`);
  const said = await watchLive(page);
  const attach = (name) => page.getByTestId('file-input').setInputFiles({ name, mimeType: 'text/plain', buffer: Buffer.from(`the text of ${name}`) });
  const row = (name) => page.getByTestId('upload').filter({ hasText: name });
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute('aria-label') || document.activeElement?.dataset.testid);
  const aboutA = async () => (await said()).filter((s) => s.includes('a.txt')).length;

  await attach('a.txt');
  await row('a.txt').and(page.locator('[data-state="done"]')).waitFor();
  hold = true;
  await attach('b.txt');
  await row('b.txt').and(page.locator('[data-state="uploading"]')).waitFor();
  await page.getByRole('button', { name: 'Remove a.txt' }).focus();
  const before = await aboutA();
  const upload = await held;
  hold = false;
  await upload.continue();
  await row('b.txt').and(page.locator('[data-state="done"]')).waitFor();
  assert.equal(await focused(), 'Remove a.txt', 'the focus stays while b.txt finishes');
  assert.equal(await aboutA(), before, 'b.txt finishing says nothing of a.txt');

  await page.keyboard.press('Enter');
  await row('a.txt').waitFor({ state: 'detached' });
  assert.equal(await focused(), 'Remove b.txt', 'removing a.txt hands the focus to the next file');
  await page.keyboard.press('Enter');
  await row('b.txt').waitFor({ state: 'detached' });
  assert.equal(await focused(), 'Message', 'removing the last file hands the focus to the composer');
  page.assertClean();
  await context.close();
});

test('screen readers: near the length limit the composer says when a mark is passed, not a count a keystroke', async () => {
  const { context, page } = await signIn(browser, cast.email);
  await openChat(page, cast.dm);
  const box = page.getByLabel('Message', { exact: true });
  const said = await watchLive(page);
  await box.fill('a'.repeat(3498));
  await box.pressSequentially('bcde'); // 3,502: past 500 left
  await page.getByText('3,502 / 4,000').waitFor();
  await box.fill('a'.repeat(3898));
  await box.pressSequentially('bcde'); // 3,902: past 100 left
  await page.getByText('3,902 / 4,000').waitFor();
  const counts = (await said()).filter((s) => /4000|characters/.test(s));
  assert.deepEqual(counts, ['counter-said: Fewer than 500 characters left', 'counter-said: Fewer than 100 characters left']);
  await box.fill('');
  page.assertClean();
  await context.close();
});

test('keyboard: the jump to the latest message leaves the focus on the composer, not on the page', async () => {
  const tag = unique('j').slice(-6);
  const email = `joy.${tag}@example.com`;
  const joy = await Api.register(`Joy ${tag}`, email);
  const max = await Api.register(`Max ${tag}`);
  const dm = await max.private(joy.user.id);
  for (let i = 1; i <= 40; i++) await max.send(dm.id, `Verse ${i}.`);
  await joy.read(dm.id, 40);
  const { context, page } = await signIn(browser, email);
  await openChat(page, `Max ${tag}`);
  await message(page, 'Verse 40.').waitFor();
  await page.getByTestId('messages').evaluate((s) => { s.scrollTop = 0; });
  const jump = page.getByRole('button', { name: 'Jump to the latest message' });
  await jump.focus();
  await page.keyboard.press('Enter');
  await jump.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'composer');
  page.assertClean();
  await context.close();
});

test('keyboard: in the group details a dismissed removal gives the focus back to Remove, a removal to the next member', async () => {
  const tag = unique('g').slice(-6);
  const email = `ola.${tag}@example.com`;
  const ola = await Api.register(`Ola ${tag}`, email);
  const abe = await Api.register(`Abe ${tag}`);
  const bea = await Api.register(`Bea ${tag}`);
  await ola.group(`Crew ${tag}`, [abe.user.id, bea.user.id]);
  const { context, page } = await signIn(browser, email);
  await openChat(page, `Crew ${tag}`);
  await page.getByTestId('members-button').click();
  const details = page.getByTestId('members-dialog');
  await details.getByTestId('member').nth(2).waitFor();
  await details.getByRole('button', { name: `Actions for Abe ${tag}` }).focus();
  await page.keyboard.press('Enter');
  await details.getByRole('button', { name: 'Remove', exact: true }).focus();
  await page.keyboard.press('Enter');
  const confirm = page.getByTestId('confirm-dialog');
  // Cancel first: the focus is back on Remove.
  await confirm.getByRole('button', { name: 'Cancel' }).focus();
  await page.keyboard.press('Enter');
  await confirm.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Remove');
  await page.keyboard.press('Enter');
  await confirm.getByRole('button', { name: 'Remove', exact: true }).focus();
  await page.keyboard.press('Enter');
  await details.getByTestId('member').filter({ hasText: `Abe ${tag}` }).waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), `Actions for Bea ${tag}`);
  page.assertClean();
  await context.close();
});

test('keyboard: signing other devices out one by one keeps the focus on the next one, then on "Sign out of all devices"', async () => {
  const tag = unique('d').slice(-6);
  const email = `dee.${tag}@example.com`;
  await Api.register(`Dee ${tag}`, email); // a session of its own, as each login
  await Api.login(email);
  const { context, page } = await signIn(browser, email);
  await page.getByTestId('account-button').click();
  const devices = page.getByTestId('account-dialog').getByTestId('device');
  await devices.nth(2).waitFor(); // this one and the two others
  const focused = () => page.evaluate(() => (document.activeElement?.closest('[data-testid="device"]') ? 'a device\'s Sign out' : document.activeElement?.dataset.testid));
  await devices.nth(1).getByRole('button', { name: /^Sign out/ }).focus();
  for (const [left, want] of [[2, 'a device\'s Sign out'], [1, 'sign-out-all']]) {
    await page.keyboard.press('Enter');
    await devices.nth(left).waitFor({ state: 'detached' });
    assert.equal(await focused(), want, `${left - 1} other devices left`);
  }
  page.assertClean();
  await context.close();
});

test('keyboard: a form saved from its button keeps the focus there (a new name, the group\'s settings)', async () => {
  const tag = unique('s').slice(-6);
  const email = `sol.${tag}@example.com`;
  const sol = await Api.register(`Sol ${tag}`, email);
  const ty = await Api.register(`Ty ${tag}`);
  await sol.group(`Band ${tag}`, [ty.user.id]);
  const { context, page } = await signIn(browser, email);
  const focused = () => page.evaluate(() => document.activeElement?.textContent);

  await page.getByTestId('account-button').click();
  const acc = page.getByTestId('account-dialog');
  await acc.getByLabel('Display name', { exact: true }).fill(`Sol B ${tag}`);
  await acc.getByRole('button', { name: 'Save name' }).focus();
  await page.keyboard.press('Enter');
  await acc.getByText('Saved.').waitFor();
  assert.equal(await focused(), 'Save name');
  await page.keyboard.press('Escape');

  await openChat(page, `Band ${tag}`);
  await page.getByTestId('members-button').click();
  const details = page.getByTestId('members-dialog');
  await details.getByLabel('Description').fill('We play on Fridays.');
  await details.getByRole('button', { name: 'Save changes' }).focus();
  await page.keyboard.press('Enter');
  await details.getByText('Saved.').waitFor();
  assert.equal(await focused(), 'Save changes');
  page.assertClean();
  await context.close();
});

test('contrast themes (forced colors): the open chat, the chosen tab and mention, my reaction, a focused field and a mention of me still show', async () => {
  // A contrast theme (Windows' high contrast, forced-colors: active) paints every background
  // in its one colour and drops shadows: what told a state by either alone told nothing. Each
  // element is drawn in its two states, and the two drawings must differ.
  const tag = unique('f').slice(-6);
  const email = `fay.${tag}@example.com`;
  const fay = await Api.register(`Fay ${tag}`, email);
  const gus = await Api.register(`Gus ${tag}`);
  const hal = await Api.register(`Hal ${tag}`);
  const kiln = await fay.group(`Kiln ${tag}`, [gus.user.id, hal.user.id]);
  await fay.group(`Loom ${tag}`, [gus.user.id]);
  await gus.send(kiln.id, 'The kiln is hot.');
  const mine = await fay.send(kiln.id, 'Bring the clay.');
  await gus.req('POST', `/chats/${kiln.id}/messages`, { body: `@Fay ${tag} you too`, client_id: unique('c'), mentions: [fay.user.id] });
  const thumbs = encodeURIComponent('👍');
  await gus.req('PUT', `/chats/${kiln.id}/messages/${mine.seq}/reactions/${thumbs}`);

  const { context, page } = await signIn(browser, email);
  await page.emulateMedia({ forcedColors: 'active' });
  const drawn = async (locator, mask = []) => {
    await page.mouse.move(0, 0); // no hover
    await frames(page);
    return locator.screenshot({ mask, animations: 'disabled', caret: 'hide' });
  };
  const differ = (a, b, what) => assert.ok(!a.equals(b), `${what}: both states are drawn alike`);

  // The open chat (its time masked: a minute may turn between the drawings).
  const row = chatItem(page, `Kiln ${tag}`);
  await openChat(page, `Kiln ${tag}`);
  await message(page, `@Fay ${tag} you too`).waitFor();
  await row.getByTestId('unread-badge').waitFor({ state: 'detached' }); // read: the row stays as it is
  const open = await drawn(row, [row.locator('.ci-time')]);
  await openChat(page, `Loom ${tag}`);
  differ(open, await drawn(row, [row.locator('.ci-time')]), 'the open chat in the list');

  // The chosen tab of the new chat dialog.
  await page.getByTestId('new-chat').click();
  const direct = page.getByRole('tab', { name: 'Direct' });
  await direct.waitFor();
  const chosen = await drawn(direct);
  await page.getByRole('tab', { name: 'New group' }).click();
  differ(chosen, await drawn(direct), 'the chosen tab');
  await page.keyboard.press('Escape');

  // A reaction of mine, before and after I join it (its count masked: it goes from 1 to 2).
  await openChat(page, `Kiln ${tag}`);
  const chip = message(page, 'Bring the clay.').getByTestId('reaction');
  const count = [chip.locator('.reaction-count')];
  assert.equal(await chip.getAttribute('aria-pressed'), 'false');
  const others = await drawn(chip, count);
  await chip.click();
  await chip.and(page.locator('[aria-pressed="true"]')).waitFor();
  differ(others, await drawn(chip, count), 'my reaction');

  // The chosen mention in the list the composer offers.
  const box = page.getByLabel('Message', { exact: true });
  const form = page.locator('form.composer');
  await box.evaluate((el) => el.blur()); // the composer takes the focus when a chat opens
  const unfocused = await drawn(form);
  await box.focus();
  differ(unfocused, await drawn(form), 'the focused composer');
  // Its ring was a shadow: Chromium's theme still drew the border in another colour, 1 px.
  assert.equal(await box.evaluate((el) => getComputedStyle(el).outlineStyle), 'solid', 'the focused composer has an outline');
  await page.keyboard.type('@');
  const first = page.getByTestId('mention-option').first();
  await first.waitFor();
  assert.equal(await first.getAttribute('aria-selected'), 'true');
  const active = await drawn(first);
  await page.keyboard.press('ArrowDown');
  assert.equal(await first.getAttribute('aria-selected'), 'false');
  differ(active, await drawn(first), 'the chosen mention');
  await page.keyboard.press('Escape');

  // A message that mentions me, beside one that does not; every bubble keeps an edge.
  const edge = (text) => message(page, text).locator('.bubble').evaluate((b) => getComputedStyle(b).borderInlineStartWidth);
  const plain = await edge('The kiln is hot.');
  assert.notEqual(plain, '0px', 'a bubble has no edge');
  assert.notEqual(await edge(`@Fay ${tag} you too`), plain, 'a message that mentions me looks like any other');
  page.assertClean();
  await context.close();
});
