// autocomplete.js: completing @people and #rooms in a text box (the message box, the edit
// box, the search box's from:@ and in:#). People are found by sign-in name and by any word of their display name, those online
// first; a completion writes `@name`, the sign-in name the server's mention rule reads
// (src/model.rs, mentioned_names), and messages show it with the display name (markup.js).
import { byName, dot, h, icon } from './dom.js';
import { chat, presenceOf } from './state.js';

const MAX = 8; // suggestions shown at once

/** Lowercased, without accents: "Zoë" is found by "zoe". */
const fold = (s) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

/** Whether the text before the caret ends inside code, where nothing is completed. */
function inCode(before) {
  if ((before.split('```').length - 1) % 2 === 1) return true;
  const line = before.slice(before.lastIndexOf('\n') + 1);
  return (line.split('`').length - 1) % 2 === 1;
}

/** The @ or # word right before the caret: {kind, start, query}, or null. */
function tokenAt(ta) {
  const end = ta.selectionStart;
  if (end !== ta.selectionEnd) return null;
  const before = ta.value.slice(0, end);
  // As the server reads mentions: the @ does not follow a letter, digit, _ or @.
  const m = /(?:^|[^\p{L}\p{N}_@#])([@#])([\p{L}\p{N}._-]{0,32})$/u.exec(before);
  if (!m || inCode(before)) return null;
  return { kind: m[1], start: end - m[2].length - 1, query: m[2] };
}

/** People matching q: [{value, label, detail, user}], online first, then by display name. */
export function peopleFor(q) {
  const f = fold(q);
  const online = (u) => (presenceOf(u.id).state === 'offline' ? 1 : 0);
  return [...chat.users.values()]
    .filter((u) => !u.disabled && u.id !== chat.me?.id)
    .filter((u) => !f || u.name.startsWith(f) || fold(u.display_name).split(/\s+/).some((w) => w.startsWith(f)) || fold(u.display_name).startsWith(f))
    .sort((a, b) => online(a) - online(b) || byName(a.display_name, b.display_name))
    .slice(0, MAX)
    .map((u) => ({ value: `@${u.name}`, label: u.display_name, detail: `@${u.name}`, user: u }));
}

/** Rooms of this person matching q: [{value, label, detail, room}]. */
function roomsFor(q) {
  const f = fold(q);
  return [...chat.convs.values()]
    .filter((c) => (c.kind === 'room' || c.kind === 'private') && (!f || c.name.includes(f)))
    .sort((a, b) => (b.name.startsWith(f) - a.name.startsWith(f)) || byName(a.name, b.name))
    .slice(0, MAX)
    .map((c) => ({ value: `#${c.name}`, label: c.name, detail: c.topic || '', room: c }));
}

let lists = 0; // ids of listboxes, unique in this page

/**
 * Completion for text box `ta`: the suggestions show by it (in its parent, which the CSS
 * positions) while an @ or # word is typed; Up and Down choose, Tab or Enter completes, Escape
 * closes. Its keys are taken before the box's own (Enter sends or saves there).
 */
export function attachAutocomplete(ta) {
  const list = h('ul', { class: 'ac-list', id: `ac-${++lists}`, role: 'listbox', testid: 'autocomplete', 'aria-label': 'Suggestions', hidden: true });
  ta.parentElement.append(list);
  ta.setAttribute('aria-autocomplete', 'list');
  ta.setAttribute('aria-controls', list.id);
  let items = [];
  let tok = null;
  let sel = 0;

  const close = () => {
    items = []; tok = null;
    list.hidden = true;
    ta.removeAttribute('aria-activedescendant');
  };
  const draw = () => {
    list.replaceChildren(...items.map((it, i) => h('li', {
      id: `${list.id}-${i}`, role: 'option', class: 'ac-item', testid: 'autocomplete-item',
      'aria-selected': String(i === sel), data: { value: it.value },
      onmousedown: (e) => { e.preventDefault(); sel = i; complete(); },
    }, it.user ? dot(it.user.id) : icon(it.room.kind === 'private' ? 'lock' : 'hash'),
    h('span', { class: 'ac-label', text: it.label }), it.detail ? h('span', { class: 'ac-detail', text: it.detail }) : null)));
    list.hidden = false;
    ta.setAttribute('aria-activedescendant', `${list.id}-${sel}`);
  };
  const update = () => {
    tok = chat.me ? tokenAt(ta) : null;
    items = !tok ? [] : tok.kind === '@' ? peopleFor(tok.query) : roomsFor(tok.query);
    if (!items.length) { close(); return; }
    sel = 0;
    draw();
  };
  const complete = () => {
    const it = items[sel];
    const end = ta.selectionStart;
    ta.setRangeText(`${it.value} `, tok.start, end, 'end');
    close();
    ta.dispatchEvent(new Event('input', { bubbles: true }));
  };

  ta.addEventListener('input', update);
  ta.addEventListener('click', update);
  ta.addEventListener('blur', close);
  ta.addEventListener('keydown', (e) => {
    if (list.hidden || e.isComposing) return;
    let take = true;
    if (e.key === 'ArrowDown') { sel = (sel + 1) % items.length; draw(); }
    else if (e.key === 'ArrowUp') { sel = (sel + items.length - 1) % items.length; draw(); }
    else if (e.key === 'Escape') close();
    else if (e.key === 'Tab' && !e.shiftKey) complete();
    // Enter completes what was begun; on a bare @ or # or a name typed out in full it sends
    // (saves, searches) as it would without the list.
    else if (e.key === 'Enter' && !e.shiftKey && tok.query && `${tok.kind}${tok.query.toLowerCase()}` !== items[sel].value) complete();
    else take = false;
    if (take) { e.preventDefault(); e.stopImmediatePropagation(); }
    else if (e.key === 'Enter') close();
  }, true); // at the box itself, capturing listeners run before its own
  ta.addEventListener('keyup', (e) => { if (e.key === 'ArrowLeft' || e.key === 'ArrowRight' || e.key === 'Home' || e.key === 'End') update(); });
  return { close };
}
