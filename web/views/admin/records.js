// views/admin/records.js: the admin page's Records section (docs/protocol.md,
// `/api/admin/records`): what the server keeps of every conversation, off, each chooses,
// at most N days, or archived for compliance review. A policy set in the server's
// configuration (--records) is shown and cannot be changed here. Every tab hears a change
// at once (the `policy` frame) and its banners follow.
import * as api from '../../api.js';
import { errText, h, toast } from '../../dom.js';

const CHOICES = [
  ['keep', 'Each conversation chooses', 'Rooms and people choose: not recorded, until read, some days, or kept.'],
  ['retain', 'Keep at most some days', 'Conversations may keep less. Older messages are purged on their own.'],
  ['off', 'Record nothing', 'New messages are delivered live and never saved; people who are offline miss them. Messages kept before stay until their conversation\'s limit removes them.'],
  ['archive', 'Archive everything', 'Every message, edit and delete is kept for a compliance reviewer, and nobody can turn it off in a conversation.'],
];

let view = null;

async function load(v) {
  try {
    v.records = (await api.recordsPolicy()).records;
    v.error.textContent = '';
  } catch (e) { v.error.textContent = errText(e); }
  if (view === v && v.root.isConnected) draw(v);
}

function draw(v) {
  const r = v.records;
  if (!r) return;
  const fixed = !!r.fixed;
  v.note.textContent = fixed
    ? 'Set in the server\'s configuration (--records, HALLWAY_RECORDS or the settings file): change it there and restart the server.'
    : 'Everyone sees the rule in every conversation\'s banner, and on the sign-in page.';
  v.options.replaceChildren(h('legend', { class: 'sr-only', text: 'What the server keeps' }), ...CHOICES.map(([value, title, hint]) => h('label', { class: 'check' },
    h('input', { type: 'radio', name: 'records-policy', value, checked: r.policy === value, disabled: fixed, testid: `policy-${value}` }),
    h('span', null, h('strong', { text: title }), h('span', { class: 'muted', text: ` ${hint}` })))));
  v.days.value = r.policy === 'retain' ? String(r.days) : v.days.value || '30';
  v.days.disabled = fixed;
  v.save.hidden = fixed;
}

async function save(v) {
  const chosen = v.options.querySelector('input[name="records-policy"]:checked')?.value;
  if (!chosen) return;
  const days = chosen === 'retain' ? Number(v.days.value) : undefined;
  if (chosen === 'retain' && !(Number.isInteger(days) && days >= 1)) {
    v.error.textContent = 'Enter a number of days, 1 or more.';
    return;
  }
  if (chosen === 'archive' && v.records.policy !== 'archive'
    && !window.confirm('Archive everything? From now on every message is kept for a compliance reviewer, and nobody can turn that off in a conversation.')) return;
  try {
    v.records = (await api.setRecordsPolicy(chosen, days)).records;
    toast('Records policy saved. Everyone sees the new rule now.');
    v.error.textContent = '';
  } catch (e) { v.error.textContent = errText(e); }
  draw(v);
}

export default {
  id: 'records',
  title: 'Records',
  draw() {
    const v = view = { records: null };
    v.error = h('p', { class: 'form-error', testid: 'policy-error', role: 'alert' });
    v.note = h('p', { class: 'muted', testid: 'policy-note' });
    v.options = h('fieldset', { class: 'records-options', testid: 'policy-options' });
    v.days = h('input', { type: 'number', min: 1, max: 36500, class: 'days-input', testid: 'policy-days', 'aria-label': 'Days to keep at most' });
    v.save = h('button', { type: 'button', class: 'btn primary small', testid: 'policy-save', text: 'Save', onclick: () => save(v) });
    v.root = h('div', null, v.note, v.options,
      h('div', { class: 'admin-row' }, h('label', null, 'Days for "at most some days" ', v.days), v.save), v.error);
    load(v);
    return v.root;
  },
};
