// views/review.js: the compliance views (docs/protocol.md "Review" and "GET /api/admin/audit").
// A reviewer searches the archive and reads a conversation read-only, with the earlier
// versions of edited and deleted messages, and downloads exports; an admin reads the audit
// log of what reviewers did. Both are one panel over the conversation pane, like search.
import * as api from '../api.js';
import { $, errText, fullFmt, h, icon, toast } from '../dom.js';
import { sizeWords } from '../attach.js';
import { chat, userName } from '../state.js';

const PAGE = 200; // the server's largest page

/** What the panel shows: null when closed. */
let view = null;
let reviewConvs = new Map(); // conversation id -> Conversation, from GET /api/review/conversations

const when = (ts) => fullFmt.format(ts);

function convLabel(c, id) {
  if (!c) return `conversation ${id}`;
  if (c.kind === 'room' || c.kind === 'private') return `#${c.name}`;
  return (c.members || []).map(userName).join(', ') || `conversation ${c.id}`;
}

function panel() {
  let p = $('review-view');
  if (p) return p;
  p = h('section', { id: 'review-view', class: 'search-view review-view', testid: 'review-view', 'aria-labelledby': 'review-title', hidden: true });
  document.querySelector('.pane').append(p);
  return p;
}

/** The panel's header: a title, and a close button; `back` adds a way back to the search. */
function head(title, back) {
  return h('header', { class: 'conv-head' },
    h('button', { type: 'button', class: 'icon-btn menu-toggle', 'aria-label': 'Show conversations', onclick: () => document.body.classList.toggle('nav-open') }, icon('menu')),
    back ? h('button', { type: 'button', class: 'btn small', testid: 'review-back', text: 'Back to search', onclick: back }) : null,
    h('h2', { class: 'conv-title', id: 'review-title', testid: 'review-title', text: title }),
    h('span', { class: 'grow' }),
    h('button', { type: 'button', class: 'icon-btn', testid: 'review-close', title: 'Close', 'aria-label': 'Close', onclick: closeReview }, icon('close')));
}

function show(...content) {
  const p = panel();
  p.replaceChildren(...content);
  p.hidden = false;
  for (const el of document.querySelectorAll('.pane > :not(#review-view)')) el.inert = true;
  document.body.classList.remove('nav-open');
}

export function closeReview() {
  view = null;
  const p = $('review-view');
  if (!p) return;
  p.hidden = true;
  p.replaceChildren();
  // Search results stay inert-free only if search is not open in front.
  for (const el of document.querySelectorAll('.pane > :not(#review-view)')) el.inert = !$('search-view').hidden && el.id !== 'search-view';
}

/** Shows the sidebar entries of the signed-in user's role. */
export function showRoleEntries(user) {
  $('btn-review').hidden = user?.role !== 'reviewer';
  $('btn-audit').hidden = user?.role !== 'admin';
}

export function bindReview() {
  $('btn-review').addEventListener('click', openReviewSearch);
  $('btn-audit').addEventListener('click', openAudit);
  // Opening a conversation from the sidebar leaves the archive for the chat.
  document.querySelector('.sidebar').addEventListener('click', (e) => {
    if (e.target.closest('[data-testid="conv-item"], #search-form')) closeReview();
  });
}

// ---- Reviewer: search ----

function dayStart(value) {
  const t = value ? new Date(`${value}T00:00:00`).getTime() : NaN;
  return Number.isFinite(t) ? t : null;
}

