// views/admin/users.js: the admin page's Users section (docs/protocol.md "Accounts"): every
// account with its role, whether it is disabled, its open tabs and when it was last seen;
// change a role, reset a password, disable and enable. The server refuses what would leave
// no admin, and says so; the row shows that refusal.
import * as api from '../../api.js';
import { errText, h, toast, whenFmt } from '../../dom.js';
import { chat } from '../../state.js';
import { showAddUser } from '../dialogs.js';

const ROLES = [['member', 'Member'], ['reviewer', 'Reviewer'], ['admin', 'Admin']];

/** What the section shows: null until drawn. */
let view = null;

export function ago(ts, now = Date.now()) {
  const min = Math.floor((now - ts) / 60000);
  if (min < 1) return 'just now';
  if (min < 60) return `${min} min ago`;
  const hours = Math.floor(min / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  return days < 30 ? `${days} day${days === 1 ? '' : 's'} ago` : whenFmt.format(ts);
}

function seenText(u) {
  if (u.tabs > 0) return `Online now · ${u.tabs} tab${u.tabs === 1 ? '' : 's'} open`;
  return u.last_seen != null ? `Last seen ${ago(u.last_seen)}` : 'Never opened Hallway';
}

async function load(v) {
  v.loading = true;
  try {
    const r = await api.adminUsers();
    v.users = r.users;
    v.idleDays = r.session_idle_days;
    v.error = '';
  } catch (e) { v.error = errText(e); }
  v.loading = false;
  if (view === v && v.root.isConnected) drawList(v);
}

function drawList(v) {
  v.status.textContent = v.error || (v.users.length ? '' : 'Loading…');
  if (v.idleDays != null) v.note.textContent = `A signed-in browser stays signed in until it goes ${v.idleDays} days unused (server option --session-idle-days).`;
  v.status.classList.toggle('error', !!v.error);
  v.list.replaceChildren(...v.users.map((u) => row(v, u)));
}

function row(v, u) {
  const me = u.id === chat.me?.id;
  const error = h('p', { class: 'form-error', testid: 'admin-user-error', role: 'alert' });
  const controls = [];
  const act = async (action, body, done) => {
    for (const c of controls) c.disabled = true;
    error.textContent = '';
    try {
      await api.adminUser(u.id, action, body);
      toast(done);
      await load(v);
    } catch (e) {
      for (const c of controls) c.disabled = false;
      error.textContent = errText(e);
      return false;
    }
    return true;
  };
  const role = h('select', {
    class: 'admin-role', testid: 'admin-user-role', 'aria-label': `Role of ${u.name}`,
    onchange: async () => {
      const wanted = role.value;
      if (!(await act('role', { role: wanted }, `${u.display_name} is now ${wanted}.`))) role.value = u.role;
    },
  }, ...ROLES.map(([value, text]) => h('option', { value, text, selected: value === u.role })));
  const password = h('input', { type: 'password', name: 'password', testid: 'admin-reset-password-input', minLength: 8, autocomplete: 'new-password', 'aria-label': `New password for ${u.name}`, placeholder: 'New password (8+ characters)' });
  const reset = h('form', {
    class: 'admin-reset', testid: 'admin-reset-form', hidden: true, novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      if (password.value.length < 8) { error.textContent = 'The password needs at least 8 characters.'; return; }
      await act('password', { password: password.value }, `New password set for ${u.display_name}; their sessions ended.`);
    },
  }, password, h('button', { type: 'submit', class: 'btn small primary', testid: 'admin-reset-password-submit', text: 'Set password' }));
  const resetBtn = h('button', {
    type: 'button', class: 'btn small', testid: 'admin-reset-password', text: 'Reset password',
    onclick: () => { reset.hidden = !reset.hidden; if (!reset.hidden) password.focus(); },
  });
  const toggle = me ? null : u.disabled
    ? h('button', { type: 'button', class: 'btn small', testid: 'admin-user-enable', text: 'Enable', onclick: () => act('enable', {}, `${u.display_name} can sign in again.`) })
    : h('button', { type: 'button', class: 'btn small danger', testid: 'admin-user-disable', text: 'Disable', onclick: () => act('disable', {}, `${u.display_name} is disabled and signed out.`) });
  controls.push(role, resetBtn, password, ...(toggle ? [toggle] : []));
  return h('li', { class: 'admin-user', testid: 'admin-user', data: { userName: u.name, role: u.role, disabled: String(u.disabled), tabs: String(u.tabs) } },
    h('div', { class: 'admin-user-main' },
      h('div', { class: 'admin-user-name' },
        h('strong', { text: u.display_name }), h('span', { class: 'muted', text: ` @${u.name}${me ? ' (you)' : ''}` }),
        u.disabled ? h('span', { class: 'admin-flag', testid: 'admin-user-disabled', text: 'Disabled' }) : null),
      h('div', { class: 'muted admin-user-seen', testid: 'admin-user-seen', text: seenText(u) })),
    h('div', { class: 'admin-user-actions' }, role, resetBtn, toggle),
    reset, error);
}

export default {
  id: 'users',
  title: 'Users',
  draw() {
    const v = view = { users: [], error: '', loading: false };
    v.status = h('p', { class: 'search-status', testid: 'admin-users-status', role: 'status', text: 'Loading…' });
    v.list = h('ul', { class: 'admin-users', testid: 'admin-users' });
    v.note = h('p', { class: 'muted admin-note', testid: 'admin-session-idle' });
    v.root = h('div', null,
      h('div', { class: 'admin-row' }, h('button', { type: 'button', class: 'btn small primary', testid: 'admin-add-user', text: 'Add user', onclick: showAddUser })),
      v.status, v.list, v.note);
    load(v);
    return v.root;
  },
  changed(what) {
    // Presence means a tab opened or closed: the tab counts change. At most one reload a
    // second, however many colleagues come and go.
    const v = view;
    if (!v || !v.root.isConnected || (what !== 'users' && what !== 'presence') || v.again) return;
    v.again = setTimeout(() => { v.again = null; if (v.root.isConnected) load(v); }, what === 'users' ? 0 : 1000);
  },
};
