// api.js: the only module that talks to the server (docs/protocol.md).
// REST calls are plain async functions; the live WebSocket is the Live class.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || (status ? `HTTP ${status}` : 'cannot reach the server'));
    this.status = status;
    this.code = (body && body.code) || (status ? 'internal' : 'network');
    this.retryAfter = body && body.retry_after;
  }
}

/** Which sign-in of this tab requests belong to; see endSession. */
let session = 0;

/**
 * Called when this tab's sign-in ends. An answer to a request made before then never settles,
 * so that a late one (a 401, or another user's history) cannot reach the next sign-in.
 */
export function endSession() {
  session++;
}

async function rest(method, path, body) {
  const mine = session;
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const stale = () => new Promise(() => {});
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    if (mine !== session) return stale();
    throw new ApiError(0, null);
  }
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch { /* empty or non-JSON body */ }
  }
  if (mine !== session) return stale();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const setupNeeded = () => rest('GET', '/api/setup');
export const setup = (token, name, display_name, password) =>
  rest('POST', '/api/setup', { token, name, display_name, password });
export const login = (name, password) => rest('POST', '/api/login', { name, password });
export const logout = () => rest('POST', '/api/logout');
export const me = () => rest('GET', '/api/me');
/** {signed_in, user?, records}: answers 200 signed in or not, so a signed-out page load logs no 401. */
export const currentSession = () => rest('GET', '/api/session');
export const users = () => rest('GET', '/api/users');
export const createUser = (u) => rest('POST', '/api/users', u);
export const rooms = () => rest('GET', '/api/rooms');

/** Where a file's bytes (or its thumbnail's) are served. */
export const fileUrl = (id, thumbnail = false) => `/api/files/${encodeURIComponent(id)}${thumbnail ? '/thumbnail' : ''}`;

/**
 * Uploads a file to a conversation, with its thumbnail (a Blob) first in the body when given
 * (docs/protocol.md, "Files"). XHR rather than fetch for the upload's progress. Returns
 * {done: Promise<Attachment>, abort()}; onProgress gets the fraction sent.
 */
