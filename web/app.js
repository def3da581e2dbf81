// app.js: entry point, state and rendering of the Hallway web client.
// Talks to the server only through api.js; renders user text only as text nodes.
import * as api from './api.js';
import { renderText } from './markup.js';

const IDLE_MS = 5 * 60 * 1000;
const TYPING_SEND_MS = 3000;
const TYPING_SHOW_MS = 5000;
const PAGE = 50;

// ---------- state ----------
const S = {
  me: null,               // User
  users: new Map(),       // id -> User
  presence: new Map(),    // user id -> Presence
  convs: new Map(),       // id -> conversation (server fields + client fields, see addConv)
  current: null,          // open conversation id
  live: null,             // api.Live
  online: false,          // a hello arrived on the current socket
  gen: 0,                 // counts hellos; catch-ups of an older socket stop
  typing: new Map(),      // conv id -> Map(user id -> expiry ms)
  drafts: new Map(),      // conv id -> composer text
  editing: null,          // {conv, seq} of the message being edited inline
  wantOpen: null,         // conversation to open once its `conversation` frame arrives
  search: null,           // open search results: {raw, p, words, results, more, next, busy, error}
  idle: false,
  lastInput: Date.now(),
  hiddenSince: null,
  lastTypingSent: 0,
};

// ---------- small DOM helpers ----------
const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'testid') e.dataset.testid = v;
    else if (k === 'data') Object.assign(e.dataset, v);
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of kids.flat()) {
    if (c == null || c === false) continue;
    e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

/** The nodes of a child list without the null/false placeholders (replaceChildren would print "null"). */
const kids = (...list) => list.filter((k) => k != null && k !== false);

const ICONS = {
  lock: 'M5 11h14a2 2 0 0 1 2 2v7a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2zM7 11V7a5 5 0 0 1 10 0v4',
  hash: 'M4 9h16M4 15h16M10 3L8 21M16 3l-2 18',
  plus: 'M12 5v14M5 12h14',
  search: 'M3 11a8 8 0 1 0 16 0a8 8 0 1 0-16 0M21 21l-4.35-4.35',
  userPlus: 'M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2M4.5 7a4 4 0 1 0 8 0a4 4 0 1 0-8 0M20 8v6M23 11h-6',
  users: 'M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2M5 7a4 4 0 1 0 8 0a4 4 0 1 0-8 0M23 21v-2a4 4 0 0 0-3-3.87M16 3.13a4 4 0 0 1 0 7.75',
  logout: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9',
  menu: 'M3 12h18M3 6h18M3 18h18',
  edit: 'M17 3a2.83 2.83 0 1 1 4 4L7.5 20.5 2 22l1.5-5.5L17 3z',
  trash: 'M3 6h18M19 6v14a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V6m3 0V4a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2',
  send: 'M22 2L11 13M22 2l-7 20-4-9-9-4 20-7z',
  db: 'M3 5a9 3 0 1 0 18 0a9 3 0 1 0-18 0M21 12c0 1.66-4 3-9 3s-9-1.34-9-3M3 5v14c0 1.66 4 3 9 3s9-1.34 9-3V5',
  dbOff: 'M3 5a9 3 0 1 0 18 0a9 3 0 1 0-18 0M21 12c0 1.66-4 3-9 3s-9-1.34-9-3M3 5v14c0 1.66 4 3 9 3s9-1.34 9-3V5M2 2l20 20',
  moon: 'M21 12.79A9 9 0 1 1 11.21 3 7 7 0 0 0 21 12.79z',
  close: 'M18 6L6 18M6 6l12 12',
};

function icon(name) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  const p = document.createElementNS(NS, 'path');
  p.setAttribute('d', ICONS[name]);
  svg.append(p);
  return svg;
}

const narrow = () => matchMedia('(max-width: 720px)').matches; // a phone: the sidebar slides in

