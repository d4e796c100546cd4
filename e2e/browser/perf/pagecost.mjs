// pagecost.mjs: the machine's CPU-seconds and the wall time of a fresh page, N at a time closed
// again, three ways: a blank page in a new context (the context and its renderer), a page
// signed in through the form, and one signed in as lib.js's signIn does (a login request of
// the context, then the app). docs/PERFORMANCE.md, "The test suite's cost". Run it against a
// fresh chatd on a quiet machine (it reads the whole machine's CPU from /proc/stat):
//
//   bash e2e/browser/run.sh --script perf/pagecost.mjs
//   N=20 EXTRA='--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup' bash e2e/browser/run.sh --script perf/pagecost.mjs
//
// ONLY=blank,form picks ways. EXTRA adds Chromium switches to lib.js's; a switch given twice takes its last value, so the
// second line turns the spare renderer back on.
import { readFileSync } from 'node:fs';
import { Api, PASSWORD, launch, newPage, signIn, unique, waitOnline } from '../lib.js';

const busy = () => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6]) / 100; // user nice system irq softirq, in USER_HZ (100)
};
const N = Number(process.env.N || 12);

const browser = await launch(process.env.EXTRA ? process.env.EXTRA.split(' ') : []);
const u = await Api.register(`Cost ${unique('p')}`);
const g = await u.group('Cost group', []);
for (let i = 0; i < 5; i++) await u.send(g.id, `hello ${i}`);

async function blank() {
  const { context, page } = await newPage(browser);
  await page.goto('about:blank');
  return context;
}
async function form() {
  const { context, page } = await newPage(browser);
  await page.goto('/');
  await page.getByLabel('Email').fill(u.user.email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('chat-list').waitFor();
  await waitOnline(page);
  return context;
}
const request = async () => (await signIn(browser, u.user.email)).context;

for (const round of [1, 2]) {
  for (const [name, fn] of Object.entries({ blank, form, request })) {
    if (process.env.ONLY && !process.env.ONLY.split(',').includes(name)) continue;
    const t0 = Date.now();
    const c0 = busy();
    for (let i = 0; i < N; i++) await (await fn()).close();
    console.log(`round ${round} ${name}: ${((busy() - c0) / N).toFixed(2)} CPU-s a page, ${((Date.now() - t0) / N).toFixed(0)} ms a page`);
  }
}
await browser.close();
