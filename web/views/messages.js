// views/messages.js: the message list of the open conversation. Rows are cached and
// reused, so a render only inserts what changed and the reader's place survives.
import { ackBar, ackSig } from '../announce.js';
import { attachAutocomplete } from '../autocomplete.js';
import { renderText } from '../markup.js';
import { attachmentsView, renderTray } from '../attach.js';
import { deliver } from '../composer.js';
import { quoteSig, quoteView, renderReplyBar, withReply } from '../reply.js';
import { reactionSig, reactionsView, withReaction } from '../reactions.js';
import { deleteMessage } from '../conversation.js';
import { $, avatar, dayLabel, dot, fullFmt, h, icon, nextFrame, timeFmt, toast } from '../dom.js';
import { loadOlder } from '../history.js';
import { keepPhrase } from '../records.js';
import { chat, conn, convName, presenceOf, textCtx, ui, userName } from '../state.js';

// Message rows are cached per conversation and re-used, so that rendering after a new message
// only appends (scroll position, hover and an inline edit in progress survive).
export const rowCache = new Map(); // key -> {sig, el}

function messageRow(c, m, compact) {
  const mine = m.author === chat.me.id;
  const mentionsMe = !m.deleted && !!(m.mentions && m.mentions.includes(chat.me.id));
  const editing = ui.editing && ui.editing.conv === c.id && ui.editing.seq === m.seq;
  const sig = [m.rev, m.text, m.deleted, m.edited_ts, compact, editing, mentionsMe, userName(m.author), chat.users.size, (m.attachments || []).length, quoteSig(c, m), compact || presenceOf(m.author).state, ackSig(c, m), reactionSig(m)].join('|');
  const key = `m${c.id}:${m.seq}`;
  const hit = rowCache.get(key);
  if (hit && hit.sig === sig) return hit.el;

  const body = h('div', { class: 'msg-body' });
  if (!compact) {
    body.append(h('div', { class: 'msg-meta' },
      h('span', { class: 'author', testid: 'message-author', text: userName(m.author) }),
      authorDot(m.author),
      h('time', { class: 'time', text: timeFmt.format(m.ts), title: fullFmt.format(m.ts), dateTime: new Date(m.ts).toISOString() })));
  }
  if (m.deleted) {
    body.append(h('div', { class: 'msg-text deleted', testid: 'message-text', text: 'message deleted' }));
  } else if (editing) {
    const ta = h('textarea', { class: 'edit-box', testid: 'edit-input', value: m.text, rows: Math.min(8, m.text.split('\n').length + 1) });
    const save = async () => {
      const text = ta.value.replace(/\s+$/, '');
      ui.editing = null;
      if (!text || text === m.text) { renderMessages(); return; }
      try { await conn.live.request({ type: 'edit', conv: c.id, seq: m.seq, text }); }
      catch (e) { toast(`Could not edit: ${e.message}`); }
      renderMessages();
    };
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); save(); }
      if (e.key === 'Escape') { ui.editing = null; renderMessages(); $('composer').focus(); }
    });
    body.append(h('div', { class: 'edit-wrap' }, ta), h('div', { class: 'edit-hint', text: 'Enter to save · Esc to cancel' }));
    attachAutocomplete(ta);
    queueMicrotask(() => { ta.focus(); ta.setSelectionRange(ta.value.length, ta.value.length); });
  } else {
    body.append(quoteView(c, m) || '');
    const t = h('div', { class: 'msg-text', testid: 'message-text' });
    t.append(renderText(m.text, textCtx()));
    if (m.edited_ts != null) t.append(h('span', { class: 'edited', testid: 'message-edited', text: ' (edited)', title: fullFmt.format(m.edited_ts) }));
    body.append(t, attachmentsView(m.attachments) || '', reactionsView(c, m) || '', ackBar(c, m) || '');
  }
  const tools = !m.deleted && !editing && (mine || chat.me.role === 'admin')
    ? h('div', { class: 'msg-tools' },
      mine ? h('button', { class: 'icon-btn', testid: 'message-edit', title: 'Edit', 'aria-label': 'Edit message', onclick: () => startEdit(c, m.seq) }, icon('edit')) : null,
      h('button', { class: 'icon-btn', testid: 'message-delete', title: 'Delete', 'aria-label': 'Delete message', onclick: () => deleteMessage(c, m) }, icon('trash')))
    : null;
  const el = h('div', {
    class: `msg${compact ? ' compact' : ''}${mentionsMe ? ' mentions-me' : ''}`,
    testid: 'message', data: { seq: m.seq, authorName: chat.users.get(m.author)?.name || '', mentionsMe: String(mentionsMe) },
  }, h('div', { class: 'gutter' }, compact ? h('time', { class: 'time hover-time', text: timeFmt.format(m.ts) }) : avatar(m.author)), body, withReaction(c, m, editing, withReply(c, m, editing, tools)));
  rowCache.set(key, { sig, el });
  return el;
}

