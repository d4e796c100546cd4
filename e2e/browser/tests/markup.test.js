// Message text: links and a small Markdown subset, rendered as DOM (never HTML) in the bubble;
// the stored text and the chat list preview stay the raw text, but for links, which the preview
// writes as the bubble shows them.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, BASE, chatItem, launch, message, newPage, openChat, send, signIn, unique } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

// What renderBody makes of each text: elements as tag(children), links as a[href](...), text as JSON.
const CASES = [
  ['plain text', '"plain text"'],
  ['**bold** and _it_ and `code`', 'strong("bold") " and " em("it") " and " code("code")'],
  ['**a _b_ c**', 'strong("a " em("b") " c")'],
  ['_a **b** c_', 'em("a " strong("b") " c")'],
  ['snake_case_name and __init__ and 2*3**4', '"snake_case_name and __init__ and 2*3**4"'],
  ['** not bold ** and _ not it _', '"** not bold ** and _ not it _"'],
  ['**_**_', 'strong("_") "_"'],
  ['***x***', 'strong("*x") "*"'],
  ['**unclosed and `unclosed', '"**unclosed and `unclosed"'],
  ['`**not bold** https://example.com`', 'code("**not bold** https://example.com")'],
  ['<img src=x onerror=alert(1)> **<b>x</b>**', '"<img src=x onerror=alert(1)> " strong("<b>x</b>")'],
  ['```\nfn()\n<b>x</b>\n```', 'pre(code("fn()\\n<b>x</b>"))'],
  ['before\n```js\nalert(1)', '"before" pre(code("alert(1)"))'],
  ['```\n**no** _markup_ https://example.com\n```\nafter', 'pre(code("**no** _markup_ https://example.com")) "after"'],
  ['> quoted **b**\n> two\nafter', 'blockquote("quoted " strong("b") "\\ntwo") "after"'],
  ['>> nested > stays', 'blockquote("> nested > stays")'],
  ['see https://example.com/a_(b)?x=1&y=2. ok', '"see " a[https://example.com/a_(b)?x=1&y=2]("https://example.com/a_(b)?x=1&y=2") ". ok"'],
  ['(https://example.com/x), [http://example.com]', '"(" a[https://example.com/x]("https://example.com/x") "), [" a[http://example.com/]("http://example.com") "]"'],
  ['HTTP://EXAMPLE.COM/Path', 'a[http://example.com/Path]("HTTP://EXAMPLE.COM/Path")'],
  ['**https://example.com/b**', 'strong(a[https://example.com/b]("https://example.com/b"))'],
  ['javascript:alert(1) [x](javascript:alert(1)) data:text/html,<b>x</b> ftp://example.com/ http:// xhttps://example.com',
    '"javascript:alert(1) [x](javascript:alert(1)) data:text/html,<b>x</b> ftp://example.com/ http:// xhttps://example.com"'],
  ['https://exa mple.com', 'a[https://exa/]("https://exa") " mple.com"'],
  // A link's text says where it goes: direction controls before it stay outside it (CSS isolates
  // it), inside it they are percent-encoded; a host in another script shows as punycode, one
  // written as numbers as its address, user info not at all.
  ['bank: \u202ehttps://evil.example/?x', '"bank: \u202e" a[https://evil.example/?x]("https://evil.example/?x")'],
  ['https://evil.example/#\u202emoc.knab//:sptth', 'a[https://evil.example/#%E2%80%AEmoc.knab//:sptth]("https://evil.example/#%E2%80%AEmoc.knab//:sptth")'],
  ['http://\u0430\u0440\u0440\u04cf\u0435.com/', 'a[http://xn--80ak6aa92e.com/]("http://xn--80ak6aa92e.com/")'],
  ['https://good.example@evil.example/login', 'a[https://good.example@evil.example/login]("https://evil.example/login")'],
  ['https://0x7f.1/hex', 'a[https://127.0.0.1/hex]("https://127.0.0.1/hex")'],
];

test('renderBody: the Markdown subset and links, hostile input included', async () => {
  const { context, page } = await newPage(browser);
  await page.goto('/');
  const got = await page.evaluate(async (inputs) => {
    const src = document.querySelector('script[type=module]').src.replace('main.js', 'markup.js');
    const { renderBody } = await import(src);
    const ser = (n) => (n.nodeType === Node.TEXT_NODE ? JSON.stringify(n.data)
      : `${n.localName}${n.localName === 'a' ? `[${n.getAttribute('href')}]` : ''}(${[...n.childNodes].map(ser).join(' ')})`);
    return inputs.map((s) => [...renderBody(s).childNodes].map(ser).join(' '));
  }, CASES.map((c) => c[0]));
  for (let i = 0; i < CASES.length; i++) assert.equal(got[i], CASES[i][1], `renderBody(${JSON.stringify(CASES[i][0])})`);

  // A long hostile run renders in bounded time and depth.
  const depth = await page.evaluate(async () => {
    const src = document.querySelector('script[type=module]').src.replace('main.js', 'markup.js');
    const { renderBody } = await import(src);
    const div = document.createElement('div');
    div.append(renderBody('**_'.repeat(600) + 'x' + '_**'.repeat(600)));
    let max = 0;
    for (const el of div.querySelectorAll('*')) {
      let d = 0;
      for (let p = el; p !== div; p = p.parentNode) d += 1;
      max = Math.max(max, d);
    }
    return max;
  });
  assert.ok(depth <= 3, `nesting is bounded (${depth})`);
  page.assertClean();
  await context.close();
});

