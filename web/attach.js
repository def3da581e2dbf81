// attach.js: files in the message box and in messages. Paste, drop (anywhere on the page:
// a dropped file never navigates the tab away) or pick a file; it is checked against the
// server's limit before a byte is sent, uploaded with its progress and a cancel button, an
// image with a small copy made here on a canvas (nothing is loaded from elsewhere); a
// `send` then attaches what finished. Messages show images as thumbnails that open full
// size in the page, and other files as a card with name, size, type and a download.
import { fileUrl, uploadFile } from './api.js';
import { $, h, icon, toast } from './dom.js';
import { chat, conn, ui } from './state.js';

/** Types shown as pictures (the server serves only these inline). */
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
const THUMB_PX = 360;
const MAX_FILES = 10;

/** Uploads of the message box, per conversation: {key, conv, file, progress, state, file info, error, abort}. */
const trays = new Map();
let nextKey = 1;

export function sizeWords(bytes) {
  if (bytes >= 1e6) { const mb = bytes / 1e6; return `${mb - Math.floor(mb) < 0.05 ? mb.toFixed(0) : mb.toFixed(1)} MB`; }
  if (bytes >= 1e3) return `${Math.floor(bytes / 1e3)} KB`;
  return `${bytes} bytes`;
}

function tray(conv) {
  if (!trays.has(conv)) trays.set(conv, []);
  return trays.get(conv);
}

/**
 * The attachments a send takes: `null` while one is still uploading (the send waits), else
 * the finished ones (Attachment objects of the protocol).
 */
export function readyAttachments(conv) {
  const items = tray(conv);
  if (items.some((i) => i.state === 'uploading')) return null;
  return items.filter((i) => i.state === 'done').map((i) => i.info);
}

/** After a send: the message box starts empty again. */
export function clearAttachments(conv) {
  trays.set(conv, tray(conv).filter((i) => i.state === 'uploading'));
  renderTray();
}

/** Attaches files to the open conversation's message box (refusing what cannot be sent). */
export function attachFiles(files) {
  const c = chat.convs.get(ui.current);
  if (!c || !files.length) return;
  if (!c.recorded) {
    toast('This conversation keeps nothing, so files cannot be attached here: a file would have to be stored.', 6000);
    return;
  }
  const items = tray(c.id);
  for (const file of files) {
    if (items.length >= MAX_FILES) { toast(`A message carries at most ${MAX_FILES} files.`); break; }
    const limit = conn.live && conn.live.maxFile;
    if (limit && file.size > limit) {
      // Refused here, before a byte is sent; the server refuses it too (413).
      const item = { key: nextKey++, conv: c.id, file, state: 'failed', progress: 0,
        error: `too large: ${sizeWords(file.size)}; files can be at most ${sizeWords(limit)}` };
      items.push(item);
      toast(`${file.name || 'This file'} is too large (${sizeWords(file.size)}): files can be at most ${sizeWords(limit)}.`, 6000);
      continue;
    }
    const item = { key: nextKey++, conv: c.id, file, state: 'uploading', progress: 0, error: null, abort: null };
    items.push(item);
    start(item);
  }
  renderTray();
}

async function start(item) {
  const thumb = IMAGE_TYPES.includes(item.file.type) ? await thumbnail(item.file) : null;
  if (item.state !== 'uploading') return; // cancelled while the thumbnail was made
  item.preview = thumb ? URL.createObjectURL(thumb) : null;
  const up = uploadFile(item.conv, item.file, thumb, (f) => { item.progress = f; paintProgress(item); });
  item.abort = up.abort;
  renderTray();
  try {
    item.info = await up.done;
    item.state = 'done';
  } catch (e) {
    if (e.code === 'cancelled') return;
    item.state = 'failed';
    item.error = e.message;
  }
  renderTray();
}

/** A small copy of an image, drawn on a canvas here; `null` if the browser cannot read it. */
async function thumbnail(file) {
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, THUMB_PX / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    let blob = await new Promise((r) => canvas.toBlob(r, 'image/webp', 0.85));
    // A browser without a WebP encoder hands back a PNG, which is fine too.
    if (!blob) blob = await new Promise((r) => canvas.toBlob(r, 'image/png'));
    return blob && blob.size <= 256 * 1024 ? blob : null;
  } catch {
    return null;
  }
}

function remove(item) {
  if (item.state === 'uploading') { item.state = 'cancelled'; if (item.abort) item.abort(); }
  if (item.preview) URL.revokeObjectURL(item.preview);
  trays.set(item.conv, tray(item.conv).filter((i) => i !== item));
  renderTray();
}

function paintProgress(item) {
  const bar = document.querySelector(`[data-attach-key="${item.key}"] progress`);
  if (bar) bar.value = item.progress;
}

