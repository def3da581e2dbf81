// markup.js: the small, safe message markup. Builds DOM nodes from plain text; user text only
// ever reaches the page through text nodes (never innerHTML).
//   ```code block```   `inline code`   *bold*   _italic_   http(s) links   - list items   @mentions

// *bold* and _italic_ hug their text and stand apart from words: "2 * 3 * 4" and snake_case stay plain.
const INLINE = /(`[^`\n]+`)|(?<![\w*])(\*[^*\s](?:[^*\n]*[^*\s])?\*)(?![\w*])|(?<![\w])(_[^_\s](?:[^_\n]*[^_\s])?_)(?![\w])|(https?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]}])|(?<![\w@])(@[a-z0-9][a-z0-9._-]{0,31})/gi;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

/** ctx: {me: name of the signed-in user, names: Set of existing user names} */
function inline(text, ctx, out) {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    const [tok] = m;
    let start = m.index;
    if (start > last) out.append(document.createTextNode(text.slice(last, start)));
    last = start + tok.length;
    if (m[1]) out.append(el('code', null, tok.slice(1, -1)));
    else if (m[2]) out.append(el('strong', null, tok.slice(1, -1)));
    else if (m[3]) out.append(el('em', null, tok.slice(1, -1)));
    else if (m[4]) {
      const a = el('a', null, tok);
      a.href = tok;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      out.append(a);
    } else {
      // @name: a trailing dot or dash belongs to the sentence, not the name.
      let name = tok.slice(1).replace(/[.\-]+$/, '');
      const rest = tok.slice(1 + name.length);
      name = name.toLowerCase();
      if (ctx.names && !ctx.names.has(name)) {
        out.append(document.createTextNode(tok));
      } else {
        const s = el('span', name === ctx.me ? 'mention mention-me' : 'mention', '@' + name);
        out.append(s);
        if (rest) out.append(document.createTextNode(rest));
      }
    }
  }
  if (last < text.length) out.append(document.createTextNode(text.slice(last)));
}

function paragraph(text, ctx, out) {
  const lines = text.split('\n');
  let list = null;
  let first = true;
  for (const line of lines) {
    const item = /^\s*[-*]\s+(.*)$/.exec(line);
    if (item) {
      if (!list) { list = el('ul'); out.append(list); }
      const li = el('li');
      inline(item[1], ctx, li);
      list.append(li);
      first = true;
      continue;
    }
    if (list) { list = null; first = true; }
    if (!first) out.append(el('br'));
    inline(line, ctx, out);
    first = false;
  }
}

/** Returns a DocumentFragment for a message text. */
export function renderText(text, ctx = {}) {
  const frag = document.createDocumentFragment();
  const re = /```(?:[a-z0-9_+-]*\n)?([\s\S]*?)```/gi;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) paragraph(text.slice(last, m.index).replace(/^\n|\n$/g, ''), ctx, frag);
    const pre = el('pre');
    pre.append(el('code', null, m[1].replace(/\n$/, '')));
    frag.append(pre);
    last = m.index + m[0].length;
  }
  if (last < text.length) paragraph(text.slice(last).replace(/^\n/, ''), ctx, frag);
  return frag;
}
