// reply.js: replying with a quote. "Reply" on a message puts a bar over the message box
// ("Replying to Alice: ..."); the sent message carries `reply_to` (the original's seq) and
// shows the start of the original above its text, which jumps to the original on click.
import { h, icon } from './dom.js';
import { jumpTo } from './search.js';
import { chat, ui, userName } from './state.js';

const QUOTE_CHARS = 120;
/** The message each conversation's message box answers: conv id -> seq. */
const replying = new Map();

/** The start of a message's text on one line, as a quote shows it. */
function start(text) {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > QUOTE_CHARS ? `${line.slice(0, QUOTE_CHARS)}…` : line;
}

/** What a quote of seq in c says, from what is loaded: [author, text]. */
function quoted(c, seq) {
  const m = c.msgs.get(seq);
  if (!m) return [null, 'an earlier message'];
  if (m.deleted) return [userName(m.author), 'message deleted'];
  const files = m.attachments && m.attachments.length ? ` (${m.attachments.map((a) => a.name).join(', ')})` : '';
  return [userName(m.author), start(m.text) + files];
}

/** The message the open conversation's box answers (and forgets it), for a send. */
export function takeReply(conv) {
  const seq = replying.get(conv);
  replying.delete(conv);
  renderReplyBar();
  return seq ?? null;
}

/** Part of a row's signature: the quote changes when its original loads, changes or goes. */
export function quoteSig(c, m) {
  if (m.reply_to == null) return '';
  const o = c.msgs.get(m.reply_to);
  return o ? `${o.rev}` : 'none';
}

/** The quoted start of the original above a reply's text; a click jumps to the original. */
export function quoteView(c, m) {
  if (m.reply_to == null) return null;
  const [who, text] = quoted(c, m.reply_to);
  return h('button', {
    class: 'quote', type: 'button', testid: 'message-quote', data: { replyTo: m.reply_to },
    title: 'Show the original', onclick: () => jumpTo(c.id, m.reply_to),
  }, who ? h('span', { class: 'quote-author', text: who }) : null, h('span', { class: 'quote-text', text }));
}

/** The message's tools with "Reply" first (every message one may answer). */
export function withReply(c, m, editing, tools) {
  if (m.deleted || editing || m.system || m.seq == null) return tools;
  const button = h('button', {
    class: 'icon-btn', testid: 'message-reply', title: 'Reply', 'aria-label': 'Reply to this message',
    onclick: () => { replying.set(c.id, m.seq); renderReplyBar(); document.getElementById('composer').focus(); },
  }, icon('reply'));
  if (!tools) return h('div', { class: 'msg-tools' }, button);
  tools.prepend(button);
  return tools;
}

/** The bar over the message box while it answers a message. */
export function renderReplyBar() {
  let bar = document.getElementById('reply-bar');
  const box = document.querySelector('.composer-box');
  if (!bar && box) {
    bar = h('div', { class: 'reply-bar', id: 'reply-bar', testid: 'reply-bar', hidden: true });
    box.before(bar);
  }
  if (!bar) return;
  const c = chat.convs.get(ui.current);
  const seq = c && replying.get(c.id);
  bar.hidden = seq == null;
  if (seq == null) { bar.replaceChildren(); return; }
  const [who, text] = quoted(c, seq);
  bar.replaceChildren(
    h('span', { class: 'reply-what' }, 'Replying to ', h('strong', { text: who || 'a message' }), `: ${text}`),
    h('button', {
      class: 'icon-btn', type: 'button', testid: 'reply-cancel', title: 'Cancel reply', 'aria-label': 'Cancel reply', text: '×',
      onclick: () => { replying.delete(c.id); renderReplyBar(); },
    }));
}
