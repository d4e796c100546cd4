// The tab's one WebSocket to /api/v1/ws: frames {type, ref, data}, reconnection with
// exponential backoff and jitter, heartbeats, and the close codes of the protocol.
//
// The browser's online/offline events count too: offline, the socket is dropped at once (so sends
// queue instead of vanishing into a dead line) and no reconnect is tried until the network is back
// (or BACKOFF_MAX passes, in case the event never comes); the status then reads 'offline'.
//
// Close codes: 4001 (session revoked or token expired) → refresh the session, then reconnect;
// 1012 (server restart) → reconnect at once, with a little jitter; 1013 (too slow, dropped) and
// anything else → reconnect with backoff. The owner syncs after every hello.

import { api, refresh, ApiError } from './api.js';

const BACKOFF_MIN = 500;
const BACKOFF_MAX = 15000;
const PROBE_TIMEOUT = 5000;
// A socket that opened (or is still opening) but has not said hello after this long (twice as
// long after a failed attempt, for a big hello on a slow link) is dropped and tried again: a
// line that stalled during the handshake, or an upgrade a proxy accepted and then sat on, would
// otherwise hold the tab at "Reconnecting…" with no timer left to notice (heartbeats start with
// the hello) until the browser gave up on the socket, minutes later or never.
const HELLO_TIMEOUT = 15000;

