import { chromium } from 'playwright-core';
import fs from 'fs';
export const BASE = process.env.PERF_URL || 'http://127.0.0.1:18761';
export const URL = BASE;
export const S = JSON.parse(fs.readFileSync(new globalThis.URL('./setup.json', import.meta.url)));
export async function launch() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}
export const median = (a) => { const b = [...a].sort((x, y) => x - y); return b.length ? b[Math.floor((b.length - 1) / 2)] : NaN; };
export async function signedIn(browser, opts = {}) {
  const context = await browser.newContext({ baseURL: URL, viewport: { width: 1280, height: 800 } });
  if (opts.instrument) await instrument(context);
  const page = await context.newPage();
  await page.goto('/');
  await page.getByLabel('Email').fill('heavy@example.com');
  await page.getByLabel('Password').fill('password123');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('chat-list').waitFor();
  await waitOnline(page);
  return { context, page };
}
export async function waitOnline(page, timeout = 30000) {
  await page.waitForFunction(() => { const b = document.querySelector('[data-testid="conn-banner"]'); return b && ['online', 'back'].includes(b.dataset.state); }, null, { timeout });
}
export async function metrics(cdp) { const { metrics } = await cdp.send('Performance.getMetrics'); return Object.fromEntries(metrics.map((m) => [m.name, m.value])); }
// API helper for other users
const toks = new Map();
export async function tokenOf(i) {
  if (toks.has(i)) return toks.get(i);
  const r = await fetch(URL + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: `u${i}@example.com`, password: 'password123' }) });
  const j = await r.json(); toks.set(i, j.access_token); return j.access_token;
}
export async function send(i, chatId, body) {
  const t = await tokenOf(i);
  const r = await fetch(`${URL}/api/v1/chats/${chatId}/messages`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + t }, body: JSON.stringify({ client_id: Math.random().toString(36).slice(2) + Date.now(), body }) });
  if (!r.ok) throw new Error('send ' + r.status + (await r.text()));
}
// profile aggregation: self time by function name (file:fn)
export function selfTimes(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas; const samples = profile.samples;
  for (let i = 0; i < samples.length; i++) {
    const n = nodes.get(samples[i]); const cf = n.callFrame;
    const key = `${cf.functionName || '(anon)'} ${cf.url.split('/').pop()}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) || 0) + (dt[i] || 0) / 1000);
  }
  return [...self.entries()].sort((a, b) => b[1] - a[1]);
}
// inclusive time by function name
export function totalTimes(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const tot = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const seen = new Set();
    let id = profile.samples[i];
    while (id != null) { const cf = nodes.get(id).callFrame; const key = `${cf.functionName || '(anon)'} ${cf.url.split('/').pop()}:${cf.lineNumber + 1}`; if (!seen.has(key)) { seen.add(key); tot.set(key, (tot.get(key) || 0) + (dt[i] || 0) / 1000); } id = parent.get(id); }
  }
  return [...tot.entries()].sort((a, b) => b[1] - a[1]);
}
// Diagnostics only: serve store.js with a timer around each subscriber run (count and ms per topic).
export async function instrument(context) {
  await context.route('**/js/store.js*', async (route) => {
    const resp = await route.fetch();
    let body = await resp.text();
    body = body.replace('          fn();', '          const __t = performance.now(); fn(); const __d = performance.now() - __t; const __s = (globalThis.__sub ||= {}); const __e = (__s[t] ||= { n: 0, ms: 0, max: 0 }); __e.n++; __e.ms += __d; if (__d > __e.max) __e.max = __d;');
    const headers = { ...resp.headers() }; delete headers['content-encoding']; delete headers['content-length']; delete headers['etag'];
    await route.fulfill({ status: 200, headers, body });
  });
}