test('formatted messages and links, live between two people; raw text is stored and previewed', async () => {
  const tag = unique('f').slice(-6);
  const emailA = `wren.${tag}@example.com`;
  const emailB = `xia.${tag}@example.com`;
  const wren = await Api.register(`Wren ${tag}`, emailA);
  const xia = await Api.register(`Xia ${tag}`, emailB);
  const chat = await wren.private(xia.user.id);
  const A = await signIn(browser, emailA);
  const B = await signIn(browser, emailB);
  await openChat(A.page, `Xia ${tag}`);
  await openChat(B.page, `Wren ${tag}`);

  const body = `**Plan** for _today_: run \`make test\`\n> be kind\n\`\`\`\n<script>alert(1)</script>\n\`\`\`\nstatus: ${BASE}/healthz and javascript:alert(1)`;
  await A.page.getByLabel('Message', { exact: true }).fill(body);
  await A.page.getByLabel('Message', { exact: true }).press('Enter');
  for (const { page } of [A, B]) {
    const text = page.getByTestId('message').last().getByTestId('message-text');
    await text.locator('strong').getByText('Plan').waitFor();
    assert.equal(await text.locator('em').textContent(), 'today');
    assert.equal(await text.locator('code.md-code').textContent(), 'make test');
    assert.equal(await text.locator('blockquote').textContent(), 'be kind');
    assert.equal(await text.locator('pre code').textContent(), '<script>alert(1)</script>');
    const links = text.locator('a');
    assert.equal(await links.count(), 1, 'only the http link is a link');
    assert.equal(await links.getAttribute('href'), `${BASE}/healthz`);
    assert.equal(await links.getAttribute('target'), '_blank');
    assert.equal(await links.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await page.evaluate(() => document.querySelectorAll('.msg-list script, .msg-list img').length), 0);
  }
  // The preview is the raw first line, as text.
  await chatItem(B.page, `Wren ${tag}`).getByTestId('chat-preview').getByText('**Plan** for _today_: run `make test`').waitFor();
  const stored = await xia.req('GET', `/chats/${chat.id}/messages`);
  assert.deepEqual(stored.messages.map((m) => m.body), [body]);

  // The link opens in a new tab that cannot reach back to the chat.
  const popupP = B.page.waitForEvent('popup');
  await B.page.getByTestId('message').last().locator('a').click();
  const popup = await popupP;
  await popup.waitForLoadState();
  assert.equal(popup.url(), `${BASE}/healthz`);
  assert.equal(await popup.evaluate(() => window.opener), null);
  await popup.close();

  // A plain message is still found by its text.
  const plain = unique('plain');
  await send(A.page, plain);
  await message(B.page, plain).waitFor();
  A.page.assertClean();
  B.page.assertClean();
  await A.context.close();
  await B.context.close();
});

test('the chat list preview writes links as the message pane shows them', async () => {
  const tag = unique('p').slice(-6);
  const email = `yan.${tag}@example.com`;
  const yan = await Api.register(`Yan ${tag}`, email);
  const zed = await Api.register(`Zed ${tag}`);
  const chat = await zed.private(yan.user.id);
  await zed.send(chat.id, 'pay at https://good.example@evil.example/login or https://evil.example/#\u202emoc.knab//:sptth today\nsecond line');
  const { context, page } = await signIn(browser, email);
  // No user info (good.example is not where it goes), a direction control percent-encoded.
  const shown = 'pay at https://evil.example/login or https://evil.example/#%E2%80%AEmoc.knab//:sptth today';
  await chatItem(page, `Zed ${tag}`).getByTestId('chat-preview').getByText(shown, { exact: true }).waitFor();
  // The same links in the bubble read the same.
  await openChat(page, `Zed ${tag}`);
  const links = page.getByTestId('message').last().getByTestId('message-text').locator('a');
  assert.deepEqual(await links.allTextContents(), ['https://evil.example/login', 'https://evil.example/#%E2%80%AEmoc.knab//:sptth']);
  page.assertClean();
  await context.close();
});
