// reactions.js: emoji reactions on messages (docs/protocol.md, `react` and `reactions`).
// Under a message its chips (emoji and count, one's own highlighted, a click gives or takes
// back one's own); who reacted on hover (title) and focus (a small tooltip), and in the label
// screen readers read. On the message's tools a button opens six quick emoji and a picker of
// common ones, bundled here as text: no image, no web font. A reaction is not a message: it
// changes no unread count and notifies nobody. Emoji are always set as text, never as HTML.
import * as api from './api.js';
import { h, toast } from './dom.js';
import { chat, conn, PAGE, ui, userName } from './state.js';

const QUICK = ['👍', '❤️', '😂', '🎉', '👀', '✅'];

/** The picker's emoji with the names screen readers say. */
const PICKER = [
  ['👍', 'thumbs up'], ['👎', 'thumbs down'], ['👏', 'clapping'], ['🙌', 'raised hands'], ['🙏', 'thank you'],
  ['💪', 'strong'], ['👌', 'OK'], ['✌️', 'victory'], ['🤞', 'fingers crossed'], ['👋', 'waving'],
  ['🤝', 'handshake'], ['☝️', 'pointing up'], ['😀', 'grinning'], ['😃', 'smiling'], ['😄', 'laughing eyes'],
  ['😁', 'beaming'], ['😂', 'tears of joy'], ['🤣', 'rolling on the floor'], ['😊', 'blushing'], ['😇', 'halo'],
  ['🙂', 'slight smile'], ['😉', 'winking'], ['😍', 'heart eyes'], ['🥰', 'hearts'], ['😘', 'kiss'],
  ['😋', 'yum'], ['😎', 'cool'], ['🤓', 'nerd'], ['🤔', 'thinking'], ['🤨', 'raised eyebrow'],
  ['😐', 'neutral'], ['😑', 'expressionless'], ['🙄', 'eye roll'], ['😏', 'smirk'], ['😬', 'grimace'],
  ['😌', 'relieved'], ['😴', 'sleeping'], ['😷', 'mask'], ['🤒', 'ill'], ['🤯', 'mind blown'],
  ['🥳', 'party face'], ['😅', 'sweat smile'], ['😆', 'squinting laugh'], ['🙃', 'upside down'], ['😮', 'surprised'],
  ['😲', 'astonished'], ['😳', 'flushed'], ['🥺', 'pleading'], ['😢', 'crying'], ['😭', 'sobbing'],
  ['😤', 'huffing'], ['😠', 'angry'], ['😱', 'screaming'], ['😓', 'downcast sweat'], ['🤗', 'hug'],
  ['🤫', 'shush'], ['🤐', 'zipped mouth'], ['😶', 'no mouth'], ['🫡', 'salute'], ['🤷', 'shrug'],
  ['🤦', 'facepalm'], ['🙈', 'see no evil'], ['🙉', 'hear no evil'], ['🙊', 'speak no evil'], ['❤️', 'red heart'],
  ['🧡', 'orange heart'], ['💛', 'yellow heart'], ['💚', 'green heart'], ['💙', 'blue heart'], ['💜', 'purple heart'],
  ['💔', 'broken heart'], ['🔥', 'fire'], ['✨', 'sparkles'], ['⭐', 'star'], ['💯', 'hundred'],
  ['🎉', 'party popper'], ['🎊', 'confetti'], ['🎂', 'birthday cake'], ['🎁', 'gift'], ['🏆', 'trophy'],
  ['🚀', 'rocket'], ['👀', 'eyes'], ['🧠', 'brain'], ['💡', 'light bulb'], ['📌', 'pin'],
  ['📎', 'paperclip'], ['📅', 'calendar'], ['⏰', 'alarm clock'], ['☕', 'coffee'], ['🍕', 'pizza'],
  ['🍰', 'cake'], ['🍻', 'cheers'], ['✅', 'check mark'], ['☑️', 'ballot check'], ['❌', 'cross'],
  ['❗', 'exclamation'], ['❓', 'question'], ['⚠️', 'warning'], ['🚧', 'construction'], ['🐛', 'bug'],
  ['🔧', 'wrench'], ['🔒', 'lock'], ['➕', 'plus'], ['➖', 'minus'], ['💤', 'zzz'],
];

