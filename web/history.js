// history.js: pages of messages from the REST API: the newest page when a conversation
// opens, older pages as the reader scrolls back, catch-up after a reconnect; read markers.
import * as api from './api.js';
import { $, toast } from './dom.js';
import { signedOut } from './signin.js';
import { conn, convName, merge, PAGE, recountUnread, revOf, ui } from './state.js';
import { renderMessages } from './views/messages.js';
import { sidebarConv } from './views/sidebar.js';

export function looking() {
  return !document.hidden && document.hasFocus() && !ui.search; // search results cover the conversation
}

/** Send a read marker for the open conversation when the user can see it. */
export function markRead(c) {
  if (!c || c.id !== ui.current || !c.loaded || !conn.online || !looking()) return;
  if (c.last_seq <= c.read_seq && c.unread === 0) return;
  c.read_seq = Math.max(c.read_seq, c.last_seq);
  c.unread = 0; c.mentions = 0;
  conn.live.send({ type: 'read', conv: c.id, seq: c.read_seq });
  sidebarConv(c.id);
}

/** The newest page of c; resolves when it is loaded (or failed), also if a load was already under way. */
export function loadNewest(c) {
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
    // Open at the first unread message however far back it is: page back until it is loaded.
    while (c.jumpToNew && c.newFrom != null && c.more && c.oldest > c.newFrom && c.id === ui.current) {
      const n = c.msgs.size;
      await loadOlder(c, 200);
      if (c.msgs.size === n) break; // the page did not load; loadOlder said why
    }
    if (c.id === ui.current) { renderMessages({ toBottom: true }); markRead(c); }
  } catch (e) {
    if (e.status === 401) return signedOut();
    if (c.id === ui.current) toast(`Could not load messages: ${e.message}`);
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
export function loadOlder(c, limit = PAGE) {
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
    if (c.id === ui.current) renderMessages({ keepAnchor: true });
  }
}

/** After a reconnect: fetch everything that changed after what this tab has. */
export async function catchUp(c, gen) {
  if (!c.loaded || c.last_seq <= c.seen) return;
  c.catching = gen;
  let cursor = c.seen;
  try {
    for (let i = 0; i < 1000; i++) {
      const r = await api.messages(c.id, { after: cursor, limit: 200 });
      if (conn.gen !== gen) return;
      for (const m of r.messages) { merge(c, m); cursor = Math.max(cursor, revOf(m)); }
      if (!r.more || !r.messages.length) { cursor = Math.max(cursor, r.last_seq || 0); break; }
    }
    c.seen = Math.max(c.seen, cursor);
    recountUnread(c);
  } catch (e) {
    if (e.status === 401) return signedOut();
    if (conn.gen === gen) toast(`Could not catch up on ${convName(c)}: ${e.message}`);
  } finally {
    if (c.catching === gen) c.catching = 0;
    if (c.id === ui.current) { renderMessages(); markRead(c); }
    sidebarConv(c.id);
  }
}
