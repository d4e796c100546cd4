// Live changes redraw what they change, and nothing moves under the user: a new message moves
// its chat's row to the top (with its preview and badge) while the focus stays on the row the
// keyboard is on and the open chat stays selected; in the open chat a new message is added
// below, and a reaction or a read mark draws its own message again, not the others. A chat
// left keeps only its newest messages; opening it again pages back as before.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, chatItem, frames, launch, message, openChat, privatePair, send, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/** rowTitles lists the chat list's rows, top first, by title. */
const rowTitles = (page) => page.getByTestId('chat-title').allTextContents();

/** focusedTitle is the title of the chat-list row that has the keyboard focus, if one has. */
const focusedTitle = (page) => page.evaluate(() => document.activeElement?.closest('.chat-item')?.querySelector('[data-testid="chat-title"]')?.textContent ?? null);

test('a new message moves its row to the top and updates its badge; focus and selection stay', async () => {
  const tag = unique('r').slice(-6);
  const email = `mia-${tag}@example.com`;
  const me = await Api.register(`Mia ${tag}`, email);
  const [x, y, z] = await Promise.all(['Xan', 'Yve', 'Zed'].map((n) => Api.register(`${n} ${tag}`)));
  const chats = {};
  // Oldest activity first: Zed's chat, then Yve's, then Xan's (the top row).
  for (const p of [z, y, x]) {
    chats[p.user.name] = await me.private(p.user.id);
    await p.send(chats[p.user.name].id, `hello from ${p.user.name}`);
  }
  const X = x.user.name;
  const Y = y.user.name;
  const Z = z.user.name;
  const { page } = await signIn(browser, email);
  await chatItem(page, Z).getByTestId('unread-badge').getByText('1', { exact: true }).waitFor();
  assert.deepEqual(await rowTitles(page), [X, Y, Z]);

  // Zed's chat open (read, selected); the keyboard on Yve's row.
  await openChat(page, Z);
  await chatItem(page, Z).getByTestId('unread-badge').waitFor({ state: 'detached' });
  await chatItem(page, Y).focus();
  assert.equal(await focusedTitle(page), Y);

  // Xan writes again: the row is on top already; its badge says 2.
  await x.send(chats[X].id, 'second from Xan');
  await chatItem(page, X).getByTestId('unread-badge').getByText('2', { exact: true }).waitFor();
  await chatItem(page, X).getByTestId('chat-preview').getByText('second from Xan').waitFor();

  // Zed writes in the open chat: Zed's row goes to the top, still selected, with no badge.
  await z.send(chats[Z].id, 'from the open chat');
  await message(page, 'from the open chat').waitFor();
  await chatItem(page, Z).getByTestId('chat-preview').getByText('from the open chat').waitFor();
  assert.deepEqual(await rowTitles(page), [Z, X, Y]);
  assert.equal(await chatItem(page, Z).getAttribute('aria-current'), 'true');
  assert.equal(await focusedTitle(page), Y, 'the focus stays on the row it was on');

  // Yve writes: the focused row itself moves to the top and keeps the focus, with its badge.
  await y.send(chats[Y].id, 'Yve again');
  await chatItem(page, Y).getByTestId('unread-badge').getByText('2', { exact: true }).waitFor();
  assert.deepEqual(await rowTitles(page), [Y, Z, X]);
  assert.equal(await focusedTitle(page), Y, 'the focused row keeps the focus as it moves');
  assert.equal(await chatItem(page, Y).getAttribute('tabindex'), '0', 'the focused row is the Tab stop');
  assert.equal(await chatItem(page, Z).getAttribute('aria-current'), 'true');
  await chatItem(page, Y).and(page.getByRole('button', { name: /2 unread/ })).waitFor();
  // The arrow keys go by the new order.
  await page.keyboard.press('ArrowDown');
  assert.equal(await focusedTitle(page), Z);

  // Reading Xan's chat elsewhere (the API) takes its badge away; nothing moves.
  const lastX = (await me.chats()).find((c) => c.id === chats[X].id).last_seq;
  await me.read(chats[X].id, lastX);
  await chatItem(page, X).getByTestId('unread-badge').waitFor({ state: 'detached' });
  assert.deepEqual(await rowTitles(page), [Y, Z, X]);

  // With a filter, a message of a chat it hides adds no row; a message of one it shows moves it.
  await page.getByLabel('Filter chats').fill(X);
  await page.getByTestId('chat-item').filter({ hasText: Y }).waitFor({ state: 'detached' });
  await y.send(chats[Y].id, 'while filtered');
  await x.send(chats[X].id, 'Xan while filtered');
  await chatItem(page, X).getByTestId('chat-preview').getByText('Xan while filtered').waitFor();
  assert.deepEqual(await rowTitles(page), [X]);
  await page.getByLabel('Filter chats').fill('');
  await chatItem(page, Y).getByTestId('chat-preview').getByText('while filtered').waitFor();
  assert.deepEqual(await rowTitles(page), [X, Y, Z]);
  page.assertClean();
});

