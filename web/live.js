// live.js: what the tab does with each frame from the server (docs/protocol.md,
// "Server → client"): updates the state, then the views that show it.
import { deliver } from './composer.js';
import { openConv, renderAll } from './conversation.js';
import { $, toast } from './dom.js';
import { catchUp, looking, markRead } from './history.js';
import { renderSearch, searchReactions, searchResultChanged } from './search.js';
import { announce } from './keyboard.js';
import { onAckFrame } from './announce.js';
import { notifyMessage } from './notify.js';
import { keepReactions, onReactions, refreshReactions } from './reactions.js';
import { chime } from './sound.js';
import { activity, addConv, chat, conn, merge, recountUnread, revOf, ui, userName } from './state.js';
import { renderHeader, renderTyping } from './views/header.js';
import { queueMessages } from './views/messages.js';
import { membersChanged } from './views/members.js';
import { recordsChanged } from './views/records.js';
import { adminChanged, showAdminEntry } from './views/admin.js';
import { showRoleEntries } from './views/review.js';
import { renderMe, renderSidebar, sidebarConv, sortConvs } from './views/sidebar.js';

const TYPING_SHOW_MS = 5000;

let noteIds = 0; // ids of system lines, unique in this tab

export function onFrame(f) {
  switch (f.type) {
    case 'hello': return onHello(f);
    case 'message': return onMessage(f.message);
    case 'message_updated': {
      const c = chat.convs.get(f.message.conv);
      if (!c) return;
      keepReactions(c, f.message);
      if (c.loaded || c.loading) merge(c, f.message);
      else c.last_seq = Math.max(c.last_seq, revOf(f.message));
      if (!c.catching) c.seen = Math.max(c.seen, revOf(f.message));
      if (c.id === ui.current) { queueMessages(); markRead(c); }
      searchResultChanged(f.message);
      return;
    }
    case 'reactions': // never unread, never notified
      onReactions(f, queueMessages);
      searchReactions(f);
      return;
    case 'typing': {
      if (f.user === chat.me?.id) return;
      if (!ui.typing.has(f.conv)) ui.typing.set(f.conv, new Map());
      ui.typing.get(f.conv).set(f.user, Date.now() + TYPING_SHOW_MS);
      renderTyping();
      setTimeout(renderTyping, TYPING_SHOW_MS + 50);
      return;
    }
    case 'read': {
      const c = chat.convs.get(f.conv);
      if (!c) return;
      c.read_seq = Math.max(c.read_seq, f.seq);
      recountUnread(c);
      sidebarConv(c.id);
      return;
    }
    case 'presence':
      chat.presence.set(f.presence.user, f.presence);
      renderSidebar(); renderHeader(); renderMe();
      adminChanged('presence');
      membersChanged(ui.current);
      queueMessages(); // the dots beside authors
      return;
    case 'conversation': {
      const c = addConv(f.conversation);
      if (ui.wantOpen === c.id) { ui.wantOpen = null; openConv(c.id); } else sidebarConv(c.id);
      // Sent anew when a room becomes an announcements room or an ordinary one again: the
      // message box and the "Got it" under each message follow.
      if (c.id === ui.current) { renderHeader(); queueMessages(); }
      return;
    }
    case 'conversation_left': {
      const gone = chat.convs.get(f.conv);
      if (gone && f.by != null && f.by !== chat.me?.id) toast(`${userName(f.by)} removed you from ${gone.kind === 'group' ? 'a group conversation' : '#' + gone.name}.`, 6000);
      chat.convs.delete(f.conv);
      // Open results stay open, without the ones this user may no longer read.
      if (ui.search) { ui.search.results = ui.search.results.filter((m) => m.conv !== f.conv); renderSearch(); }
      if (ui.current === f.conv) { ui.current = null; openConv(defaultConv(), { keepSearch: true }); } else sidebarConv(f.conv);
      return;
    }
    case 'member_joined':
    case 'member_left': {
      const c = chat.convs.get(f.conv);
      if (!c) return;
      const set = new Set(c.members);
      const had = set.has(f.user);
      if (f.type === 'member_joined') set.add(f.user); else set.delete(f.user);
      c.members = [...set];
      // Live only: history has no record of who left, so after a reload the line is gone.
      if (f.type === 'member_left' && had) c.notes.push({ id: ++noteIds, after: c.last_seq, text: f.by != null ? `${userName(f.by)} removed ${userName(f.user)}` : `${userName(f.user)} left` });
      sidebarConv(c.id);
      membersChanged(c.id);
      if (c.id === ui.current) { renderHeader(); queueMessages(); }
      return;
    }
    case 'topic': {
      const c = chat.convs.get(f.conv);
      if (!c) return;
      c.topic = f.topic || '';
      if (c.id === ui.current) renderHeader();
      return;
    }
    case 'records': {
      const c = chat.convs.get(f.conv);
      if (!c) return;
      c.records = f.records;
      c.recorded = f.records.keep !== 'nothing';
      sidebarConv(c.id);
      recordsChanged(c.id);
      return;
    }
    case 'policy':
      // The admin changed what the server keeps; each conversation's `records` follows.
      chat.policy = f.records || null;
      if (ui.current != null) recordsChanged(ui.current);
      return;
    case 'purged': {
      // Past what the conversation keeps: gone from the server, so gone from view too.
      const c = chat.convs.get(f.conv);
      if (!c) return;
      for (const seq of f.seqs) c.msgs.delete(seq);
      recountUnread(c);
      sidebarConv(c.id);
      if (c.id === ui.current) queueMessages();
      if (ui.search) { ui.search.results = ui.search.results.filter((m) => m.conv !== f.conv || !f.seqs.includes(m.seq)); renderSearch(); }
      return;
    }
    case 'user':
      chat.users.set(f.user.id, f.user);
      if (f.user.id === chat.me?.id) {
        // An admin changed this person's role: the entries of the role follow at once.
        chat.me = f.user;
        $('btn-add-user').hidden = chat.me.role !== 'admin';
  showRoleEntries(chat.me);
  showAdminEntry(chat.me);
        showRoleEntries(chat.me);
        showAdminEntry(chat.me);
        renderHeader(); // what only admins have there, and the message box of an announcements room
        queueMessages(); // the counts under announcements only admins see
      }
      renderSidebar();
      adminChanged('users');
      return;
    case 'acknowledged':
    case 'acknowledgements':
      onAckFrame(f);
      return;
    case 'error':
      toast(f.message || f.code);
      return;
    default:
      return; // pong, ack without a waiting request, and frames from newer servers
  }
}

