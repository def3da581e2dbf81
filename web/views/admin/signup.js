// views/admin/signup.js: the admin page's Sign-up section (docs/protocol.md "Sign-up"): who
// may create an account (admins only, invite links, anyone on the office network), making an
// invite link (role, uses, lifetime) shown once as a link and a QR code to print for the
// wall, and the links made so far with their uses, to revoke.
import * as api from '../../api.js';
import { errText, h, toast } from '../../dom.js';
import { userName } from '../../state.js';

const MODES = [
  ['admin', 'Only admins create accounts'],
  ['invite', 'With an invite link'],
  ['open', 'Anyone on the office network'],
];
const LIFETIMES = [[24, '1 day'], [168, '7 days'], [720, '30 days'], [8760, '1 year']];

// Invite links last days to a year: the date matters, not just the weekday.
const whenFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

let view = null;

async function load(v) {
  try {
    const r = await api.signupSettings();
    v.mode = r.mode;
    v.invites = r.invites;
    v.error.textContent = '';
  } catch (e) { v.error.textContent = errText(e); }
  if (view === v && v.root.isConnected) draw(v);
}

function inviteState(i, now = Date.now()) {
  if (i.expires <= now) return 'expired';
  if (i.uses >= i.max_uses) return 'used up';
  return 'active';
}

function inviteItem(v, i) {
  const state = inviteState(i);
  return h('li', { testid: 'invite-item', data: { id: i.id, state, role: i.role } },
    h('div', { class: 'grow' },
      h('strong', { text: `${i.role[0].toUpperCase()}${i.role.slice(1)} invite` }),
      h('span', { class: 'muted', testid: 'invite-uses', text: ` · used ${i.uses} of ${i.max_uses}` }),
      h('div', { class: 'muted', text: `${state === 'active' ? 'Works until' : state === 'expired' ? 'Expired' : 'Used up; expires'} ${whenFmt.format(i.expires)} · made by ${userName(i.created_by)}` })),
    h('button', {
      type: 'button', class: 'btn small danger', testid: 'invite-revoke', text: 'Revoke',
      onclick: async () => {
        try { await api.revokeInvite(i.id); toast('Invite link revoked.'); } catch (e) { v.error.textContent = errText(e); }
        load(v);
      },
    }));
}

/** Prints only the invite card: a copy of it alone in the page while the print dialog is up. */
function printCard(card) {
  const area = h('div', { id: 'print-area' }, card.cloneNode(true));
  for (const b of area.querySelectorAll('button')) b.remove();
  document.body.append(area);
  document.body.classList.add('printing');
  const done = () => { document.body.classList.remove('printing'); area.remove(); window.removeEventListener('afterprint', done); };
  window.addEventListener('afterprint', done);
  window.print();
  setTimeout(done, 1000); // browsers that print without an afterprint event
}

function createdCard(made) {
  const url = URL.createObjectURL(new Blob([made.qr_svg], { type: 'image/svg+xml' }));
  const link = h('input', { type: 'text', readOnly: true, value: made.link, testid: 'invite-link', 'aria-label': 'Invite link', onfocus: (e) => e.target.select() });
  const card = h('div', { class: 'invite-card', testid: 'invite-created' },
    h('p', { class: 'invite-card-title', text: 'Join Hallway, the office chat' }),
    h('img', { class: 'invite-qr', testid: 'invite-qr', src: url, alt: 'QR code of the invite link', width: 240, height: 240 }),
    link,
    h('p', { class: 'muted', text: `As ${made.invite.role}, ${made.invite.max_uses} use${made.invite.max_uses === 1 ? '' : 's'}, until ${whenFmt.format(made.invite.expires)}. This link is shown only now: copy or print it.` }),
    h('div', { class: 'admin-row' },
      h('button', { type: 'button', class: 'btn small', testid: 'invite-copy', text: 'Copy link',
        onclick: async () => { try { await navigator.clipboard.writeText(made.link); toast('Link copied.'); } catch { link.select(); } } }),
      h('button', { type: 'button', class: 'btn small', testid: 'invite-print', text: 'Print', onclick: () => printCard(card) })));
  return card;
}

function draw(v) {
  v.modes.replaceChildren(...MODES.map(([value, text]) => h('label', { class: 'check' },
    h('input', {
      type: 'radio', name: 'signup-mode', value, checked: v.mode === value, testid: `signup-mode-${value}`,
      onchange: async () => {
        try { await api.setSignupMode(value); toast(`Sign-up: ${text.toLowerCase()}.`); } catch (e) { v.error.textContent = errText(e); }
        load(v);
      },
    }), text)));
  v.inviteBox.hidden = v.mode === 'admin';
  v.list.replaceChildren(...v.invites.map((i) => inviteItem(v, i)));
  v.none.hidden = v.invites.length > 0;
}

export default {
  id: 'signup',
  title: 'Sign-up',
  draw() {
    const v = view = { mode: null, invites: [] };
    v.error = h('p', { class: 'form-error', testid: 'signup-settings-error', role: 'alert' });
    v.modes = h('fieldset', { class: 'records-options', testid: 'signup-modes' }, h('legend', { class: 'sr-only', text: 'Who may create an account' }));
    v.created = h('div');
    const form = h('form', { class: 'admin-form', testid: 'invite-form', novalidate: true },
      h('label', null, 'Role', h('select', { name: 'role', testid: 'invite-role' },
        h('option', { value: 'member', text: 'Member' }), h('option', { value: 'reviewer', text: 'Reviewer' }), h('option', { value: 'admin', text: 'Admin' }))),
      h('label', null, 'Uses', h('input', { name: 'uses', type: 'number', min: 1, max: 1000, value: 1, testid: 'invite-uses-input', class: 'days-input' })),
      h('label', null, 'Works for', h('select', { name: 'hours', testid: 'invite-expiry' },
        ...LIFETIMES.map(([hours, text]) => h('option', { value: String(hours), text, selected: hours === 168 })))),
      h('button', { type: 'submit', class: 'btn primary small', testid: 'invite-create', text: 'Make invite link' }));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const el = form.elements;
      try {
        const made = await api.createInvite({ role: el.role.value, uses: Number(el.uses.value) || 1, expires_in_hours: Number(el.hours.value) });
        v.created.replaceChildren(createdCard(made));
        v.error.textContent = '';
        load(v);
      } catch (err) { v.error.textContent = errText(err); }
    });
    v.list = h('ul', { class: 'admin-list', testid: 'invite-list' });
    v.none = h('p', { class: 'muted', text: 'No invite links yet.' });
    v.inviteBox = h('div', { hidden: true }, h('h4', { class: 'admin-sub', text: 'Invite links' }), form, v.created, v.list, v.none);
    v.root = h('div', null, v.modes, v.inviteBox, v.error);
    load(v);
    return v.root;
  },
  changed(what) {
    // A new account may have used an invite link: its count moves.
    if (what === 'users' && view?.root.isConnected) load(view);
  },
};