test('in the open chat a new message is added and a change draws only its own message', async () => {
  const tag = unique('p').slice(-6);
  const email = `ada-${tag}@example.com`;
  const a = await Api.register(`Ada ${tag}`, email);
  const b = await Api.register(`Bo ${tag}`);
  const chat = await a.private(b.user.id);
  // Bo's message first: Ada's five after it are read by her, not by him (no ✓✓ yet).
  const theirs = await b.send(chat.id, `theirs ${tag}`);
  const mine = [];
  for (let i = 0; i < 5; i++) mine.push(await a.send(chat.id, `mine ${i} ${tag}`));
  const { page } = await signIn(browser, email);
  await openChat(page, b.user.name);
  await message(page, `mine 4 ${tag}`).waitFor();
  assert.equal(await page.locator('[data-testid="msg-status"][data-state="read"]').count(), 0);
  // Counts each time a message's insides are replaced (drawn anew), by its seq.
  await page.evaluate(() => {
    window.redrawn = {};
    new MutationObserver((records) => {
      for (const { target: el, type } of records) {
        if (type === 'childList' && el.dataset?.testid === 'message') window.redrawn[el.dataset.seq] = (window.redrawn[el.dataset.seq] || 0) + 1;
      }
    }).observe(document.querySelector('[data-testid="messages"]'), { subtree: true, childList: true });
  });
  const redrawn = () => page.evaluate(() => ({ ...window.redrawn }));

  // Bo reads everything: my five messages get ✓✓, each drawn once again, his own not at all.
  await b.read(chat.id, mine.at(-1).seq);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="msg-status"][data-state="read"]').length === n, mine.length);
  await frames(page);
  assert.deepEqual(await redrawn(), Object.fromEntries(mine.map((m) => [String(m.seq), 1])));

  // A new message of Bo's is added below; nothing else is drawn again.
  await page.evaluate(() => { window.redrawn = {}; });
  const next = await b.send(chat.id, `new ${tag}`);
  await message(page, `new ${tag}`).waitFor();
  const seqs = await page.locator('.msg-list [data-seq]').evaluateAll((els) => els.map((el) => Number(el.dataset.seq)));
  assert.equal(seqs.at(-1), next.seq, 'the new message is the last one');
  await frames(page);
  assert.deepEqual(await redrawn(), {});

  // Bo reacts to my second message: that message alone is drawn again, with the chip.
  await b.req('PUT', `/chats/${chat.id}/messages/${mine[1].seq}/reactions/${encodeURIComponent('👍')}`);
  await message(page, `mine 1 ${tag}`).getByRole('button', { name: /👍/ }).waitFor();
  await frames(page);
  assert.deepEqual(await redrawn(), { [mine[1].seq]: 1 });

  // Bo edits his message: it alone is drawn again.
  await page.evaluate(() => { window.redrawn = {}; });
  await b.req('PATCH', `/chats/${chat.id}/messages/${next.seq}`, { body: `edited ${tag}` });
  await message(page, `edited ${tag}`).waitFor();
  await frames(page);
  assert.deepEqual(await redrawn(), { [next.seq]: 1 });

  // His next message continues his run (no gap); what was drawn piece by piece is what a
  // reload draws at once.
  const run = await b.send(chat.id, `run ${tag}`);
  await message(page, `run ${tag}`).waitFor();
  // Read on screen, and the server told (a reload before that would show it unread).
  for (const until = Date.now() + 30000; (await a.chats()).find((c) => c.id === chat.id).my_last_read_seq < run.seq;) {
    assert.ok(Date.now() < until, 'the new message was not marked read in 30 s');
    await page.waitForTimeout(100);
  }
  assert.match(await message(page, `run ${tag}`).getAttribute('class'), /\bcont\b/);
  const drawing = () => page.locator('.msg-list > *').evaluateAll((els) => els.map((el) => `${el.dataset.key} ${el.className} ${el.textContent}`));
  const pieced = await drawing();
  await page.reload();
  await page.getByTestId('chat-list').waitFor();
  await message(page, `run ${tag}`).waitFor();
  assert.deepEqual(await drawing(), pieced);
  page.assertClean();
});

