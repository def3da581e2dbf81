// views/records.js: what the open conversation keeps, everywhere it shows: the banner over
// the message list, the header chip, the note over the message box, and the dialog that
// changes it within the server's policy (docs/protocol.md, "Records" and `set_records`).
import { $, formError, h, icon } from '../dom.js';
import { keepPhrase, keepShort, keepText, rank, serverDecides, whoText } from '../records.js';
import { chat, conn, ui, userName } from '../state.js';

const MAX_DAYS = 36500;

const isRoom = (c) => c.kind === 'room' || c.kind === 'private';

/** The icon that stands for a way of keeping. */
export const keepIcon = (r) => (r.keep === 'nothing' ? 'dbOff' : r.keep === 'archive' ? 'archive' : r.keep === 'forever' ? 'db' : 'clock');

/** Banner, chip and composer note of conversation c (null: none open). */
export function renderRecords(c) {
  const banner = $('records-banner');
  const chip = $('recorded');
  const note = $('composer-note');
  const r = c?.records;
  if (!r) {
    // A server that does not say what it keeps: claim nothing either way.
    banner.hidden = true; note.hidden = true; chip.hidden = true;
    return;
  }
  const text = keepText(r);
  const who = whoText(c, chat.policy, chat.me.id, userName);
  banner.hidden = false;
  banner.dataset.keep = r.keep;
  banner.replaceChildren(icon(keepIcon(r)),
    h('span', { class: 'records-text', testid: 'records-text', text }),
    h('span', { class: 'records-who', testid: 'records-who', text: ` · ${who}` }),
    h('button', { type: 'button', class: 'link', testid: 'records-change', text: canChange(c) ? 'Change' : 'Details', onclick: () => showRecords(c) }));
  chip.hidden = false;
  chip.replaceChildren(icon(keepIcon(r)), h('span', { class: 'rec-label', text: keepShort(r) }));
  chip.className = `recorded ${r.keep === 'nothing' ? 'off' : r.keep === 'archive' ? 'archive' : 'on'}`;
  chip.dataset.keep = r.keep;
  chip.dataset.recorded = String(r.keep !== 'nothing');
  chip.title = `${text} (${who}). Click for details.`;
  chip.setAttribute('aria-label', `What this conversation keeps: ${text}`);
  chip.onclick = () => showRecords(c);
  note.hidden = r.keep !== 'nothing';
}

/** Whether this user may change what c keeps (the server has the last word: `forbidden`). */
function canChange(c) {
  if (serverDecides(chat.policy)) return false;
  if (!isRoom(c) || chat.me.role === 'admin') return true;
  // A server that does not say who created the room gets the form, and answers `forbidden`
  // to anyone else: better than locking its creator out of their own room.
  return c.created_by == null || c.created_by === chat.me.id;
}

let open = null; // id of the conversation the dialog shows, while it is open

/** What the dialog says about c's rule, its members' choices and the server's part. */
function drawFacts(c) {
  const r = c.records;
  const p = chat.policy;
  $('records-now').textContent = `${keepText(r)} · ${whoText(c, p, chat.me.id, userName)}`;
  let rule;
  if (p?.policy === 'archive') rule = "This server archives every conversation for compliance review. Its administrator set this for everyone: nobody can change it here.";
  else if (p?.policy === 'off') rule = "This server records nothing: every conversation is delivered live and never saved. Its administrator set this for everyone: nobody can change it here.";
  else if (isRoom(c) && !canChange(c)) {
    const creator = c.created_by != null ? ` (${userName(c.created_by)})` : '';
    rule = `Only the room's creator${creator} or an admin can change what this room keeps.`;
  } else if (isRoom(c)) {
    rule = 'This applies to messages sent from now on, for everyone in this room.';
    if (c.created_by == null && chat.me.role !== 'admin') rule = `Only the room's creator or an admin can change what this room keeps. ${rule}`;
  }
  else rule = 'Each person here chooses. The conversation keeps the least of the choices, so it is never recorded more than anyone in it chose. Yours applies to messages sent from now on.';
  if (p?.policy === 'retain') rule += ` This server keeps messages at most ${p.days} day${p.days === 1 ? '' : 's'}.`;
  $('records-rule').textContent = rule;

  const list = $('records-choices');
  if (isRoom(c)) { list.replaceChildren(); list.hidden = true; return; }
  const byUser = new Map((r.choices || []).map((ch) => [ch.user, ch]));
  const least = Math.min(...c.members.map((id) => rank(byUser.get(id))));
  list.hidden = false;
  list.replaceChildren(...c.members.map((id) => {
    const ch = byUser.get(id);
    const said = ch ? keepPhrase(ch) : 'has not chosen (kept)';
    return h('li', { testid: 'records-choice', data: { userId: id, keep: ch?.keep || 'forever', least: String(least !== Infinity && rank(ch) === least) } },
      h('strong', { text: id === chat.me.id ? 'You' : userName(id) }), `: ${said}`);
  }));
}

