// keyboard.js: the message list without a mouse, and new messages for screen readers.
// Shift+Tab from the message box (or Tab to the list) enters it at the newest message; Up and Down
// move over messages, Home and End go to the first and last; on one's own message Enter or E
// edits and Delete or D deletes (after a confirmation); Escape goes back to the message box.
// The focused message keeps the focus when its row is drawn again (edited, deleted).
import { deleteMessage } from './conversation.js';
import { $ } from './dom.js';
import { chat, ui, userName } from './state.js';
import { startEdit } from './views/messages.js';

const ROWS = '[data-testid="message"][data-seq]';

function focusRow(row) {
  if (!row) return;
  row.tabIndex = -1;
  row.focus();
  row.scrollIntoView({ block: 'nearest' });
}

export function bindKeyboard() {
  const list = $('messages');
  let held = null; // seq of the message that has the focus, while it is in the list

  list.addEventListener('focus', (e) => {
    // Coming from outside: to the newest message. Shift+Tab from a message leaves the list be.
    if (e.target === list && !list.contains(e.relatedTarget)) {
      const rows = list.querySelectorAll(ROWS);
      focusRow(rows[rows.length - 1]);
    }
  });
  document.addEventListener('focusin', (e) => {
    const row = list.contains(e.target) ? e.target.closest(ROWS) : null;
    held = row ? row.dataset.seq : null;
  });
  // A row drawn again is a new element: the focus it had goes back to it.
  new MutationObserver(() => {
    if (held == null || (document.activeElement && document.activeElement !== document.body)) return;
    const row = list.querySelector(`${ROWS}[data-seq="${held}"]`);
    if (row) { row.tabIndex = -1; row.focus({ preventScroll: true }); }
  }).observe(list, { childList: true, subtree: true });

  // From the message box, Shift+Tab goes to the newest message (not to the last button of
  // some older one, which is what comes before the box in the page).
  $('composer').addEventListener('keydown', (e) => {
    if (e.key !== 'Tab' || !e.shiftKey || e.ctrlKey || e.metaKey || e.altKey) return;
    const rows = list.querySelectorAll(ROWS);
    if (!rows.length) return;
    e.preventDefault();
    focusRow(rows[rows.length - 1]);
  });

  list.addEventListener('keydown', (e) => {
    const row = e.target.matches?.(ROWS) ? e.target : null;
    if (!row || e.ctrlKey || e.metaKey || e.altKey) return;
    const rows = [...list.querySelectorAll(ROWS)];
    const i = rows.indexOf(row);
    const c = chat.convs.get(ui.current);
    const m = c?.msgs.get(Number(row.dataset.seq));
    const mine = m && m.author === chat.me.id && !m.deleted && !m.system;
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (key === 'ArrowUp') focusRow(rows[Math.max(0, i - 1)]);
    else if (key === 'ArrowDown') focusRow(rows[Math.min(rows.length - 1, i + 1)]);
    else if (key === 'Home') focusRow(rows[0]);
    else if (key === 'End') focusRow(rows[rows.length - 1]);
    else if (key === 'Escape') $('composer').focus();
    else if ((key === 'Enter' || key === 'e') && mine) startEdit(c, m.seq);
    else if ((key === 'Delete' || key === 'd') && m && !m.deleted && !m.system && (mine || chat.me.role === 'admin')) deleteMessage(c, m);
    else return;
    e.preventDefault();
  });
}

/** Says a new message in the open conversation to screen readers (the list itself is not live: it redraws). */
export function announce(c, m) {
  if (c.id !== ui.current || m.author === chat.me.id || m.deleted || m.system) return;
  const el = $('announcer');
  if (!el) return;
  const text = m.text.length > 300 ? `${m.text.slice(0, 300)}…` : m.text;
  el.textContent = `${userName(m.author)}: ${text}`;
}
