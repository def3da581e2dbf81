// search.js: keyword search: parsing from:/in:, the results view with highlighted words,
// and jumping from a result to the message in its conversation.
import * as api from './api.js';
import { attachAutocomplete } from './autocomplete.js';
import { renderText } from './markup.js';
import { reactionsView } from './reactions.js';
import { revealSeq } from './views/messages.js';
import { openConv } from './conversation.js';
import { $, avatar, dayLabel, errText, fullFmt, h, icon, narrow, timeFmt, toast } from './dom.js';
import { loadNewest, loadOlder, markRead } from './history.js';
import { signedOut } from './signin.js';
import { chat, convName, others, PAGE, textCtx, ui, userName } from './state.js';

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
  const convs = [...chat.convs.values()];
  if (!val.startsWith('@')) return convs.find((c) => (c.kind === 'room' || c.kind === 'private') && c.name === name);
  const u = [...chat.users.values()].find((x) => x.name === name);
  return u && convs.find((c) => c.kind === 'dm' && (others(c)[0] ?? chat.me.id) === u.id);
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

export function focusSearch() {
  if (narrow()) document.body.classList.add('nav-open');
  $('search-input').focus();
  $('search-input').select();
}

/** Runs the search in the box (more: the next page of the open one) and shows the results. */
async function runSearch(more = false) {
  let s = ui.search;
  if (!more) {
    const raw = $('search-input').value.trim();
    if (!raw) return;
    const p = parseSearch(raw);
    s = ui.search = { raw, p, words: searchWords(p.q || ''), results: [], more: false, busy: !p.error, error: p.error };
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
    // The server is still building its index: it searched back only so far. "More results"
    // goes on from there.
    s.partial = !!r.partial;
  } catch (e) {
    if (e.status === 401) return signedOut();
    s.error = errText(e);
  }
  s.busy = false;
  if (ui.search === s) renderSearch();
}

/** Open results follow an edit (new text) or delete (gone) of a message they show. */
export function searchResultChanged(m) {
  const s = ui.search;
  const i = s ? s.results.findIndex((r) => r.conv === m.conv && r.seq === m.seq) : -1;
  if (i < 0) return;
  if (m.deleted) s.results.splice(i, 1);
  // An edit's frame carries no reactions: the result keeps the ones it showed.
  else s.results[i] = m.reactions ? m : { ...m, reactions: s.results[i].reactions };
  renderSearch();
}

/**
 * A `reactions` frame: a result showing that message redraws its chips in place, so that a
 * keyboard on one of them stays there (on the same emoji, else on "Add reaction").
 */
export function searchReactions(f) {
  const s = ui.search;
  const i = s ? s.results.findIndex((r) => r.conv === f.conv && r.seq === f.seq) : -1;
  if (i < 0) return;
  const m = s.results[i] = { ...s.results[i], reactions: f.reactions };
  const body = $('search-list').querySelector(`[data-conv="${f.conv}"][data-seq="${f.seq}"] .msg-body`);
  if (!body) return;
  const old = body.querySelector('.reactions');
  const focused = old?.contains(document.activeElement) ? document.activeElement : null;
  old?.remove();
  const row = reactionsView(chat.convs.get(m.conv), m);
  if (row) body.append(row);
  if (!focused) return;
  const same = [...(row?.children || [])].find((b) => focused.dataset.emoji && b.dataset.emoji === focused.dataset.emoji);
  (same || row?.querySelector('.reaction-add') || body.closest('li').querySelector('.result-where')).focus();
}

export function closeSearch(refocus = true) {
  ui.search = null;
  $('search-view').hidden = true;
  for (const el of document.querySelectorAll('.pane > :not(#search-view)')) el.inert = false;
  if (refocus && !narrow()) $('composer').focus();
  markRead(chat.convs.get(ui.current)); // what came in meanwhile is seen now
}