function toast(text, ms = 4000) {
  const t = $('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, ms);
}

function randomId() {
  const b = new Uint8Array(9);
  crypto.getRandomValues(b); // works on plain-HTTP LAN origins, unlike randomUUID
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// ---------- names and presence ----------
const userName = (id) => S.users.get(id)?.display_name || S.users.get(id)?.name || `user ${id}`;

function presenceOf(id) {
  return S.presence.get(id) || { user: id, state: 'offline', status: '', status_expires: null };
}
function statusText(p) {
  if (!p.status) return '';
  if (p.status_expires != null && p.status_expires <= Date.now()) return '';
  return p.status;
}
const STATE_LABEL = { online: 'Online', away: 'Away', dnd: 'Do not disturb', offline: 'Offline' };

function dot(userId) {
  const p = presenceOf(userId);
  const state = STATE_LABEL[p.state] ? p.state : 'offline';
  return h('span', {
    class: `dot dot-${state}`, testid: 'presence-dot',
    data: { state, userName: S.users.get(userId)?.name || '' }, title: STATE_LABEL[state],
  });
}

function avatar(userId, size = '') {
  const u = S.users.get(userId);
  const label = (u?.display_name || u?.name || '?').trim();
  const initials = label.split(/\s+/).slice(0, 2).map((w) => w[0]).join('').toUpperCase() || '?';
  const a = h('span', { class: `avatar ${size}`, text: initials, 'aria-hidden': 'true' });
  a.style.background = `hsl(${(userId * 47) % 360} 45% 42%)`;
  return a;
}

function others(c) { return c.members.filter((id) => id !== S.me.id); }

function convName(c) {
  if (c.kind === 'room' || c.kind === 'private') return c.name;
  const o = others(c);
  if (o.length === 0) return `${userName(S.me.id)} (you)`;
  return o.map(userName).sort((a, b) => a.localeCompare(b)).join(', ');
}

// ---------- conversations and messages ----------
function addConv(c) {
  const old = S.convs.get(c.id);
  const conv = old || {
    msgs: new Map(), pending: new Map(), loaded: false, loading: false, more: true,
    loadingOlder: false, seen: 0, catching: 0,
    oldest: null, // seq of the oldest message of the loaded pages (the window goes up from there)
  };
  Object.assign(conv, {
    id: c.id, kind: c.kind, name: c.name || '', topic: c.topic || '', members: c.members || [],
    last_seq: Math.max(c.last_seq || 0, old ? old.last_seq : 0), read_seq: c.read_seq || 0,
    unread: c.unread || 0, mentions: c.mentions || 0, recorded: !!c.recorded,
  });
  S.convs.set(c.id, conv);
  return conv;
}

const revOf = (m) => (m.rev != null ? m.rev : m.seq);

/** Store a message (history or live), newest revision wins. Returns true if it was new. */
function merge(c, m) {
  const old = c.msgs.get(m.seq);
  // An edit or delete of a message older than the loaded pages waits for its page: keeping
  // it alone would leave a gap that paging back would skip.
  if (!old && c.oldest != null && m.seq < c.oldest) {
    c.last_seq = Math.max(c.last_seq, revOf(m));
    return false;
  }
  if (!old || revOf(m) >= revOf(old)) c.msgs.set(m.seq, m);
  if (m.client_id && m.author === S.me.id) c.pending.delete(m.client_id);
  c.last_seq = Math.max(c.last_seq, revOf(m));
  return !old;
}

function recountUnread(c) {
  if (c.read_seq >= c.last_seq) { c.unread = 0; c.mentions = 0; return; }
  const seqs = [...c.msgs.keys()];
  const oldest = seqs.length ? Math.min(...seqs) : Infinity;
  if (c.loaded && (!c.more || oldest <= c.read_seq + 1)) {
    let u = 0, mn = 0;
    for (const m of c.msgs.values()) {
      if (m.seq > c.read_seq && m.author !== S.me.id && !m.deleted) {
        u++;
        if (m.mentions && m.mentions.includes(S.me.id)) mn++;
      }
    }
    c.unread = u; c.mentions = mn;
  } else {
    c.unread = Math.min(c.unread, c.last_seq - c.read_seq);
    c.mentions = Math.min(c.mentions, c.unread);
  }
}

function looking() {
  return !document.hidden && document.hasFocus() && !S.search; // search results cover the conversation
}

/** Send a read marker for the open conversation when the user can see it. */
function markRead(c) {
  if (!c || c.id !== S.current || !c.loaded || !S.online || !looking()) return;
  if (c.last_seq <= c.read_seq && c.unread === 0) return;
  c.read_seq = Math.max(c.read_seq, c.last_seq);
  c.unread = 0; c.mentions = 0;
  S.live.send({ type: 'read', conv: c.id, seq: c.read_seq });
  renderSidebar();
}

/** The newest page of c; resolves when it is loaded (or failed), also if a load was already under way. */
function loadNewest(c) {
  if (c.loaded) return Promise.resolve();
  return (c.newestP ||= fetchNewest(c).finally(() => { c.newestP = null; }));
}

async function fetchNewest(c) {
  if (c.loaded || c.loading) return;
  c.loading = true;
  try {
    // Enough to reach the first unread message, so that the "New" line can be shown.
    const limit = c.unread > 0 ? Math.min(200, Math.max(PAGE, c.last_seq - c.read_seq + 5)) : PAGE;
    const r = await api.messages(c.id, { limit });
    loadedPage(c, r.messages);
    c.more = !!r.more;
    c.loaded = true;
    c.last_seq = Math.max(c.last_seq, r.last_seq || 0);
    c.seen = Math.max(c.seen, r.last_seq || 0);
    if (c.id === S.current) { renderMessages({ toBottom: true }); markRead(c); }
  } catch (e) {
    if (e.status === 401) return signedOut();
    if (c.id === S.current) toast(`Could not load messages: ${e.message}`);
  } finally {
    c.loading = false;
  }
}

/** Merges a history page, which extends the loaded window down to its oldest message. */
function loadedPage(c, msgs) {
  if (!msgs.length) return;
  c.oldest = Math.min(c.oldest ?? Infinity, msgs[0].seq); // pages come in ascending order
  for (const k of c.msgs.keys()) if (k < c.oldest) c.msgs.delete(k); // strays from before the page
  for (const m of msgs) merge(c, m);
}

/** The page before the oldest loaded message; resolves when it is loaded (or failed), as loadNewest. */
function loadOlder(c, limit = PAGE) {
  return (c.olderP ||= fetchOlder(c, limit).finally(() => { c.olderP = null; }));
}

async function fetchOlder(c, limit) {
  if (!c.loaded || !c.more || c.loadingOlder) return;
  if (c.oldest == null) { c.more = false; return; }
  c.loadingOlder = true;
  renderMessages();
  try {
    const r = await api.messages(c.id, { before: c.oldest, limit });
    loadedPage(c, r.messages);
    c.more = !!r.more && r.messages.length > 0;
  } catch (e) {
    if (e.status === 401) return signedOut();
    c.olderFailedAt = Date.now();
    toast(`Could not load older messages: ${e.message}`);
  } finally {
    c.loadingOlder = false;
    if (c.id === S.current) renderMessages({ keepAnchor: true });
  }
}

/** After a reconnect: fetch everything that changed after what this tab has. */
async function catchUp(c, gen) {
  if (!c.loaded || c.last_seq <= c.seen) return;
  c.catching = gen;
  let cursor = c.seen;
  try {
    for (let i = 0; i < 1000; i++) {
      const r = await api.messages(c.id, { after: cursor, limit: 200 });
      if (S.gen !== gen) return;
      for (const m of r.messages) { merge(c, m); cursor = Math.max(cursor, revOf(m)); }
      if (!r.more || !r.messages.length) { cursor = Math.max(cursor, r.last_seq || 0); break; }
    }
    c.seen = Math.max(c.seen, cursor);
    recountUnread(c);
  } catch (e) {
    if (e.status === 401) return signedOut();
    if (S.gen === gen) toast(`Could not catch up on ${convName(c)}: ${e.message}`);
  } finally {
    if (c.catching === gen) c.catching = 0;
    if (c.id === S.current) { renderMessages(); markRead(c); }
    renderSidebar();
  }
}

// ---------- sending ----------
function sendMessage(c, text) {
  c.newFrom = null; // answering means the new part was read
  c.jumpToNew = false;
  const p = { client_id: randomId(), text, ts: Date.now(), state: 'sending', error: null };
  c.pending.set(p.client_id, p);
  renderMessages({ toBottom: true });
  deliver(c, p);
}

async function deliver(c, p) {
  if (!S.online) { p.state = 'queued'; return; }
  p.state = 'sending';
  try {
    const ack = await S.live.request({ type: 'send', conv: c.id, text: p.text, client_id: p.client_id });
    p.state = 'acked';
    if (ack.seq != null && c.msgs.has(ack.seq)) c.pending.delete(p.client_id);
  } catch (e) {
    if (e.code === 'disconnected') { p.state = 'queued'; return; } // resent after the next hello
    p.state = 'failed';
    p.error = e.code === 'too_large' ? 'too long' : e.message;
  }
  if (c.id === S.current) renderMessages();
}

// ---------- frames from the server ----------
function onFrame(f) {
  switch (f.type) {
    case 'hello': return onHello(f);
    case 'message': return onMessage(f.message);
    case 'message_updated': {
      const c = S.convs.get(f.message.conv);
      if (!c) return;
      if (c.loaded || c.loading) merge(c, f.message);
      else c.last_seq = Math.max(c.last_seq, revOf(f.message));
      if (!c.catching) c.seen = Math.max(c.seen, revOf(f.message));
      if (c.id === S.current) { renderMessages(); markRead(c); }
      searchResultChanged(f.message);
      return;
    }
    case 'typing': {
      if (f.user === S.me?.id) return;
      if (!S.typing.has(f.conv)) S.typing.set(f.conv, new Map());
      S.typing.get(f.conv).set(f.user, Date.now() + TYPING_SHOW_MS);
      renderTyping();
      setTimeout(renderTyping, TYPING_SHOW_MS + 50);
      return;
    }
    case 'read': {
      const c = S.convs.get(f.conv);
      if (!c) return;
      c.read_seq = Math.max(c.read_seq, f.seq);
      recountUnread(c);
      renderSidebar();
      return;
    }
    case 'presence':
      S.presence.set(f.presence.user, f.presence);
      renderSidebar(); renderHeader(); renderMe();
      return;
    case 'conversation': {
      const c = addConv(f.conversation);
      if (S.wantOpen === c.id) { S.wantOpen = null; openConv(c.id); } else renderSidebar();
      if (c.id === S.current) renderHeader();
      return;
    }
    case 'conversation_left': {
      S.convs.delete(f.conv);
      // Open results stay open, without the ones this user may no longer read.
      if (S.search) { S.search.results = S.search.results.filter((m) => m.conv !== f.conv); renderSearch(); }
      if (S.current === f.conv) { S.current = null; openConv(defaultConv(), { keepSearch: true }); } else renderSidebar();
      return;
    }
    case 'member_joined':
    case 'member_left': {
      const c = S.convs.get(f.conv);
      if (!c) return;
      const set = new Set(c.members);
      if (f.type === 'member_joined') set.add(f.user); else set.delete(f.user);
      c.members = [...set];
      renderSidebar();
      if (c.id === S.current) renderHeader();
      return;
    }
    case 'topic': {
      const c = S.convs.get(f.conv);
      if (!c) return;
      c.topic = f.topic || '';
      if (c.id === S.current) renderHeader();
      return;
    }
    case 'user':
      S.users.set(f.user.id, f.user);
      renderSidebar();
      return;
    case 'error':
      toast(f.message || f.code);
      return;
    default:
      return; // pong, ack without a waiting request, and frames from newer servers
  }
}

function onHello(f) {
  const gen = ++S.gen;
  S.me = f.me;
  S.users = new Map(f.users.map((u) => [u.id, u]));
  S.presence = new Map(f.presence.map((p) => [p.user, p]));
  const ids = new Set();
  for (const c of f.conversations) { ids.add(c.id); addConv(c); }
  for (const id of [...S.convs.keys()]) if (!ids.has(id)) S.convs.delete(id);
  S.online = true;
  $('banner').hidden = true;
  if (S.idle) S.live.send({ type: 'presence', idle: true });
  $('btn-add-user').hidden = S.me.role !== 'admin';
  for (const c of S.convs.values()) {
    catchUp(c, gen);
    for (const p of c.pending.values()) if (p.state !== 'failed') deliver(c, p);
  }
  // Results of a search made before this (right after the page loaded) stay open, less
  // those of conversations this user is no longer in.
  if (S.search) { S.search.results = S.search.results.filter((m) => S.convs.has(m.conv)); renderSearch(); }
  if (!S.current || !S.convs.has(S.current)) {
    const saved = Number(localStorage.getItem('hallway.conv'));
    S.current = null;
    openConv(S.convs.has(saved) ? saved : defaultConv(), { keepSearch: true });
  } else {
    renderAll();
    markRead(S.convs.get(S.current));
  }
}

function onMessage(m) {
  const c = S.convs.get(m.conv);
  if (!c) return;
  let isNew;
  if (c.loaded || c.loading) isNew = merge(c, m);
  else { isNew = m.seq > c.last_seq; c.last_seq = Math.max(c.last_seq, revOf(m)); }
  if (!c.catching) c.seen = Math.max(c.seen, revOf(m));
  if (isNew && m.author !== S.me.id && m.seq > c.read_seq && !m.deleted) {
    c.unread++;
    if (m.mentions && m.mentions.includes(S.me.id)) c.mentions++;
  }
  S.typing.get(c.id)?.delete(m.author);
  if (c.id === S.current && isNew && m.author !== S.me.id && c.newFrom == null && !looking()) c.newFrom = Math.min(c.read_seq, m.seq - 1);
  if (isNew && m.author !== S.me.id && !m.deleted && (c.id !== S.current || !looking())
    && (c.kind === 'dm' || c.kind === 'group' || (m.mentions && m.mentions.includes(S.me.id)))) chime();
  if (c.id === S.current) {
    renderMessages({ toBottom: m.author === S.me.id });
    renderTyping();
    markRead(c);
  }
  renderSidebar();
}

function defaultConv() {
  const list = [...S.convs.values()];
  return (list.find((c) => c.kind === 'room' && c.name === 'general') || sortConvs(list)[0])?.id ?? null;
}

// ---------- sound: a short chime for a DM or a mention you are not looking at ----------
let audio = null; // made on the first click or keypress: browsers let pages play sound only after one
function unlockAudio() {
  if (audio) { if (audio.state === 'suspended') audio.resume().catch(() => {}); return; }
  if (typeof AudioContext !== 'function') return;
  try { audio = new AudioContext(); } catch { /* no sound then */ }
}

function chime() {
  if (!audio || presenceOf(S.me.id).state === 'dnd') return; // do-not-disturb silences it
  const now = Date.now();
  if (now - (chime.last || 0) < 2000) return;
  chime.last = now;
  try {
    const t = audio.currentTime;
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.frequency.setValueAtTime(880, t);
    o.frequency.setValueAtTime(660, t + 0.09);
    g.gain.setValueAtTime(0.0001, t);
    g.gain.exponentialRampToValueAtTime(0.12, t + 0.01);
    g.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
    o.connect(g).connect(audio.destination);
    o.start(t);
    o.stop(t + 0.32);
  } catch { /* sound is a nicety */ }
}

// ---------- rendering ----------
function renderAll() {
  renderSidebar(); renderHeader(); renderMessages({ toBottom: true }); renderTyping(); renderMe();
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
const byName = (a, b) => collator.compare(a, b);

function sortConvs(list) {
  return list.sort((a, b) => byName(convName(a), convName(b)));
}

function convItem(c) {
  const active = c.id === S.current;
  const o = others(c);
  let lead;
  if (c.kind === 'room') lead = h('span', { class: 'lead' }, icon('hash'));
  else if (c.kind === 'private') lead = h('span', { class: 'lead', title: 'Private room' }, icon('lock'));
  else if (c.kind === 'dm') lead = h('span', { class: 'lead' }, dot(o[0] ?? S.me.id));
  else lead = h('span', { class: 'lead group-count', text: String(c.members.length) });
  const badge = c.unread > 0
    ? h('span', { class: c.mentions > 0 || c.kind === 'dm' || c.kind === 'group' ? 'badge badge-mention' : 'badge', testid: 'unread-badge', text: String(c.unread) })
    : null;
  return h('li', null, h('button', {
    class: `conv-item${active ? ' active' : ''}${c.unread > 0 ? ' unread' : ''}${c.mentions > 0 ? ' has-mention' : ''}`,
    testid: 'conv-item',
    data: { convId: c.id, convName: c.kind === 'room' || c.kind === 'private' ? c.name : convName(c), kind: c.kind, unread: c.unread, mentions: c.mentions },
    title: c.topic || convName(c),
    onclick: () => openConv(c.id),
  }, lead, h('span', { class: 'label', text: convName(c) }), badge));
}

function renderSidebar() {
  if (!S.me) return;
  const convs = [...S.convs.values()];
  $('room-list').replaceChildren(...sortConvs(convs.filter((c) => c.kind === 'room' || c.kind === 'private')).map(convItem));
  const dms = sortConvs(convs.filter((c) => c.kind === 'dm' || c.kind === 'group')).map(convItem);
  $('dm-list').replaceChildren(...(dms.length ? dms : [h('li', { class: 'side-hint', text: 'Pick a person below to write to them.' })]));
  const away = (u) => (presenceOf(u.id).state === 'offline' ? 1 : 0);
  const people = [...S.users.values()].sort((a, b) => (a.id === S.me.id) - (b.id === S.me.id) || away(a) - away(b)
    || byName(a.display_name, b.display_name));
  $('people-list').replaceChildren(...people.map((u) => {
    const st = statusText(presenceOf(u.id));
    return h('li', null, h('button', {
      class: 'conv-item person', testid: 'person-item', data: { userName: u.name, userId: u.id },
      title: `${u.display_name} (@${u.name}) · ${STATE_LABEL[presenceOf(u.id).state] || 'Offline'}${st ? ' · ' + st : ''}`,
      onclick: () => openDm([u.id].filter((id) => id !== S.me.id)),
    }, h('span', { class: 'lead' }, dot(u.id)),
    h('span', { class: 'label' },
      h('span', { class: 'pname', text: u.id === S.me.id ? `${u.display_name} (you)` : u.display_name }),
      st ? h('span', { class: 'pstatus', testid: 'person-status', text: st }) : null)));
  }));
  const total = convs.reduce((n, c) => n + c.unread, 0);
  document.title = total > 0 ? `(${total}) Hallway` : 'Hallway';
  setFavicon(total);
}

function setFavicon(count) {
  if (setFavicon.last === count) return;
  setFavicon.last = count;
  const badge = count > 0 ? "<circle cx='25' cy='7' r='7' fill='%23e01e5a'/>" : '';
  const svg = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'><rect x='1' y='3' width='26' height='26' rx='7' fill='%234a154b'/>"
    + "<text x='14' y='23' font-family='sans-serif' font-weight='700' font-size='17' text-anchor='middle' fill='white'>H</text>" + badge + '</svg>';
  document.querySelector('link[rel=icon]').href = 'data:image/svg+xml,' + svg;
}

function renderMe() {
  if (!S.me) return;
  const p = presenceOf(S.me.id);
  $('me-avatar').replaceChildren(avatar(S.me.id, 'small'), dot(S.me.id));
  $('me-name').textContent = S.me.display_name;
  $('me-status').textContent = statusText(p) || (p.state === 'dnd' ? 'Do not disturb' : STATE_LABEL[p.state] || 'Online');
}

function renderHeader() {
  const c = S.convs.get(S.current);
  const title = $('conv-title');
  const topic = $('conv-topic');
  const rec = $('recorded');
  const actions = $('conv-actions');
  if (!c) {
    title.replaceChildren('No conversation');
    topic.replaceChildren(); rec.replaceChildren(); actions.replaceChildren();
    $('composer').disabled = true;
    return;
  }
  $('composer').disabled = false;
  const isRoom = c.kind === 'room' || c.kind === 'private';
  const o = others(c);
  title.replaceChildren(...kids(
    isRoom ? icon(c.kind === 'private' ? 'lock' : 'hash') : c.kind === 'dm' ? dot(o[0] ?? S.me.id) : null,
    h('span', { text: convName(c) })));
  rec.replaceChildren(icon(c.recorded ? 'db' : 'dbOff'), h('span', { class: 'rec-label', text: c.recorded ? 'Recorded' : 'Not recorded' }));
  rec.setAttribute('aria-label', c.recorded ? 'Recorded' : 'Not recorded');
  rec.dataset.recorded = String(c.recorded);
  rec.className = `recorded ${c.recorded ? 'on' : 'off'}`;
  rec.title = c.recorded
    ? 'Messages in this conversation are kept on the server, as the office policy says.'
    : 'Messages in this conversation are not saved anywhere: they reach the people online and are gone.';

  if (isRoom) {
    if (!topic.querySelector('input')) {
      topic.replaceChildren(h('button', {
        class: `topic-btn${c.topic ? '' : ' empty'}`, testid: 'topic-edit', title: 'Edit the topic',
        text: c.topic || 'Add a topic', onclick: () => editTopic(c),
      }));
    }
  } else if (c.kind === 'dm' && o.length === 1) {
    const p = presenceOf(o[0]);
    const st = statusText(p);
    topic.replaceChildren(h('span', { text: (STATE_LABEL[p.state] || 'Offline') + (st ? ` · ${st}` : '') }));
  } else {
    topic.replaceChildren(h('span', { text: c.members.length > 1 ? `${c.members.length} people` : 'Your notes' }));
  }

  const names = c.members.map(userName).sort((a, b) => a.localeCompare(b)).join(', ');
  actions.replaceChildren(...kids(
    h('span', { class: 'members', title: names, testid: 'member-count' }, icon('users'), String(c.members.length)),
    isRoom ? h('button', { class: 'btn small', testid: 'invite-button', title: 'Invite people', onclick: () => pickPeople('invite') },
      icon('userPlus'), h('span', { class: 'btn-label', text: 'Invite' })) : null,
    c.kind !== 'dm' ? h('button', { class: 'btn small', testid: 'leave-button', title: 'Leave this conversation', onclick: () => leaveConv(c) },
      icon('logout'), h('span', { class: 'btn-label', text: 'Leave' })) : null,
  ));
}

function editTopic(c) {
  const topic = $('conv-topic');
  const input = h('input', { class: 'topic-input', testid: 'topic-input', value: c.topic, maxLength: 250, placeholder: 'What is this room about?' });
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const v = input.value.trim();
    topic.replaceChildren();
    renderHeader();
    if (!save || v === c.topic) return;
    try { await S.live.request({ type: 'set_topic', conv: c.id, topic: v }); c.topic = v; renderHeader(); }
    catch (e) { toast(`Could not change the topic: ${e.message}`); }
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); finish(true); }
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
  topic.replaceChildren(input);
  input.focus();
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
const whenFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });

