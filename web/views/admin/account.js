// views/admin/account.js: the "Your account" sections every person has (docs/protocol.md
// "Your account"): a new password, given the current one (the other sessions end), and the
// list of signed-in browsers with device, address and last use, each of which can be signed
// out, or all others at once.
import * as api from '../../api.js';
import { errText, formError, h, toast } from '../../dom.js';
import { ago } from './users.js';

export const password = {
  id: 'password',
  title: 'Password',
  draw() {
    const field = (name, label, autocomplete) => h('label', null, label,
      h('input', { type: 'password', name, testid: `account-${name}`, autocomplete, required: true }));
    const f = h('form', { class: 'account-password', testid: 'account-password-form', novalidate: true },
      field('current', 'Current password', 'current-password'),
      field('password', 'New password (at least 8 characters)', 'new-password'),
      h('p', { class: 'form-error', testid: 'account-password-error', role: 'alert' }),
      h('button', { type: 'submit', class: 'btn primary', testid: 'account-password-submit', text: 'Change password' }));
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      const { current, password: next } = f.elements;
      if (next.value.length < 8) { formError(f, 'The new password needs at least 8 characters.'); return; }
      formError(f, '');
      try {
        await api.changePassword(current.value, next.value);
        f.reset();
        toast('Password changed. Your other devices were signed out.');
        sessions.changed?.('sessions');
      } catch (err) {
        formError(f, err.code === 'bad_credentials' ? 'That is not your current password.' : errText(err));
      }
    });
    return f;
  },
};

let view = null;

async function load(v) {
  try {
    const r = await api.mySessions();
    v.list.replaceChildren(...r.sessions.map((s) => item(v, s)));
    v.note.textContent = `A device that goes ${r.idle_days} days unused is signed out by itself.`;
    v.others.hidden = r.sessions.length < 2;
    v.status.textContent = '';
  } catch (e) { v.status.textContent = errText(e); }
}

function item(v, s) {
  const where = [s.address, `last used ${ago(s.last_used)}`].filter(Boolean).join(' · ');
  return h('li', { testid: 'account-session', data: { current: String(s.current), device: s.device } },
    h('div', { class: 'grow' },
      h('strong', { text: s.device || 'A browser' }), s.current ? h('span', { class: 'muted', text: ' (this one)' }) : null,
      h('div', { class: 'muted', text: s.current ? `${s.address} · now` : where })),
    s.current ? null : h('button', {
      type: 'button', class: 'btn small', testid: 'account-session-sign-out', text: 'Sign out',
      onclick: async () => {
        try { await api.endSession1(s.id); toast(`Signed out ${s.device || 'that browser'}.`); } catch (e) { v.status.textContent = errText(e); }
        load(v);
      },
    }));
}

export const sessions = {
  id: 'sessions',
  title: 'Signed-in devices',
  draw() {
    const v = view = {};
    v.status = h('p', { class: 'form-error', role: 'alert' });
    v.list = h('ul', { class: 'admin-list', testid: 'account-sessions' });
    v.note = h('p', { class: 'muted admin-note' });
    v.others = h('button', {
      type: 'button', class: 'btn small', testid: 'account-sign-out-others', text: 'Sign out all other devices', hidden: true,
      onclick: async () => {
        try {
          const { ended } = await api.endOtherSessions();
          toast(`Signed out ${ended} other device${ended === 1 ? '' : 's'}.`);
        } catch (e) { v.status.textContent = errText(e); }
        load(v);
      },
    });
    v.root = h('div', null, v.list, h('div', { class: 'admin-row' }, v.others), v.status, v.note);
    load(v);
    return v.root;
  },
  changed(what) {
    if (what === 'sessions' && view?.root.isConnected) load(view);
  },
};