export function renderSearch() {
  const s = ui.search;
  if (!s) return;
  $('search-title').replaceChildren(h('span', { text: `Results for “${s.raw}”` }));
  const n = s.results.length;
  const status = $('search-status');
  status.textContent = s.error || (n ? `${n}${s.more ? '+' : ''} message${n === 1 && !s.more ? '' : 's'}`
    : s.busy ? 'Searching…' : 'No messages found.');
  status.classList.toggle('error', !!s.error);
  let note = $('search-partial');
  if (!note) {
    note = h('p', { class: 'search-status', id: 'search-partial', testid: 'search-partial', text: 'Older messages are still being indexed; results may be incomplete.' });
    status.after(note);
  }
  note.hidden = !s.partial || !!s.error;
  $('search-list').replaceChildren(...s.results.map((m) => resultItem(m, s.words)));
  const btn = $('search-more');
  btn.hidden = !s.more;
  btn.setAttribute('aria-disabled', String(s.busy)); // not `disabled`: keyboard focus stays on it
  btn.textContent = s.busy ? 'Loading…' : 'More results';
}

function resultItem(m, words) {
  const c = chat.convs.get(m.conv);
  const isRoom = c && (c.kind === 'room' || c.kind === 'private');
  const where = c ? convName(c) : 'a conversation you left';
  const text = h('div', { class: 'msg-text', testid: 'search-result-text' },
    highlight(renderText(m.text, textCtx()), words));
  if (m.edited_ts != null) text.append(h('span', { class: 'edited', text: ' (edited)' }));
  return h('li', {
    class: 'result', testid: 'search-result', data: { conv: m.conv, seq: m.seq, convName: where, authorName: chat.users.get(m.author)?.name || '' },
    onclick: (e) => { if (!e.target.closest('a, .code-block button, .reactions') && getSelection().isCollapsed) jumpTo(m.conv, m.seq); },
  },
  h('button', { type: 'button', class: 'link result-where', title: 'Show it in the conversation', 'aria-label': `In ${isRoom ? '#' : ''}${where}: show the message in the conversation` },
    isRoom ? icon(c.kind === 'private' ? 'lock' : 'hash') : null, h('span', { text: where })),
  h('div', { class: 'result-row' },
    h('div', { class: 'gutter' }, avatar(m.author)),
    h('div', { class: 'msg-body' },
      h('div', { class: 'msg-meta' },
        h('span', { class: 'author', testid: 'search-result-author', text: userName(m.author) }),
        h('time', { class: 'time', text: `${dayLabel(m.ts)}, ${timeFmt.format(m.ts)}`, title: fullFmt.format(m.ts), dateTime: new Date(m.ts).toISOString() })),
      text, reactionsView(c, m))));
}

/** Opens the conversation at message seq, paging back through history (20 pages at most) to reach it. */
export async function jumpTo(convId, seq) {
  const c = chat.convs.get(convId);
  if (!c) { toast('You are no longer in that conversation.'); return; }
  openConv(convId);
  await loadNewest(c);
  // Only while the message is older than the oldest loaded one: paging back cannot reach a newer one.
  for (let i = 0; i < 20 && c.loaded && c.more && c.oldest > seq && ui.current === convId; i++) {
    const n = c.msgs.size;
    await loadOlder(c, Math.min(200, Math.max(PAGE, c.oldest - seq + 5)));
    if (c.msgs.size === n) return; // the page did not load; loadOlder said why
  }
  if (ui.current !== convId || !c.loaded) return;
  revealSeq(c, seq);
  const row = $('messages').querySelector(`[data-testid="message"][data-seq="${seq}"]`);
  if (!row) { toast('That message is further back than Hallway loaded: scroll up to find it.', 6000); return; }
  row.scrollIntoView({ block: 'center' });
  row.classList.remove('flash');
  void row.offsetWidth; // restart the animation
  row.classList.add('flash');
  setTimeout(() => row.classList.remove('flash'), 3000);
}

/** The search box and the results' buttons. */
export function bindSearch() {
  attachAutocomplete($('search-input')); // from:@… and in:#…
  $('search-form').addEventListener('submit', (e) => { e.preventDefault(); runSearch(); });
  $('search-more').addEventListener('click', () => runSearch(true));
  $('btn-search-close').addEventListener('click', () => closeSearch());
}
