// state.js: everything this tab knows, in four named parts, and the conversation model
// (merging history and live messages, unread counts). No DOM and no server calls here.

/** Messages per history page when nothing asks for more. */
export const PAGE = 50;

/** What the server told this tab: who is signed in, the people, the conversations. */
export const chat = {
  me: null,               // User of this session
  policy: null,           // the server's records Policy, from hello (docs/protocol.md)
  users: new Map(),       // user id -> User
  presence: new Map(),    // user id -> Presence
  convs: new Map(),       // conversation id -> Conversation (see newConversation)
};

/** The live connection. */
export const conn = {
  live: null,             // api.Live of this sign-in
  online: false,          // a hello arrived on the current socket
  gen: 0,                 // counts hellos; catch-ups of an older socket stop
};

/** What this tab shows. */
export const ui = {
  current: null,          // id of the open conversation
  typing: new Map(),      // conversation id -> Map(user id -> ms when to stop showing it)
  drafts: new Map(),      // conversation id -> composer text left there
  editing: null,          // {conv, seq} of the message being edited inline
  wantOpen: null,         // conversation to open once its `conversation` frame arrives
  search: null,           // open search results: {raw, p, words, results, more, next, busy, error}
};

/** This person's activity, for idle presence and typing frames. */
export const activity = {
  idle: false,            // this tab told the server it is idle
  lastInput: Date.now(),  // ms of the last keypress, click or touch
  hiddenSince: null,      // ms the tab was hidden at, while it is
  lastTypingSent: 0,      // ms of the last `typing` frame sent
};

/**
 * A conversation as this tab holds it: the server's fields (refreshed by every `hello` and
 * `conversation` frame) and this tab's own, which only the client sets.
 */
function newConversation(id) {
  return {
    // The server's Conversation (docs/protocol.md)
    id, kind: 'room', name: '', topic: '', members: [], last_seq: 0, read_seq: 0,
    unread: 0, mentions: 0, recorded: false,
    records: null,        // Records: what it keeps and who set it (null from a server without them)
    created_by: null,     // who created a room: they (and admins) may change what it keeps
    // The loaded history: one window of messages from `oldest` up to the newest
    msgs: new Map(),      // seq -> Message
    oldest: null,         // seq of the oldest message of the loaded pages
    loaded: false,        // the newest page arrived
    loading: false,       // the newest page is on its way
    newestP: null,        // promise of that load, shared by whoever waits for it
    more: true,           // older messages exist on the server
    loadingOlder: false,  // an older page is on its way
    olderP: null,         // promise of that load
    olderFailedAt: 0,     // ms an older page last failed (no automatic retry for a while)
    seen: 0,              // highest seq/rev this tab has (live or history): catch-ups start there
    catching: 0,          // conn.gen of the catch-up under way, or 0
    // Sends of this tab not yet seen back as a message
    pending: new Map(),   // client_id -> {client_id, text, ts, state, error}
    // What the view shows
    newFrom: null,        // read marker when the conversation was opened: the "New" line goes after it
    jumpToNew: false,     // the next render scrolls to the "New" line
    winStart: null,       // seq of the first message in the page, or null: the newest (views/messages.js)
    winFollow: true,      // the page reaches the newest message and takes each new one
    notes: [],            // system lines seen live: {id, after: last_seq then, text} ("Bob left")
  };
}

export const userName = (id) => chat.users.get(id)?.display_name || chat.users.get(id)?.name || `user ${id}`;

export function presenceOf(id) {
  return chat.presence.get(id) || { user: id, state: 'offline', status: '', status_expires: null };
}

export function statusText(p) {
  if (!p.status) return '';
  if (p.status_expires != null && p.status_expires <= Date.now()) return '';
  return p.status;
}

export const STATE_LABEL = { online: 'Online', away: 'Away', dnd: 'Do not disturb', offline: 'Offline' };

