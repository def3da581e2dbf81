// views/sidebar.js: the sidebar's rooms, direct messages and people, the signed-in user's
// bar, and the unread count in the title and favicon.
import { openConv, openDm } from '../conversation.js';
import { $, avatar, byName, dot, h, icon, nextFrame } from '../dom.js';
import { keepText } from '../records.js';
import { chat, convName, others, presenceOf, STATE_LABEL, statusText, ui, userName } from '../state.js';
import { keepIcon } from './records.js';

export function sortConvs(list) {
  return list.sort((a, b) => byName(convName(a), convName(b)));
}

const isRoom = (c) => c.kind === 'room' || c.kind === 'private';

function convItem(c, name) {
  const active = c.id === ui.current;
  const o = others(c);
  let lead;
  if (c.kind === 'room') lead = h('span', { class: 'lead' }, icon('hash'));
  else if (c.kind === 'private') lead = h('span', { class: 'lead', title: 'Private room' }, icon('lock'));
  else if (c.kind === 'dm') lead = h('span', { class: 'lead' }, dot(o[0] ?? chat.me.id));
  else lead = h('span', { class: 'lead group-count', text: String(c.members.length) });
  const badge = c.unread > 0
    ? h('span', { class: c.mentions > 0 || c.kind === 'dm' || c.kind === 'group' ? 'badge badge-mention' : 'badge', testid: 'unread-badge', text: String(c.unread) })
    : null;
  // Conversations that keep other than what this server gives a new one say so at a glance.
  const r = c.records;
  const mark = r && r.default === false
    ? h('span', { class: 'records-mark', testid: 'records-mark', data: { keep: r.keep }, title: keepText(r), 'aria-label': keepText(r), role: 'img' }, icon(keepIcon(r)))
    : null;
  return h('li', null, h('button', {
    class: `conv-item${active ? ' active' : ''}${c.unread > 0 ? ' unread' : ''}${c.mentions > 0 ? ' has-mention' : ''}`,
    testid: 'conv-item',
    data: { convId: c.id, convName: name, kind: c.kind, unread: c.unread, mentions: c.mentions },
    title: c.topic || name,
    onclick: () => openConv(c.id),
  }, lead, h('span', { class: 'label', text: name }), mark, badge));
}

// The conversation lists are kept, not rebuilt: each row is remembered with what it shows,
// and a frame about one conversation redraws or moves that row only (an office that creates
// thousands of rooms while a tab is open costs that tab one row each). Changes are drawn once
// per animation frame, however many frames came in.
const rows = new Map(); // conversation id -> {el, sig, name, list}
const order = { rooms: [], dms: [] }; // conversation ids of each list, in display order
let everything = false; // redraw all rows and the people
const changed = new Set(); // conversation ids to redraw
let unreadTotal = 0;

const flushSoon = nextFrame(flush);

/** Redraws the whole sidebar (presence, people, the open conversation changed). */
export function renderSidebar() {
  everything = true;
  flushSoon();
}

/** Redraws one conversation's row (it came, went, was renamed, or its unread count moved). */
export function sidebarConv(id) {
  changed.add(id);
  flushSoon();
}

/** Forgets the rows of a signed-out user. */
export function forgetSidebar() {
  rows.clear();
  order.rooms = [];
  order.dms = [];
  changed.clear();
  everything = false;
  for (const id of ['room-list', 'dm-list', 'people-list']) $(id).replaceChildren();
}

function sig(c, name) {
  const lead = c.kind === 'dm' ? presenceOf(others(c)[0] ?? chat.me.id).state : c.members.length;
  const r = c.records;
  const kept = r ? `${r.keep}:${r.days}:${r.default}` : '';
  return [name, c.kind, c.id === ui.current, c.unread, c.mentions, c.topic, lead, kept].join('|');
}

/** The row of c, drawn again if what it shows changed. */
function rowOf(c) {
  const name = convName(c);
  const s = sig(c, name);
  const old = rows.get(c.id);
  if (old && old.sig === s) return old;
  const row = { el: convItem(c, name), sig: s, name, list: isRoom(c) ? 'rooms' : 'dms' };
  rows.set(c.id, row);
  return row;
}

const listEl = (list) => $(list === 'rooms' ? 'room-list' : 'dm-list');

/** Index in order[list] where a row named `name` (conversation id) belongs. */
function place(list, name, id) {
  const ids = order[list];
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const other = rows.get(ids[mid]);
    const cmp = byName(other.name, name) || other.name.localeCompare(name) || ids[mid] - id;
    if (cmp < 0) lo = mid + 1; else hi = mid;
  }
  return lo;
}

function unplace(id, row) {
  const ids = order[row.list];
  const i = ids.indexOf(id);
  if (i >= 0) ids.splice(i, 1);
  row.el.remove();
}

