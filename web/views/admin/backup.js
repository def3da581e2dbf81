// views/admin/backup.js: the admin page's Backup section (docs/protocol.md, GET
// /api/admin/backup and /api/admin/backups): download a checked backup now, the schedule,
// its last result and the backups in its folder with size and check result.
import * as api from '../../api.js';
import { errText, h } from '../../dom.js';
import { bytes } from './server.js';

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function checkText(check) {
  if (check == null) return 'not checked since the server started';
  return check.startsWith('ok') ? 'checked: ok' : `check found problems: ${check}`;
}

function render(el, o) {
  const s = o.schedule;
  const last = o.last;
  el.replaceChildren(
    h('div', { class: 'admin-row' },
      // A plain download link: a fetch would hold the whole file in the page's memory.
      h('a', { class: 'btn small primary', href: '/api/admin/backup', download: '', testid: 'admin-backup-download', text: 'Download a backup now' }),
      h('button', { type: 'button', class: 'btn small', text: 'Refresh', onclick: () => load(el) })),
    h('p', { class: 'muted', text: 'A backup is the whole data file at one moment, checked before it is offered. Put one back with hallway restore FILE while the server is stopped.' }),
    s
      ? h('p', { testid: 'admin-backup-schedule', text: `Every ${s.every_hours === 24 ? 'day' : `${s.every_hours} hours`} into ${s.dir}, keeping ${s.keep}.${s.next_at ? ` Next: ${dateFmt.format(s.next_at)}.` : ''}` })
      : h('p', { class: 'muted', testid: 'admin-backup-schedule', text: 'No scheduled backups: start the server with --backup-dir DIR (backup-dir in the settings file) for a checked backup every day.' }),
    last
      ? h('p', { testid: 'admin-backup-last', class: last.ok ? '' : 'form-error',
        text: last.ok
          ? `Last scheduled backup: ${dateFmt.format(last.at)}, ${bytes(last.bytes)}, ${checkText(last.check)}.`
          : `The last scheduled backup failed (${dateFmt.format(last.at)}): ${last.error || last.check}` })
      : null,
    o.backups.length
      ? h('table', { class: 'admin-tabs', testid: 'admin-backups' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Backup' }), h('th', { text: 'Size' }), h('th', { text: 'Check' }))),
        h('tbody', {}, o.backups.map((b) => h('tr', {},
          h('td', { text: `${dateFmt.format(b.at)} (${b.file})` }),
          h('td', { text: bytes(b.bytes) }),
          h('td', { text: checkText(b.check) })))))
      : null,
  );
}

async function load(el) {
  try {
    render(el, await api.adminBackups());
  } catch (e) {
    el.replaceChildren(h('p', { class: 'form-error', text: errText(e) }));
  }
}

export default {
  id: 'backup',
  title: 'Backup',
  draw() {
    const el = h('div', { testid: 'admin-backup' }, h('p', { class: 'muted', text: 'Loading…' }));
    load(el);
    return el;
  },
};
