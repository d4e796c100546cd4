const B = (process.env.PERF_URL || 'http://127.0.0.1:18761') + '/api/v1';
let n = 0;
async function req(tok, method, path, body) {
  for (let a = 0; a < 5; a++) {
    const r = await fetch(B + path, { method, headers: { 'content-type': 'application/json', ...(tok ? { authorization: 'Bearer ' + tok } : {}) }, body: body ? JSON.stringify(body) : undefined });
    const t = await r.text();
    if (r.ok) { n++; return t ? JSON.parse(t) : null; }
    if (r.status >= 500 || r.status === 429) { await new Promise(r => setTimeout(r, 200)); continue; }
    throw new Error(method + ' ' + path + ' ' + r.status + ' ' + t.slice(0, 200));
  }
}
async function pool(items, k, fn) { let i = 0; await Promise.all(Array.from({ length: k }, async () => { while (i < items.length) { const j = i++; await fn(items[j], j); } })); }
const reg = async (email, name) => { const r = await req(null, 'POST', '/auth/register', { email, name, password: 'password123' }); return { id: r.user.id, tok: r.access_token, name }; };
const t0 = Date.now();
const me = await reg('heavy@example.com', 'Heavy User');
const others = [];
await pool([...Array(320).keys()], 8, async (i) => { others[i] = await reg(`u${i}@example.com`, `User ${i} ${['Anna','Boris','Chen','Dana','Emil','Fay','Gus','Hana'][i%8]}`); });
console.log('users', Date.now() - t0);
const cid = () => Math.random().toString(36).slice(2) + Date.now();
// 700 small groups + 300 private chats, each with a couple of messages
const chats = [];
await pool([...Array(700).keys()], 8, async (i) => {
  const o = others[i % 320], o2 = others[(i * 7 + 3) % 320];
  const c = await req(me.tok, 'POST', '/chats', { kind: 'group', title: `Group ${i} ${['alpha','beta','gamma','delta'][i%4]}`, member_ids: o.id === o2.id ? [o.id] : [o.id, o2.id] });
  chats.push(c.id);
  await req(o.tok, 'POST', `/chats/${c.id}/messages`, { client_id: cid(), body: `hello group ${i}, this is a preview line of a message` });
});
await pool([...Array(300).keys()], 8, async (i) => {
  const o = others[i];
  const c = await req(me.tok, 'POST', '/chats', { kind: 'private', member_ids: [o.id] });
  chats.push(c.id);
  await req(o.tok, 'POST', `/chats/${c.id}/messages`, { client_id: cid(), body: `hi there from ${o.name} #${i}` });
});
console.log('chats', chats.length, Date.now() - t0);
// 300-member group
const big = await req(me.tok, 'POST', '/chats', { kind: 'group', title: 'Members 300', member_ids: others.slice(0, 99).map(o => o.id) });
await pool(others.slice(99, 300), 8, async (o) => { await req(me.tok, 'POST', `/chats/${big.id}/members`, { user_id: o.id }); });
console.log('members group', big.id, Date.now() - t0);
// 5000-message group with 10 senders (me included)
const senders = [me, ...others.slice(300, 309)];
const hist = await req(me.tok, 'POST', '/chats', { kind: 'group', title: 'Big history', member_ids: senders.slice(1).map(o => o.id) });
const words = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');
const body = (i) => { let s = `msg ${i}: `; const k = 5 + (i * 13) % 40; for (let j = 0; j < k; j++) s += words[(i + j * 3) % words.length] + ' '; if (i % 50 === 0) s += '\n**bold** and `code` and https://example.com/x' + i; return s; };
// send sequentially in order per sender-chunk to keep seq order ~ i; use concurrency 4 (order not important)
const seqs = [];
await pool([...Array(5000).keys()], 6, async (i) => {
  const s = senders[i % 10];
  const b = { client_id: cid() + i, body: body(i) };
  if (i % 20 === 19 && i > 100) b.reply_to_seq = Math.max(1, Math.floor(i * 0.1));
  const m = await req(s.tok, 'POST', `/chats/${hist.id}/messages`, b);
  seqs[i] = m.seq;
});
console.log('history', Date.now() - t0);
// reactions on every 10th, edits on every 25th (own messages)
const emo = ['👍', '❤️', '😂'];
await pool([...Array(500).keys()], 6, async (k) => {
  const seq = k * 10 + 3;
  for (let r = 0; r < 1 + (k % 3); r++) await req(senders[(k + r) % 10].tok, 'PUT', `/chats/${hist.id}/messages/${seq}/reactions/${encodeURIComponent(emo[r])}`);
});
// edits: need the sender of the seq: fetch pages
const all = [];
let before = 0;
for (;;) { const r = await req(me.tok, 'GET', `/chats/${hist.id}/messages?limit=200` + (before ? `&before_seq=${before}` : '')); all.push(...r.messages); if (!r.has_more || !r.messages.length) break; before = r.messages[0].seq; }
const byId = new Map(senders.map(s => [s.id, s]));
await pool(all.filter(m => m.seq % 25 === 0), 6, async (m) => { await req(byId.get(m.sender_id).tok, 'PATCH', `/chats/${hist.id}/messages/${m.seq}`, { body: m.body + ' (edited)' }); });
console.log('done', Date.now() - t0, 'requests', n);
const fs = await import('fs');
fs.writeFileSync(new globalThis.URL('./setup.json', import.meta.url), JSON.stringify({ me, others, histId: hist.id, bigId: big.id, senders: senders.map(s => s.id), chats }));
