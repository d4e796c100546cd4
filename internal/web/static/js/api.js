// REST client: same-origin fetch with the session cookies, RFC 9457 problem errors, and a silent
// refresh of the access token on 401 (then one retry).
//
// A refresh token works once, and presenting a rotated one revokes the whole session, so two
// tabs must never refresh with the same token. Refreshes are serialized across the tabs of this
// browser with the Web Locks API; inside the lock a tab first checks whether another tab has
// refreshed since its request failed, and if so just retries with the new cookie.

const BASE = '/api/v1';
const LOCK = 'chat-auth-refresh';
const STAMP = 'chat.refreshedAt';

/** ApiError is a failed request: a problem document, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(problem.detail || problem.title || (status ? `HTTP ${status}` : 'Network error'));
    this.status = status;
    this.code = problem.code || (status ? 'http_' + status : 'network');
    this.detail = problem.detail || '';
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.retryAfter = problem.retryAfter || 0;
  }
  get network() {
    return this.status === 0;
  }
}

const listeners = new Set();

/** onSignedOut registers fn to be told when the session is gone (refresh refused). */
export function onSignedOut(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function signedOut(reason) {
  for (const fn of listeners) fn(reason);
}

async function send(method, path, body, signal) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' }, signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, { detail: 'Cannot reach the server. Check your connection.' });
  }
  return res;
}

async function parse(res) {
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json().catch(() => null) : null;
  if (res.ok) return data;
  const problem = data || { detail: res.statusText };
  problem.retryAfter = Number(res.headers.get('Retry-After')) || 0;
  throw new ApiError(res.status, problem);
}

let refreshing = null;

/**
 * refresh renews the access token once for this tab (concurrent callers share the attempt).
 * since is when the caller's failed request started: if another tab refreshed after that, the
 * cookie is already new and nothing is sent. Resolves true when the session is alive.
 */
export function refresh(since = Date.now()) {
  if (!refreshing) {
    refreshing = doRefresh(since).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function doRefresh(since) {
  const run = async () => {
    const stamp = Number(localStorage.getItem(STAMP)) || 0;
    if (stamp > since) return true; // another tab refreshed while we waited
    const res = await send('POST', '/auth/refresh');
    if (res.ok) {
      localStorage.setItem(STAMP, String(Date.now()));
      return true;
    }
    if (res.status === 401) return false;
    // Anything else (5xx, 422, 429) leaves the session as it is; the caller sees the 401.
    await parse(res).catch(() => {});
    throw new ApiError(res.status, { detail: 'Could not renew the session.' });
  };
  if (navigator.locks) return navigator.locks.request(LOCK, run);
  return run();
}

const NO_REFRESH = new Set(['/auth/login', '/auth/register', '/auth/refresh']);

/**
 * request sends one API call. On 401 it refreshes the session silently and retries once; when
 * the refresh is refused the session is gone and onSignedOut listeners are told. A refresh that
 * does not get through (offline, its answer lost, a 5xx) rejects with its own error, not the
 * 401: that says nothing of the session, so no caller may take it for a sign-out (the socket
 * tries again later, a message waits to be resent).
 */
export async function request(method, path, body, { signal } = {}) {
  const started = Date.now();
  let res = await send(method, path, body, signal);
  if (res.status === 401 && !NO_REFRESH.has(path)) {
    const alive = await refresh(started);
    if (!alive) {
      signedOut('expired');
      return parse(res);
    }
    res = await send(method, path, body, signal);
    if (res.status === 401) signedOut('expired');
  }
  return parse(res);
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

/** q builds a query string from the defined values of params. */
export function q(params) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const str = s.toString();
  return str ? '?' + str : '';
}

/** Every endpoint the client uses, in one place. */
export const api = {
  login: (email, password) => post('/auth/login', { email, password }),
  register: (name, email, password) => post('/auth/register', { name, email, password }),
  logout: () => post('/auth/logout'),
  logoutAll: () => post('/auth/logout-all'),
  sessions: () => get('/auth/sessions'),
  revokeSession: (id) => del(`/auth/sessions/${id}`),
  me: () => get('/users/me'),
  searchUsers: (query, opts) => get('/users' + q({ q: query, limit: 20 }), opts),
  usersNamed: (name) => get('/users' + q({ q: name, limit: 100 })),
  user: (id) => get(`/users/${id}`),
  chats: () => get('/chats'),
  chat: (id) => get(`/chats/${id}`),
  createGroup: (title, isPublic, memberIds) => post('/chats', { kind: 'group', title, public: isPublic, member_ids: memberIds }),
  createPrivate: (userId) => post('/chats', { kind: 'private', member_ids: [userId] }),
  discover: (query, opts) => get('/chats/discover' + q({ q: query }), opts),
  join: (id) => post(`/chats/${id}/join`),
  leave: (id) => post(`/chats/${id}/leave`),
  invite: (id, userId) => post(`/chats/${id}/members`, { user_id: userId }),
  history: (id, params) => get(`/chats/${id}/messages` + q(params)),
  send: (id, body, clientId, fileIds, more) => post(`/chats/${id}/messages`, { body, client_id: clientId, ...(fileIds?.length ? { file_ids: fileIds } : {}), ...more }),
  fileLimits: () => get('/files/limits'),
  read: (id, seq) => post(`/chats/${id}/read`, { seq }),
  searchMessages: (query, before, opts) => get('/search/messages' + q({ q: query, before, limit: 20 }), opts),
  chatSettings: (id, fields) => request('PATCH', `/chats/${id}/settings`, fields),
  pushKey: () => get('/push/key'),
  pushSubscribe: (sub) => post('/push/subscriptions', sub),
  pushUnsubscribe: (endpoint) => request('DELETE', '/push/subscriptions', { endpoint }),
  // Running a group and the account (admin.js, settings.js).
  updateChat: (id, fields) => request('PATCH', `/chats/${id}`, fields),
  deleteChat: (id) => del(`/chats/${id}`),
  removeMember: (id, userId) => del(`/chats/${id}/members/${userId}`),
  setRole: (id, userId, role) => request('PUT', `/chats/${id}/members/${userId}/role`, { role }),
  transfer: (id, userId) => post(`/chats/${id}/transfer`, { user_id: userId }),
  rename: (name) => request('PATCH', '/users/me', { name }),
  changePassword: (current, next, signOutOthers) => post('/users/me/password', { current_password: current, new_password: next, sign_out_others: signOutOthers }),
  deleteAccount: (password) => request('DELETE', '/users/me', { password }),
};

/** describe turns an error into one sentence for the user. */
export function describe(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong. Please try again.';
  if (err.network) return err.detail;
  if (err.code === 'rate_limited') {
    return err.retryAfter ? `Too many attempts. Try again in ${err.retryAfter} s.` : 'Too many attempts. Try again later.';
  }
  if (err.status >= 500) return 'The server had a problem. Please try again.';
  return err.detail || err.message;
}