function dayLabel(ts) {
  const d = new Date(ts);
  const today = new Date();
  const yest = new Date(Date.now() - 864e5);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yest.toDateString()) return 'Yesterday';
  return dayFmt.format(d);
}

function userNames() {
  const c = userNames.cache;
  if (c && c.src === S.users && c.size === S.users.size) return c.set;
  userNames.cache = { src: S.users, size: S.users.size, set: new Set([...S.users.values()].map((u) => u.name)) };
  return userNames.cache.set;
}

// Message rows are cached per conversation and re-used, so that rendering after a new message
// only appends (scroll position, hover and an inline edit in progress survive).
const rowCache = new Map(); // key -> {sig, el}

function messageRow(c, m, compact) {
  const mine = m.author === S.me.id;
  const mentionsMe = !m.deleted && !!(m.mentions && m.mentions.includes(S.me.id));
  const editing = S.editing && S.editing.conv === c.id && S.editing.seq === m.seq;
  const sig = [m.rev, m.text, m.deleted, m.edited_ts, compact, editing, mentionsMe, userName(m.author), S.users.size].join('|');
  const key = `m${c.id}:${m.seq}`;
  const hit = rowCache.get(key);
  if (hit && hit.sig === sig) return hit.el;

  const body = h('div', { class: 'msg-body' });
  if (!compact) {
    body.append(h('div', { class: 'msg-meta' },
      h('span', { class: 'author', testid: 'message-author', text: userName(m.author) }),
      h('time', { class: 'time', text: timeFmt.format(m.ts), title: fullFmt.format(m.ts), dateTime: new Date(m.ts).toISOString() })));
  }
  if (m.deleted) {
    body.append(h('div', { class: 'msg-text deleted', testid: 'message-text', text: 'message deleted' }));
  } else if (editing) {
    const ta = h('textarea', { class: 'edit-box', testid: 'edit-input', value: m.text, rows: Math.min(8, m.text.split('\n').length + 1) });
    const save = async () => {
      const text = ta.value.replace(/\s+$/, '');
      S.editing = null;
      if (!text || text === m.text) { renderMessages(); return; }
      try { await S.live.request({ type: 'edit', conv: c.id, seq: m.seq, text }); }
      catch (e) { toast(`Could not edit: ${e.message}`); }
      renderMessages();
    };
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); save(); }
      if (e.key === 'Escape') { S.editing = null; renderMessages(); $('composer').focus(); }
    });
    body.append(ta, h('div', { class: 'edit-hint', text: 'Enter to save · Esc to cancel' }));
    queueMicrotask(() => { ta.focus(); ta.setSelectionRange(ta.value.length, ta.value.length); });
  } else {
    const t = h('div', { class: 'msg-text', testid: 'message-text' });
    t.append(renderText(m.text, { me: S.me.name, names: userNames() }));
    if (m.edited_ts != null) t.append(h('span', { class: 'edited', testid: 'message-edited', text: ' (edited)', title: fullFmt.format(m.edited_ts) }));
    body.append(t);
  }
  const tools = !m.deleted && !editing && (mine || S.me.role === 'admin')
    ? h('div', { class: 'msg-tools' },
      mine ? h('button', { class: 'icon-btn', testid: 'message-edit', title: 'Edit', 'aria-label': 'Edit message', onclick: () => { S.editing = { conv: c.id, seq: m.seq }; renderMessages(); } }, icon('edit')) : null,
      h('button', { class: 'icon-btn', testid: 'message-delete', title: 'Delete', 'aria-label': 'Delete message', onclick: () => deleteMessage(c, m) }, icon('trash')))
    : null;
  const el = h('div', {
    class: `msg${compact ? ' compact' : ''}${mentionsMe ? ' mentions-me' : ''}`,
    testid: 'message', data: { seq: m.seq, authorName: S.users.get(m.author)?.name || '', mentionsMe: String(mentionsMe) },
  }, h('div', { class: 'gutter' }, compact ? h('time', { class: 'time hover-time', text: timeFmt.format(m.ts) }) : avatar(m.author)), body, tools);
  rowCache.set(key, { sig, el });
  return el;
}