test('my message sent, and members joining and leaving, draw only what they add; the view keeps to the bottom', async () => {
  const tag = unique('m').slice(-6);
  const email = `ida-${tag}@example.com`;
  const a = await Api.register(`Ida ${tag}`, email);
  const b = await Api.register(`Jo ${tag}`);
  const c = await Api.register(`Kai ${tag}`);
  const group = await a.group(`Team ${tag}`, [b.user.id]);
  // Enough of Jo's messages to scroll, read by Ida.
  let last;
  for (let i = 0; i < 30; i++) last = await b.send(group.id, `line ${i} ${tag}`);
  await a.read(group.id, last.seq);
  const { page } = await signIn(browser, email);
  await openChat(page, `Team ${tag}`);
  await message(page, `line 29 ${tag}`).waitFor();
  // Counts each time a message's insides are drawn anew, by key, and keeps each element added;
  // and counts the drawings of the line above the messages ("This is the beginning..."), which
  // a drawing of the whole pane does again.
  await page.evaluate(() => {
    window.redrawn = {};
    window.added = [];
    window.wholePane = 0;
    const list = document.querySelector('.msg-list');
    new MutationObserver((records) => {
      for (const { target: el, addedNodes } of records) {
        if (el === list) window.added.push(...addedNodes);
        else if (el.parentElement === list) window.redrawn[el.dataset.key] = (window.redrawn[el.dataset.key] || 0) + 1;
      }
    }).observe(list, { subtree: true, childList: true });
    new MutationObserver(() => { window.wholePane += 1; }).observe(document.querySelector('[data-testid="history-status"]'), { childList: true });
  });
  const redrawn = () => page.evaluate(() => ({ ...window.redrawn }));
  const wholePane = () => page.evaluate(() => window.wholePane);
  const addedKeys = () => page.evaluate(() => window.added.map((el) => el.dataset.key));
  const atBottom = () => page.waitForFunction(() => {
    const s = document.querySelector('[data-testid="messages"]');
    return s.scrollHeight - s.scrollTop - s.clientHeight < 2;
  });
  const lastKey = () => page.locator('.msg-list > *').last().evaluate((el) => el.dataset.key);

  // My message: drawn at once as sending, then, acknowledged, drawn again as sent in the same
  // element; no other message is drawn again.
  await send(page, `mine ${tag}`);
  const mine = message(page, `mine ${tag}`);
  await mine.locator('[data-testid="msg-status"][data-state="sent"]').waitFor();
  const key = await mine.evaluate((el) => el.dataset.key);
  assert.match(key, /^c:/);
  assert.deepEqual(await addedKeys(), [key], 'my message is added once');
  assert.ok(await mine.evaluate((el) => window.added[0] === el), 'the sent message keeps the element it had unsent');
  assert.deepEqual(Object.keys(await redrawn()), [key]);
  assert.equal(await wholePane(), 0, 'sending draws the message, not the pane');
  await atBottom();

  // Jo answers: added below, the view follows it down.
  await page.evaluate(() => { window.redrawn = {}; window.added = []; });
  const answer = await b.send(group.id, `answer ${tag}`);
  await message(page, `answer ${tag}`).waitFor();
  assert.deepEqual(await addedKeys(), [`s:${answer.seq}`]);
  await atBottom();

  // Kai is invited, then leaves: each time a note is added below, and no message is drawn again.
  await page.evaluate(() => { window.redrawn = {}; window.added = []; });
  await a.req('POST', `/chats/${group.id}/members`, { user_id: c.user.id });
  await page.getByTestId('system-message').filter({ hasText: `Kai ${tag}` }).first().waitFor();
  await page.getByTestId('pane-sub').getByText('3 members').waitFor();
  await c.req('POST', `/chats/${group.id}/leave`);
  await page.getByTestId('pane-sub').getByText('2 members').waitFor();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="system-message"]').length >= 2);
  await frames(page);
  const notes = await page.getByTestId('system-message').evaluateAll((els) => els.map((el) => el.dataset.key));
  assert.deepEqual(await addedKeys(), notes.slice(-2), 'the two notes are added, nothing else');
  assert.equal(await lastKey(), notes.at(-1));
  // (The note of Kai's joining may be drawn again once, when his name comes after it.)
  assert.deepEqual(Object.keys(await redrawn()).filter((k) => k !== notes.at(-2)), []);
  assert.equal(await wholePane(), 0, 'members joining and leaving draw their notes, not the pane');
  await atBottom();

  // Scrolled up a little: a new message does not move the view.
  const top = await page.evaluate(() => {
    const s = document.querySelector('[data-testid="messages"]');
    s.scrollTop -= 150;
    return s.scrollTop;
  });
  await frames(page);
  const more = await b.send(group.id, `more ${tag}`);
  await message(page, `more ${tag}`).waitFor();
  await frames(page);
  assert.equal(await page.evaluate(() => document.querySelector('[data-testid="messages"]').scrollTop), top);

  // What was drawn piece by piece is what a reload draws at once (once read, so without a divider).
  await page.evaluate(() => document.querySelector('[data-testid="messages"]').scrollTo({ top: 1e9 }));
  for (const until = Date.now() + 30000; (await a.chats()).find((x) => x.id === group.id).my_last_read_seq < more.seq;) {
    assert.ok(Date.now() < until, 'the new message was not marked read in 30 s');
    await page.waitForTimeout(100);
  }
  const drawing = () => page.locator('.msg-list > *').evaluateAll((els) => els.map((el) => `${el.dataset.key} ${el.className} ${el.textContent}`));
  const pieced = await drawing();
  await page.reload();
  await page.getByTestId('chat-list').waitFor();
  await message(page, `more ${tag}`).waitFor();
  assert.deepEqual(await drawing(), pieced);
  page.assertClean();
});