function flush() {
  if (!chat.me) return;
  if (everything) drawAll();
  else {
    for (const id of changed) {
      const c = chat.convs.get(id);
      const old = rows.get(id);
      if (!c) {
        if (old) { unplace(id, old); rows.delete(id); unreadTotal -= old.unread; }
        continue;
      }
      const before = old && { el: old.el, name: old.name, list: old.list };
      const row = rowOf(c);
      unreadTotal += c.unread - (old ? old.unread : 0);
      row.unread = c.unread;
      if (before && before.name === row.name && before.list === row.list) {
        if (before.el !== row.el) before.el.replaceWith(row.el);
        continue;
      }
      if (before) unplace(id, { ...before });
      const at = place(row.list, row.name, id);
      const ids = order[row.list];
      listEl(row.list).insertBefore(row.el, at < ids.length ? rows.get(ids[at]).el : null);
      ids.splice(at, 0, id);
    }
    dmHint();
  }
  changed.clear();
  everything = false;
  document.title = unreadTotal > 0 ? `(${unreadTotal}) Hallway` : 'Hallway';
  setFavicon(unreadTotal);
}

function drawAll() {
  for (const id of rows.keys()) if (!chat.convs.has(id)) rows.delete(id);
  const lists = { rooms: [], dms: [] };
  unreadTotal = 0;
  for (const c of chat.convs.values()) {
    const row = rowOf(c);
    row.unread = c.unread;
    unreadTotal += c.unread;
    lists[row.list].push(c.id);
  }
  for (const list of ['rooms', 'dms']) {
    const ids = lists[list];
    ids.sort((a, b) => {
      const x = rows.get(a).name;
      const y = rows.get(b).name;
      return byName(x, y) || x.localeCompare(y) || a - b;
    });
    order[list] = ids;
    // Minimal DOM changes: keep rows that are already in place.
    const ul = listEl(list);
    let cur = ul.firstChild;
    for (const id of ids) {
      const el = rows.get(id).el;
      if (el === cur) { cur = cur.nextSibling; continue; }
      ul.insertBefore(el, cur);
    }
    while (cur) { const n = cur.nextSibling; cur.remove(); cur = n; }
  }
  dmHint();
  drawPeople();
}

/** The hint in an empty list of direct messages. */
function dmHint() {
  const ul = $('dm-list');
  const hint = ul.querySelector('.side-hint');
  if (order.dms.length && hint) hint.remove();
  else if (!order.dms.length && !hint) ul.append(h('li', { class: 'side-hint', text: 'Pick a person below to write to them.' }));
}

const fold = (s) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

/** People whose sign-in name or display name holds the filter's text (accents and case aside). */
function peopleFilter() {
  const q = fold($('people-search').value.trim().replace(/^@/, ''));
  return q ? (u) => u.name.includes(q) || fold(u.display_name).includes(q) : () => true;
}

/** The filter over the People list. */
export function bindPeopleFilter() {
  $('people-search').addEventListener('input', drawPeople);
  $('people-search').addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && e.target.value) { e.preventDefault(); e.target.value = ''; drawPeople(); }
  });
}

function drawPeople() {
  const away = (u) => (presenceOf(u.id).state === 'offline' ? 1 : 0);
  // A disabled account is no one to write to; its old messages still carry its name.
  const people = [...chat.users.values()].filter((u) => !u.disabled).filter(peopleFilter()).sort((a, b) => (a.id === chat.me.id) - (b.id === chat.me.id) || away(a) - away(b)
    || byName(a.display_name, b.display_name));
  if (!people.length) { $('people-list').replaceChildren(h('li', { class: 'side-hint', text: 'Nobody by that name.' })); return; }
  $('people-list').replaceChildren(...people.map((u) => {
    const st = statusText(presenceOf(u.id));
    return h('li', null, h('button', {
      class: 'conv-item person', testid: 'person-item', data: { userName: u.name, userId: u.id },
      title: `${u.display_name} (@${u.name}) · ${STATE_LABEL[presenceOf(u.id).state] || 'Offline'}${st ? ' · ' + st : ''}`,
      onclick: () => openDm([u.id].filter((id) => id !== chat.me.id)),
    }, h('span', { class: 'lead' }, dot(u.id)),
    h('span', { class: 'label' },
      h('span', { class: 'pname', text: u.id === chat.me.id ? `${u.display_name} (you)` : u.display_name }),
      st ? h('span', { class: 'pstatus', testid: 'person-status', text: st }) : null)));
  }));
}

let faviconCount = null; // what the favicon shows now

export function setFavicon(count) {
  if (faviconCount === count) return;
  faviconCount = count;
  const badge = count > 0 ? "<circle cx='25' cy='7' r='7' fill='%23e01e5a'/>" : '';
  const svg = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'><rect x='1' y='3' width='26' height='26' rx='7' fill='%234a154b'/>"
    + "<text x='14' y='23' font-family='sans-serif' font-weight='700' font-size='17' text-anchor='middle' fill='white'>H</text>" + badge + '</svg>';
  document.querySelector('link[rel=icon]').href = 'data:image/svg+xml,' + svg;
}

export function renderMe() {
  if (!chat.me) return;
  const p = presenceOf(chat.me.id);
  $('me-avatar').replaceChildren(avatar(chat.me.id, 'small'), dot(chat.me.id));
  $('me-name').textContent = chat.me.display_name;
  $('me-status').textContent = statusText(p) || (p.state === 'dnd' ? 'Do not disturb' : STATE_LABEL[p.state] || 'Online');
}
