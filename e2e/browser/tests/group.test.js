// Groups: create one in the UI, invite, live arrival, reply, leave; discover and join.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, chatItem, launch, message, openChat, send, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('create a group, invite third, third replies and leaves', async () => {
  const first = await signIn(browser, 'first@example.com');
  const third = await signIn(browser, 'third@example.com');
  const A = first.page;
  const C = third.page;
  const title = unique('Team');

  // New chat → New group, public off, nobody yet.
  await A.getByTestId('new-chat').click();
  const dlg = A.getByTestId('new-chat-dialog');
  await dlg.getByRole('tab', { name: 'New group' }).click();
  await dlg.getByLabel('Group name').fill(title);
  await dlg.getByRole('button', { name: 'Create group' }).click();
  await dlg.waitFor({ state: 'detached' });
  await A.getByTestId('pane-title').getByText(title).waitFor();
  await A.getByTestId('system-message').getByText('You created the group').waitFor();
  assert.equal(await chatItem(C, title).count(), 0);

  // Invite Third from the header.
  await A.getByTestId('invite-button').click();
  const members = A.getByTestId('members-dialog');
  await members.getByLabel('Invite someone').fill('thi');
  await members.getByRole('button', { name: 'Invite Third' }).click();
  await members.getByText('Third was added.').waitFor();
  await members.getByTestId('member').filter({ hasText: 'Third' }).waitFor();
  await members.getByTestId('member').filter({ hasText: 'First' }).getByText('Owner').waitFor();
  await A.keyboard.press('Escape');
  await members.waitFor({ state: 'detached' });
  await A.getByTestId('system-message').getByText('You invited Third').waitFor();

  // Third sees the group appear live, opens it, and replies.
  await chatItem(C, title).waitFor();
  await openChat(C, title);
  await C.getByTestId('system-message').getByText('First created the group').waitFor();
  await C.getByTestId('system-message').getByText('First invited you', { exact: true }).waitFor();
  const reply = unique('hi team');
  await send(C, reply);
  const got = message(A, reply);
  await got.waitFor();
  await got.getByTestId('sender').getByText('Third').waitFor();
  assert.equal(await got.getAttribute('data-own'), 'false');

  // Who has read Third's message: First has (the chat is open in an active window).
  await message(C, reply).locator('[data-testid="msg-status"][data-state="read"]').click();
  const info = C.getByTestId('read-by-dialog');
  await info.getByText('Read by 1 of 1').waitFor();
  await info.getByTestId('member').filter({ hasText: 'First' }).waitFor();
  await C.keyboard.press('Escape');

  // Third leaves; First sees it live, and the group leaves Third's list.
  await C.getByTestId('members-button').click();
  await C.getByTestId('leave-group').click();
  await C.getByTestId('confirm-dialog').getByRole('button', { name: 'Leave' }).click();
  await chatItem(C, title).waitFor({ state: 'detached' });
  await C.getByText('Pick a chat from the list').waitFor();
  await A.getByTestId('system-message').getByText('Third left').waitFor();
  await A.getByTestId('pane-sub').getByText('1 member').waitFor();

  A.assertClean();
  C.assertClean();
  await first.context.close();
  await third.context.close();
});

test('discover a public group and join it', async () => {
  const owner = await Api.register('Olga');
  const title = unique('Open house');
  await owner.group(title, [], true);
  const second = await signIn(browser, 'second@example.com');
  const B = second.page;
  await B.getByTestId('new-chat').click();
  const dlg = B.getByTestId('new-chat-dialog');
  await dlg.getByRole('tab', { name: 'Discover' }).click();
  await dlg.getByLabel('Search public groups').fill(title.slice(0, 14));
  await dlg.getByTestId('discover-result').filter({ hasText: title }).getByRole('button', { name: `Join ${title}` }).click();
  await dlg.waitFor({ state: 'detached' });
  await B.getByTestId('pane-title').getByText(title).waitFor();
  await B.getByTestId('system-message').getByText('You joined').waitFor();
  await chatItem(B, title).waitFor();
  B.assertClean();
  await second.context.close();
});

test('start a private chat by searching for a person', async () => {
  const name = `Pia ${unique('p').slice(-6)}`;
  await Api.register(name);
  const third = await signIn(browser, 'third@example.com');
  const C = third.page;
  await C.getByTestId('new-chat').click();
  const dlg = C.getByTestId('new-chat-dialog');
  await dlg.getByLabel('Find a person').fill(name);
  await dlg.getByRole('button', { name: `Message ${name}` }).click();
  await dlg.waitFor({ state: 'detached' });
  await C.getByTestId('pane-title').getByText(name).waitFor();
  await C.getByText('This is the beginning of your conversation.').waitFor();
  C.assertClean();
  await third.context.close();
});

test('a member list answered after someone left does not show them online again', async () => {
  // The members dialog fetches the chat when it opens. The server answers from the presence
  // it knows then: a member who leaves while the answer is on its way is "online" in it, and
  // their "offline" frame may come first. The page keeps what the frame said.
  const tag = unique('p').slice(-5);
  const olga = await Api.register(`Olga ${tag}`);
  const vic = await Api.register(`Vic ${tag}`);
  const title = unique('Presence');
  const chat = await olga.group(title, [vic.user.id]);
  const O = await signIn(browser, olga.user.email);
  const V = await signIn(browser, vic.user.email);
  await openChat(V.page, title);

  // Vic's fetch reaches the server while Olga is online; its answer is held until her offline
  // frame has been shown, then handed over with a mark in the title (to see it applied).
  let fetched;
  const answer = new Promise((resolve) => { fetched = resolve; });
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await V.page.route(new RegExp(`/api/v1/chats/${chat.id}$`), async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    fetched(body);
    await held;
    await route.fulfill({ response, json: { ...body, title: `${body.title} (late)` } });
  });
  await V.page.getByTestId('members-button').click();
  const row = V.page.getByTestId('members-dialog').getByTestId('member').filter({ hasText: `Olga ${tag}` });
  const body = await answer;
  assert.equal(body.members.find((m) => m.id === olga.user.id)?.online, true, 'the held answer says Olga is online');

  await O.context.close();
  await row.getByTestId('member-presence').getByText(/^last seen/).waitFor();
  release();
  await V.page.getByTestId('pane-title').getByText(`${title} (late)`, { exact: true }).waitFor();
  assert.match(await row.getByTestId('member-presence').textContent(), /^last seen/);
  V.page.assertClean();
  await V.context.close();
});