export function others(c) { return c.members.filter((id) => id !== chat.me.id); }

export function convName(c) {
  if (c.kind === 'room' || c.kind === 'private') return c.name;
  const o = others(c);
  const names = o.map(userName).sort((a, b) => a.localeCompare(b));
  // A group stays a group when people leave it: "Bob and you", never the name of the DM with Bob.
  if (c.kind === 'group' && names.length < 2) return names.length ? `${names[0]} and you` : 'Only you (group)';
  if (o.length === 0) return `${userName(chat.me.id)} (you)`;
  return names.join(', ');
}

/** Adds or refreshes a conversation from the server's object; returns this tab's. */
export function addConv(c) {
  const old = chat.convs.get(c.id);
  const conv = old || newConversation(c.id);
  Object.assign(conv, {
    kind: c.kind, name: c.name || '', topic: c.topic || '', members: c.members || [],
    last_seq: Math.max(c.last_seq || 0, old ? old.last_seq : 0), read_seq: c.read_seq || 0,
    unread: c.unread || 0, mentions: c.mentions || 0, recorded: !!c.recorded,
    records: c.records || null, created_by: c.created_by ?? null, announcements: !!c.announcements,
  });
  chat.convs.set(c.id, conv);
  return conv;
}

export const revOf = (m) => (m.rev != null ? m.rev : m.seq);

/** Store a message (history or live), newest revision wins. Returns true if it was new. */
export function merge(c, m) {
  const old = c.msgs.get(m.seq);
  // An edit or delete of a message older than the loaded pages waits for its page: keeping
  // it alone would leave a gap that paging back would skip.
  if (!old && c.oldest != null && m.seq < c.oldest) {
    c.last_seq = Math.max(c.last_seq, revOf(m));
    return false;
  }
  if (!old || revOf(m) >= revOf(old)) c.msgs.set(m.seq, m);
  if (m.client_id && m.author === chat.me.id) c.pending.delete(m.client_id);
  c.last_seq = Math.max(c.last_seq, revOf(m));
  return !old;
}

export function recountUnread(c) {
  if (c.read_seq >= c.last_seq) { c.unread = 0; c.mentions = 0; return; }
  const seqs = [...c.msgs.keys()];
  const oldest = seqs.length ? Math.min(...seqs) : Infinity;
  if (c.loaded && (!c.more || oldest <= c.read_seq + 1)) {
    let u = 0, mn = 0;
    for (const m of c.msgs.values()) {
      if (m.seq > c.read_seq && m.author !== chat.me.id && !m.deleted) {
        u++;
        if (m.mentions && m.mentions.includes(chat.me.id)) mn++;
      }
    }
    c.unread = u; c.mentions = mn;
  } else {
    c.unread = Math.min(c.unread, c.last_seq - c.read_seq);
    c.mentions = Math.min(c.mentions, c.unread);
  }
}

let namesCache = null; // {src, size, set, users} for userNames and userNamed

function names() {
  const c = namesCache;
  if (c && c.src === chat.users && c.size === chat.users.size) return c;
  const users = new Map([...chat.users.values()].map((u) => [u.name, u]));
  namesCache = { src: chat.users, size: chat.users.size, set: new Set(users.keys()), users };
  return namesCache;
}

/** The sign-in names of every user, for telling @mentions from other words. */
export const userNames = () => names().set;

/** The user with sign-in name `name`, or undefined. */
export const userNamed = (name) => names().users.get(name);

/** What markup.js needs to render a message: who is signed in, who exists, and how they are shown. */
export function textCtx() {
  return { me: chat.me.name, names: userNames(), display: (name) => userNamed(name)?.display_name || null, room: roomNamed };
}

/** The id of the room (public or private) named `name` that this person is in, or null. */
function roomNamed(name) {
  for (const c of chat.convs.values()) if ((c.kind === 'room' || c.kind === 'private') && c.name === name) return c.id;
  return null;
}
