// notify.js: desktop notifications for what this person should not miss while looking
// elsewhere: DMs and groups, mentions, and rooms they set to "all".
//
// Browsers allow notifications only in a secure context (HTTPS, or this machine) and only
// after the person said yes, which the page asks for from the setting, never on load. Each
// conversation has a level: all, mentions or nothing (DMs and groups default to all, rooms
// to mentions). Kept in this browser (localStorage, per account): it is a preference of the
// device as much as of the person, like the system's own notification settings.
//
// A notification shows the author and the start of the text, except in a conversation that
// is not recorded: the system's notification centre may keep what it showed, so those say
// only who wrote. Do-not-disturb silences all of them.
import { displayText } from './markup.js';
import { chat, convName, presenceOf, textCtx, ui, userName } from './state.js';

export const LEVELS = ['all', 'mentions', 'nothing'];

const key = (what) => `hallway.notify.${chat.me?.id ?? 0}.${what}`;

function load(what) {
  try { return localStorage.getItem(key(what)); } catch { return null; }
}

function save(what, value) {
  try { localStorage.setItem(key(what), value); } catch { /* private mode: this tab only */ }
}

/** Why this page cannot notify, or null when it can. */
export function unavailable() {
  if (!window.isSecureContext) return 'insecure';
  if (typeof Notification !== 'function') return 'unsupported';
  return null;
}

/** Whether notifications are on: asked for, allowed, and not turned off here since. */
export function enabled() {
  return !unavailable() && Notification.permission === 'granted' && load('enabled') === 'on';
}

/** Turns notifications on (asking the browser, from the click that called this) or off. */
export async function setEnabled(on) {
  if (!on) { save('enabled', 'off'); return false; }
  if (unavailable()) return false;
  let permission = Notification.permission;
  if (permission === 'default') permission = await Notification.requestPermission();
  save('enabled', permission === 'granted' ? 'on' : 'off');
  return permission === 'granted';
}

export function levelOf(c) {
  const stored = load(`level.${c.id}`);
  if (LEVELS.includes(stored)) return stored;
  return c.kind === 'dm' || c.kind === 'group' ? 'all' : 'mentions';
}

export function setLevel(c, level) {
  if (LEVELS.includes(level)) save(`level.${c.id}`, level);
}

/** Whether message `m` of conversation `c` should reach this person's desktop. */
export function wanted(c, m) {
  if (m.author === chat.me.id || m.deleted || m.system) return false;
  if (presenceOf(chat.me.id).state === 'dnd') return false;
  const looking = c.id === ui.current && !document.hidden && document.hasFocus();
  if (looking) return false;
  const level = levelOf(c);
  if (level === 'nothing') return false;
  return level === 'all' || (m.mentions || []).includes(chat.me.id);
}

/** Shows a notification for a new message if this person wants one; clicking opens it. */
export function notifyMessage(c, m, open) {
  if (!enabled() || !wanted(c, m)) return;
  const author = userName(m.author);
  const title = c.kind === 'room' || c.kind === 'private' ? `${author} in #${convName(c)}` : c.kind === 'dm' ? author : `${author} in ${convName(c)}`;
  const files = (m.attachments || []).map((a) => a.name).join(', ');
  const text = m.text ? displayText(m.text, textCtx()) : files ? `sent ${files}` : '';
  const body = c.recorded === false ? 'New message (not recorded: open Hallway to read it)' : text.slice(0, 180);
  try {
    // One per conversation: a burst replaces the last one instead of piling up.
    const n = new Notification(title, { body, tag: `hallway-conv-${c.id}`, silent: false });
    n.onclick = () => { window.focus(); open(c.id); n.close(); };
  } catch { /* a notification is a nicety */ }
}