test('a chat left keeps its newest messages; scrolling back there loads the rest again', async () => {
  const { tag, email, reader, writer, chat } = await privatePair('e', 'Eva', 'Olaf');
  const N = 260;
  const text = (i) => `e-${String(i).padStart(3, '0')}`;
  for (let i = 1; i <= N; i++) await writer.send(chat.id, text(i));
  await reader.read(chat.id, N);
  const other = await Api.register(`Pia ${tag}`);
  await other.private(reader.user.id);
  const { page } = await signIn(browser, email);
  const scroller = page.getByTestId('messages');
  const scrollToStart = async () => {
    for (let i = 0; i < 60 && !(await message(page, text(1)).count()); i++) {
      await scroller.evaluate((el) => { el.scrollTop = 0; });
      await page.waitForTimeout(100);
    }
    await page.getByText('This is the beginning of your conversation.').waitFor();
    assert.deepEqual(await page.getByTestId('message-text').allTextContents(), Array.from({ length: N }, (_, i) => text(i + 1)));
  };
  await openChat(page, `Olaf ${tag}`);
  await scrollToStart();

  // Another chat, then back: the newest messages are there at once, the oldest were let go.
  await openChat(page, `Pia ${tag}`);
  await openChat(page, `Olaf ${tag}`);
  await message(page, text(N)).waitFor();
  const kept = await page.getByTestId('message-text').allTextContents();
  assert.ok(kept.length < N, `${kept.length} messages kept`);
  assert.deepEqual(kept, Array.from({ length: kept.length }, (_, i) => text(N - kept.length + i + 1)));
  await scrollToStart();
  page.assertClean();
});