/** The author's presence beside their name (online, away, do not disturb, offline). */
function authorDot(id) {
  const d = dot(id);
  d.classList.add('author-dot');
  d.dataset.testid = 'author-presence';
  d.setAttribute('role', 'img');
  d.setAttribute('aria-label', d.title);
  return d;
}

/**
 * A system message (what the conversation keeps changed) as a line of its own: from the
 * server's fields only, as text, with nothing to edit or delete.
 */
function systemRow(c, m) {
  const who = userName(m.author);
  const text = m.system.type === 'records'
    ? `${who} ${c.kind === 'dm' || c.kind === 'group' ? 'chose for this conversation' : 'set this conversation to'}: ${keepPhrase(m.system)}`
    : `${who} changed this conversation`;
  return cached(`m${c.id}:${m.seq}`, `${m.rev}|${text}`, () => h('div', {
    class: 'system-line center', testid: 'system-line', data: { seq: m.seq, system: m.system.type }, text,
  }));
}

function pendingRow(c, p) {
  const sig = `${p.state}|${p.error}|${p.retryable}`;
  const key = `p${p.client_id}`;
  const hit = rowCache.get(key);
  if (hit && hit.sig === sig) return hit.el;
  const t = h('div', { class: 'msg-text', testid: 'message-text' });
  t.append(renderText(p.text, textCtx()));
  const note = p.state === 'failed'
    ? h('div', { class: 'send-failed' }, `Not sent (${p.error}). `,
      ...(p.retryable === false ? [] : [h('button', { class: 'link', text: 'Retry', onclick: () => deliver(c, p) }), ' · ']),
      h('button', { class: 'link', text: 'Discard', onclick: () => { c.pending.delete(p.client_id); renderMessages(); } }))
    : null;
  const el = h('div', { class: `msg pending${p.state === 'failed' ? ' failed' : ''}`, testid: 'message', data: { pending: 'true', authorName: chat.me.name }, title: 'Sending…' },
    h('div', { class: 'gutter' }, avatar(chat.me.id)),
    h('div', { class: 'msg-body' },
      h('div', { class: 'msg-meta' }, h('span', { class: 'author', testid: 'message-author', text: userName(chat.me.id) }),
        h('span', { class: 'time', text: p.state === 'failed' ? '' : 'sending…' })),
      t, attachmentsView(p.attachments) || '', note));
  rowCache.set(key, { sig, el });
  return el;
}

let queued = {}; // what the renders asked for since the last one
const drawSoon = nextFrame(() => { const opts = queued; queued = {}; renderMessages(opts); });

/** Renders the list once on the next frame, however many messages came in meanwhile. */
export function queueMessages(opts = {}) {
  if (opts.toBottom) queued.toBottom = true;
  drawSoon();
}

