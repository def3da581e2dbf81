// switcher.js: the quick switcher (Ctrl+K): a box that finds conversations and people by
// name, unread ones first; Enter opens the one chosen, a person opens (or starts) the direct
// conversation with them, and a public room not joined yet is joined. Message search keeps
// its own box (and `/`).
import * as api from './api.js';
import { openConv, openDm } from './conversation.js';
import { byName, dot, errText, h, icon, toast } from './dom.js';
import { chat, conn, convName, others, ui } from './state.js';

const MAX = 12; // rows shown at once

const fold = (s) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

/** How well `q` matches one of `keys`: 0 the start, 1 the start of a word, 2 inside, or null. */
function score(keys, q) {
  let best = null;
  for (const k of keys) {
    const f = fold(k);
    const s = f.startsWith(q) ? 0 : f.split(/[\s,._-]+/).some((w) => w.startsWith(q)) ? 1 : f.includes(q) ? 2 : null;
    if (s != null && (best == null || s < best)) best = s;
  }
  return best;
}

let directory = []; // public rooms of the server ({id, name, topic, joined}), fetched as the switcher opens

/** Joins public room r, then opens it. */
async function joinRoom(r) {
  try { await conn.live.request({ type: 'join', conv: r.id }); } catch (e) { toast(`Could not join #${r.name}: ${errText(e)}`); return; }
  if (chat.convs.has(r.id)) openConv(r.id); else ui.wantOpen = r.id;
}

/** Everything the switcher can open: each conversation, each person without a DM yet, public rooms to join. */
function candidates() {
  const out = [];
  const withDm = new Set();
  for (const c of chat.convs.values()) {
    const o = others(c);
    if (c.kind === 'dm') withDm.add(o[0] ?? chat.me.id);
    // A DM or group is found by its people's names; a room by its own (not its members').
    const people = c.kind === 'dm' || c.kind === 'group' ? o.map((id) => chat.users.get(id)).filter(Boolean) : [];
    out.push({
      key: `c${c.id}`, label: convName(c), kind: c.kind, unread: c.unread, mentions: c.mentions, conv: c,
      keys: [convName(c), c.name, ...people.flatMap((u) => [u.name, u.display_name])].filter(Boolean),
      open: () => openConv(c.id),
    });
  }
  for (const u of chat.users.values()) {
    if (u.disabled || withDm.has(u.id)) continue;
    out.push({
      key: `u${u.id}`, label: u.id === chat.me.id ? `${u.display_name} (you)` : u.display_name, detail: `@${u.name}`, kind: 'person',
      unread: 0, mentions: 0, user: u, keys: [u.display_name, u.name],
      open: () => openDm([u.id].filter((id) => id !== chat.me.id)),
    });
  }
  for (const r of directory) {
    if (r.joined || chat.convs.has(r.id)) continue;
    out.push({ key: `r${r.id}`, label: r.name, detail: 'join', kind: 'room', unread: 0, mentions: 0, keys: [r.name], join: true, open: () => joinRoom(r) });
  }
  return out;
}