function pendingRow(c, p) {
  const sig = `${p.state}|${p.error}`;
  const key = `p${p.client_id}`;
  const hit = rowCache.get(key);
  if (hit && hit.sig === sig) return hit.el;
  const t = h('div', { class: 'msg-text', testid: 'message-text' });
  t.append(renderText(p.text, { me: S.me.name, names: userNames() }));
  const note = p.state === 'failed'
    ? h('div', { class: 'send-failed' }, `Not sent (${p.error}). `,
      h('button', { class: 'link', text: 'Retry', onclick: () => deliver(c, p) }), ' · ',
      h('button', { class: 'link', text: 'Discard', onclick: () => { c.pending.delete(p.client_id); renderMessages(); } }))
    : null;
  const el = h('div', { class: `msg pending${p.state === 'failed' ? ' failed' : ''}`, testid: 'message', data: { pending: 'true', authorName: S.me.name }, title: 'Sending…' },
    h('div', { class: 'gutter' }, avatar(S.me.id)),
    h('div', { class: 'msg-body' },
      h('div', { class: 'msg-meta' }, h('span', { class: 'author', testid: 'message-author', text: userName(S.me.id) }),
        h('span', { class: 'time', text: p.state === 'failed' ? '' : 'sending…' })),
      t, note));
  rowCache.set(key, { sig, el });
  return el;
}