/** Opens the dialog for conversation c: its rule, and the form to change it when allowed. */
export function showRecords(c) {
  const d = $('dlg-records');
  const f = d.querySelector('form');
  const r = c.records;
  if (!r) return;
  const p = chat.policy;
  const allowed = canChange(c);
  const cap = p?.policy === 'retain' ? p.days : MAX_DAYS;
  formError(f, '');
  open = c.id;
  drawFacts(c);
  $('records-options').hidden = !allowed;
  $('records-submit').hidden = !allowed;
  $('records-cancel').textContent = allowed ? 'Cancel' : 'Close';
  d.dataset.readonly = String(!allowed);
  $('records-forever-label').textContent = p?.policy === 'retain' ? `Keep as long as the server allows (${cap} days)` : 'Keep until someone deletes them';
  const daysBox = f.elements.days;
  daysBox.max = String(cap);
  $('records-days-hint').textContent = p?.policy === 'retain' ? `(at most ${cap})` : '';
  // Start from what holds now: the room's rule, or in a DM or group this user's own choice.
  const mine = isRoom(c) ? r : (r.choices || []).find((ch) => ch.user === chat.me.id) || { keep: 'forever', days: null };
  const start = mine.keep === 'archive' ? 'forever' : mine.keep;
  for (const radio of f.querySelectorAll('input[name=keep]')) radio.checked = radio.value === start;
  daysBox.value = String(mine.days || Math.min(30, cap));
  daysBox.oninput = () => { f.querySelector('input[name=keep][value=days]').checked = true; };
  d.onclose = () => { open = null; };
  f.onsubmit = async (e) => {
    e.preventDefault();
    if (!allowed) { d.close(); return; }
    const keep = f.querySelector('input[name=keep]:checked')?.value;
    if (!keep) { formError(f, 'Choose what this conversation keeps.'); return; }
    let days = null;
    if (keep === 'days') {
      days = Number(daysBox.value);
      if (!Number.isInteger(days) || days < 1 || days > cap) {
        formError(f, p?.policy === 'retain' ? `Enter a number of days from 1 to ${cap}: this server keeps messages at most ${cap} days.` : `Enter a number of days from 1 to ${cap}.`);
        return;
      }
    }
    const btn = $('records-submit');
    btn.disabled = true;
    formError(f, '');
    try {
      await conn.live.request({ type: 'set_records', conv: c.id, keep, days });
      d.close();
    } catch (err) {
      // The server's own words: it says why (only the creator, the policy, the days allowed).
      formError(f, err.message || err.code);
    } finally {
      btn.disabled = false;
    }
  };
  d.showModal();
}

/** A `records` frame for conversation id: keep an open dialog's facts true. */
export function recordsChanged(id) {
  const c = chat.convs.get(id);
  if (open === id && c && $('dlg-records').open) drawFacts(c);
  if (id === ui.current) renderRecords(c);
}
