// views/header.js: the open conversation's header (name, topic, what it keeps, members,
// actions) and the typing line under the message box.
import { renderAdminsOnly, showPosting } from '../announce.js';
import { leaveConv } from '../conversation.js';
import { $, dot, h, icon, kids, toast } from '../dom.js';
import { chat, conn, convName, others, presenceOf, STATE_LABEL, statusText, ui, userName } from '../state.js';
import { pickPeople } from './dialogs.js';
import { levelOf } from '../notify.js';
import { showMembers } from './members.js';
import { showNotify } from './notify.js';
import { renderRecords } from './records.js';

export function renderHeader() {
  const c = chat.convs.get(ui.current);
  const title = $('conv-title');
  const topic = $('conv-topic');
  const actions = $('conv-actions');
  if (!c) {
    title.replaceChildren('No conversation');
    topic.replaceChildren(); actions.replaceChildren();
    renderRecords(null);
    renderAdminsOnly(null);
    $('composer').disabled = true;
    return;
  }
  $('composer').disabled = false;
  renderAdminsOnly(c);
  const isRoom = c.kind === 'room' || c.kind === 'private';
  const o = others(c);
  title.replaceChildren(...kids(
    isRoom ? icon(c.kind === 'private' ? 'lock' : 'hash') : c.kind === 'dm' ? dot(o[0] ?? chat.me.id) : null,
    h('span', { text: convName(c) })));
  renderRecords(c);

  if (isRoom) {
    if (!topic.querySelector('input')) {
      topic.replaceChildren(h('button', {
        class: `topic-btn${c.topic ? '' : ' empty'}`, testid: 'topic-edit', title: 'Edit the topic',
        text: c.topic || 'Add a topic', onclick: () => editTopic(c),
      }));
    }
  } else if (c.kind === 'dm' && o.length === 1) {
    const p = presenceOf(o[0]);
    const st = statusText(p);
    topic.replaceChildren(h('span', { text: (STATE_LABEL[p.state] || 'Offline') + (st ? ` · ${st}` : '') }));
  } else {
    const n = c.members.length;
    topic.replaceChildren(h('span', { text: c.kind === 'group' || n > 1 ? `${n} ${n === 1 ? 'person' : 'people'}` : 'Your notes' }));
  }

  const posting = `Who can post: ${c.announcements ? 'only admins' : 'everyone'}`;
  const names = c.members.map(userName).sort((a, b) => a.localeCompare(b)).join(', ');
  actions.replaceChildren(...kids(
    h('button', { type: 'button', class: 'members', title: `Members: ${names}`, 'aria-label': `${c.members.length} members: show them`, testid: 'member-count', onclick: showMembers },
      icon('users'), String(c.members.length)),
    h('button', { class: 'icon-btn', testid: 'notify-button', title: `Notifications: ${levelOf(c)}`, 'aria-label': 'Notifications', onclick: () => showNotify(c, renderHeader) },
      icon(levelOf(c) === 'nothing' ? 'bellOff' : 'bell')),
    isRoom && chat.me.role === 'admin' ? h('button', {
      type: 'button', class: `icon-btn${c.announcements ? ' on' : ''}`, testid: 'posting-button', title: posting, 'aria-label': posting,
      'aria-haspopup': 'dialog', onclick: () => showPosting(c),
    }, icon('megaphone')) : null,
    isRoom ? h('button', { class: 'btn small', testid: 'invite-button', title: 'Invite people', onclick: () => pickPeople('invite') },
      icon('userPlus'), h('span', { class: 'btn-label', text: 'Invite' })) : null,
    c.kind !== 'dm' ? h('button', { class: 'btn small', testid: 'leave-button', title: 'Leave this conversation', onclick: () => leaveConv(c) },
      icon('logout'), h('span', { class: 'btn-label', text: 'Leave' })) : null,
  ));
}

function editTopic(c) {
  const topic = $('conv-topic');
  const input = h('input', { class: 'topic-input', testid: 'topic-input', value: c.topic, maxLength: 250, placeholder: 'What is this room about?' });
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const v = input.value.trim();
    topic.replaceChildren();
    renderHeader();
    if (!save || v === c.topic) return;
    try { await conn.live.request({ type: 'set_topic', conv: c.id, topic: v }); c.topic = v; renderHeader(); }
    catch (e) { toast(`Could not change the topic: ${e.message}`); }
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); finish(true); }
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
  topic.replaceChildren(input);
  input.focus();
}

export function renderTyping() {
  const el = $('typing');
  const m = ui.typing.get(ui.current);
  const now = Date.now();
  const names = [];
  if (m) for (const [u, exp] of m) { if (exp > now) names.push(userName(u)); else m.delete(u); }
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = 'Several people are typing…';
  el.textContent = text;
}
