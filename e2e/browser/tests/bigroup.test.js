// A group above CHAT_PRESENCE_GROUP_MAX (default 50): the server sends presence only to the
// connections that subscribed to the user and typing only to those with the chat open. The web
// client subscribes to the members of the chat on screen and says which chat that is, so a
// member sees the others come online, go offline and type, as in a small group.

import { after, before, test } from 'node:test';
import { Api, PASSWORD, chatItem, launch, openChat, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('a big group shows presence and typing live to the member who has it open', async () => {
  const tag = unique('b').slice(-5);
  const olga = await Api.register(`Olga ${tag}`);
  const vic = await Api.register(`Vic ${tag}`);
  // 60 members in all: above the default threshold (and any lowered one).
  const others = [];
  for (let i = 0; i < 58; i++) others.push(await Api.register(`Member${i} ${tag}`));
  const title = unique('Big');
  await olga.group(title, [vic.user.id, ...others.map((o) => o.user.id)]);

  const V = await signIn(browser, vic.user.email, { password: PASSWORD });
  await chatItem(V.page, title).waitFor();
  await openChat(V.page, title);
  await V.page.getByTestId('members-button').click();
  const dialog = V.page.getByTestId('members-dialog');
  const olgaRow = dialog.getByTestId('member').filter({ hasText: `Olga ${tag}` });
  await olgaRow.getByTestId('member-presence').getByText('online', { exact: true }).waitFor({ state: 'detached' });

  // Olga comes online: Vic, who has the group open, sees it without reloading.
  const O = await signIn(browser, olga.user.email, { password: PASSWORD });
  await olgaRow.getByTestId('member-presence').getByText('online', { exact: true }).waitFor();
  await V.page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });

  // Olga types in the group: Vic has it open, so the typing reaches him.
  await openChat(O.page, title);
  await O.page.getByLabel('Message', { exact: true }).pressSequentially('hello', { delay: 50 });
  await V.page.getByTestId('typing').getByText(`Olga ${tag} is typing…`).waitFor();

  // Olga leaves: offline shows a few seconds later (a reload is not a disconnect). The wait is
  // the default one: a CI run on a loaded machine took over 15 s here.
  await O.context.close();
  await V.page.getByTestId('members-button').click();
  await olgaRow.getByTestId('member-presence').getByText(/^last seen/).waitFor();
  V.page.assertClean();
  await V.context.close();
});
