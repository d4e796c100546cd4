// Sign-up, sign-in errors, silent session refresh, devices and sign-out.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, launch, newPage, reloadAfterDialog, signIn, unique, waitOnline } from '../lib.js';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('sign up a new user, and see field errors first', async () => {
  const { context, page } = await newPage(browser);
  await page.goto('/');
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByRole('heading', { name: 'Create your account' }).waitFor();

  // The server's validation errors land on the fields.
  await page.getByLabel('Name').fill('Nina');
  await page.getByLabel('Email').fill('not-an-email');
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText('Enter a valid email address.').waitFor();
  await page.getByText('Use at least 8 characters.').waitFor();
  assert.equal(await page.getByLabel('Email').getAttribute('aria-invalid'), 'true');
  // Each is said once: the password's hint gives way to its error, the alert points at the fields.
  assert.equal(await page.getByText('At least 8 characters.', { exact: true }).isVisible(), false);
  assert.equal(await page.getByTestId('auth-error').textContent(), 'Please correct the fields below.');

  // A taken email says so.
  await page.getByLabel('Email').fill('FIRST@example.com');
  await page.getByLabel('Password').fill('long enough password');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText('An account with this email already exists.').waitFor();
  assert.equal(await page.getByTestId('auth-error').textContent(), 'Please correct the fields below.');
  assert.equal(await page.getByText('At least 8 characters.', { exact: true }).isVisible(), true, 'the hint is back once the password is not wrong');

  const email = `${unique('nina')}@example.com`;
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByTestId('chat-list').waitFor();
  await page.getByText('No chats yet.').waitFor();
  await waitOnline(page);
  await page.getByTestId('account-button').getByText('Nina').waitFor();

  // The new account signs in again after a reload (cookie session).
  await page.reload();
  await page.getByTestId('account-button').getByText('Nina').waitFor();
  page.assertClean();
  await context.close();
});

test('a wrong password shows an error and keeps the form', async () => {
  const { context, page } = await newPage(browser);
  await page.goto('/');
  await page.getByLabel('Email').fill('first@example.com');
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByTestId('auth-error');
  await alert.getByText('Wrong email or password.').waitFor();
  assert.equal(await alert.getAttribute('role'), 'alert');
  assert.equal(await page.getByLabel('Email').inputValue(), 'first@example.com');
  // Empty fields are caught before asking the server.
  await page.getByLabel('Password').fill('');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('This is required.').waitFor();
  page.assertClean();
  await context.close();
});

test('an expired access token is refreshed silently', async () => {
  const email = `${unique('rita')}@example.com`;
  await Api.register('Rita', email);
  const { context, page } = await signIn(browser, email);
  // Drop the access cookie, as if it had expired; the refresh cookie stays.
  const cookies = await context.cookies();
  assert.ok(cookies.some((c) => c.name === 'refresh_token'), 'a refresh cookie is set');
  await context.clearCookies({ name: 'access_token' });
  await page.reload();
  await page.getByTestId('chat-list').waitFor();
  await page.getByTestId('account-button').getByText('Rita').waitFor();
  await waitOnline(page);
  assert.ok((await context.cookies()).some((c) => c.name === 'access_token'), 'a new access cookie was set');
  page.assertClean();
  await context.close();
});

test('two tabs refresh at once without revoking the session (Web Locks)', async () => {
  const email = `${unique('tabs')}@example.com`;
  await Api.register('Tess', email);
  const { context, page } = await signIn(browser, email);
  const tab2 = await context.newPage();
  await tab2.goto('/');
  await tab2.getByTestId('account-button').getByText('Tess').waitFor();
  for (let round = 0; round < 3; round++) {
    // Both tabs find the access token gone at the same moment and must refresh. Without the
    // cross-tab lock both would present the same refresh token, and the second use would
    // revoke the session.
    await context.clearCookies({ name: 'access_token' });
    const status = await Promise.all([page, tab2].map((p) => p.evaluate(async () => {
      const { request } = await import(document.querySelector('script[type=module]').src.replace('main.js', 'api.js'));
      return request('GET', '/users/me').then(() => 'ok', (e) => `failed ${e.status} ${e.code}`);
    })));
    assert.deepEqual(status, ['ok', 'ok'], `round ${round}`);
  }
  await tab2.reload();
  await tab2.getByTestId('account-button').getByText('Tess').waitFor();
  page.assertClean();
  await context.close();
});

test('a refresh that does not get through is no sign-out', async () => {
  // The socket comes back after a drop with its access token gone (expired during a sleep, a
  // new server key): the handshake fails, the API says 401, and the refresh that would renew
  // the session fails on the way, its connection reset (a lost answer) or a 502 from a proxy
  // whose instance restarts. That says nothing of the session: the page must stay signed in
  // and reconnect. It took the 401 of the request before the refresh for the verdict, and
  // showed the sign-in page ("Your session has ended").
  const email = `${unique('lou')}@example.com`;
  await Api.register('Lou', email);
  const { context, page } = await signIn(browser, email);
  for (const fail of [(r) => r.abort('connectionreset'), (r) => r.fulfill({ status: 502, body: 'Bad Gateway' })]) {
    let failed = 0;
    let renewed = 0;
    await page.route('**/api/v1/auth/refresh', async (r) => {
      if (failed++ === 0) return fail(r);
      renewed += 1;
      return r.continue();
    });
    await context.clearCookies({ name: 'access_token' });
    await context.setOffline(true);
    await page.locator('[data-testid="conn-banner"][data-state="offline"]').waitFor();
    await context.setOffline(false);
    await waitOnline(page);
    assert.equal(await page.getByTestId('chat-list').count(), 1, 'still signed in');
    assert.ok(failed >= 2 && renewed >= 1, `the failed refresh was tried again (${failed} refreshes, ${renewed} through)`);
    await page.unroute('**/api/v1/auth/refresh');
  }
  page.assertClean();
  await context.close();
});

