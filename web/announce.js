// announce.js: announcements rooms (docs/protocol.md, "Announcements"). Only admins post;
// everyone else gets "Got it" under each message, and the author (and admins) see
// "3 of 12 got it" with who has and who has not on a click. The counts come from the server
// (`acknowledgements` when the room is first drawn on a connection, then `acknowledged` live).
// Admins switch a room to announcements and back from the header (`set_announcements`); every
// member's tabs follow the `conversation` frame the server then sends them.
import { $, errText, formError, h, toast } from './dom.js';
import { chat, conn, userName } from './state.js';
import { queueMessages } from './views/messages.js';

// `${conv}:${seq}` -> { count, of, mine, acked: [{user, ts}] | null, pending: [user] | null }
const acks = new Map();
const asked = new Map(); // conv -> the connection (conn.gen) its acknowledgements were asked on
const open = new Set(); // `${conv}:${seq}` whose lists are unfolded

const key = (conv, seq) => `${conv}:${seq}`;
const isAdmin = () => chat.me?.role === 'admin';
const isAnnouncement = (c, m) => !!c.announcements && !m.system && !m.deleted;

/** The server's `acknowledged` and `acknowledgements` frames; true if it was one. */
export function onAckFrame(f) {
  if (f.type === 'acknowledgements') {
    for (const a of f.announcements) acks.set(key(f.conv, a.seq), { ...a, acked: a.acked || null, pending: a.pending || null });
  } else if (f.type === 'acknowledged') {
    const k = key(f.conv, f.seq);
    const a = acks.get(k) || { count: 0, of: f.of, mine: false, acked: null, pending: null };
    Object.assign(a, { count: f.count, of: f.of });
    if (f.user === chat.me?.id) a.mine = true;
    if (a.acked && !a.acked.some((x) => x.user === f.user)) a.acked.push({ user: f.user, ts: f.ts });
    if (a.pending) a.pending = a.pending.filter((u) => u !== f.user);
    acks.set(k, a);
  } else return false;
  queueMessages();
  return true;
}

/** Asks once per connection for what the room's announcements have had so far. */
function ensureLoaded(c) {
  if (asked.get(c.id) === conn.gen || !conn.online) return;
  asked.set(c.id, conn.gen);
  conn.live.request({ type: 'acknowledgements', conv: c.id }).catch(() => asked.delete(c.id));
}

function stateOf(c, m) {
  return acks.get(key(c.id, m.seq)) || { count: 0, of: Math.max(0, c.members.filter((u) => u !== m.author).length), mine: false, acked: null, pending: null };
}

/** What the row's cache signature must include, so that a new acknowledgement redraws it. */
export function ackSig(c, m) {
  if (!isAnnouncement(c, m)) return '';
  const a = stateOf(c, m);
  return [a.count, a.of, a.mine, open.has(key(c.id, m.seq)), a.acked ? a.acked.length : -1, c.members.length].join(',');
}

/** The line under an announcement: "Got it" (or "Acknowledged"), and for its author and admins the count and lists. */
export function ackBar(c, m) {
  if (!isAnnouncement(c, m)) return null;
  ensureLoaded(c);
  const a = stateOf(c, m);
  const mine = m.author === chat.me.id;
  const bar = h('div', { class: 'ack-bar', testid: 'ack-bar' });
  if (!mine) {
    bar.append(a.mine
      ? h('span', { class: 'ack-done', testid: 'ack-done', text: '✓ Acknowledged' })
      : h('button', { type: 'button', class: 'btn small ack-btn', testid: 'ack-button', text: 'Got it', onclick: () => acknowledge(c, m) }));
  }
  if (mine || isAdmin()) {
    const k = key(c.id, m.seq);
    bar.append(h('button', {
      type: 'button', class: 'link ack-count', testid: 'ack-count', 'aria-expanded': String(open.has(k)),
      text: `${a.count} of ${a.of} got it`, onclick: () => toggleLists(c, m),
    }));
    if (open.has(k)) bar.append(listsView(a));
  }
  return bar;
}

function listsView(a) {
  if (!a.acked || !a.pending) return h('div', { class: 'ack-lists muted', testid: 'ack-lists', text: 'Loading…' });
  const names = (ids) => ids.map(userName).sort((x, y) => x.localeCompare(y));
  const has = names(a.acked.map((x) => x.user));
  const not = names(a.pending);
  return h('div', { class: 'ack-lists', testid: 'ack-lists' },
    h('div', { testid: 'ack-has' }, h('strong', { text: 'Got it: ' }), has.length ? has.join(', ') : 'nobody yet'),
    h('div', { testid: 'ack-not' }, h('strong', { text: 'Not yet: ' }), not.length ? not.join(', ') : 'everyone got it'));
}

async function acknowledge(c, m) {
  try {
    await conn.live.request({ type: 'acknowledge', conv: c.id, seq: m.seq });
    const a = stateOf(c, m);
    a.mine = true;
    acks.set(key(c.id, m.seq), a);
    queueMessages();
  } catch (e) { toast(`Could not acknowledge: ${e.message}`); }
}

async function toggleLists(c, m) {
  const k = key(c.id, m.seq);
  if (open.has(k)) { open.delete(k); queueMessages(); return; }
  open.add(k);
  queueMessages();
  // The full lists, also for an announcement nobody has acknowledged yet.
  try { await conn.live.request({ type: 'acknowledgements', conv: c.id, seq: m.seq }); } catch (e) { toast(`Could not load who got it: ${e.message}`); }
}

/** In an announcements room, the message box gives way to a note for everyone but admins. */
export function renderAdminsOnly(c) {
  const box = document.querySelector('.composer-box');
  let note = $('admins-only');
  const only = !!(c && c.announcements && !isAdmin());
  if (only && !note) {
    note = h('div', { id: 'admins-only', class: 'admins-only', testid: 'admins-only', role: 'note', text: 'Only admins post in this room' });
    box.before(note);
  }
  if (note) note.hidden = !only;
  box.hidden = only;
}

/** The admins' dialog behind the header's megaphone: everyone posts in room c, or only admins. */
export function showPosting(c) {
  const d = $('dlg-posting');
  const f = d.querySelector('form');
  formError(f, '');
  $('posting-title').textContent = `Who can post in #${c.name}`;
  for (const input of f.elements.posting) input.checked = input.value === (c.announcements ? 'admins' : 'everyone');
  f.onsubmit = async (e) => {
    e.preventDefault();
    const announcements = f.elements.posting.value === 'admins';
    try {
      if (announcements !== !!c.announcements) await conn.live.request({ type: 'set_announcements', conv: c.id, announcements });
      d.close();
      // The header was drawn anew meanwhile (the `conversation` frame): back to its button.
      document.querySelector('[data-testid="posting-button"]')?.focus();
    } catch (err) { formError(f, errText(err)); }
  };
  d.showModal();
}