async function openReviewSearch() {
  const s = view = { kind: 'search', results: [], more: false, next: null, busy: false, error: null, status: '', asked: null };
  const convSelect = h('select', { name: 'conv', testid: 'review-conv' }, h('option', { value: '', text: 'All conversations' }));
  const form = h('form', { class: 'review-form', testid: 'review-form', novalidate: true },
    h('label', null, 'Words', h('input', { name: 'q', type: 'search', testid: 'review-words', maxLength: 500, autocomplete: 'off' })),
    h('label', null, 'Person', h('input', { name: 'from', testid: 'review-person', placeholder: 'sign-in name', autocapitalize: 'none', spellcheck: false, autocomplete: 'off' })),
    h('label', null, 'Conversation', convSelect),
    h('label', null, 'From', h('input', { name: 'since', type: 'date', testid: 'review-since' })),
    h('label', null, 'To', h('input', { name: 'until', type: 'date', testid: 'review-until' })),
    h('button', { type: 'submit', class: 'btn primary', testid: 'review-submit', text: 'Search' }));
  const status = h('p', { class: 'search-status', testid: 'review-status', role: 'status' });
  const list = h('ol', { class: 'results', testid: 'review-results' });
  const more = h('button', { type: 'button', class: 'btn', testid: 'review-more', text: 'More results', hidden: true });
  const convList = h('ul', { class: 'review-convs', testid: 'review-conversations' });
  s.draw = () => {
    status.textContent = s.error || s.status;
    status.classList.toggle('error', !!s.error);
    list.replaceChildren(...s.results.map(resultItem));
    more.hidden = !s.more;
    more.textContent = s.busy ? 'Loading…' : 'More results';
  };
  const run = async (next) => {
    if (s.busy) return;
    if (!next) {
      const f = form.elements;
      const since = dayStart(f.since.value);
      const until = dayStart(f.until.value);
      s.asked = {
        q: f.q.value.trim(), from: f.from.value.trim().replace(/^@/, '').toLowerCase(), conv: f.conv.value,
        since, until: until == null ? null : until + 864e5 - 1, // the whole of the last day
      };
      if (!s.asked.q && !s.asked.from && !s.asked.conv && since == null && until == null) {
        s.error = 'Enter words, a person, a conversation or dates.';
        s.draw();
        return;
      }
      s.results = [];
      s.next = null;
    }
    s.busy = true;
    s.error = null;
    s.status = 'Searching…';
    s.draw();
    try {
      const r = await api.reviewSearch({ ...s.asked, before: next ? s.next : null });
      s.results.push(...r.results);
      s.more = !!r.more;
      s.next = r.next;
      const n = s.results.length;
      s.status = n ? `${n}${s.more ? '+' : ''} message${n === 1 && !s.more ? '' : 's'}` : 'No messages found.';
    } catch (e) { s.error = errText(e); }
    s.busy = false;
    if (view === s) s.draw();
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); run(false); });
  more.addEventListener('click', () => run(true));
  show(head('Review archive'),
    h('div', { class: 'search-scroll' }, form, status, list, more,
      h('h3', { class: 'review-sub', text: 'Archived conversations' }), convList));
  form.elements.q.focus();
  try {
    const { conversations } = await api.reviewConversations();
    reviewConvs = new Map(conversations.map((c) => [c.id, c]));
    if (view !== s) return;
    const sorted = [...conversations].sort((a, b) => convLabel(a).localeCompare(convLabel(b)));
    convSelect.append(...sorted.map((c) => h('option', { value: String(c.id), text: convLabel(c) })));
    convList.replaceChildren(...(sorted.length ? sorted.map((c) => h('li', null, h('button', {
      type: 'button', class: 'link', testid: 'review-conversation', data: { convId: c.id, convName: convLabel(c) },
      text: convLabel(c), onclick: () => openReviewConv(c.id),
    }))) : [h('li', { class: 'muted', text: 'Nothing is archived yet.' })]));
    s.draw(); // results drawn before the list arrived get their conversation names
  } catch (e) {
    if (view === s) convList.replaceChildren(h('li', { class: 'form-error', text: errText(e) }));
  }
}

function resultItem(m) {
  const where = convLabel(reviewConvs.get(m.conv), m.conv);
  return h('li', {
    class: 'result', testid: 'review-result', data: { conv: m.conv, seq: m.seq, authorName: chat.users.get(m.author)?.name || '' },
    onclick: () => openReviewConv(m.conv, m.seq),
  },
  h('div', { class: 'result-where', testid: 'review-result-conv', text: where }),
  h('div', { class: 'msg-meta' },
    h('span', { class: 'author', testid: 'review-result-author', text: userName(m.author) }),
    h('time', { class: 'time', text: when(m.ts), dateTime: new Date(m.ts).toISOString() })),
  m.deleted && !m.text ? h('div', { class: 'msg-text muted', testid: 'review-result-text', text: 'This message was deleted.' })
    : h('div', { class: 'msg-text', testid: 'review-result-text', text: m.text }),
  filesList(m.attachments),
  // A result may have matched what an edit or a delete took away: show what it said.
  versionsList(m.versions || [], m.attachments));
}

// ---- Reviewer: one conversation, read-only ----

function versionLabel(i) { return i === 0 ? 'original' : `edit ${i}`; }

function messageItem(m) {
  const versions = m.versions || [];
  const meta = h('div', { class: 'msg-meta' },
    h('span', { class: 'author', text: userName(m.author) }),
    h('time', { class: 'time', text: when(m.ts), dateTime: new Date(m.ts).toISOString() }),
    m.deleted ? h('span', { class: 'review-flag', testid: 'review-deleted', text: 'deleted' })
      : m.edited_ts != null ? h('span', { class: 'edited', text: '(edited)' }) : null);
  const body = m.deleted && !m.text ? h('div', { class: 'msg-text muted', text: 'This message was deleted.' })
    : h('div', { class: 'msg-text', testid: 'review-message-text', text: m.text });
  return h('li', { class: 'review-msg', testid: 'review-message', data: { seq: m.seq, deleted: m.deleted ? 'true' : 'false' } },
    meta, body, filesList(m.attachments), versionsList(versions, m.attachments));
}

/**
 * Download links for a message's files through the reviewer's (audited) door; `shown` are
 * files already listed above, left out. Null when there are none.
 */