test('devices: list sessions, sign another device out, sign out of all', async () => {
  const email = `${unique('dev')}@example.com`;
  await Api.register('Devi', email);
  const a = await signIn(browser, email);
  const b = await signIn(browser, email);

  await a.page.getByTestId('account-button').click();
  const dialog = a.page.getByTestId('account-dialog');
  await dialog.waitFor();
  // Three sessions: the registration (REST) and the two browsers.
  await assertCount(dialog.getByTestId('device'), 3);
  await dialog.locator('[data-testid="device"][data-current="true"]').getByText('This device').waitFor();

  // Sign out device b: it is sent back to the sign-in screen.
  const bSession = await b.page.evaluate(() => fetch('/api/v1/auth/sessions').then((r) => r.json()));
  const bId = bSession.sessions.find((s) => s.current).id;
  await dialog.locator(`[data-testid="device"][data-session-id="${bId}"]`).getByRole('button', { name: /Sign out/ }).click();
  await assertCount(dialog.getByTestId('device'), 2);
  await b.page.getByRole('heading', { name: 'Welcome back' }).waitFor({ timeout: 15000 });
  await b.page.getByText('Your session has ended').waitFor();

  // Esc closes the dialog.
  await a.page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });

  // Sign out of all devices.
  await a.page.getByTestId('account-button').click();
  await a.page.getByTestId('sign-out-all').click();
  await a.page.getByTestId('confirm-dialog').getByRole('button', { name: 'Sign out everywhere' }).click();
  await a.page.getByText('You signed out of all devices.').waitFor();
  const res = await a.page.evaluate(() => fetch('/api/v1/users/me').then((r) => r.status));
  assert.equal(res, 401);
  a.page.assertClean();
  b.page.assertClean();
  await a.context.close();
  await b.context.close();
});

test('sign out of this device', async () => {
  const { context, page } = await signIn(browser, 'third@example.com');
  await page.getByTestId('account-button').click();
  await page.getByTestId('sign-out').click();
  await page.getByText('You signed out.').waitFor();
  await reloadAfterDialog(page);
  await page.getByRole('heading', { name: 'Welcome back' }).waitFor();
  page.assertClean();
  await context.close();
});

test('a sign-out that does not get through says so and stays signed in', async () => {
  // Offline, or a server restarting: the session and its HttpOnly cookies live on, so a page
  // that said "You signed out." left whoever opened it next signed in.
  const email = `${unique('otto')}@example.com`;
  await Api.register('Otto', email);
  const { context, page } = await signIn(browser, email);
  await page.route('**/api/v1/auth/logout', (r) => r.abort('internetdisconnected'));
  await page.getByTestId('account-button').click();
  await page.getByTestId('sign-out').click();
  await page.getByText('Could not sign out: Cannot reach the server.').waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Welcome back' }).count(), 0, 'no sign-in page');
  await waitOnline(page); // the socket is back
  await page.unroute('**/api/v1/auth/logout');
  await reloadAfterDialog(page);
  await page.getByTestId('chat-list').waitFor(); // the session was still there
  await page.getByTestId('account-button').click();
  await page.getByTestId('sign-out').click();
  await page.getByText('You signed out.').waitFor();
  await reloadAfterDialog(page);
  await page.getByRole('heading', { name: 'Welcome back' }).waitFor();
  page.assertClean();
  await context.close();
});

async function assertCount(locator, n, timeout = 10000) {
  const until = Date.now() + timeout;
  for (;;) {
    const got = await locator.count();
    if (got === n) return;
    if (Date.now() > until) assert.equal(got, n);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** quiet collects what a visit logs as an error and every request that fails or answers >= 400. */
function quiet(page) {
  const noise = [];
  page.on('console', (m) => {
    if (m.type() === 'error') noise.push(`console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => noise.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) noise.push(`${r.status()}: ${r.url()}`);
  });
  return noise;
}

test('a signed-out visit makes no failing request and logs no error', async () => {
  const email = `${unique('quiet')}@example.com`;
  await Api.register('Quinn', email);
  const { context, page } = await newPage(browser);
  const noise = quiet(page);
  await page.goto('/');
  await page.getByRole('heading', { name: 'Welcome back' }).waitFor();
  await page.waitForLoadState('networkidle');
  assert.deepEqual(noise, [], 'first visit');

  // Signed in and out again: a reload is just as quiet.
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('chat-list').waitFor();
  await waitOnline(page);
  await page.getByTestId('account-button').click();
  await page.getByTestId('sign-out').click();
  await page.getByText('You signed out.').waitFor();
  noise.length = 0;
  await reloadAfterDialog(page);
  await page.getByRole('heading', { name: 'Welcome back' }).waitFor();
  await page.waitForLoadState('networkidle');
  assert.deepEqual(noise, [], 'visit after signing out');
  page.assertClean();
  await context.close();
});