function onHello(f) {
  const gen = ++conn.gen;
  chat.me = f.me;
  chat.policy = f.records || null;
  chat.users = new Map(f.users.map((u) => [u.id, u]));
  chat.presence = new Map(f.presence.map((p) => [p.user, p]));
  const ids = new Set();
  for (const c of f.conversations) { ids.add(c.id); addConv(c); }
  for (const id of [...chat.convs.keys()]) if (!ids.has(id)) chat.convs.delete(id);
  conn.online = true;
  $('banner').hidden = true;
  if (activity.idle) conn.live.send({ type: 'presence', idle: true });
  $('btn-add-user').hidden = chat.me.role !== 'admin';
  for (const c of chat.convs.values()) {
    catchUp(c, gen);
    for (const p of c.pending.values()) if (p.state !== 'failed') deliver(c, p);
  }
  // Results of a search made before this (right after the page loaded) stay open, less
  // those of conversations this user is no longer in.
  if (ui.search) { ui.search.results = ui.search.results.filter((m) => chat.convs.has(m.conv)); renderSearch(); }
  // Reactions take no seq, so catching up misses those given meanwhile: the open
  // conversation reads them again below, every other loaded one when it is opened.
  for (const c of chat.convs.values()) if (c.loaded && c.id !== ui.current) c.reactionsStale = true;
  if (!ui.current || !chat.convs.has(ui.current)) {
    const saved = Number(localStorage.getItem('hallway.conv'));
    ui.current = null;
    openConv(chat.convs.has(saved) ? saved : defaultConv(), { keepSearch: true });
  } else {
    renderAll();
    markRead(chat.convs.get(ui.current));
    refreshReactions(chat.convs.get(ui.current), queueMessages);
  }
}

function onMessage(m) {
  const c = chat.convs.get(m.conv);
  if (!c) return;
  let isNew;
  if (c.loaded || c.loading) isNew = merge(c, m);
  else { isNew = m.seq > c.last_seq; c.last_seq = Math.max(c.last_seq, revOf(m)); }
  if (!c.catching) c.seen = Math.max(c.seen, revOf(m));
  if (isNew && m.author !== chat.me.id && m.seq > c.read_seq && !m.deleted) {
    c.unread++;
    if (m.mentions && m.mentions.includes(chat.me.id)) c.mentions++;
  }
  ui.typing.get(c.id)?.delete(m.author);
  if (c.id === ui.current && isNew && m.author !== chat.me.id && c.newFrom == null && !looking()) c.newFrom = Math.min(c.read_seq, m.seq - 1);
  if (isNew && m.author !== chat.me.id && !m.deleted && !m.system && (c.id !== ui.current || !looking())
    && (c.kind === 'dm' || c.kind === 'group' || (m.mentions && m.mentions.includes(chat.me.id)))) chime();
  if (isNew) notifyMessage(c, m, openConv);
  if (isNew) announce(c, m);
  if (c.id === ui.current) {
    queueMessages({ toBottom: m.author === chat.me.id });
    renderTyping();
    markRead(c);
  }
  sidebarConv(c.id);
}

function defaultConv() {
  const list = [...chat.convs.values()];
  return (list.find((c) => c.kind === 'room' && c.name === 'general') || sortConvs(list)[0])?.id ?? null;
}
