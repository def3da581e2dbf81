// views/sidebar.js: the sidebar's rooms, direct messages and people, the signed-in user's
// bar, and the unread count in the title and favicon.
import { openConv, openDm } from '../conversation.js';
import { $, avatar, byName, dot, h, icon } from '../dom.js';
import { chat, convName, others, presenceOf, STATE_LABEL, statusText, ui, userName } from '../state.js';

export function sortConvs(list) {
  return list.sort((a, b) => byName(convName(a), convName(b)));
}

function convItem(c) {
  const active = c.id === ui.current;
  const o = others(c);
  let lead;
  if (c.kind === 'room') lead = h('span', { class: 'lead' }, icon('hash'));
  else if (c.kind === 'private') lead = h('span', { class: 'lead', title: 'Private room' }, icon('lock'));
  else if (c.kind === 'dm') lead = h('span', { class: 'lead' }, dot(o[0] ?? chat.me.id));
  else lead = h('span', { class: 'lead group-count', text: String(c.members.length) });
  const badge = c.unread > 0
    ? h('span', { class: c.mentions > 0 || c.kind === 'dm' || c.kind === 'group' ? 'badge badge-mention' : 'badge', testid: 'unread-badge', text: String(c.unread) })
    : null;
  return h('li', null, h('button', {
    class: `conv-item${active ? ' active' : ''}${c.unread > 0 ? ' unread' : ''}${c.mentions > 0 ? ' has-mention' : ''}`,
    testid: 'conv-item',
    data: { convId: c.id, convName: c.kind === 'room' || c.kind === 'private' ? c.name : convName(c), kind: c.kind, unread: c.unread, mentions: c.mentions },
    title: c.topic || convName(c),
    onclick: () => openConv(c.id),
  }, lead, h('span', { class: 'label', text: convName(c) }), badge));
}

export function renderSidebar() {
  if (!chat.me) return;
  const convs = [...chat.convs.values()];
  $('room-list').replaceChildren(...sortConvs(convs.filter((c) => c.kind === 'room' || c.kind === 'private')).map(convItem));
  const dms = sortConvs(convs.filter((c) => c.kind === 'dm' || c.kind === 'group')).map(convItem);
  $('dm-list').replaceChildren(...(dms.length ? dms : [h('li', { class: 'side-hint', text: 'Pick a person below to write to them.' })]));
  const away = (u) => (presenceOf(u.id).state === 'offline' ? 1 : 0);
  const people = [...chat.users.values()].sort((a, b) => (a.id === chat.me.id) - (b.id === chat.me.id) || away(a) - away(b)
    || byName(a.display_name, b.display_name));
  $('people-list').replaceChildren(...people.map((u) => {
    const st = statusText(presenceOf(u.id));
    return h('li', null, h('button', {
      class: 'conv-item person', testid: 'person-item', data: { userName: u.name, userId: u.id },
      title: `${u.display_name} (@${u.name}) · ${STATE_LABEL[presenceOf(u.id).state] || 'Offline'}${st ? ' · ' + st : ''}`,
      onclick: () => openDm([u.id].filter((id) => id !== chat.me.id)),
    }, h('span', { class: 'lead' }, dot(u.id)),
    h('span', { class: 'label' },
      h('span', { class: 'pname', text: u.id === chat.me.id ? `${u.display_name} (you)` : u.display_name }),
      st ? h('span', { class: 'pstatus', testid: 'person-status', text: st }) : null)));
  }));
  const total = convs.reduce((n, c) => n + c.unread, 0);
  document.title = total > 0 ? `(${total}) Hallway` : 'Hallway';
  setFavicon(total);
}

let faviconCount = null; // what the favicon shows now

export function setFavicon(count) {
  if (faviconCount === count) return;
  faviconCount = count;
  const badge = count > 0 ? "<circle cx='25' cy='7' r='7' fill='%23e01e5a'/>" : '';
  const svg = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'><rect x='1' y='3' width='26' height='26' rx='7' fill='%234a154b'/>"
    + "<text x='14' y='23' font-family='sans-serif' font-weight='700' font-size='17' text-anchor='middle' fill='white'>H</text>" + badge + '</svg>';
  document.querySelector('link[rel=icon]').href = 'data:image/svg+xml,' + svg;
}

export function renderMe() {
  if (!chat.me) return;
  const p = presenceOf(chat.me.id);
  $('me-avatar').replaceChildren(avatar(chat.me.id, 'small'), dot(chat.me.id));
  $('me-name').textContent = chat.me.display_name;
  $('me-status').textContent = statusText(p) || (p.state === 'dnd' ? 'Do not disturb' : STATE_LABEL[p.state] || 'Online');
}
