// dom.js: small DOM helpers shared by every view: elements, icons, toasts, date formats,
// avatars and presence dots, form errors. User text only ever becomes text nodes.
import { chat, presenceOf, STATE_LABEL, userName } from './state.js';

export const $ = (id) => document.getElementById(id);

export function h(tag, attrs, ...kids) {
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
export const kids = (...list) => list.filter((k) => k != null && k !== false);

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
  clock: 'M3 12a9 9 0 1 0 18 0a9 9 0 1 0-18 0M12 7v5l3 3',
  archive: 'M21 8v13H3V8M1 3h22v5H1zM10 12h4',
  moon: 'M21 12.79A9 9 0 1 1 11.21 3 7 7 0 0 0 21 12.79z',
  sun: 'M8 12a4 4 0 1 0 8 0a4 4 0 1 0-8 0M12 2v2M12 20v2M4.93 4.93l1.41 1.41M17.66 17.66l1.41 1.41M2 12h2M20 12h2M6.34 17.66l-1.41 1.41M19.07 4.93l-1.41 1.41',
  monitor: 'M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zM8 21h8M12 17v4',
  close: 'M18 6L6 18M6 6l12 12',
  clip: 'M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48',
  file: 'M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zM14 2v6h6M8 13h8M8 17h8',
  reply: 'M9 17l-5-5 5-5M4 12h11a5 5 0 0 1 5 5v2',
  bell: 'M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9M13.73 21a2 2 0 0 1-3.46 0',
  bellOff: 'M13.73 21a2 2 0 0 1-3.46 0M18.63 13A17.9 17.9 0 0 1 18 8M6.26 6.26A5.86 5.86 0 0 0 6 8c0 7-3 9-3 9h14M18 8a6 6 0 0 0-9.33-5M2 2l20 20',
  shield: 'M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z',
  megaphone: 'M3 10v4h3l6 5V5L6 10zM16 9a4 4 0 0 1 0 6M19 6a8 8 0 0 1 0 12',
};

export function icon(name, cls = '') {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', cls ? `icon ${cls}` : 'icon');
  const p = document.createElementNS(NS, 'path');
  p.setAttribute('d', ICONS[name]);
  svg.append(p);
  return svg;
}

export const narrow = () => matchMedia('(max-width: 720px)').matches; // a phone: the sidebar slides in

/**
 * fn wrapped to run once, soon, however often it is asked for: on the next animation frame,
 * or after 100 ms in a hidden tab (which gets no frames, but still updates its title).
 */
export function nextFrame(fn) {
  let pending = false;
  const run = () => {
    if (!pending) return;
    pending = false;
    fn();
  };
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(run);
    setTimeout(run, 100);
  };
}

let toastTimer = null;

export function toast(text, ms = 4000) {
  const t = $('toast');
  t.textContent = text;
  // Just below the header in front (the conversation's or the search results'), centred
  // on the main pane: over messages only, never over the message box or the sidebar.
  const main = document.querySelector('.main');
  const head = [...document.querySelectorAll('.pane .conv-head')].find((e) => e.offsetParent !== null);
  if (main && head && main.offsetParent !== null) {
    const r = main.getBoundingClientRect();
    t.style.top = `${head.getBoundingClientRect().bottom + 8}px`;
    t.style.left = `${r.left + r.width / 2}px`;
    t.style.maxWidth = `${Math.max(200, r.width - 32)}px`;
  } else {
    t.style.top = t.style.left = t.style.maxWidth = '';
  }
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ms);
}

export function randomId() {
  const b = new Uint8Array(9);
  crypto.getRandomValues(b); // works on plain-HTTP LAN origins, unlike randomUUID
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function dot(userId) {
  const p = presenceOf(userId);
  const state = STATE_LABEL[p.state] ? p.state : 'offline';
  return h('span', {
    class: `dot dot-${state}`, testid: 'presence-dot',
    data: { state, userName: chat.users.get(userId)?.name || '' }, title: STATE_LABEL[state],
  });
}

export function avatar(userId, size = '') {
  const u = chat.users.get(userId);
  const label = (u?.display_name || u?.name || '?').trim();
  const initials = label.split(/\s+/).slice(0, 2).map((w) => w[0]).join('').toUpperCase() || '?';
  const a = h('span', { class: `avatar ${size}`, text: initials, 'aria-hidden': 'true' });
  a.style.background = `hsl(${(userId * 47) % 360} 45% 42%)`;
  return a;
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

export const byName = (a, b) => collator.compare(a, b);

export const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });

export const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

export const whenFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });

export function dayLabel(ts) {
  const d = new Date(ts);
  const today = new Date();
  const yest = new Date(Date.now() - 864e5);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yest.toDateString()) return 'Yesterday';
  return dayFmt.format(d);
}

export function formError(form, text) { form.querySelector('.form-error').textContent = text || ''; }

/**
 * A new account's fields of form `f` (inputs name, display_name, password) as
 * {name, display_name, password}, or null with the form's error said (the server's rules:
 * docs/protocol.md, POST /api/users).
 */
export function accountFields(f) {
  const u = { name: f.elements.name.value.trim().toLowerCase(), display_name: f.elements.display_name.value.trim(), password: f.elements.password.value };
  let why = null;
  if (!/^[a-z0-9][a-z0-9._-]{0,31}$/.test(u.name)) why = 'Sign-in names are 1-32 characters: a-z, 0-9, dot, dash or underscore.';
  else if (!u.display_name) why = 'Enter a display name.';
  else if (u.password.length < 8) why = 'The password needs at least 8 characters.';
  if (why) { formError(f, why); return null; }
  return u;
}

const ERR = {
  name_taken: 'That name is already taken.',
  forbidden: 'Your role does not allow this.',
  bad_request: null, // the server's message says what is wrong
  network: 'Cannot reach the server. Check the connection and try again.',
  disconnected: 'Not connected to the server right now. Try again in a moment.',
};

export const errText = (e) => ERR[e.code] || e.message;
