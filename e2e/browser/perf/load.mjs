// First load of the heavy account: from "Sign in" until every name the chat list asked for
// (GET /users/{id}, one request a user) has come and been drawn. Prints how many were asked
// for, how many times the chat list was drawn and its script time, and the main thread's long
// tasks meanwhile.
import { launch, signedIn } from './lib.mjs';
const browser = await launch();
const context = await browser.newContext({ baseURL: process.env.PERF_URL, viewport: { width: 1280, height: 800 } });
const { instrument } = await import('./lib.mjs');
await instrument(context);
const page = await context.newPage();
let asked = 0;
let answered = 0;
let last = Date.now();
page.on('request', (r) => { if (/\/api\/v1\/users\/\d+$/.test(r.url())) { asked++; last = Date.now(); } });
page.on('requestfinished', (r) => { if (/\/api\/v1\/users\/\d+$/.test(r.url())) { answered++; last = Date.now(); } });
await page.goto('/');
await page.evaluate(() => {
  window.__lt = [];
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__lt.push(e.duration); }).observe({ type: 'longtask' });
});
await page.getByLabel('Email').fill('heavy@example.com');
await page.getByLabel('Password').fill('password123');
const t0 = Date.now();
await page.getByRole('button', { name: 'Sign in' }).click();
await page.getByTestId('chat-list').waitFor();
while (Date.now() - last < 1500 || answered < asked) await page.waitForTimeout(100);
const took = last - t0;
await page.waitForTimeout(300);
const r = await page.evaluate(() => {
  const lt = window.__lt;
  return { chatsRuns: globalThis.__sub?.chats?.n || 0, chatsMs: Math.round(globalThis.__sub?.chats?.ms || 0), paneRuns: globalThis.__sub?.pane?.n || 0,
    longTasks: lt.length, longMs: Math.round(lt.reduce((a, b) => a + b, 0)), someone: [...document.querySelectorAll('[data-testid="chat-preview"]')].filter((e) => /^Someone:/.test(e.textContent)).length };
});
console.log('LOAD', JSON.stringify({ names: asked, answered, namesDoneMs: took, ...r }));
await browser.close();
