// composer.js: the message box and sending: pending messages (shown at once, marked until
// the server's ack), resending after a reconnect, typing frames.
import { bindAttachments, clearAttachments, readyAttachments } from './attach.js';
import { attachAutocomplete } from './autocomplete.js';
import { $, randomId, toast } from './dom.js';
import { takeReply } from './reply.js';
import { activity, chat, conn, ui } from './state.js';
import { renderMessages, startEdit } from './views/messages.js';

const TYPING_SEND_MS = 3000;

function sendMessage(c, text, attachments = [], reply_to = null) {
  c.newFrom = null; // answering means the new part was read
  c.jumpToNew = false;
  const p = { client_id: randomId(), text, ts: Date.now(), state: 'sending', error: null, attachments, reply_to };
  c.pending.set(p.client_id, p);
  renderMessages({ toBottom: true });
  deliver(c, p);
}

export async function deliver(c, p) {
  if (!conn.online) { p.state = 'queued'; return; }
  p.state = 'sending';
  try {
    const frame = { type: 'send', conv: c.id, text: p.text, client_id: p.client_id };
    if (p.attachments && p.attachments.length) frame.attachments = p.attachments.map((a) => a.id);
    if (p.reply_to != null) frame.reply_to = p.reply_to;
    const ack = await conn.live.request(frame);
    p.state = 'acked';
    if (ack.seq != null && c.msgs.has(ack.seq)) c.pending.delete(p.client_id);
  } catch (e) {
    if (e.code === 'disconnected') { p.state = 'queued'; return; } // resent after the next hello
    p.state = 'failed';
    p.error = e.code === 'too_large' ? 'too long' : e.message;
    // Sending the same again cannot help when the server said no for good.
    p.retryable = !['forbidden', 'not_found', 'too_large', 'bad_request'].includes(e.code);
  }
  if (c.id === ui.current) renderMessages();
}

export function autosize() {
  const ta = $('composer');
  ta.style.height = 'auto';
  ta.style.height = Math.min(ta.scrollHeight, 200) + 'px';
}

function submitComposer() {
  const c = chat.convs.get(ui.current);
  const ta = $('composer');
  const text = ta.value.replace(/\s+$/, '');
  const files = c ? readyAttachments(c.id) : [];
  if (files === null) { toast('Wait for the upload to finish, or remove it.'); return; }
  if (!c || (!text.trim() && !files.length)) return;
  if (text.length > 16000) { toast('That message is too long (16,000 characters at most).'); return; }
  ta.value = '';
  ui.drafts.delete(c.id);
  activity.lastTypingSent = 0;
  autosize();
  clearAttachments(c.id);
  sendMessage(c, text, files, takeReply(c.id));
}

function lastOwnMessage(c) {
  let best = null;
  for (const m of c.msgs.values()) if (m.author === chat.me.id && !m.deleted && !m.system && (!best || m.seq > best.seq)) best = m;
  return best;
}

/** The message box: Enter sends, Up edits the last own message, typing tells the others. */
export function bindComposer() {
  const ta = $('composer');
  attachAutocomplete(ta);
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitComposer(); return; }
    if (e.key === 'ArrowUp' && !ta.value) {
      const c = chat.convs.get(ui.current);
      const m = c && lastOwnMessage(c);
      if (m) { e.preventDefault(); startEdit(c, m.seq); }
    }
  });
  ta.addEventListener('input', () => {
    autosize();
    const now = Date.now();
    if (ta.value.trim() && conn.online && ui.current != null && now - activity.lastTypingSent >= TYPING_SEND_MS) {
      activity.lastTypingSent = now;
      conn.live.send({ type: 'typing', conv: ui.current });
    }
  });
  $('btn-send').addEventListener('click', () => { submitComposer(); ta.focus(); });
  bindAttachments();
}