export function uploadFile(conv, file, thumb, onProgress) {
  const xhr = new XMLHttpRequest();
  const q = new URLSearchParams({ name: file.name || 'pasted', type: file.type || 'application/octet-stream' });
  if (thumb) { q.set('thumbnail', String(thumb.size)); q.set('thumbnail_type', thumb.type); }
  const done = new Promise((resolve, reject) => {
    xhr.open('POST', `/api/conversations/${encodeURIComponent(conv)}/files?${q}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 200 && body && body.file) resolve(body.file);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new ApiError(0, null));
    xhr.onabort = () => reject(Object.assign(new ApiError(0, { code: 'cancelled', message: 'cancelled' })));
    // A Blob of Blobs: the browser streams the file from disk, never copying it whole.
    xhr.send(thumb ? new Blob([thumb, file]) : file);
  });
  return { done, abort: () => xhr.abort() };
}

/** "?a=1&b=2" of the given keys of opts that are set, or "". */
function query(opts, keys) {
  const q = new URLSearchParams();
  for (const k of keys) if (opts[k] != null && opts[k] !== '') q.set(k, String(opts[k]));
  const qs = q.toString();
  return qs ? '?' + qs : '';
}

/** History page: opts = {before, after, limit}. */
export const messages = (conv, opts = {}) =>
  rest('GET', `/api/conversations/${conv}/messages${query(opts, ['before', 'after', 'limit'])}`);

/** Keyword search, newest first: opts = {q, from, conv, before, limit} → {results, more, next}. */
export const search = (opts) => rest('GET', '/api/search' + query(opts, ['q', 'from', 'conv', 'before', 'limit']));

/** Reviewers only (docs/protocol.md "Review"): the archived conversations → {conversations}. */
export const reviewConversations = () => rest('GET', '/api/review/conversations');

/** Reviewers only: a page of a conversation, each message with its earlier `versions` → {messages, more}. */
export const reviewMessages = (conv, opts = {}) =>
  rest('GET', `/api/review/conversations/${conv}/messages${query(opts, ['before', 'after', 'limit'])}`);

/** Reviewers only: search every archived conversation: opts = {q, from, conv, since, until, before, limit}. */
export const reviewSearch = (opts) =>
  rest('GET', '/api/review/search' + query(opts, ['q', 'from', 'conv', 'since', 'until', 'before', 'limit']));

/** The export download's address (a plain link: the browser saves the file). */
export const reviewFileUrl = (id) => `/api/review/files/${encodeURIComponent(id)}`;
export const reviewExportUrl = (conv, format) => `/api/review/conversations/${conv}/export?format=${format}`;

/** Whether signing up (with an invite token) would be taken → {mode, allowed, role, expires} or {allowed: false, code, message}. */
export const maySignUp = (invite) => rest('GET', '/api/signup' + (invite ? `?invite=${encodeURIComponent(invite)}` : ''));
export const signUp = (u) => rest('POST', '/api/signup', u);
/** Admins only: {mode, invites: [Invite]}; setSignupMode(mode); createInvite({role, uses, expires_in_hours}) → {invite, link, qr_svg}. */
export const signupSettings = () => rest('GET', '/api/admin/signup');
export const setSignupMode = (mode) => rest('POST', '/api/admin/signup', { mode });
export const createInvite = (opts) => rest('POST', '/api/admin/invites', opts);
export const revokeInvite = (id) => rest('POST', `/api/admin/invites/${encodeURIComponent(id)}/revoke`);

/** Admins only: the records policy {records: {policy, days, fixed, buffer_seconds}}; setRecordsPolicy(policy, days). */
export const recordsPolicy = () => rest('GET', '/api/admin/records');
export const setRecordsPolicy = (policy, days) => rest('POST', '/api/admin/records', { policy, days });

/** Your own password: {current, password} → {user}; your other sessions end. */
export const changePassword = (current, password) => rest('POST', '/api/me/password', { current, password });
/** Your signed-in sessions → {sessions: [{id, current, device, address, created, last_used}], idle_days}. */
export const mySessions = () => rest('GET', '/api/me/sessions');
export const endSession1 = (id) => rest('POST', `/api/me/sessions/${encodeURIComponent(id)}/sign-out`);
export const endOtherSessions = () => rest('POST', '/api/me/sessions/sign-out-others');

/** Admins only: every account with role, disabled, tabs and last_seen → {users}. */
export const adminUsers = () => rest('GET', '/api/admin/users');
/** Admins only: `action` is disable, enable, role ({role}) or password ({password}) → {user}. */
export const adminUser = (id, action, body = {}) => rest('POST', `/api/admin/users/${id}/${action}`, body);
/** Admins only: the server at a glance (docs/protocol.md, GET /api/admin/stats). */
export const adminStats = () => rest('GET', '/api/admin/stats');
/** Admins only: the backup schedule, its last result and the folder's backups (GET /api/admin/backups). */
export const adminBackups = () => rest('GET', '/api/admin/backups');

/** Admins only: what reviewers did, oldest first → {entries, more}. */
export const audit = (opts = {}) => rest('GET', '/api/admin/audit' + query(opts, ['after', 'limit']));

/**
 * One WebSocket per tab, reconnecting with backoff (1 s, 2 s, 4 s ... 15 s), or about every
 * second for two minutes after the server said it is restarting (so the tab is back as soon
 * as the new server is).
 * handlers: onFrame(frame), onStatus('connecting'|'open'|'reconnecting'|'restarting'), onSignedOut().
 * ack/error frames that answer request() are consumed here; other frames go to onFrame.
 */
export class Live {
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    this.open = false;
    this.stopped = true;
    this.attempt = 0;
    this.nextRef = 1;
    this.waiting = new Map();
    this.timer = null;
    this.pinger = null;
    this.restartingSince = 0;
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    this.h.onStatus('connecting');
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this._closed();
    if (ws) ws.close(1000);
  }

  /** Fire and forget; returns false when not connected. */
  send(frame) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Send with a ref; resolves with the ack frame, rejects with an ApiError-like error. */
  request(frame, timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
      if (!this.open) {
        reject(Object.assign(new Error('not connected'), { code: 'disconnected' }));
        return;
      }
      const ref = 'r' + this.nextRef++;
      const data = JSON.stringify({ ...frame, ref });
      // The server cannot read the ref of a frame over its limit, so it would never answer this one.
      if (this.maxFrame && data.length > this.maxFrame / 3 && new TextEncoder().encode(data).length > this.maxFrame) {
        reject(Object.assign(new Error('too long for the server'), { code: 'too_large' }));
        return;
      }
      const t = setTimeout(() => {
        this.waiting.delete(ref);
        reject(Object.assign(new Error('the server did not answer'), { code: 'timeout' }));
      }, timeoutMs);
      this.waiting.set(ref, { resolve, reject, t });
      this.ws.send(data);
    });
  }

  _connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/ws';
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this._retry();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      if (!f || typeof f !== 'object') return;
      if (f.type === 'hello') {
        // The hello comes in parts of bounded size; hand the page the whole of it at once.
        if (f.part === 0 || !this.hello) this.hello = { ...f, users: [], presence: [], conversations: [] };
        this.hello.users.push(...(f.users || []));
        this.hello.presence.push(...(f.presence || []));
        this.hello.conversations.push(...(f.conversations || []));
        if (!f.last) return;
        f = this.hello;
        this.hello = null;
        this.maxFrame = Number(f.limits && f.limits.max_frame) || 0;
        this.maxFile = Number(f.limits && f.limits.max_file) || 0;
        this.open = true;
        this.attempt = 0;
        this.restartingSince = 0;
        clearInterval(this.pinger);
        this.pinger = setInterval(() => this.send({ type: 'ping' }), 25000);
        this.h.onStatus('open');
      }
      if (f.type === 'restarting') {
        this.restartingSince = Date.now();
        this.h.onStatus('restarting');
        return;
      }
      if ((f.type === 'ack' || f.type === 'error') && f.ref != null && this.waiting.has(String(f.ref))) {
        const w = this.waiting.get(String(f.ref));
        this.waiting.delete(String(f.ref));
        clearTimeout(w.t);
        if (f.type === 'ack') w.resolve(f);
        else w.reject(Object.assign(new Error(f.message || f.code), { code: f.code }));
        return;
      }
      this.h.onFrame(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this._closed();
      if (this.stopped) return;
      if (ev.reason === 'signed_out' || ev.reason === 'account_disabled') {
        this.stopped = true;
        this.h.onSignedOut(ev.reason);
        return;
      }
      this.h.onStatus(this.restartingSince ? 'restarting' : 'reconnecting');
      this._retry();
    };
  }

  _closed() {
    this.ws = null;
    this.hello = null;
    this.open = false;
    clearInterval(this.pinger);
    for (const w of this.waiting.values()) {
      clearTimeout(w.t);
      w.reject(Object.assign(new Error('connection lost'), { code: 'disconnected' }));
    }
    this.waiting.clear();
  }

  _retry() {
    // Spread over a second, so an office's tabs do not all arrive in the same instant.
    const restarting = this.restartingSince && Date.now() - this.restartingSince < 120000;
    const delay = restarting ? 500 + Math.random() * 1000 : Math.min(15000, 1000 * 2 ** this.attempt);
    this.attempt++;
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      // A refused upgrade looks like any other close: ask REST whether the session is still valid.
      try {
        await me();
      } catch (e) {
        if (this.stopped) return;
        if (e.status === 401) {
          this.stopped = true;
          this.h.onSignedOut();
        } else {
          this._retry();
        }
        return;
      }
      if (!this.stopped) this._connect();
    }, delay);
  }
}
