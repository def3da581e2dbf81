// views/admin.js: the admin page and the "Your account" page, one panel over the
// conversation pane (like search and review). The page is a frame: a row of links to its
// sections and the sections one below the other, each drawn by its own module (see
// views/admin/index.js, where a new section is one import). A section module exports
// { id, title, draw() } returning its content (drawn once per opening; the section keeps
// it up to date itself) and, optionally, changed(what) for news from the server.
import { $, h, icon } from '../dom.js';
import { chat } from '../state.js';
import { accountSections, adminSections } from './admin/index.js';

/** The page open now: {title, sections, boxes: Map(id -> {section, node})}; null when closed. */
let page = null;

function panel() {
  let p = $('admin-view');
  if (p) return p;
  p = h('section', { id: 'admin-view', class: 'search-view admin-view', testid: 'admin-view', 'aria-labelledby': 'admin-title', hidden: true });
  document.querySelector('.pane').append(p);
  return p;
}

function drawSection(box) {
  let content;
  try {
    content = box.section.draw();
  } catch (e) {
    content = h('p', { class: 'form-error', text: `This section failed to draw: ${e.message}` });
  }
  box.body.replaceChildren(content);
}

function open(title, sections) {
  page = { title, sections, boxes: new Map() };
  const nav = h('nav', { class: 'admin-nav', 'aria-label': 'Sections' },
    ...sections.map((s) => h('a', { href: `#admin-${s.id}`, testid: `admin-nav-${s.id}`, text: s.title,
      onclick: (e) => { e.preventDefault(); $(`admin-${s.id}`)?.scrollIntoView({ block: 'start' }); } })));
  const body = h('div', { class: 'search-scroll admin-scroll' }, sections.length > 1 ? nav : null);
  for (const section of sections) {
    const box = { section, body: h('div', { class: 'admin-body' }) };
    page.boxes.set(section.id, box);
    body.append(h('section', { class: 'admin-section', id: `admin-${section.id}`, testid: `admin-section-${section.id}` },
      h('h3', { class: 'admin-section-title', text: section.title }), box.body));
    drawSection(box);
  }
  const p = panel();
  p.replaceChildren(
    h('header', { class: 'conv-head' },
      h('button', { type: 'button', class: 'icon-btn menu-toggle', 'aria-label': 'Show conversations', onclick: () => document.body.classList.toggle('nav-open') }, icon('menu')),
      h('h2', { class: 'conv-title', id: 'admin-title', testid: 'admin-title', text: title }),
      h('span', { class: 'grow' }),
      h('button', { type: 'button', class: 'icon-btn', testid: 'admin-close', title: 'Close', 'aria-label': 'Close', onclick: closeAdmin }, icon('close'))),
    body);
  p.hidden = false;
  for (const el of document.querySelectorAll('.pane > :not(#admin-view)')) el.inert = true;
  document.body.classList.remove('nav-open');
}

export function openAdmin() {
  if (chat.me?.role !== 'admin') return;
  open('Administration', adminSections);
}

export function openAccount() {
  open('Your account', accountSections);
}

export function closeAdmin() {
  page = null;
  const p = $('admin-view');
  if (!p || p.hidden) return;
  p.hidden = true;
  p.replaceChildren();
  for (const el of document.querySelectorAll('.pane > :not(#admin-view)')) el.inert = !$('search-view').hidden && el.id !== 'search-view';
}

/** Something the page may show changed on the server (`what`: 'users'): its sections look again. */
export function adminChanged(what) {
  if (!page) return;
  for (const box of page.boxes.values()) box.section.changed?.(what);
}

/** Shows the entry to the admin page for admins; closes it when the role goes. */
export function showAdminEntry(user) {
  $('btn-admin').hidden = user?.role !== 'admin';
  if (user?.role !== 'admin' && page?.sections === adminSections) closeAdmin();
}

export function bindAdmin() {
  $('btn-admin').addEventListener('click', openAdmin);
  $('btn-account').addEventListener('click', openAccount);
  // Another panel or a conversation opened from the sidebar leaves this page.
  document.querySelector('.sidebar').addEventListener('click', (e) => {
    if (e.target.closest('[data-testid="conv-item"], #search-form, #btn-review, #btn-audit')) closeAdmin();
  });
}