test('emails learnt to tell look-alike members apart draw their messages only, not the whole pane', async () => {
  const tag = unique('e').slice(-6);
  const email = `eve-${tag}@example.com`;
  const eve = await Api.register(`Eve ${tag}`, email);
  const kim = await Api.register(`Kim ${tag}`, `kim-${tag}@example.com`);
  const twin = await Api.register(`KIM ${tag}`, `twin-${tag}@example.com`); // the same name but for case
  const lu = await Api.register(`Lu ${tag}`);
  const group = await eve.group(`Look ${tag}`, [kim.user.id, twin.user.id, lu.user.id]);
  const said = [await kim.send(group.id, `from kim ${tag}`), await twin.send(group.id, `from twin ${tag}`)];
  await lu.send(group.id, `from lu ${tag}`);
  // The emails (GET /users?q=name) wait until the pane is drawn and watched.
  let hold = true;
  const held = [];
  const { page } = await signIn(browser, email, {
    setup: (p) => p.route((url) => url.pathname === '/api/v1/users', (route) => (hold ? held.push(route) : route.continue())),
  });
  await openChat(page, `Look ${tag}`);
  await message(page, `from lu ${tag}`).waitFor();
  await page.getByTestId('sender-apart').nth(1).waitFor(); // '#id' meanwhile
  await page.evaluate(() => {
    window.redrawn = {};
    window.wholePane = 0;
    const list = document.querySelector('.msg-list');
    new MutationObserver((records) => {
      for (const { target: el } of records) if (el.parentElement === list) window.redrawn[el.dataset.key] = (window.redrawn[el.dataset.key] || 0) + 1;
    }).observe(list, { subtree: true, childList: true });
    new MutationObserver(() => { window.wholePane += 1; }).observe(document.querySelector('[data-testid="history-status"]'), { childList: true });
  });
  hold = false;
  for (const r of held) await r.continue();
  await message(page, `from kim ${tag}`).getByTestId('sender-apart').getByText(`kim-${tag}@example.com`).waitFor();
  await message(page, `from twin ${tag}`).getByTestId('sender-apart').getByText(`twin-${tag}@example.com`).waitFor();
  await frames(page);
  assert.equal(await page.evaluate(() => window.wholePane), 0, 'the whole pane was not drawn again');
  assert.deepEqual(await page.evaluate(() => window.redrawn), Object.fromEntries(said.map((m) => [`s:${m.seq}`, 1])));
  page.assertClean();
});