const mineIn = (r) => !!chat.me && r.users.includes(chat.me.id);
const mayReact = () => !!chat.me && chat.me.role !== 'reviewer';

/** "Alice, Bob and Carol", by display name. */
function names(users) {
  const list = users.map((id, i) => (id === chat.me?.id ? (i ? 'you' : 'You') : userName(id)));
  return list.length > 1 ? `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}` : list[0] || '';
}

/** Part of a row's signature: the row is drawn again when its reactions (or who sees them) change. */
export function reactionSig(m) {
  return (m.reactions || []).map((r) => `${r.emoji}:${r.users.join(',')}`).join(' ') + (m.reactions?.length ? `|${chat.users.size}` : '');
}

/** Gives or takes back one's reaction; the server's `reactions` frame redraws the row. */
async function toggle(conv, seq, emoji, on) {
  try { await conn.live.request({ type: 'react', conv, seq, emoji, on }); }
  catch (e) { toast(`Could not react: ${e.message}`); }
}

/**
 * The chips under a message (in the list or a search result), or null when nobody reacted.
 * Without c (a search result of a conversation one has left) they only show.
 */
export function reactionsView(c, m) {
  if (m.deleted || !m.reactions || !m.reactions.length) return null;
  const may = !!c && mayReact();
  const row = h('div', { class: 'reactions', testid: 'reactions', role: 'group', 'aria-label': 'Reactions' });
  for (const r of m.reactions) {
    const mine = mineIn(r);
    const who = `${names(r.users)} reacted with ${r.emoji}`;
    row.append(h('button', {
      type: 'button', class: `reaction${mine ? ' mine' : ''}`, testid: 'reaction', title: who,
      'aria-label': `${r.emoji} ${r.users.length}: ${who}${mine ? '; select to take yours back' : ''}`,
      'aria-pressed': String(mine), data: { emoji: r.emoji, who }, disabled: !may,
      onclick: () => toggle(c.id, m.seq, r.emoji, !mine),
    }, h('span', { class: 'reaction-emoji', text: r.emoji }), h('span', { class: 'reaction-count', text: String(r.users.length) })));
  }
  if (may) row.append(addButton(c, m, 'reaction-add'));
  return row;
}

function addButton(c, m, cls, testid = 'reaction-add') {
  return h('button', {
    type: 'button', class: cls, testid, title: 'Add reaction', 'aria-label': 'Add reaction', 'aria-haspopup': 'dialog',
    onclick: (e) => { e.stopPropagation(); openPicker(c, m, e.currentTarget); },
  }, '☺︎+');
}

/** The message's tools with "Add reaction" first. */
export function withReaction(c, m, editing, tools) {
  if (m.deleted || editing || m.system || m.seq == null || !mayReact()) return tools;
  const button = addButton(c, m, 'icon-btn react-btn', 'message-react');
  if (!tools) return h('div', { class: 'msg-tools' }, button);
  tools.prepend(button);
  return tools;
}

let open = null; // {el, back}: the picker shown, and where the focus goes when it closes

function closePicker(refocus = true) {
  if (!open) return;
  const { el, back } = open;
  open = null;
  el.remove();
  document.removeEventListener('pointerdown', outside, true);
  if (refocus && back && document.contains(back)) back.focus();
  else if (refocus) document.getElementById('composer')?.focus();
}

function outside(e) {
  if (open && !open.el.contains(e.target)) closePicker(false);
}