function renderMessages(opts = {}) {
  const list = $('messages');
  const c = S.convs.get(S.current);
  if (!c) { list.replaceChildren(); return; }
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const anchor = list.scrollHeight - list.scrollTop;

  const rows = [];
  if (c.loaded && !c.more) {
    rows.push(cached(`start${c.id}`, convName(c), () => h('div', { class: 'conv-start' },
      h('div', { class: 'conv-start-title', text: c.kind === 'room' || c.kind === 'private' ? `This is the very beginning of #${c.name}` : `This is the beginning of your conversation with ${convName(c)}` }),
      c.topic ? h('div', { class: 'muted', text: c.topic }) : null)));
  } else if (c.loadingOlder || c.loading) {
    rows.push(cached('loading', '', () => h('div', { class: 'loading', text: 'Loading…' })));
  }
  const msgs = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
  // The "New" line goes before the first unread message, if the page reaches back to it.
  let newLine = c.newFrom != null && msgs.length > 0 && (msgs[0].seq <= c.newFrom || !c.more) ? null : false;
  let prev = null;
  for (const m of msgs) {
    const day = new Date(m.ts).toDateString();
    if (!prev || new Date(prev.ts).toDateString() !== day) {
      const label = dayLabel(m.ts);
      rows.push(cached(`day${c.id}:${day}`, label, () => h('div', { class: 'day' }, h('span', { text: label }))));
    }
    let isFirstNew = false;
    if (newLine === null && m.seq > c.newFrom && m.author !== S.me.id) {
      newLine = cached(`new${c.id}`, '', () => h('div', { class: 'new-line', testid: 'new-line', role: 'separator' }, h('span', { text: 'New' })));
      rows.push(newLine);
      isFirstNew = true;
    }
    const compact = !!prev && !isFirstNew && prev.author === m.author && !prev.deleted && !m.deleted
      && m.ts - prev.ts < 5 * 60 * 1000 && new Date(prev.ts).toDateString() === day;
    rows.push(messageRow(c, m, compact));
    prev = m;
  }
  for (const p of c.pending.values()) rows.push(pendingRow(c, p));

  // Minimal DOM changes: keep nodes that are already in place.
  let cur = list.firstChild;
  for (const el of rows) {
    if (el === cur) { cur = cur.nextSibling; continue; }
    list.insertBefore(el, cur);
  }
  while (cur) { const n = cur.nextSibling; cur.remove(); cur = n; }

  if (opts.toBottom && c.jumpToNew && c.loaded) {
    c.jumpToNew = false;
    list.scrollTop = list.scrollHeight;
    // Open at the "New" line (a little below the top) when everything new does not fit.
    if (newLine) list.scrollTop += newLine.getBoundingClientRect().top - list.getBoundingClientRect().top - 48;
  } else if (opts.toBottom || (atBottom && !opts.keepAnchor)) list.scrollTop = list.scrollHeight;
  else if (opts.keepAnchor) list.scrollTop = list.scrollHeight - anchor;
  // A short first page does not fill the view: keep loading until it scrolls or history ends.
  if (c.loaded && c.more && !c.loadingOlder && !(Date.now() - (c.olderFailedAt || 0) < 10000)
    && list.scrollHeight <= list.clientHeight + 20) loadOlder(c);
}

function cached(key, sig, make) {
  const hit = rowCache.get(key);
  if (hit && hit.sig === sig) return hit.el;
  const el = make();
  rowCache.set(key, { sig, el });
  return el;
}

function renderTyping() {
  const el = $('typing');
  const m = S.typing.get(S.current);
  const now = Date.now();
  const names = [];
  if (m) for (const [u, exp] of m) { if (exp > now) names.push(userName(u)); else m.delete(u); }
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = 'Several people are typing…';
  el.textContent = text;
}

// ---------- actions ----------
/** Shows a conversation; keepSearch leaves open search results in front of it. */
function openConv(id, { keepSearch = false } = {}) {
  if (id == null || !S.convs.has(id)) { S.current = null; renderAll(); return; }
  if (S.search && !keepSearch) closeSearch(false);
  const prev = S.current;
  if (prev != null && prev !== id) S.drafts.set(prev, $('composer').value);
  S.current = id;
  S.editing = null;
  try { localStorage.setItem('hallway.conv', String(id)); } catch { /* private mode */ }
  const c = S.convs.get(id);
  if (prev !== id) {
    // Where the unread part starts: a "New" line there, and the view opens at it.
    c.newFrom = c.unread > 0 ? c.read_seq : null;
    c.jumpToNew = c.newFrom != null;
    rowCache.clear(); // rows are cheap to rebuild; keep memory to one conversation
    $('messages').replaceChildren();
    $('conv-topic').replaceChildren();
    $('composer').value = S.drafts.get(id) || '';
    autosize();
  }
  document.body.classList.remove('nav-open');
  renderAll();
  if (!c.loaded) loadNewest(c);
  else markRead(c);
  // Not away from a box the person is typing in (the search box, as the first hello opens a
  // conversation right after the page loads).
  const typingElsewhere = document.activeElement?.matches?.('input, textarea, select, [contenteditable]') && document.activeElement !== $('composer');
  if (!narrow() && !typingElsewhere) $('composer').focus();
}

async function openDm(userIds) {
  try {
    const ack = await S.live.request({ type: 'open_dm', users: userIds });
    if (S.convs.has(ack.conv)) openConv(ack.conv); else S.wantOpen = ack.conv;
    return true;
  } catch (e) {
    toast(`Could not open the conversation: ${e.message}`);
    return false;
  }
}

async function leaveConv(c) {
  if (!confirm(`Leave ${c.kind === 'group' ? 'this group conversation' : '#' + c.name}?`)) return;
  try { await S.live.request({ type: 'leave', conv: c.id }); }
  catch (e) { toast(`Could not leave: ${e.message}`); }
}

async function deleteMessage(c, m) {
  if (!confirm('Delete this message? This cannot be undone.')) return;
  try { await S.live.request({ type: 'delete', conv: c.id, seq: m.seq }); }
  catch (e) { toast(`Could not delete: ${e.message}`); }
}

function autosize() {
  const ta = $('composer');
  ta.style.height = 'auto';
  ta.style.height = Math.min(ta.scrollHeight, 200) + 'px';
}

function submitComposer() {
  const c = S.convs.get(S.current);
  const ta = $('composer');
  const text = ta.value.replace(/\s+$/, '');
  if (!c || !text.trim()) return;
  if (text.length > 16000) { toast('That message is too long (16,000 characters at most).'); return; }
  ta.value = '';
  S.drafts.delete(c.id);
  S.lastTypingSent = 0;
  autosize();
  sendMessage(c, text);
}

function lastOwnMessage(c) {
  let best = null;
  for (const m of c.msgs.values()) if (m.author === S.me.id && !m.deleted && (!best || m.seq > best.seq)) best = m;
  return best;
}

// ---------- search ----------
// The server's words: runs of letters and digits (at least 2), longer ones by their first
// 64, compared lowercased. Chinese and Japanese characters (the server's is_cjk, same ranges)
// are searched by pairs of neighbours; a searched run of them is highlighted where it occurs.
const CJK = '\\u3005-\\u3007\\u3021-\\u3029\\u3031-\\u3035\\u3038-\\u303C\\u3040-\\u30FF\\u31F0-\\u31FF\\u3400-\\u4DBF'
  + '\\u4E00-\\u9FFF\\uF900-\\uFAFF\\uFF66-\\uFF9F\\u{20000}-\\u{2FA1F}\\u{30000}-\\u{323AF}';
const WORD = new RegExp(`(?:(?=[\\p{Alphabetic}\\p{N}])[${CJK}])+|(?:(?![${CJK}])[\\p{Alphabetic}\\p{N}])+`, 'gu');
const CJK_START = new RegExp(`^[${CJK}]`, 'u');
const isCjk = (w) => CJK_START.test(w);
/** The pairs of neighbouring characters the server searches a CJK run of two or more by. */
const pairs = (run) => { const c = [...run]; return c.slice(1).map((x, i) => c[i] + x); };
const wordKey = (w) => [...w].slice(0, 64).join('').toLowerCase();

function searchWords(q) {
  return new Set((q.match(WORD) || []).filter((w) => isCjk(w) || [...w].length >= 2).map((w) => (isCjk(w) ? w : wordKey(w))));
}

