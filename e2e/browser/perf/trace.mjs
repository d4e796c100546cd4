import { launch, signedIn, waitOnline, S, send, tokenOf } from './lib.mjs';
const hide = process.argv[2] === 'hide';
const browser = await launch();
const { context, page } = await signedIn(browser);
await page.evaluate((id) => { location.hash = `#/chat/${id}`; }, S.histId);
await page.waitForFunction(() => document.querySelectorAll('.msg-list [data-seq]').length >= 40);
if (hide) await page.evaluate(() => { document.querySelector('.chat-list').style.display = 'none'; });
if (process.argv[2] === 'cv') await page.evaluate(() => { for (const li of document.querySelectorAll('.chat-list > li')) { li.style.contentVisibility = 'auto'; li.style.containIntrinsicSize = 'auto 64px'; } });
if (process.argv[2] === 'contain') await page.evaluate(() => { document.querySelector('.chat-list').style.contain = 'strict'; });
if (process.argv[2] === 'cv') await page.evaluate(() => { for (const li of document.querySelectorAll('.chat-list > li')) { li.style.contentVisibility = 'auto'; li.style.containIntrinsicSize = 'auto 64px'; } });
if (process.argv[2] === 'contain') await page.evaluate(() => { document.querySelector('.chat-list').style.contain = 'strict'; });
await page.waitForTimeout(1500);
await page.getByRole('textbox', { name: 'Message' }).focus();
for (let i = 300; i < 309; i++) await tokenOf(i);
await tokenOf(0);
// private chat with user 0? find any chat where u0 is a member: Group 0 has others[0]
const cdp = await context.newCDPSession(page);
const events = [];
cdp.on('Tracing.dataCollected', (d) => events.push(...d.value));
const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
await cdp.send('Tracing.start', { categories: 'blink.user_timing,devtools.timeline,disabled-by-default-devtools.timeline,disabled-by-default-devtools.timeline.stack,v8.execute', transferMode: 'ReportEvents' });
const mark = async (name) => page.evaluate((n) => performance.mark(n), name);
await mark('typing-start');
for (let k = 0; k < 10; k++) { await page.keyboard.type('x'); await page.waitForTimeout(300); }
await mark('typing-end');
await mark('msgs-start');
for (let k = 0; k < 10; k++) { await send(300 + (k % 9), S.histId, 'trace ' + k); await page.waitForTimeout(400); }
await mark('msgs-end');
await cdp.send('Tracing.end'); await done;
const ts = (n) => events.find((e) => e.name === n && (e.ph === "R" || e.ph === "I" || e.ph === "n" || e.ph === "b" || true) && e.cat.includes("user_timing"))?.ts;
console.log("events", events.length, [...new Set(events.filter(e=>/Layout/.test(e.name)).map(e=>e.name+"/"+e.ph))].join(","), events.filter(e=>e.name==="typing-start").map(e=>e.cat+e.ph));
const win = (a, b) => { const s = ts(a), e = ts(b); const lay = events.filter((x) => x.name === 'Layout' && x.ph === 'X' && x.ts >= s && x.ts <= e);
  return { layouts: lay.length, totalMs: Math.round(lay.reduce((q, x) => q + x.dur, 0) / 1000), maxMs: Math.round(Math.max(0, ...lay.map((x) => x.dur)) / 1000),
    objects: lay.map((x) => `${x.args?.beginData?.dirtyObjects}/${x.args?.beginData?.totalObjects}${x.args?.beginData?.partialLayout ? 'p' : ''}:${Math.round(x.dur / 1000)}ms:${(x.args?.beginData?.stackTrace || []).slice(0, 2).map((f) => f.functionName + '@' + (f.url || '').split('/').pop() + ':' + f.lineNumber).join('<')}`) }; };
const a = win('typing-start', 'typing-end'), b = win('msgs-start', 'msgs-end');
console.log(process.argv[2]||'plain', 'TYPING 10 keys', a.layouts, 'layouts', a.totalMs, 'ms max', a.maxMs); console.log('  ', [...new Set(a.objects)].slice(0, 8).join('\n   '));
console.log('MSGS 10 in open chat', b.layouts, 'layouts', b.totalMs, 'ms max', b.maxMs); console.log('  ', b.objects.slice(0, 12).join('\n   '));
await browser.close();
