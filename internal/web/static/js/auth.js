// Sign-in and sign-up screens.

import { api, ApiError, describe } from './api.js';
import { h, icon } from './dom.js';

let fieldSeq = 0;

function field(label, props, hint) {
  fieldSeq += 1;
  const id = `f${fieldSeq}`;
  const err = h('p', { class: 'field-error', id: `${id}-err`, hidden: true });
  const hintEl = hint ? h('p', { class: 'field-hint', id: `${id}-hint`, text: hint }) : null;
  const input = h('input', { id, ...props, 'aria-describedby': [hintEl && `${id}-hint`, `${id}-err`].filter(Boolean).join(' ') });
  const wrap = h('div', { class: 'field' }, h('label', { for: id, text: label }), input, hintEl, err);
  return {
    wrap,
    input,
    setError(msg) {
      err.textContent = msg || '';
      err.hidden = !msg;
      if (hintEl) hintEl.hidden = !!msg; // the error says it: not twice
      if (msg) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    },
  };
}

/** humanize rewrites the server's validation messages into plain sentences where it can. */
function humanize(location, message) {
  const m = String(message || '');
  if (location.endsWith('email')) return 'Enter a valid email address.';
  const min = m.match(/length >= (\d+)/);
  if (min) return location.endsWith('password') ? `Use at least ${min[1]} characters.` : 'This is required.';
  const max = m.match(/length <= (\d+)/);
  if (max) return `Use at most ${max[1]} characters.`;
  return m ? m[0].toUpperCase() + m.slice(1) : 'This value is not valid.';
}

/**
 * renderAuth shows the sign-in screen (or sign-up, for mode 'signup') in root and calls
 * onSignedIn(user) after a successful sign-in or sign-up.
 */
export function renderAuth(root, { mode = 'signin', notice = '', onSignedIn }) {
  const signup = mode === 'signup';
  const alert = h('div', { class: 'form-alert', role: 'alert', 'data-testid': 'auth-error', hidden: true });
  const info = notice ? h('p', { class: 'form-notice', role: 'status', text: notice }) : null;

  const name = signup ? field('Name', { name: 'name', type: 'text', autocomplete: 'name', required: true, maxlength: 64 }) : null;
  const email = field('Email', { name: 'email', type: 'email', autocomplete: 'email', required: true, autocapitalize: 'off', spellcheck: 'false' });
  const password = field('Password', {
    name: 'password', type: 'password', required: true,
    autocomplete: signup ? 'new-password' : 'current-password', minlength: signup ? 8 : undefined, maxlength: 128,
  }, signup ? 'At least 8 characters.' : null);
  const fields = { name, email, password };

  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', text: signup ? 'Create account' : 'Sign in' });
  const form = h('form', { class: 'auth-form', novalidate: true, 'aria-labelledby': 'auth-title' },
    alert, info, name?.wrap, email.wrap, password.wrap, submit);

  const switchBtn = h('button', {
    type: 'button', class: 'link',
    text: signup ? 'Sign in' : 'Create an account',
    onclick: () => renderAuth(root, { mode: signup ? 'signin' : 'signup', onSignedIn }),
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    alert.hidden = true;
    for (const f of Object.values(fields)) f?.setError('');
    const missing = Object.values(fields).filter((f) => f && !f.input.value.trim());
    if (missing.length) {
      for (const f of missing) f.setError('This is required.');
      missing[0].input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = signup ? 'Creating account…' : 'Signing in…';
    try {
      const res = signup
        ? await api.register(name.input.value.trim(), email.input.value.trim(), password.input.value)
        : await api.login(email.input.value.trim(), password.input.value);
      onSignedIn(res.user);
    } catch (err) {
      submit.disabled = false;
      submit.textContent = signup ? 'Create account' : 'Sign in';
      let focused = false;
      if (err instanceof ApiError && err.errors.length) {
        for (const e of err.errors) {
          const key = String(e.location || '').split('.').pop();
          const f = fields[key];
          if (f) {
            f.setError(humanize(e.location, e.message));
            if (!focused) f.input.focus();
            focused = true;
          }
        }
      }
      if (err instanceof ApiError && err.code === 'email_taken') {
        email.setError('An account with this email already exists.');
        email.input.focus();
        focused = true;
      }
      // A field that says what is wrong is enough; the alert only points at it.
      alert.textContent = err instanceof ApiError && err.code === 'invalid_credentials'
        ? 'Wrong email or password.'
        : focused ? 'Please correct the fields below.' : describe(err);
      alert.hidden = false;
      if (err instanceof ApiError && err.code === 'invalid_credentials') {
        password.input.select();
        password.input.focus();
      } else if (!focused) submit.focus();
    }
  });

  const card = h('main', { class: 'auth-card' },
    h('div', { class: 'brand' }, h('span', { class: 'brand-mark' }, icon('chat')), h('span', { class: 'brand-name', text: 'Chat' })),
    h('h1', { id: 'auth-title', text: signup ? 'Create your account' : 'Welcome back' }),
    h('p', { class: 'auth-sub', text: signup ? 'It takes a few seconds.' : 'Sign in to continue to your chats.' }),
    form,
    h('p', { class: 'auth-switch' }, signup ? 'Already have an account? ' : 'New here? ', switchBtn));
  root.replaceChildren(h('div', { class: 'auth' }, card));
  (name || email).input.focus();
}