export function renderMessages(opts = {}) {
  const list = $('messages');
  const c = chat.convs.get(ui.current);
  renderTray();
  renderReplyBar();
  if (!c) { list.replaceChildren(); return; }
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const anchor = opts.toBottom || (atBottom && !opts.keepAnchor) ? null : readingAnchor(list);

  const all = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
  const [from, to] = windowOf(c, all, opts);
  shown = { conv: c.id, all, from, to };
  forgetRows(c, all, from, to);
  const rows = [];
  // Above a window that starts further down there is nothing: scrolling up brings it in.
  if (from === 0 && c.loaded && !c.more) {
    rows.push(cached(`start${c.id}`, convName(c), () => h('div', { class: 'conv-start' },
      h('div', { class: 'conv-start-title', text: startTitle(c) }),
      c.topic ? h('div', { class: 'muted', text: c.topic }) : null)));
  } else if (from === 0 && (c.loadingOlder || c.loading)) {
    rows.push(cached('loading', '', () => h('div', { class: 'loading', text: 'Loading…' })));
  }
  const msgs = from === 0 && to === all.length ? all : all.slice(from, to);
  // System lines ("Bob left") stand after the newest message there was when they happened.
  const notes = c.notes.filter((n) => !msgs.length || n.after >= msgs[0].seq || (!c.more && from === 0));
  let nextNote = 0;
  const notesUpTo = (seq) => {
    for (; nextNote < notes.length && notes[nextNote].after < seq; nextNote++) {
      const n = notes[nextNote];
      rows.push(cached(`note${c.id}:${n.id}`, '', () => h('div', { class: 'system-line', testid: 'system-line', text: n.text })));
    }
  };
  // The "New" line goes before the first unread message, if the page reaches back to it.
  let newLine = c.newFrom != null && msgs.length > 0 && (msgs[0].seq <= c.newFrom || (!c.more && from === 0)) ? null : false;
  let prev = null;
  for (const m of msgs) {
    const before = rows.length;
    notesUpTo(m.seq);
    const afterNote = rows.length > before; // a system line starts a new group of messages
    const day = new Date(m.ts).toDateString();
    if (!prev || new Date(prev.ts).toDateString() !== day) {
      const label = dayLabel(m.ts);
      rows.push(cached(`day${c.id}:${day}`, label, () => h('div', { class: 'day' }, h('span', { text: label }))));
    }
    let isFirstNew = false;
    if (newLine === null && m.seq > c.newFrom && m.author !== chat.me.id) {
      newLine = cached(`new${c.id}`, '', () => h('div', { class: 'new-line', testid: 'new-line', role: 'separator' }, h('span', { text: 'New' })));
      rows.push(newLine);
      isFirstNew = true;
    }
    if (m.system) { rows.push(systemRow(c, m)); prev = m; continue; }
    const compact = !!prev && !isFirstNew && !afterNote && !prev.system && prev.author === m.author && !prev.deleted && !m.deleted
      && m.ts - prev.ts < 5 * 60 * 1000 && new Date(prev.ts).toDateString() === day;
    rows.push(messageRow(c, m, compact));
    prev = m;
  }
  notesUpTo(to === all.length ? Infinity : all[to].seq);
  if (to === all.length) for (const p of c.pending.values()) rows.push(pendingRow(c, p));

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
  else keepAnchor(list, anchor);
  // A short first page does not fill the view: keep loading until it scrolls or history ends.
  if (c.loaded && c.more && !c.loadingOlder && !(Date.now() - (c.olderFailedAt || 0) < 10000)
    && list.scrollHeight <= list.clientHeight + 20) loadOlder(c);
}

// ---------- the window: at most WINDOW message rows in the page ----------
// A tab open all week in a busy room holds thousands of messages; the page shows a window of
// them (the newest, unless the reader scrolled back), moved by STEP rows as the reader
// scrolls past either end, so the page stays as light as with a few history pages.
export const WINDOW = 500;
const STEP = 100;
let shown = { conv: null, all: [], from: 0, to: 0 }; // what the last render showed

/** Index of the first message in `all` (sorted by seq) with a seq of at least `seq`. */
function indexOf(all, seq) {
  let lo = 0;
  let hi = all.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (all[mid].seq < seq) lo = mid + 1; else hi = mid; }
  return lo;
}

/**
 * [from, to) of the messages to show. c.winStart is the first one's seq (null: the newest
 * WINDOW). A window that comes within STEP of the newest message reaches down to it and
 * then follows what comes (c.winFollow), growing by up to STEP rows before its top moves on.
 */
function windowOf(c, all, opts) {
  const n = all.length;
  if (opts.toBottom) {
    // Opening at the "New" line, which may lie further back than the newest WINDOW.
    const i = c.jumpToNew && c.newFrom != null ? indexOf(all, c.newFrom + 1) : n;
    const from = Math.max(0, i - 5);
    c.winStart = i < n && from < n - WINDOW ? all[from].seq : null;
    c.winFollow = true;
  }
  if (n <= WINDOW) { c.winStart = null; c.winFollow = true; return [0, n]; }
  let from = c.winStart == null ? n - WINDOW : Math.min(indexOf(all, c.winStart), n - 1);
  let to = Math.min(n, from + WINDOW);
  if (c.winFollow || n - to <= STEP) {
    to = n;
    if (to - from > WINDOW + STEP) from = n - WINDOW;
  }
  c.winFollow = to === n;
  c.winStart = from === n - WINDOW && to === n ? null : all[from].seq;
  return [from, to];
}