function filesList(list, shown = []) {
  const ids = new Set((shown || []).map((a) => a.id));
  const files = (list || []).filter((a) => !ids.has(a.id));
  if (!files.length) return null;
  return h('ul', { class: 'review-files' }, ...files.map((a) => h('li', {},
    h('a', {
      href: api.reviewFileUrl(a.id), download: a.name, testid: 'review-file',
      text: `${a.name} (${sizeWords(a.size)}, ${a.type})`, onclick: (e) => e.stopPropagation(),
    }))));
}

/** The earlier versions of a message, oldest first ("original", "edit 1", ...); null for none. */
function versionsList(versions, current) {
  if (!versions.length) return null;
  return h('ol', { class: 'review-versions', testid: 'review-versions' }, ...versions.map((v, i) => h('li', {
    class: 'review-version', testid: 'review-version', data: { label: versionLabel(i) },
  },
  h('span', { class: 'review-flag', text: versionLabel(i) }),
  v.edited_ts != null ? h('time', { class: 'time', text: when(v.edited_ts) }) : null,
  h('span', { class: 'msg-text', testid: 'review-version-text', text: v.text }),
  filesList(v.attachments, current))));
}

async function openReviewConv(id, seq = null) {
  const back = view && view.kind === 'search' ? view : null;
  const v = view = { kind: 'conv', id, msgs: [], more: false, busy: false };
  const c = reviewConvs.get(id);
  const status = h('p', { class: 'search-status', testid: 'review-conv-status', role: 'status', text: 'Loading…' });
  const list = h('ol', { class: 'review-list', testid: 'review-messages' });
  const more = h('button', { type: 'button', class: 'btn', testid: 'review-conv-more', text: 'Later messages', hidden: true });
  const exports = h('p', { class: 'review-exports', testid: 'review-exports' }, 'Export: ',
    ...['html', 'txt', 'json'].map((f) => h('a', { href: api.reviewExportUrl(id, f), download: '', testid: `review-export-${f}`, text: f.toUpperCase() })));
  // Back to the search with its form and results as they were.
  const goBack = back ? () => { view = back; show(...back.nodes); back.draw(); } : null;
  if (back) back.nodes = [...panel().childNodes];
  show(head(convLabel(c, id), goBack), exports, h('div', { class: 'search-scroll' }, status, list, more));
  const load = async () => {
    if (v.busy) return;
    v.busy = true;
    try {
      const last = v.msgs.length ? v.msgs[v.msgs.length - 1].seq : 0;
      const r = await api.reviewMessages(id, { after: last, limit: PAGE });
      v.msgs.push(...r.messages);
      v.more = !!r.more;
      status.textContent = v.msgs.length ? '' : 'No messages.';
    } catch (e) {
      status.textContent = errText(e);
      status.classList.add('error');
    }
    v.busy = false;
    if (view !== v) return;
    list.replaceChildren(...v.msgs.map(messageItem));
    more.hidden = !v.more;
    const row = seq != null && list.querySelector(`[data-seq="${seq}"]`);
    if (row) { row.scrollIntoView({ block: 'center' }); row.classList.add('flash'); }
  };
  more.addEventListener('click', load);
  await load();
}

// ---- Admin: the audit log ----

async function openAudit() {
  const a = view = { kind: 'audit', entries: [], more: false, busy: false };
  const status = h('p', { class: 'search-status', testid: 'audit-status', role: 'status', text: 'Loading…' });
  const body = h('tbody');
  const table = h('table', { class: 'audit-table', testid: 'audit-table' },
    h('thead', null, h('tr', null, ...['Time', 'Reviewer', 'Action', 'Conversation', 'Query', 'Results'].map((t) => h('th', { text: t })))), body);
  const more = h('button', { type: 'button', class: 'btn', testid: 'audit-more', text: 'More', hidden: true });
  show(head('Audit log'), h('div', { class: 'search-scroll' }, status, table, more));
  const load = async () => {
    if (a.busy) return;
    a.busy = true;
    try {
      const last = a.entries.length ? a.entries[a.entries.length - 1].n : null;
      const r = await api.audit({ after: last });
      a.entries.push(...r.entries);
      a.more = !!r.more && r.entries.length > 0;
      status.textContent = a.entries.length ? '' : 'No reviewer has done anything yet.';
    } catch (e) {
      status.textContent = errText(e);
      status.classList.add('error');
      if (e.status === 403) toast('Only admins read the audit log.');
    }
    a.busy = false;
    if (view !== a) return;
    body.replaceChildren(...a.entries.map((e) => h('tr', { testid: 'audit-entry', data: { n: e.n, action: e.action } },
      h('td', { text: when(e.ts) }),
      h('td', { testid: 'audit-reviewer', text: userName(e.reviewer) }),
      h('td', { testid: 'audit-action', text: e.action }),
      h('td', { text: e.conv == null ? '' : convLabel(chat.convs.get(e.conv), e.conv) }),
      h('td', { testid: 'audit-query', text: e.query }),
      h('td', { testid: 'audit-results', text: String(e.results) }))));
    more.hidden = !a.more;
  };
  more.addEventListener('click', load);
  await load();
}