/** Six quick emoji, and the whole picker behind "More". Arrow keys move, Escape closes. */
export function openPicker(c, m, from) {
  closePicker(false);
  const pick = (emoji) => {
    const given = m.reactions?.find((r) => r.emoji === emoji);
    closePicker();
    toggle(c.id, m.seq, emoji, !(given && mineIn(given)));
  };
  const cell = (emoji, name) => h('button', {
    type: 'button', class: 'emoji-cell', testid: 'emoji', title: name || emoji, 'aria-label': name || emoji,
    text: emoji, onclick: () => pick(emoji),
  });
  const named = new Map(PICKER.map(([e, n]) => [e, n]));
  const grid = h('div', { class: 'emoji-grid', role: 'group', 'aria-label': 'More emoji', hidden: true });
  const more = h('button', {
    type: 'button', class: 'emoji-more', testid: 'emoji-more', text: 'More…', 'aria-expanded': 'false',
    onclick: () => {
      if (!grid.childElementCount) grid.append(...PICKER.map(([e, n]) => cell(e, n)));
      grid.hidden = false;
      more.setAttribute('aria-expanded', 'true');
      grid.firstChild?.focus();
    },
  });
  const el = h('div', { class: 'emoji-picker', testid: 'emoji-picker', role: 'dialog', 'aria-label': 'Add a reaction' },
    h('div', { class: 'emoji-quick' }, ...QUICK.map((e) => cell(e, named.get(e))), more), grid);
  el.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); closePicker(); return; }
    const cells = [...el.querySelectorAll('button:not([hidden])')].filter((b) => b.offsetParent !== null);
    const i = cells.indexOf(document.activeElement);
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 7, ArrowUp: -7 }[e.key];
    if (step && i >= 0) { e.preventDefault(); cells[Math.max(0, Math.min(cells.length - 1, i + step))].focus(); }
  });
  document.body.append(el);
  const r = from.getBoundingClientRect();
  const top = r.bottom + 4 + el.offsetHeight > innerHeight ? Math.max(4, r.top - 4 - el.offsetHeight) : r.bottom + 4;
  el.style.top = `${top}px`;
  el.style.left = `${Math.max(4, Math.min(innerWidth - el.offsetWidth - 4, r.right - el.offsetWidth))}px`;
  open = { el, back: from.closest('[data-testid="message"]') || from };
  document.addEventListener('pointerdown', outside, true);
  el.querySelector('button')?.focus();
}

/** A `reactions` frame: the message's reactions as they are now. Counts nowhere as unread. */
export function onReactions(f, redraw) {
  const c = chat.convs.get(f.conv);
  const m = c?.msgs.get(f.seq);
  if (!m) return; // not loaded: its page brings them
  c.msgs.set(f.seq, { ...m, reactions: f.reactions });
  if (c.id === ui.current) redraw();
}

/**
 * After a reconnect: a reaction takes no seq, so catching up does not bring the ones given
 * meanwhile; the newest page of the open conversation does, for the messages shown.
 */
export async function refreshReactions(c, redraw) {
  if (!c || !c.loaded) return;
  let page;
  try { page = await api.messages(c.id, { limit: PAGE }); } catch { return; } // the next reconnect tries again
  let changed = false;
  for (const m of page.messages) {
    const have = c.msgs.get(m.seq);
    if (!have || have.deleted || reactionSig(have) === reactionSig(m)) continue;
    c.msgs.set(m.seq, { ...have, reactions: m.reactions });
    changed = true;
  }
  if (changed && c.id === ui.current) redraw();
}

/** Before a `message_updated` replaces a message: an edit's carries no reactions, so it keeps them. */
export function keepReactions(c, m) {
  const old = c.msgs.get(m.seq);
  if (old && old.reactions && !m.deleted && !m.reactions) m.reactions = old.reactions;
}

// "+" on a message row (keyboard.js moves between rows) opens the picker for it.
document.addEventListener('keydown', (e) => {
  if (e.key !== '+' || e.ctrlKey || e.metaKey || e.altKey || !mayReact()) return;
  const row = e.target.matches?.('[data-testid="message"][data-seq]') ? e.target : null;
  const c = row && chat.convs.get(ui.current);
  const m = c?.msgs.get(Number(row.dataset.seq));
  if (!m || m.deleted || m.system) return;
  e.preventDefault();
  openPicker(c, m, row.querySelector('.react-btn') || row);
});