/** Drops the cached rows of messages far from the window, so that memory stays bounded too. */
function forgetRows(c, all, from, to) {
  if (rowCache.size <= 3 * WINDOW || !all.length) return;
  const lo = all[Math.max(0, from - STEP)].seq;
  const hi = all[Math.min(all.length - 1, to + STEP)].seq;
  const prefix = `m${c.id}:`;
  for (const key of rowCache.keys()) {
    if (!key.startsWith(prefix)) continue;
    const seq = Number(key.slice(prefix.length));
    if (seq < lo || seq > hi) rowCache.delete(key);
  }
}

/** The list scrolled: near its top, older rows (or an older page); near its bottom, newer rows. */
export function messagesScrolled() {
  const list = $('messages');
  const c = chat.convs.get(ui.current);
  if (!c || shown.conv !== c.id) return;
  const { all, from, to } = shown;
  if (list.scrollTop < 80) {
    if (from === 0) { loadOlder(c); return; }
    c.winStart = all[Math.max(0, from - STEP)].seq;
    c.winFollow = false;
    renderMessages({ keepAnchor: true });
  } else if (to < all.length && list.scrollHeight - list.scrollTop - list.clientHeight < 80) {
    c.winStart = all[Math.min(all.length - 1, from + STEP)].seq;
    renderMessages({ keepAnchor: true });
  }
}

/** Moves the window so that message `seq` is in the page (a search result's jump). */
export function revealSeq(c, seq) {
  const all = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
  if (all.length <= WINDOW || c.id !== ui.current) return false;
  c.winStart = all[Math.max(0, indexOf(all, seq) - WINDOW / 2)].seq;
  c.winFollow = false;
  renderMessages({ keepAnchor: true });
  return true;
}

/**
 * Opens message `seq` for editing in place; when it is outside the rows in the page (Up in
 * an empty box, one's last message far back or far below) the window moves to it first.
 */
export function startEdit(c, seq) {
  ui.editing = { conv: c.id, seq };
  const i = indexOf(shown.all, seq);
  const inPage = shown.conv === c.id && i >= shown.from && i < shown.to && shown.all[i]?.seq === seq;
  if (inPage || !revealSeq(c, seq)) renderMessages();
}

/** How the first conversation started, at the top of its history. */
function startTitle(c) {
  if (c.kind === 'room' || c.kind === 'private') return `This is the very beginning of #${c.name}`;
  if (c.kind === 'group') return `This is the beginning of the group conversation of ${convName(c)}`;
  return `This is the beginning of your conversation with ${convName(c)}`;
}

/**
 * Where the reader is: the first message whose text shows at the top of the list, and how far
 * below the list's top edge that text starts. Rows above it may change (an older page comes
 * in, the first row loses its author line as it joins the group above): keepAnchor puts the
 * text back exactly there.
 */
function readingAnchor(list) {
  const top = list.getBoundingClientRect().top;
  for (const row of list.querySelectorAll('[data-testid="message"][data-seq]')) {
    const r = row.getBoundingClientRect();
    if (r.bottom <= top) continue;
    const text = row.querySelector('[data-testid="message-text"]') || row;
    return { seq: row.dataset.seq, offset: text.getBoundingClientRect().top - top };
  }
  return null;
}

function keepAnchor(list, anchor) {
  if (!anchor) return;
  const row = list.querySelector(`[data-testid="message"][data-seq="${anchor.seq}"]`);
  if (!row) return;
  const text = row.querySelector('[data-testid="message-text"]') || row;
  list.scrollTop += text.getBoundingClientRect().top - list.getBoundingClientRect().top - anchor.offset;
}

function cached(key, sig, make) {
  const hit = rowCache.get(key);
  if (hit && hit.sig === sig) return hit.el;
  const el = make();
  rowCache.set(key, { sig, el });
  return el;
}
