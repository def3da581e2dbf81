// views/admin/server.js: the admin page's Server section: messages per day for the last
// 30 days as a bar chart (inline SVG, drawn here), active people, conversations, the data
// file and its disk, who has tabs open, uptime and version (GET /api/admin/stats).
import * as api from '../../api.js';
import { errText, h, timeFmt, dayLabel } from '../../dom.js';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  e.append(...kids);
  return e;
}

/** Bytes as people read them: 1.4 GB, 312 MB, 48 KB. */
export function bytes(n) {
  if (n == null) return 'unknown';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/** Seconds as "3 days 4 h", "2 h 5 min", "40 s". */
export function duration(s) {
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), min = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} day${d === 1 ? '' : 's'} ${hr} h`;
  if (hr > 0) return `${hr} h ${min} min`;
  if (min > 0) return `${min} min`;
  return `${s} s`;
}

const plural = (n, one, many = one + 's') => `${n} ${n === 1 ? one : many}`;

/**
 * The chart: one bar per day, oldest left; each bar says its day and count on hover and to
 * screen readers. Drawn in a fixed coordinate box that scales to the width it is given.
 */
export function chart(days) {
  const W = 300, H = 100, top = 12, bottom = 14;
  const max = Math.max(1, ...days.map((d) => d.messages));
  const slot = W / Math.max(1, days.length);
  const total = days.reduce((sum, d) => sum + d.messages, 0);
  const box = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'admin-chart',
    'aria-label': `Messages per day, last ${days.length} days: ${total} in all, at most ${max} a day`,
  });
  box.dataset.testid = 'messages-chart';
  const plot = H - top - bottom;
  days.forEach((d, i) => {
    const hgt = d.messages === 0 ? 0 : Math.max(1, (d.messages / max) * plot);
    const bar = svg('rect', {
      x: (i * slot + slot * 0.15).toFixed(2), y: (top + plot - hgt).toFixed(2),
      width: (slot * 0.7).toFixed(2), height: hgt.toFixed(2), fill: 'currentColor', rx: 1,
    }, svg('title', {}, `${d.date}: ${plural(d.messages, 'message')}`));
    bar.dataset.date = d.date;
    bar.dataset.messages = String(d.messages);
    box.append(bar);
  });
  box.append(svg('line', { x1: 0, y1: top + plot + 0.5, x2: W, y2: top + plot + 0.5, stroke: 'currentColor', 'stroke-opacity': 0.3, 'stroke-width': 0.5 }));
  const label = (x, anchor, text) => svg('text', { x, y: H - 3, 'font-size': 8, 'text-anchor': anchor, fill: 'currentColor', 'fill-opacity': 0.7 }, text);
  if (days.length) {
    box.append(label(0, 'start', days[0].date.slice(5)), label(W, 'end', days[days.length - 1].date.slice(5)));
  }
  box.append(svg('text', { x: 0, y: 8, 'font-size': 8, fill: 'currentColor', 'fill-opacity': 0.7 }, `max ${max}`));
  return box;
}

function fact(label, value, testid) {
  return h('div', { class: 'admin-fact', testid }, h('dt', { text: label }), h('dd', { text: value }));
}

function since(ts) {
  return `${dayLabel(ts)} ${timeFmt.format(new Date(ts))}`;
}

function render(container, s) {
  const c = s.conversations;
  const kinds = [[c.rooms, 'room'], [c.private_rooms, 'private room'], [c.dms, 'direct message'], [c.groups, 'group']]
    .filter(([n]) => n > 0).map(([n, what]) => plural(n, what)).join(', ');
  const people = [...s.tabs.people].sort((a, b) => b.tabs - a.tabs || a.since - b.since);
  container.replaceChildren(
    h('div', { class: 'admin-server-head' },
      h('button', { type: 'button', class: 'btn', text: 'Refresh', onclick: () => mountServer(container) })),
    h('h3', { text: 'Messages per day' }),
    chart(s.messages_per_day),
    h('dl', { class: 'admin-facts' },
      fact('Active people', `${s.active_users.today} today, ${s.active_users.week} this week`, 'stat-active'),
      fact('Conversations', `${s.conversations.total}${kinds ? ` (${kinds})` : ''}`, 'stat-conversations'),
      fact('Data file', bytes(s.data_file_bytes), 'stat-data-file'),
      fact('Free disk space', bytes(s.free_disk_bytes), 'stat-free-disk'),
      fact('Up for', `${duration(s.uptime_seconds)} (since ${since(s.started)})`, 'stat-uptime'),
      fact('Version', s.version, 'stat-version'),
      fact('Name on the LAN', s.lan_name ? `http://${s.lan_name}${location.port ? `:${location.port}` : ''}/` : 'not announced (--no-mdns, or listening on this machine only)', 'stat-lan-name')),
    h('h3', { text: `Open tabs: ${s.tabs.total}` }),
    people.length
      ? h('table', { class: 'admin-tabs', testid: 'stat-tabs' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Who' }), h('th', { text: 'Tabs' }), h('th', { text: 'Since' }))),
        h('tbody', {}, people.map((p) => h('tr', {},
          h('td', { text: p.display_name && p.display_name !== p.name ? `${p.display_name} (${p.name})` : p.name }),
          h('td', { text: String(p.tabs) }),
          h('td', { text: since(p.since) })))))
      : h('p', { class: 'muted', text: 'Nobody has a tab open.' }),
  );
}

/** Fills `container` with the Server section (fetching the figures now); admins only. */
export async function mountServer(container) {
  container.classList.add('admin-server');
  container.dataset.testid = 'admin-server';
  if (!container.firstChild) container.append(h('p', { class: 'muted', text: 'Loading…' }));
  try {
    render(container, await api.adminStats());
  } catch (e) {
    container.replaceChildren(h('p', { class: 'form-error', text: errText(e) }));
  }
}

/** The Server section of the admin page (views/admin.js). */
export default {
  id: 'server',
  title: 'Server',
  draw() {
    const el = h('div');
    mountServer(el);
    return el;
  },
};
