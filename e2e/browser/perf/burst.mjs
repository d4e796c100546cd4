import { BASE, launch, signedIn, waitOnline, metrics, median, S, send, tokenOf } from './lib.mjs';
// other: into other chats; open: into the open chat; unread: into the open chat with more unread
// than a first load fetches (1,100 sent first: 'more above', the bar); none: typing only.
const mode = process.argv[2] || 'other';
const deep = process.argv[3] === 'deep'; // scroll up to ~2000 loaded first
const browser = await launch();
const { context, page } = await signedIn(browser, { instrument: true });
const cdp = await context.newCDPSession(page);
await cdp.send('Performance.enable');
const idx = new Map(S.others.map((o, i) => [o.id, i]));
const tok = await tokenOf(300).then(() => null);
const chats = await (await fetch(BASE + '/api/v1/chats', { headers: { authorization: 'Bearer ' + S.me.tok } })).json().catch(() => null);
let privates = [];
const heavy = { authorization: 'Bearer ' + (await (await fetch(BASE + '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'heavy@example.com', password: 'password123' }) })).json()).access_token };
{ const t = heavy.authorization.slice(7);
  const c = await (await fetch(BASE + '/api/v1/chats', { headers: { authorization: 'Bearer ' + t } })).json();
  privates = c.chats.filter((x) => x.kind === 'private').map((x) => ({ id: x.id, u: idx.get(x.peer.id) })).filter((x) => x.u != null); }
await Promise.all([...Array(40).keys()].map((i) => tokenOf(privates[i].u)));
for (let i = 300; i < 309; i++) await tokenOf(i);
const results = [];
// Each run starts with the open chat read: a run leaves its messages in it, some unread when
// the page is left, and by the third run the page set no read mark any more.
async function readHist() {
  const { last_seq: seq } = await (await fetch(`${BASE}/api/v1/chats/${S.histId}`, { headers: heavy })).json();
  const r = await fetch(`${BASE}/api/v1/chats/${S.histId}/read`, { method: 'POST', headers: { ...heavy, 'content-type': 'application/json' }, body: JSON.stringify({ seq }) });
  if (!r.ok) throw new Error('read ' + r.status);
}
for (let run = 0; run < 2; run++) {
  await page.goto('about:blank');
  await readHist();
  if (mode === 'unread') {
    let k = 0;
    await Promise.all([...Array(8).keys()].map(async () => { while (k < 1100) { const j = k++; await send(300 + (j % 9), S.histId, `unread ${j} before the burst`); } }));
  }
  await page.goto('/'); await page.getByTestId('chat-list').waitFor(); await waitOnline(page);
  await page.evaluate((id) => { location.hash = `#/chat/${id}`; }, S.histId);
  await page.waitForFunction(() => document.querySelectorAll('.msg-list [data-seq]').length >= 40);
  if (deep) {
    await page.mouse.move(900, 400);
    for (let k = 0; k < 3000; k++) { await page.mouse.wheel(0, -3000); await page.waitForTimeout(20); if (k % 10 === 0 && await page.evaluate(() => document.querySelectorAll('.msg-list [data-seq]').length) >= 2000) break; }
    await page.evaluate(() => document.querySelector('[data-testid="messages"]').scrollTo({ top: 1e9 }));
  }
  await page.waitForTimeout(2000);
  const loaded = await page.evaluate(() => document.querySelectorAll('.msg-list [data-seq]').length);
  const bar = await page.evaluate(() => { const b = document.querySelector('[data-testid="unread-bar"]'); return b && !b.hidden ? b.querySelector('.unread-count').textContent : null; });
  await page.getByRole('textbox', { name: 'Message' }).focus();
  // install monitors
  await page.evaluate(() => {
    window.__frames = []; window.__lt = []; window.__ev = []; window.__kd = [];
    let last = performance.now();
    const loop = (t) => { window.__frames.push(t - last); last = t; if (window.__fm) requestAnimationFrame(loop); };
    window.__fm = true; requestAnimationFrame(loop);
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__lt.push(e.duration); }).observe({ type: 'longtask' });
    new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.name === 'keydown' || e.name === 'keypress' || e.name === 'input' || e.name === 'keyup') window.__ev.push(e.duration); }).observe({ type: 'event', durationThreshold: 16, buffered: false });
    const ta = document.querySelector('textarea.composer-input');
    ta.addEventListener('keydown', (ev) => { const t0 = ev.timeStamp; requestAnimationFrame(() => setTimeout(() => window.__kd.push(performance.now() - t0), 0)); });
  });
  const s0 = await page.evaluate(() => JSON.parse(JSON.stringify(globalThis.__sub)));
  const m0 = await metrics(cdp);
  const dur = 20000, rate = 20;
  const t0 = Date.now();
  let sent = 0, i = 0;
  const sends = [];
  const typing = (async () => { let k = 0; while (Date.now() - t0 < dur) { await page.keyboard.type('ab'[k++ % 2]); await page.waitForTimeout(150); } })();
  if (mode !== 'none') {
    while (Date.now() - t0 < dur) {
      const due = t0 + (i * 1000) / rate; const w = due - Date.now(); if (w > 0) await new Promise((r) => setTimeout(r, w));
      if (mode === 'open' || mode === 'unread') sends.push(send(300 + (i % 9), S.histId, `burst ${i} in the open chat`).then(() => sent++));
      else { const c = privates[i % 40]; sends.push(send(c.u, c.id, `burst ${i} elsewhere`).then(() => sent++)); }
      i++;
    }
  }
  await typing; await Promise.all(sends);
  await page.waitForTimeout(1500);
  const m1 = await metrics(cdp);
  const s1 = await page.evaluate(() => JSON.parse(JSON.stringify(globalThis.__sub)));
  const r = await page.evaluate(() => { window.__fm = false; const f = window.__frames; const kd = window.__kd.sort((a, b) => a - b); const q = (p) => Math.round(kd[Math.floor(p * (kd.length - 1))]); return { frames: f.length, over50: f.filter((x) => x > 50).length, longTasks: window.__lt.length, longMs: Math.round(window.__lt.reduce((a, b) => a + b, 0)), keys: kd.length, keyP50: q(0.5), keyP95: q(0.95), keyMax: Math.round(kd.at(-1)), evOver16: window.__ev.length, evMax: Math.round(Math.max(0, ...window.__ev)) }; });
  const d = (k) => +(m1[k] - m0[k]).toFixed(2);
  const per = (t) => sent ? +(((s1[t]?.ms || 0) - (s0[t]?.ms || 0)) / sent).toFixed(2) : null;
  const barAfter = await page.evaluate(() => { const b = document.querySelector('[data-testid="unread-bar"]'); return b && !b.hidden ? b.querySelector('.unread-count').textContent : null; });
  const row = { mode, loaded, bar, barAfter, sent, chatsFlushes: ((s1.chats?.n || 0) - (s0.chats?.n || 0)) / 2, chatsMsPerMsg: per('chats'), paneFlushes: ((s1.pane?.n || 0) - (s0.pane?.n || 0)) / 3, paneMsPerMsg: per('pane'), scriptS: d('ScriptDuration'), layoutS: d('LayoutDuration'), styleS: d('RecalcStyleDuration'), taskS: d('TaskDuration'), ...r };
  results.push(row); console.log(JSON.stringify(row));
}
await browser.close();