/** The uploads of the open conversation, above the message box. */
export function renderTray() {
  const box = document.getElementById('attach-tray');
  if (!box) return;
  const items = ui.current != null ? tray(ui.current) : [];
  box.hidden = !items.length;
  box.replaceChildren(...items.map((item) => h('div', {
    class: `attach-chip ${item.state}`, testid: 'attachment-upload', data: { attachKey: item.key, state: item.state },
  },
  item.preview ? h('img', { class: 'attach-preview', src: item.preview, alt: '' }) : icon('file', 'attach-icon'),
  h('span', { class: 'attach-name', text: item.file.name || 'pasted image' }),
  h('span', { class: 'attach-size muted', text: item.error || sizeWords(item.file.size) }),
  item.state === 'uploading' ? h('progress', { max: 1, value: item.progress, 'aria-label': 'Upload progress' }) : null,
  h('button', {
    class: 'icon-btn attach-remove', testid: 'attachment-cancel', type: 'button',
    title: item.state === 'uploading' ? 'Cancel upload' : 'Remove', 'aria-label': item.state === 'uploading' ? 'Cancel upload' : 'Remove file',
    text: '×', onclick: () => remove(item),
  }))));
}

/** Files of a message (or of a send not yet acknowledged), drawn from its `attachments`. */
export function attachmentsView(list) {
  if (!list || !list.length) return null;
  return h('div', { class: 'attachments' }, ...list.map((a) => (a.thumbnail && IMAGE_TYPES.includes(a.type)
    ? h('a', {
      class: 'att-image', testid: 'attachment-image', href: fileUrl(a.id), title: a.name,
      onclick: (e) => { e.preventDefault(); openFull(a); },
    }, h('img', { src: fileUrl(a.id, true), alt: a.name, loading: 'lazy' }))
    : h('div', { class: 'att-file', testid: 'attachment-file' },
      icon('file', 'attach-icon'),
      h('span', { class: 'att-info' },
        h('span', { class: 'att-name', text: a.name }),
        h('span', { class: 'muted att-meta', text: `${sizeWords(a.size)} · ${a.type}` })),
      h('a', { class: 'att-download', testid: 'attachment-download', href: fileUrl(a.id), download: a.name, text: 'Download' })))));
}

/** An image at full size over the page; Escape, a click or the close button ends it. */
function openFull(a) {
  const close = () => { view.remove(); document.removeEventListener('keydown', onKey, true); };
  const onKey = (e) => { if (e.key === 'Escape') { e.stopPropagation(); close(); } };
  const view = h('div', { class: 'att-full', testid: 'attachment-full', role: 'dialog', 'aria-label': a.name, onclick: close },
    h('img', { src: fileUrl(a.id), alt: a.name }),
    h('div', { class: 'att-full-bar', onclick: (e) => e.stopPropagation() },
      h('span', { text: `${a.name} · ${sizeWords(a.size)}` }),
      h('a', { href: fileUrl(a.id), download: a.name, text: 'Download' }),
      h('button', { type: 'button', class: 'link', text: 'Close', onclick: close })));
  document.addEventListener('keydown', onKey, true);
  document.body.append(view);
}

/**
 * The attach button and tray beside the message box; paste into the box; a drop anywhere
 * (the page never opens a dropped file itself).
 */
export function bindAttachments() {
  const box = document.querySelector('.composer-box');
  const ta = $('composer');
  if (!box || !ta) return;
  const input = h('input', { type: 'file', multiple: true, hidden: true, testid: 'attach-input',
    onchange: () => { attachFiles([...input.files]); input.value = ''; } });
  const button = h('button', { class: 'icon-btn attach-btn', type: 'button', testid: 'attach-button', title: 'Attach files',
    'aria-label': 'Attach files', onclick: () => input.click() }, icon('clip', 'attach-clip'));
  box.prepend(button, input);
  box.before(h('div', { class: 'attach-tray', id: 'attach-tray', testid: 'attach-tray', hidden: true }));
  ta.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) { e.preventDefault(); attachFiles(files); }
  });
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  let depth = 0;
  const zone = (on) => document.body.classList.toggle('drop-files', on);
  window.addEventListener('dragenter', (e) => { if (hasFiles(e)) { depth++; zone(true); } });
  window.addEventListener('dragleave', (e) => { if (hasFiles(e) && --depth <= 0) { depth = 0; zone(false); } });
  window.addEventListener('dragover', (e) => { if (hasFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; } });
  window.addEventListener('drop', (e) => {
    depth = 0; zone(false);
    if (!hasFiles(e)) return;
    e.preventDefault();
    attachFiles([...e.dataTransfer.files]);
  });
}