/** The conversation an `in:` token names: a room (#general, general) or a DM (@bob). */
function convNamed(val) {
  const name = val.replace(/^[#@]/, '').toLowerCase();
  const convs = [...S.convs.values()];
  if (!val.startsWith('@')) return convs.find((c) => (c.kind === 'room' || c.kind === 'private') && c.name === name);
  const u = [...S.users.values()].find((x) => x.name === name);
  return u && convs.find((c) => c.kind === 'dm' && (others(c)[0] ?? S.me.id) === u.id);
}

/** "toner from:@bob in:#general" → {q: 'toner', from: 'bob', conv: 5}, or {error}. */
function parseSearch(raw) {
  const p = { from: null, conv: null };
  let error = null;
  p.q = raw.replace(/(^|\s)(from|in):(\S*)/gi, (_, sp, key, val) => {
    const name = val.replace(/^[#@]/, '').toLowerCase();
    const from = key.toLowerCase() === 'from';
    if (!name || /[#@]/.test(name)) {
      error ||= from ? 'Name a person after from:, as in from:@bob.' : 'Name a conversation after in:, as in in:#general or in:@bob.';
      return sp;
    }
    if (from) { p.from = name; return sp; }
    const c = convNamed(val);
    if (c) p.conv = c.id;
    else error ||= val.startsWith('@') ? `You have no direct conversation with @${name}.` : `You are not in a room named #${name}.`;
    return sp;
  }).replace(/\s+/g, ' ').trim();
  return error ? { error } : p;
}

/** Wraps the searched words in the text nodes under root in <mark>: text nodes and marks only. */
function highlight(root, words) {
  if (!words.size) return root;
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walk.nextNode()) nodes.push(walk.currentNode);
  for (const node of nodes) {
    const parts = [];
    let last = 0;
    for (const m of node.data.matchAll(WORD)) {
      // [start, end) of each searched word in this run: the run itself, or searched CJK runs in it.
      const found = [];
      if (!isCjk(m[0])) {
        if (words.has(wordKey(m[0]))) found.push([0, m[0].length]);
      } else {
        // As the server matches: each searched pair wherever it occurs, a lone character only
        // where it stands alone; overlapping pairs make one mark.
        for (const w of words) {
          if (!isCjk(w)) continue;
          if ([...w].length === 1) { if (m[0] === w) found.push([0, w.length]); continue; }
          for (const p of pairs(w)) {
            for (let at = m[0].indexOf(p); at >= 0; at = m[0].indexOf(p, at + 1)) found.push([at, at + p.length]);
          }
        }
        found.sort((a, b) => a[0] - b[0]);
      }
      const merged = [];
      for (const [from, to] of found) {
        const prev = merged[merged.length - 1];
        if (prev && from <= prev[1]) prev[1] = Math.max(prev[1], to); else merged.push([from, to]);
      }
      for (const [from, to] of merged) {
        parts.push(node.data.slice(last, m.index + from), h('mark', { text: node.data.slice(m.index + from, m.index + to) }));
        last = m.index + to;
      }
    }
    if (parts.length) node.replaceWith(...parts, node.data.slice(last)); // strings become text nodes
  }
  return root;
}

function focusSearch() {
  if (narrow()) document.body.classList.add('nav-open');
  $('search-input').focus();
  $('search-input').select();
}

/** Runs the search in the box (more: the next page of the open one) and shows the results. */
async function runSearch(more = false) {
  let s = S.search;
  if (!more) {
    const raw = $('search-input').value.trim();
    if (!raw) return;
    const p = parseSearch(raw);
    s = S.search = { raw, p, words: searchWords(p.q || ''), results: [], more: false, busy: !p.error, error: p.error };
    $('search-view').hidden = false;
    for (const el of document.querySelectorAll('.pane > :not(#search-view)')) el.inert = true;
    document.body.classList.remove('nav-open');
    if (narrow()) $('search-input').blur(); // the results, not the keyboard
    renderSearch();
    if (p.error) return;
  } else {
    if (!s || s.busy) return;
    s.busy = true;
    s.error = null; // a failed page before this one is past
    renderSearch();
  }
  try {
    // The next page starts right after the last result shown, however matches came and went.
    const r = await api.search({ q: s.p.q, from: s.p.from, conv: s.p.conv, before: s.next });
    s.results.push(...r.results);
    s.more = !!r.more;
    s.next = r.next;
  } catch (e) {
    if (e.status === 401) return signedOut();
    s.error = errText(e);
  }
  s.busy = false;
  if (S.search === s) renderSearch();
}

/** Open results follow an edit (new text) or delete (gone) of a message they show. */
function searchResultChanged(m) {
  const s = S.search;
  const i = s ? s.results.findIndex((r) => r.conv === m.conv && r.seq === m.seq) : -1;
  if (i < 0) return;
  if (m.deleted) s.results.splice(i, 1);
  else s.results[i] = m;
  renderSearch();
}

function closeSearch(refocus = true) {
  S.search = null;
  $('search-view').hidden = true;
  for (const el of document.querySelectorAll('.pane > :not(#search-view)')) el.inert = false;
  if (refocus && !narrow()) $('composer').focus();
  markRead(S.convs.get(S.current)); // what came in meanwhile is seen now
}

function renderSearch() {
  const s = S.search;
  if (!s) return;
  $('search-title').replaceChildren(h('span', { text: `Results for “${s.raw}”` }));
  const n = s.results.length;
  const status = $('search-status');
  status.textContent = s.error || (n ? `${n}${s.more ? '+' : ''} message${n === 1 && !s.more ? '' : 's'}`
    : s.busy ? 'Searching…' : 'No messages found.');
  status.classList.toggle('error', !!s.error);
  $('search-list').replaceChildren(...s.results.map((m) => resultItem(m, s.words)));
  const btn = $('search-more');
  btn.hidden = !s.more;
  btn.setAttribute('aria-disabled', String(s.busy)); // not `disabled`: keyboard focus stays on it
  btn.textContent = s.busy ? 'Loading…' : 'More results';
}

function resultItem(m, words) {
  const c = S.convs.get(m.conv);
  const isRoom = c && (c.kind === 'room' || c.kind === 'private');
  const where = c ? convName(c) : 'a conversation you left';
  const text = h('div', { class: 'msg-text', testid: 'search-result-text' },
    highlight(renderText(m.text, { me: S.me.name, names: userNames() }), words));
  if (m.edited_ts != null) text.append(h('span', { class: 'edited', text: ' (edited)' }));
  return h('li', {
    class: 'result', testid: 'search-result', data: { conv: m.conv, seq: m.seq, convName: where, authorName: S.users.get(m.author)?.name || '' },
    onclick: (e) => { if (!e.target.closest('a') && getSelection().isCollapsed) jumpTo(m.conv, m.seq); },
  },
  h('button', { type: 'button', class: 'link result-where', title: 'Show it in the conversation', 'aria-label': `In ${isRoom ? '#' : ''}${where}: show the message in the conversation` },
    isRoom ? icon(c.kind === 'private' ? 'lock' : 'hash') : null, h('span', { text: where })),
  h('div', { class: 'result-row' },
    h('div', { class: 'gutter' }, avatar(m.author)),
    h('div', { class: 'msg-body' },
      h('div', { class: 'msg-meta' },
        h('span', { class: 'author', testid: 'search-result-author', text: userName(m.author) }),
        h('time', { class: 'time', text: `${dayLabel(m.ts)}, ${timeFmt.format(m.ts)}`, title: fullFmt.format(m.ts), dateTime: new Date(m.ts).toISOString() })),
      text)));
}

/** Opens the conversation at message seq, paging back through history (20 pages at most) to reach it. */
async function jumpTo(convId, seq) {
  const c = S.convs.get(convId);
  if (!c) { toast('You are no longer in that conversation.'); return; }
  openConv(convId);
  await loadNewest(c);
  // Only while the message is older than the oldest loaded one: paging back cannot reach a newer one.
  for (let i = 0; i < 20 && c.loaded && c.more && c.oldest > seq && S.current === convId; i++) {
    const n = c.msgs.size;
    await loadOlder(c, Math.min(200, Math.max(PAGE, c.oldest - seq + 5)));
    if (c.msgs.size === n) return; // the page did not load; loadOlder said why
  }
  if (S.current !== convId || !c.loaded) return;
  const row = $('messages').querySelector(`[data-testid="message"][data-seq="${seq}"]`);
  if (!row) { toast('That message is further back than Hallway loaded: scroll up to find it.', 6000); return; }
  row.scrollIntoView({ block: 'center' });
  row.classList.remove('flash');
  void row.offsetWidth; // restart the animation
  row.classList.add('flash');
  setTimeout(() => row.classList.remove('flash'), 3000);
}

// ---------- dialogs ----------
function formError(form, text) { form.querySelector('.form-error').textContent = text || ''; }

const ERR = {
  name_taken: 'That name is already taken.',
  forbidden: 'Your role does not allow this.',
  bad_request: null, // the server's message says what is wrong
  network: 'Cannot reach the server. Check the connection and try again.',
  disconnected: 'Not connected to the server right now. Try again in a moment.',
};
const errText = (e) => ERR[e.code] || e.message;

function openDialog(id) {
  const d = $(id);
  const f = d.querySelector('form');
  formError(f, '');
  d.showModal();
  return { d, f };
}

function pickPeople(mode) {
  const { d, f } = openDialog('dlg-people');
  const c = S.convs.get(S.current);
  const exclude = new Set(mode === 'invite' && c ? c.members : [S.me.id]);
  $('people-title').textContent = mode === 'invite' ? `Invite people to #${c.name}` : 'New message';
  $('people-submit').textContent = mode === 'invite' ? 'Invite' : 'Start conversation';
  const filter = $('people-filter');
  filter.value = '';
  const chosen = new Set();
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const people = [...S.users.values()].filter((u) => !exclude.has(u.id))
      .filter((u) => !q || u.name.includes(q) || u.display_name.toLowerCase().includes(q))
      .sort((a, b) => byName(a.display_name, b.display_name));
    $('pick-list').replaceChildren(...(people.length ? people.map((u) => h('li', null, h('label', { class: 'pick', testid: 'pick-person', data: { userName: u.name } },
      h('input', { type: 'checkbox', checked: chosen.has(u.id), onchange: (e) => { if (e.target.checked) chosen.add(u.id); else chosen.delete(u.id); } }),
      dot(u.id), h('span', { text: u.display_name }), h('span', { class: 'muted', text: `@${u.name}` }))))
      : [h('li', { class: 'muted', text: 'Nobody to add.' })]));
  };
  filter.oninput = draw;
  draw();
  f.onsubmit = async (e) => {
    e.preventDefault();
    if (!chosen.size) { formError(f, 'Pick at least one person.'); return; }
    if (mode === 'invite') {
      try {
        for (const id of chosen) await S.live.request({ type: 'invite', conv: c.id, user: id });
        d.close();
        toast(`Invited ${[...chosen].map(userName).join(', ')}.`);
      } catch (err) { formError(f, errText(err)); }
    } else if (await openDm([...chosen])) d.close();
  };
  filter.focus();
}

async function showDirectory() {
  const { f } = openDialog('dlg-directory');
  const list = $('dir-list');
  list.replaceChildren(h('li', { class: 'muted', text: 'Loading…' }));
  try {
    const { rooms } = await api.rooms();
    list.replaceChildren(...(rooms.length ? rooms.map((r) => h('li', { class: 'dir-item', testid: 'directory-room', data: { roomName: r.name } },
      h('div', { class: 'dir-main' },
        h('div', { class: 'dir-name' }, icon('hash'), h('span', { text: r.name })),
        h('div', { class: 'muted', text: `${r.member_count} member${r.member_count === 1 ? '' : 's'}${r.topic ? ' · ' + r.topic : ''}` })),
      h('button', {
        type: 'button', class: r.joined ? 'btn small' : 'btn small primary', testid: r.joined ? 'directory-open' : 'directory-join',
        text: r.joined ? 'Open' : 'Join',
        onclick: async () => {
          if (!r.joined) {
            try { await S.live.request({ type: 'join', conv: r.id }); } catch (e) { formError(f, errText(e)); return; }
          }
          $('dlg-directory').close();
          if (S.convs.has(r.id)) openConv(r.id); else S.wantOpen = r.id;
        },
      })))
      : [h('li', { class: 'muted', text: 'No public rooms yet.' })]));
  } catch (e) {
    list.replaceChildren();
    formError(f, errText(e));
  }
}

function showCreateRoom() {
  const { d, f } = openDialog('dlg-create-room');
  f.reset();
  f.onsubmit = async (e) => {
    e.preventDefault();
    const name = f.elements.name.value.trim().toLowerCase();
    if (!/^[a-z0-9][a-z0-9._-]{0,31}$/.test(name)) { formError(f, 'Room names are 1-32 characters: a-z, 0-9, dot, dash or underscore.'); return; }
    try {
      const ack = await S.live.request({ type: 'create_room', name, topic: f.elements.topic.value.trim(), private: f.elements.private.checked, members: [] });
      d.close();
      if (S.convs.has(ack.conv)) openConv(ack.conv); else S.wantOpen = ack.conv;
    } catch (err) { formError(f, err.code === 'name_taken' ? 'A room with that name already exists.' : errText(err)); }
  };
  f.elements.name.focus();
}

function showStatus() {
  const { d, f } = openDialog('dlg-status');
  const p = presenceOf(S.me.id);
  f.elements.status.value = statusText(p);
  f.elements.dnd.checked = p.state === 'dnd';
  // A status that clears itself keeps its time when saved again unchanged.
  const sel = f.elements.expires;
  sel.querySelector('option[value=keep]')?.remove();
  const current = p.status_expires != null && p.status_expires > Date.now() ? p.status_expires : null;
  if (current) {
    const at = new Date(current).toDateString() === new Date().toDateString() ? timeFmt.format(current) : whenFmt.format(current);
    sel.prepend(h('option', { value: 'keep', text: `Keep: clears at ${at}` }));
  }
  sel.value = current ? 'keep' : '';
  const save = async (status, expires) => {
    const dnd = f.elements.dnd.checked;
    let until = null;
    // The expiry clears the whole status, do-not-disturb included ("Do not disturb for 1 hour").
    if (!status && !dnd) until = null;
    else if (expires === 'keep') until = current;
    else if (expires === 'today') { const t = new Date(); t.setHours(23, 59, 59, 0); until = t.getTime(); }
    else if (expires) until = Date.now() + Number(expires) * 60000;
    try {
      await S.live.request({ type: 'set_status', dnd, status, status_expires: until });
      d.close();
    } catch (err) { formError(f, errText(err)); }
  };
  f.onsubmit = (e) => { e.preventDefault(); save(f.elements.status.value.trim(), f.elements.expires.value); };
  $('status-clear').onclick = () => save('', '');
  f.elements.status.focus();
}

function showAddUser() {
  const { d, f } = openDialog('dlg-add-user');
  f.reset();
  f.onsubmit = async (e) => {
    e.preventDefault();
    const u = { name: f.elements.name.value.trim().toLowerCase(), display_name: f.elements.display_name.value.trim(), password: f.elements.password.value, role: f.elements.role.value };
    if (!/^[a-z0-9][a-z0-9._-]{0,31}$/.test(u.name)) { formError(f, 'Sign-in names are 1-32 characters: a-z, 0-9, dot, dash or underscore.'); return; }
    if (!u.display_name) { formError(f, 'Enter a display name.'); return; }
    if (u.password.length < 8) { formError(f, 'The password needs at least 8 characters.'); return; }
    try {
      const { user } = await api.createUser(u);
      S.users.set(user.id, user);
      renderSidebar();
      d.close();
      toast(`Added ${user.display_name}. They sign in as "${user.name}".`);
    } catch (err) { formError(f, err.code === 'name_taken' ? 'An account with that sign-in name exists.' : errText(err)); }
  };
  f.elements.name.focus();
}

// ---------- sign-in, setup, session ----------
function showAuth(which, note) {
  $('chat').hidden = true;
  $('auth').hidden = false;
  $('setup-form').hidden = which !== 'setup';
  $('signin-form').hidden = which !== 'signin';
  const f = $(which === 'setup' ? 'setup-form' : 'signin-form');
  formError(f, '');
  if (which === 'signin') { $('signin-note').textContent = note || ''; f.elements.password.value = ''; }
  f.querySelector('input').focus();
}

let bannerTimer = null;

function startChat(user) {
  S.me = user;
  $('auth').hidden = true;
  $('chat').hidden = false;
  $('btn-add-user').hidden = user.role !== 'admin';
  renderMe();
  S.live = new api.Live({
    onFrame,
    onStatus: (st) => {
      const b = $('banner');
      clearTimeout(bannerTimer);
      if (st === 'open') { b.hidden = true; return; }
      S.online = false;
      b.textContent = st === 'connecting' ? 'Connecting…' : 'Reconnecting…';
      // A first connection normally takes milliseconds: show the banner only if it does not.
      if (st === 'connecting') bannerTimer = setTimeout(() => { b.hidden = S.online; }, 1000);
      else b.hidden = false;
    },
    onSignedOut: () => signedOut('You were signed out. Sign in again to continue.'),
  });
  S.live.start();
}

function resetState() {
  api.endSession();
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  if (S.live) S.live.stop();
  clearTimeout(bannerTimer);
  $('banner').hidden = true;
  closeSearch(false);
  $('search-input').value = '';
  Object.assign(S, { me: null, live: null, online: false, current: null, editing: null, wantOpen: null });
  S.users.clear(); S.presence.clear(); S.convs.clear(); S.typing.clear(); S.drafts.clear();
  rowCache.clear();
  $('messages').replaceChildren();
  document.title = 'Hallway';
  setFavicon(0);
}

function signedOut(note) {
  resetState();
  showAuth('signin', note);
}

async function showSetup() {
  let token = location.hash.slice(1);
  try { token = decodeURIComponent(token); } catch { /* a mangled link: the server says bad_token */ }
  const f = $('setup-form');
  try {
    const { needed } = await api.setupNeeded();
    if (!needed) {
      history.replaceState(null, '', '/');
      return enter('Hallway is already set up. Sign in with your account.');
    }
  } catch { /* try the form anyway */ }
  showAuth('setup');
  if (!token) formError(f, 'This setup link is incomplete: open the full link the server printed.');
  f.onsubmit = async (e) => {
    e.preventDefault();
    const name = f.elements.name.value.trim().toLowerCase();
    const display = f.elements.display_name.value.trim();
    if (!/^[a-z0-9][a-z0-9._-]{0,31}$/.test(name)) { formError(f, 'Sign-in names are 1-32 characters: a-z, 0-9, dot, dash or underscore.'); return; }
    if (!display) { formError(f, 'Enter a display name.'); return; }
    if (f.elements.password.value.length < 8) { formError(f, 'The password needs at least 8 characters.'); return; }
    const btn = f.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const { user } = await api.setup(token, name, display, f.elements.password.value);
      history.replaceState(null, '', '/');
      startChat(user);
    } catch (err) {
      const msg = {
        bad_token: 'This setup link is not valid. Open the exact link the server printed.',
        setup_done: 'Setup was already done. Sign in with your account.',
      }[err.code] || errText(err);
      if (err.code === 'setup_done') { history.replaceState(null, '', '/'); showAuth('signin', msg); } else formError(f, msg);
    } finally {
      btn.disabled = false;
    }
  };
}

function bindSignIn() {
  const f = $('signin-form');
  let lockTimer = null;
  f.onsubmit = async (e) => {
    e.preventDefault();
    const name = f.elements.name.value.trim().toLowerCase();
    if (!name || !f.elements.password.value) { formError(f, 'Enter your name and password.'); return; }
    const btn = f.querySelector('button[type=submit]');
    btn.disabled = true;
    formError(f, '');
    try {
      const { user } = await api.login(name, f.elements.password.value);
      f.elements.password.value = '';
      startChat(user);
      btn.disabled = false;
    } catch (err) {
      btn.disabled = false;
      if (err.code === 'bad_credentials') formError(f, 'Wrong name or password.');
      else if (err.code === 'too_many_attempts') {
        let left = Math.ceil(Number(err.retryAfter) || 1);
        const tick = () => {
          formError(f, `Too many failed attempts. Try again in ${left} second${left === 1 ? '' : 's'}.`);
          btn.disabled = left > 0;
          if (left-- <= 0) { clearInterval(lockTimer); formError(f, 'You can try again now.'); }
        };
        clearInterval(lockTimer);
        tick();
        lockTimer = setInterval(tick, 1000);
      } else formError(f, errText(err));
    }
  };
}

// ---------- static bindings ----------
function bind() {
  for (const b of document.querySelectorAll('[data-icon]')) b.append(icon(b.dataset.icon));
  for (const b of document.querySelectorAll('dialog [data-close]')) b.addEventListener('click', () => b.closest('dialog').close());
  bindSignIn();

  const ta = $('composer');
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitComposer(); return; }
    if (e.key === 'ArrowUp' && !ta.value) {
      const c = S.convs.get(S.current);
      const m = c && lastOwnMessage(c);
      if (m) { e.preventDefault(); S.editing = { conv: c.id, seq: m.seq }; renderMessages(); }
    }
  });
  ta.addEventListener('input', () => {
    autosize();
    const now = Date.now();
    if (ta.value.trim() && S.online && S.current != null && now - S.lastTypingSent >= TYPING_SEND_MS) {
      S.lastTypingSent = now;
      S.live.send({ type: 'typing', conv: S.current });
    }
  });
  $('btn-send').addEventListener('click', () => { submitComposer(); ta.focus(); });

  $('messages').addEventListener('scroll', () => {
    const c = S.convs.get(S.current);
    if (c && $('messages').scrollTop < 80) loadOlder(c);
  }, { passive: true });

  $('btn-signout').addEventListener('click', async () => {
    // The server closes this tab's socket as it ends the session: that must not sign out first.
    if (S.live) S.live.stop();
    try { localStorage.removeItem('hallway.conv'); } catch { /* private mode */ }
    try { await api.logout(); } catch { /* signed out locally all the same */ }
    signedOut('You signed out.');
  });
  $('btn-add-user').addEventListener('click', showAddUser);
  $('btn-create-room').addEventListener('click', showCreateRoom);
  $('btn-directory').addEventListener('click', showDirectory);
  $('btn-new-dm').addEventListener('click', () => pickPeople('dm'));
  $('btn-status').addEventListener('click', showStatus);
  for (const b of document.querySelectorAll('.menu-toggle')) b.addEventListener('click', () => document.body.classList.toggle('nav-open'));
  $('search-form').addEventListener('submit', (e) => { e.preventDefault(); runSearch(); });
  $('search-more').addEventListener('click', () => runSearch(true));
  $('btn-search-close').addEventListener('click', () => closeSearch());
  document.addEventListener('keydown', (e) => {
    if ($('chat').hidden || e.target.closest?.('dialog')) return;
    const typing = e.target.matches?.('input, textarea, select, [contenteditable]');
    if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && (e.key === 'k' || e.key === 'K')) { e.preventDefault(); focusSearch(); }
    else if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); focusSearch(); }
    else if (e.key === 'Escape' && S.search) { e.preventDefault(); closeSearch(); }
  });
  $('scrim').addEventListener('click', () => document.body.classList.remove('nav-open'));

  // Idle detection: 5 minutes without input, or hidden for 5 minutes.
  const activity = () => {
    S.lastInput = Date.now();
    if (S.idle) { S.idle = false; if (S.online) S.live.send({ type: 'presence', idle: false }); }
  };
  for (const ev of ['mousemove', 'mousedown', 'keydown', 'touchstart', 'wheel']) window.addEventListener(ev, activity, { passive: true, capture: true });
  for (const ev of ['pointerdown', 'keydown']) window.addEventListener(ev, unlockAudio, { passive: true, capture: true });
  window.addEventListener('focus', () => { activity(); markRead(S.convs.get(S.current)); });
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) S.hiddenSince = Date.now();
    else { S.hiddenSince = null; activity(); markRead(S.convs.get(S.current)); }
  });
  setInterval(() => {
    const now = Date.now();
    if (!S.idle && (now - S.lastInput >= IDLE_MS || (S.hiddenSince != null && now - S.hiddenSince >= IDLE_MS))) {
      S.idle = true;
      if (S.online) S.live.send({ type: 'presence', idle: true });
    }
    if (S.me) { renderSidebar(); renderMe(); } // statuses that expired
  }, 30000);
}

/** Opens the chat when the session is valid, else the sign-in form (with an optional note). */
async function enter(note = '') {
  try {
    const { user } = await api.me();
    startChat(user);
  } catch (e) {
    showAuth('signin', e.status === 401 ? note : 'Cannot reach the server right now.');
  }
}

function boot() {
  bind();
  if (location.pathname === '/setup') showSetup(); else enter();
}

boot();
