// views/dialogs.js: the dialogs: people picker (new DM, invite), room directory, new
// room, status, add user.
import * as api from '../api.js';
import { openConv, openDm } from '../conversation.js';
import { $, accountFields, byName, dot, errText, formError, h, icon, timeFmt, toast, whenFmt } from '../dom.js';
import { chat, conn, presenceOf, statusText, ui, userName } from '../state.js';
import { renderSidebar } from './sidebar.js';

function openDialog(id) {
  const d = $(id);
  const f = d.querySelector('form');
  formError(f, '');
  d.showModal();
  return { d, f };
}

export function pickPeople(mode) {
  const { d, f } = openDialog('dlg-people');
  const c = chat.convs.get(ui.current);
  const exclude = new Set(mode === 'invite' && c ? c.members : [chat.me.id]);
  $('people-title').textContent = mode === 'invite' ? `Invite people to #${c.name}` : 'New message';
  $('people-submit').textContent = mode === 'invite' ? 'Invite' : 'Start conversation';
  const filter = $('people-filter');
  filter.value = '';
  const chosen = new Set();
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const people = [...chat.users.values()].filter((u) => !exclude.has(u.id) && !u.disabled)
      .filter((u) => !q || u.name.includes(q) || u.display_name.toLowerCase().includes(q))
      .sort((a, b) => byName(a.display_name, b.display_name));
    $('pick-list').replaceChildren(...(people.length ? people.map((u) => h('li', null, h('label', { class: 'pick', testid: 'pick-person', data: { userName: u.name } },
      h('input', { type: 'checkbox', checked: chosen.has(u.id), onchange: (e) => { if (e.target.checked) chosen.add(u.id); else chosen.delete(u.id); } }),
      dot(u.id), h('span', { text: u.display_name }), h('span', { class: 'muted', text: `@${u.name}` }))))
      : [h('li', { class: 'muted', text: 'Nobody to add.' })]));
  };
  filter.oninput = draw;
  draw();
  f.onsubmit = async (e) => {
    e.preventDefault();
    if (!chosen.size) { formError(f, 'Pick at least one person.'); return; }
    if (mode === 'invite') {
      try {
        for (const id of chosen) await conn.live.request({ type: 'invite', conv: c.id, user: id });
        d.close();
        toast(`Invited ${[...chosen].map(userName).join(', ')}.`);
      } catch (err) { formError(f, errText(err)); }
    } else if (await openDm([...chosen])) d.close();
  };
  filter.focus();
}

export async function showDirectory() {
  const { f } = openDialog('dlg-directory');
  const list = $('dir-list');
  list.replaceChildren(h('li', { class: 'muted', text: 'Loading…' }));
  try {
    const { rooms } = await api.rooms();
    list.replaceChildren(...(rooms.length ? rooms.map((r) => h('li', { class: 'dir-item', testid: 'directory-room', data: { roomName: r.name } },
      h('div', { class: 'dir-main' },
        h('div', { class: 'dir-name' }, icon('hash'), h('span', { text: r.name })),
        h('div', { class: 'muted', text: `${r.member_count} member${r.member_count === 1 ? '' : 's'}${r.topic ? ' · ' + r.topic : ''}` })),
      h('button', {
        type: 'button', class: r.joined ? 'btn small' : 'btn small primary', testid: r.joined ? 'directory-open' : 'directory-join',
        text: r.joined ? 'Open' : 'Join',
        onclick: async () => {
          if (!r.joined) {
            try { await conn.live.request({ type: 'join', conv: r.id }); } catch (e) { formError(f, errText(e)); return; }
          }
          $('dlg-directory').close();
          if (chat.convs.has(r.id)) openConv(r.id); else ui.wantOpen = r.id;
        },
      })))
      : [h('li', { class: 'muted', text: 'No public rooms yet.' })]));
  } catch (e) {
    list.replaceChildren();
    formError(f, errText(e));
  }
}

export function showCreateRoom() {
  const { d, f } = openDialog('dlg-create-room');
  f.reset();
  f.querySelector('.admin-only').hidden = chat.me.role !== 'admin';
  f.onsubmit = async (e) => {
    e.preventDefault();
    const name = f.elements.name.value.trim().toLowerCase();
    if (!/^[a-z0-9][a-z0-9._-]{0,31}$/.test(name)) { formError(f, 'Room names are 1-32 characters: a-z, 0-9, dot, dash or underscore.'); return; }
    try {
      const ack = await conn.live.request({ type: 'create_room', name, topic: f.elements.topic.value.trim(), private: f.elements.private.checked, members: [], announcements: f.elements.announcements.checked });
      d.close();
      if (chat.convs.has(ack.conv)) openConv(ack.conv); else ui.wantOpen = ack.conv;
    } catch (err) { formError(f, err.code === 'name_taken' ? 'A room with that name already exists.' : errText(err)); }
  };
  f.elements.name.focus();
}

export function showStatus() {
  const { d, f } = openDialog('dlg-status');
  const p = presenceOf(chat.me.id);
  f.elements.status.value = statusText(p);
  f.elements.dnd.checked = p.state === 'dnd';
  // A status that clears itself keeps its time when saved again unchanged.
  const sel = f.elements.expires;
  sel.querySelector('option[value=keep]')?.remove();
  const current = p.status_expires != null && p.status_expires > Date.now() ? p.status_expires : null;
  if (current) {
    const at = new Date(current).toDateString() === new Date().toDateString() ? timeFmt.format(current) : whenFmt.format(current);
    sel.prepend(h('option', { value: 'keep', text: `Keep: clears at ${at}` }));
  }
  sel.value = current ? 'keep' : '';
  const save = async (status, expires, dnd) => {
    let until = null;
    // The expiry clears the whole status, do-not-disturb included ("Do not disturb for 1 hour").
    if (!status && !dnd) until = null;
    else if (expires === 'keep') until = current;
    else if (expires === 'today') { const t = new Date(); t.setHours(23, 59, 59, 0); until = t.getTime(); }
    else if (expires) until = Date.now() + Number(expires) * 60000;
    try {
      await conn.live.request({ type: 'set_status', dnd, status, status_expires: until });
      d.close();
    } catch (err) { formError(f, errText(err)); }
  };
  f.onsubmit = (e) => { e.preventDefault(); save(f.elements.status.value.trim(), f.elements.expires.value, f.elements.dnd.checked); };
  // Clear means all of it: the text, its expiry and do-not-disturb.
  $('status-clear').onclick = () => save('', '', false);
  f.elements.status.focus();
}

export function showAddUser() {
  const { d, f } = openDialog('dlg-add-user');
  f.reset();
  f.onsubmit = async (e) => {
    e.preventDefault();
    const fields = accountFields(f);
    if (!fields) return;
    const u = { ...fields, role: f.elements.role.value };
    try {
      const { user } = await api.createUser(u);
      chat.users.set(user.id, user);
      renderSidebar();
      d.close();
      toast(`Added ${user.display_name}. They sign in as "${user.name}".`);
    } catch (err) { formError(f, err.code === 'name_taken' ? 'An account with that sign-in name exists.' : errText(err)); }
  };
  f.elements.name.focus();
}