test('with more unread than a first load fetches, a new message draws itself only; the bar counts it', async () => {
  const { tag, email, reader, writer, chat } = await privatePair('w', 'Wes', 'Xia');
  await reader.send(chat.id, 'read up to here');
  const N = 1100; // past the first load's 1,000 and the page more that opening may fetch
  for (let i = 0; i < N; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, N - i) }, (_, j) => writer.send(chat.id, `w-${i + j + 1}`)));
  }
  const { page } = await signIn(browser, email);
  // The chat's detail, asked for on opening, draws the whole pane when it comes: it is waited for.
  const detail = page.waitForResponse((r) => new URL(r.url()).pathname === `/api/v1/chats/${chat.id}`);
  await openChat(page, `Xia ${tag}`);
  await (await detail).finished();
  const divider = page.getByTestId('unread-divider');
  const bar = page.getByTestId('unread-bar');
  await divider.getByText('New messages (more above)').waitFor();
  await bar.getByText('1,100 unread').waitFor();
  // Halfway down what was loaded (far from the top, which loads more, and from the bottom, which
  // new messages take the view down to), with no page still coming from the top.
  await page.waitForFunction(() => !document.querySelector('[data-testid="history-status"] .spinner'));
  const top = await page.evaluate(() => {
    const sc = document.querySelector('[data-testid="messages"]');
    sc.scrollTop = sc.scrollHeight / 2;
    return sc.scrollTop;
  });
  await frames(page);
  // Counts the drawings inside each element of the list (by key), the elements added to it,
  // the writes to the bar's own attributes (its hidden), and the measures of where the view is
  // (each lays the page out then and there, in the task that moved the chat's row too).
  await page.evaluate(() => {
    window.redrawn = {};
    window.added = [];
    window.barWrites = 0;
    window.measured = 0;
    const sc = document.querySelector('[data-testid="messages"]');
    const rect = sc.getBoundingClientRect.bind(sc);
    sc.getBoundingClientRect = () => {
      window.measured += 1;
      return rect();
    };
    const list = document.querySelector('.msg-list');
    new MutationObserver((records) => {
      for (const { target, addedNodes } of records) {
        if (target === list) window.added.push(...addedNodes);
        else {
          let el = target;
          while (el.parentElement !== list) el = el.parentElement;
          window.redrawn[el.dataset.key] = (window.redrawn[el.dataset.key] || 0) + 1;
        }
      }
    }).observe(list, { subtree: true, childList: true, characterData: true });
    new MutationObserver((records) => { window.barWrites += records.length; })
      .observe(document.querySelector('[data-testid="unread-bar"]'), { attributes: true });
  });

  const sent = [];
  for (let i = 1; i <= 3; i++) {
    sent.push(await writer.send(chat.id, `new ${i} ${tag}`));
    await message(page, `new ${i} ${tag}`).waitFor();
    await bar.getByText(`${(N + i).toLocaleString('en-US')} unread`).waitFor();
  }
  await frames(page);
  assert.deepEqual(await page.evaluate(() => window.added.map((el) => el.dataset.key)), sent.map((m) => `s:${m.seq}`), 'each message is added below');
  assert.deepEqual(await page.evaluate(() => window.redrawn), {}, 'nothing drawn before is drawn again, the divider included');
  assert.equal(await page.evaluate(() => window.barWrites), 0);
  assert.equal(await page.evaluate(() => window.measured), 0, 'a message added below the view does not measure it');
  assert.equal(await page.evaluate(() => document.querySelector('[data-testid="messages"]').scrollTop), top, 'the view stays put');
  assert.equal(await divider.textContent(), 'New messages (more above)');
  // Seen, but not read: older unread messages were not.
  assert.equal(await chatItem(page, `Xia ${tag}`).getByTestId('unread-badge').textContent(), '999+');

  // Read to the newest on another device: the divider is no longer 'more above', the bar goes.
  await reader.read(chat.id, sent.at(-1).seq);
  await bar.waitFor({ state: 'hidden' });
  await divider.getByText('New messages', { exact: true }).waitFor();
  await chatItem(page, `Xia ${tag}`).getByTestId('unread-badge').waitFor({ state: 'detached' });
  page.assertClean();
});