/** The rows for query q: unread first (mentions before the rest), then the better match, then by name. */
export function switcherMatches(q) {
  const f = fold(q.trim().replace(/^[#@]/, ''));
  const rows = [];
  for (const it of candidates()) {
    const s = f ? score(it.keys, f) : it.conv ? 0 : null; // with nothing typed: the conversations
    if (s != null) rows.push({ ...it, score: it.join ? s + 3 : s }); // rooms to join after one's own
  }
  const rank = (r) => (r.mentions > 0 ? 0 : r.unread > 0 ? 1 : 2);
  rows.sort((a, b) => rank(a) - rank(b) || a.score - b.score || (b.conv?.id === ui.current) - (a.conv?.id === ui.current) || byName(a.label, b.label));
  return rows.slice(0, MAX);
}

let dlg = null; // the dialog, made on first use

function build() {
  const input = h('input', {
    type: 'text', class: 'switcher-input', testid: 'switcher-input', placeholder: 'Go to a conversation or person',
    'aria-label': 'Go to a conversation or person', autocomplete: 'off', spellcheck: false, autocapitalize: 'none',
    role: 'combobox', 'aria-expanded': 'true', 'aria-controls': 'switcher-list', 'aria-autocomplete': 'list',
  });
  const list = h('ul', { class: 'switcher-list', id: 'switcher-list', role: 'listbox', 'aria-label': 'Conversations and people' });
  const d = h('dialog', { class: 'switcher', id: 'dlg-switcher', testid: 'switcher' },
    input, list, h('p', { class: 'switcher-hint muted', text: '↑ ↓ to choose · Enter to open · Esc to close · / searches messages' }));
  document.body.append(d);
  let rows = [];
  let sel = 0;
  const draw = () => {
    list.replaceChildren(...(rows.length ? rows.map((r, i) => h('li', {
      id: `switcher-${i}`, role: 'option', class: `switcher-item${r.unread > 0 ? ' unread' : ''}`, testid: 'switcher-item',
      'aria-selected': String(i === sel), data: { kind: r.kind, label: r.label },
      onmousedown: (e) => e.preventDefault(), onclick: () => { sel = i; go(); },
    }, lead(r), h('span', { class: 'switcher-label', text: r.label }), r.detail ? h('span', { class: 'muted', text: r.detail }) : null,
    r.unread > 0 ? h('span', { class: `badge${r.mentions > 0 || r.kind === 'dm' || r.kind === 'group' ? ' badge-mention' : ''}`, text: String(r.unread) }) : null))
      : [h('li', { class: 'muted switcher-none', text: 'Nothing by that name.' })]));
    if (rows.length) input.setAttribute('aria-activedescendant', `switcher-${sel}`); else input.removeAttribute('aria-activedescendant');
    list.querySelector('[aria-selected="true"]')?.scrollIntoView({ block: 'nearest' });
  };
  const update = () => {
    // The chosen row stays chosen when rows come in (the room directory arrives late).
    const chosen = rows[sel]?.key;
    rows = switcherMatches(input.value);
    sel = Math.max(0, rows.findIndex((r) => r.key === chosen));
    draw();
  };
  const go = () => {
    const r = rows[sel];
    if (!r) return;
    d.close();
    r.open();
  };
  const reset = () => { rows = []; sel = 0; update(); }; // typing starts again from the best match
  input.addEventListener('input', reset);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' && rows.length) { e.preventDefault(); sel = (sel + 1) % rows.length; draw(); }
    else if (e.key === 'ArrowUp' && rows.length) { e.preventDefault(); sel = (sel + rows.length - 1) % rows.length; draw(); }
    else if (e.key === 'Enter' && !e.isComposing) { e.preventDefault(); go(); }
  });
  d.addEventListener('click', (e) => { if (e.target === d) d.close(); }); // a click on the backdrop
  return { d, input, update, reset };
}

function lead(r) {
  if (r.kind === 'room') return h('span', { class: 'lead' }, icon('hash'));
  if (r.kind === 'private') return h('span', { class: 'lead' }, icon('lock'));
  if (r.kind === 'person') return h('span', { class: 'lead' }, dot(r.user.id));
  if (r.kind === 'dm') return h('span', { class: 'lead' }, dot(others(r.conv)[0] ?? chat.me.id));
  return h('span', { class: 'lead' }, icon('users'));
}

/** Opens the switcher with an empty box. */
export function openSwitcher() {
  if (!chat.me) return;
  dlg ||= build();
  dlg.input.value = '';
  dlg.reset();
  if (!dlg.d.open) dlg.d.showModal();
  dlg.input.focus();
  const d = dlg;
  api.rooms().then(({ rooms }) => { directory = rooms || []; if (d.d.open) d.update(); }).catch(() => { /* the rooms one is in still show */ });
}