export class Connection {
  /**
   * handlers: onFrame(frame), onStatus(status, info), onSignedOut().
   * status is 'connecting' | 'online' | 'reconnecting' | 'offline' | 'closed'; 'offline' is
   * any state but online and closed while the browser says the network is down.
   */
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    this.status = 'closed';
    this.attempt = 0;
    this.timer = null;
    this.heartbeat = null;
    this.heartbeatMs = 25000;
    this.lastRecv = 0;
    this.pingSent = 0;
    this.stopped = true;
    this.refCounter = 0;
    this.onOnline = () => {
      if (this.stopped) return;
      this.report();
      if (this.status !== 'online') this.reconnectNow();
    };
    this.onOffline = () => {
      if (this.stopped) return;
      if (this.ws) this.drop('offline');
      else this.report();
    };
    this.onVisible = () => {
      if (document.visibilityState === 'visible' && !this.stopped) this.checkAlive();
    };
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.open();
  }

  /** stop closes the socket for good (sign out). */
  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.timer);
    clearTimeout(this.probeTimer);
    clearTimeout(this.helloTimer);
    clearInterval(this.heartbeat);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
      try {
        ws.close(1000, 'bye');
      } catch { /* already closed */ }
    }
    this.setStatus('closed');
  }

  get online() {
    return this.status === 'online';
  }

  /** send writes a frame if the socket is open (after hello); returns whether it did. */
  send(type, data, ref) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.status !== 'online') return false;
    const frame = { type };
    if (ref !== undefined) frame.ref = ref;
    if (data !== undefined) frame.data = data;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  nextRef(prefix = 'r') {
    this.refCounter += 1;
    return `${prefix}${this.refCounter}`;
  }

  setStatus(status, info) {
    this.status = status;
    this.report(info);
  }

  /** report tells the owner the status as the user should see it. */
  report(info) {
    const offline = navigator.onLine === false && this.status !== 'online' && this.status !== 'closed';
    this.h.onStatus?.(offline ? 'offline' : this.status, info);
  }

  /** drop abandons the socket now, without waiting for a closing handshake a dead line never completes. */
  drop(reason) {
    const ws = this.ws;
    if (!ws) return;
    ws.onclose = ws.onmessage = ws.onerror = null;
    try {
      ws.close(4000, reason);
    } catch { /* already closed */ }
    this.closed(ws, { code: 4000 });
  }

  /**
   * probe pings now (unless a ping is out) and drops the socket when no answer comes soon: a send
   * that is not acknowledged may mean a dead line the browser has not noticed.
   */
  probe() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.pingSent) return;
    this.pingSent = Date.now();
    this.ws.send(JSON.stringify({ type: 'ping' }));
    const ws = this.ws;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      if (this.ws === ws && this.pingSent) this.drop('ping timeout');
    }, PROBE_TIMEOUT);
  }

  open() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.gotHello = false;
    if (this.attempt === 0 && this.status === 'closed') this.setStatus('connecting');
    ws.onmessage = (ev) => this.receive(ev);
    ws.onclose = (ev) => this.closed(ws, ev);
    ws.onerror = () => { /* onclose follows */ };
    clearTimeout(this.helloTimer);
    this.helloTimer = setTimeout(() => {
      if (this.ws === ws && !this.gotHello) this.drop('no hello');
    }, this.attempt > 0 ? 2 * HELLO_TIMEOUT : HELLO_TIMEOUT);
  }

  receive(ev) {
    this.lastRecv = Date.now();
    this.pingSent = 0; // anything that comes answers a ping: the line lives
    clearTimeout(this.probeTimer);
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== 'string') return;
    if (frame.type === 'hello') {
      clearTimeout(this.helloTimer);
      this.gotHello = true;
      this.attempt = 0;
      const hb = Number(frame.data?.heartbeat_ms);
      if (hb > 0) this.heartbeatMs = hb;
      this.startHeartbeat();
      this.setStatus('online');
    }
    this.h.onFrame(frame); // a pong too: it tells that nothing came between (client.js heldRemoval)
  }

  startHeartbeat() {
    clearInterval(this.heartbeat);
    const every = Math.max(1000, Math.min(this.heartbeatMs / 2, 15000));
    this.heartbeat = setInterval(() => this.checkAlive(), every);
  }

  /** checkAlive pings when the line has been quiet, and drops a socket whose ping went unanswered. */
  checkAlive() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    if (this.pingSent && now - this.pingSent > Math.max(5000, this.heartbeatMs / 2)) {
      // No answer: the connection is dead even if the browser has not noticed.
      this.drop('ping timeout');
      return;
    }
    if (!this.pingSent && now - this.lastRecv >= this.heartbeatMs / 2) {
      this.pingSent = now;
      this.ws.send(JSON.stringify({ type: 'ping' }));
    }
  }

  async closed(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.pingSent = 0;
    clearInterval(this.heartbeat);
    clearTimeout(this.probeTimer);
    clearTimeout(this.helloTimer);
    if (this.stopped) return;
    const code = ev.code;
    this.setStatus('reconnecting', { code });
    if (code === 4001) {
      // Session revoked or token expired: a refresh tells which.
      let alive = false;
      try {
        alive = await refresh();
      } catch {
        alive = true; // server trouble, not a verdict on the session: try again later
      }
      // Stopped meanwhile (the account deleted, a sign-out): the page has said why already,
      // and "Your session has ended" must not replace it.
      if (this.stopped) return;
      if (!alive) {
        this.stop();
        this.h.onSignedOut?.();
        return;
      }
      this.reconnectSoon(0, 300);
      return;
    }
    if (code === 1012) {
      // The instance is shutting down gracefully: reconnect now, spread over a moment.
      this.attempt = 1;
      this.reconnectSoon(100, 1000);
      return;
    }
    if (!this.gotHello) {
      // The handshake failed. Browsers hide its status, so ask the API whether the session is
      // alive (refreshing it if the access token expired) before trying again; not for longer
      // than a probe, since on a stalled line the question may never be answered either.
      let bound;
      try {
        const me = api.me();
        me.catch(() => { /* an answer that comes too late is not waited for */ });
        await Promise.race([me, new Promise((resolve) => { bound = setTimeout(resolve, PROBE_TIMEOUT); })]);
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof ApiError && err.status === 401) {
          this.stop();
          this.h.onSignedOut?.();
          return;
        }
      } finally {
        clearTimeout(bound); // the answer came first: its bound is not left running
      }
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.attempt);
    this.attempt += 1;
    // "Equal jitter": half the delay fixed, half random, so clients spread out but do not stall.
    // Offline, the 'online' event reconnects; the long wait is for a browser that never sends it.
    const delay = navigator.onLine === false ? BACKOFF_MAX : base / 2 + Math.random() * (base / 2);
    this.timer = setTimeout(() => this.open(), delay);
    this.setStatus('reconnecting', { retryAt: Date.now() + delay });
  }

  reconnectSoon(min, max) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), min + Math.random() * (max - min));
  }

  /** reconnectNow drops any wait and connects (the user asked, or the network came back). */
  reconnectNow() {
    if (this.stopped) return;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN && this.status !== 'reconnecting') return;
    this.attempt = 0;
    if (this.ws) return; // a connect is under way
    this.open();
  }
}
