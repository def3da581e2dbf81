// conversation.js: opening, starting and leaving conversations, deleting messages.
import { autosize } from './composer.js';
import { $, narrow, toast } from './dom.js';
import { loadNewest, markRead } from './history.js';
import { refreshReactions } from './reactions.js';
import { closeSearch } from './search.js';
import { chat, conn, ui } from './state.js';
import { renderHeader, renderTyping } from './views/header.js';
import { queueMessages, renderMessages, rowCache } from './views/messages.js';
import { renderMe, renderSidebar } from './views/sidebar.js';

export function renderAll() {
  renderSidebar(); renderHeader(); renderMessages({ toBottom: true }); renderTyping(); renderMe();
}

/** Shows a conversation; keepSearch leaves open search results in front of it. */
export function openConv(id, { keepSearch = false } = {}) {
  if (id == null || !chat.convs.has(id)) { ui.current = null; renderAll(); return; }
  if (ui.search && !keepSearch) closeSearch(false);
  const prev = ui.current;
  if (prev != null && prev !== id) ui.drafts.set(prev, $('composer').value);
  ui.current = id;
  ui.editing = null;
  try { localStorage.setItem('hallway.conv', String(id)); } catch { /* private mode */ }
  const c = chat.convs.get(id);
  if (prev !== id) {
    // Where the unread part starts: a "New" line there, and the view opens at it.
    c.newFrom = c.unread > 0 ? c.read_seq : null;
    c.jumpToNew = c.newFrom != null;
    rowCache.clear(); // rows are cheap to rebuild; keep memory to one conversation
    $('messages').replaceChildren();
    $('conv-topic').replaceChildren();
    $('composer').value = ui.drafts.get(id) || '';
    autosize();
  }
  document.body.classList.remove('nav-open');
  renderAll();
  if (!c.loaded) loadNewest(c);
  else markRead(c);
  if (c.reactionsStale) { c.reactionsStale = false; refreshReactions(c, queueMessages); }
  // Not away from a box the person is typing in (the search box, as the first hello opens a
  // conversation right after the page loads).
  const typingElsewhere = document.activeElement?.matches?.('input, textarea, select, [contenteditable]') && document.activeElement !== $('composer');
  if (!narrow() && !typingElsewhere) $('composer').focus();
}

/** A #room in a message text (markup.js) opens that room. */
export function bindRoomRefs() {
  document.addEventListener('click', (e) => {
    const b = e.target.closest?.('button.room-ref');
    if (!b) return;
    e.preventDefault();
    e.stopPropagation(); // not the search result's jump around it
    openConv(Number(b.dataset.conv));
  }, true);
}

export async function openDm(userIds) {
  try {
    const ack = await conn.live.request({ type: 'open_dm', users: userIds });
    if (chat.convs.has(ack.conv)) openConv(ack.conv); else ui.wantOpen = ack.conv;
    return true;
  } catch (e) {
    toast(`Could not open the conversation: ${e.message}`);
    return false;
  }
}

export async function leaveConv(c) {
  if (!confirm(`Leave ${c.kind === 'group' ? 'this group conversation' : '#' + c.name}?`)) return;
  try { await conn.live.request({ type: 'leave', conv: c.id }); }
  catch (e) { toast(`Could not leave: ${e.message}`); }
}

export async function deleteMessage(c, m) {
  if (!confirm('Delete this message? This cannot be undone.')) return;
  try { await conn.live.request({ type: 'delete', conv: c.id, seq: m.seq }); }
  catch (e) { toast(`Could not delete: ${e.message}`); }
}
