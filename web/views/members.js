// views/members.js: the members of the open conversation, from the header's member count:
// each with presence and status; in a room, its creator and admins may remove members
// (`remove_member`, docs/protocol.md).
import { byName, dot, errText, h, toast } from '../dom.js';
import { chat, conn, presenceOf, STATE_LABEL, statusText, ui, userName } from '../state.js';

let dlg = null; // the dialog, made on first use

function build() {
  const list = h('ul', { class: 'pick-list members-list', testid: 'members-list' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const title = h('h2', { id: 'members-title' });
  const d = h('dialog', { id: 'dlg-members', testid: 'members-dialog', 'aria-labelledby': 'members-title' },
    h('form', { method: 'dialog' }, title, list, error,
      h('div', { class: 'dlg-buttons' }, h('button', { class: 'btn', testid: 'members-close', text: 'Close' }))));
  document.body.append(d);
  return { d, list, error, title };
}

const mayRemove = (c) => (c.kind === 'room' || c.kind === 'private') && (c.created_by === chat.me.id || chat.me.role === 'admin');

/** Draws the open dialog again (members came or went); nothing when it is closed. */
export function membersChanged(convId) {
  if (dlg?.d.open && dlg.conv === convId) draw();
}

function draw() {
  const c = chat.convs.get(dlg.conv);
  if (!c) { dlg.d.close(); return; }
  const n = c.members.length;
  dlg.title.textContent = `${n} ${n === 1 ? 'member' : 'members'}`;
  const online = (id) => (presenceOf(id).state === 'offline' ? 1 : 0);
  const ids = [...c.members].sort((a, b) => online(a) - online(b) || byName(userName(a), userName(b)));
  const removing = mayRemove(c);
  dlg.list.replaceChildren(...ids.map((id) => {
    const u = chat.users.get(id);
    const st = statusText(presenceOf(id));
    return h('li', { class: 'pick member', testid: 'member', data: { userName: u?.name || '' } },
      dot(id),
      h('span', { class: 'member-name' }, h('span', { text: id === chat.me.id ? `${userName(id)} (you)` : userName(id) }),
        h('span', { class: 'muted', text: ` @${u?.name || id}${id === c.created_by ? ' · created the room' : ''}` }),
        st ? h('span', { class: 'muted member-status', text: ` · ${st}` }) : null),
      h('span', { class: 'sr-only', text: STATE_LABEL[presenceOf(id).state] || 'Offline' }),
      removing && id !== chat.me.id ? h('button', {
        type: 'button', class: 'btn small danger', testid: 'member-remove', text: 'Remove',
        'aria-label': `Remove ${userName(id)} from #${c.name}`,
        onclick: () => remove(c, id),
      }) : null);
  }));
}

async function remove(c, id) {
  if (!confirm(`Remove ${userName(id)} from #${c.name}?`)) return;
  dlg.error.textContent = '';
  try {
    await conn.live.request({ type: 'remove_member', conv: c.id, user: id });
    toast(`${userName(id)} was removed from #${c.name}.`);
  } catch (e) { dlg.error.textContent = errText(e); }
}

/** Opens the members of the open conversation. */
export function showMembers() {
  const c = chat.convs.get(ui.current);
  if (!c) return;
  dlg ||= build();
  dlg.conv = c.id;
  dlg.error.textContent = '';
  draw();
  dlg.d.showModal();
}
