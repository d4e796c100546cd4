// Makes docs/screenshot-chat.png, the README's picture: the app as a new user gets it (the demo
// data of a fresh database), in a real browser. Run it with `make screenshot`
// (bash e2e/browser/run.sh --script screenshot.js), which starts a chatd on a new data directory.

import path from 'node:path';
import { REPO, WIDE, launch, openChat, signIn } from './lib.js';

const out = path.join(REPO, 'docs', 'screenshot-chat.png');
const browser = await launch();
try {
  // Second is online too, so the presence dots show as they would.
  const second = await signIn(browser, 'second@example.com');
  const { page } = await signIn(browser, 'first@example.com', { viewport: WIDE, colorScheme: 'light' });
  await page.getByTestId('chat-item').nth(2).waitFor();
  await openChat(page, 'General');
  await page.getByTestId('message').first().waitFor();
  await page.evaluate(() => document.activeElement?.blur());
  await page.screenshot({ path: out, animations: 'disabled', caret: 'hide' });
  page.assertClean();
  second.page.assertClean();
  console.log(`screenshot: wrote ${path.relative(REPO, out)}`);
} finally {
  await browser.close();
}
