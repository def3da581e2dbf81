// markup.js: the small, safe message markup. Builds DOM nodes from plain text; user text only
// ever reaches the page through text nodes (never innerHTML).
//   ```code block```   `inline code`   *bold*   _italic_   http(s) links   - list items   @mentions   #rooms

// *bold* and _italic_ hug their text and stand apart from words: "2 * 3 * 4" and snake_case stay plain.
// Runs on prose only: code is cut out first (splitCode), so nothing inside code is marked up.
const INLINE = /(?<![\w*])(\*[^*\s](?:[^*\n]*[^*\s])?\*)(?![\w*])|(?<![\w])(_[^_\s](?:[^_\n]*[^_\s])?_)(?![\w])|(https?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]}])|(?<![\w@])(@[a-z0-9][a-z0-9._-]{0,31})|(?<![\w#&])(#[a-z0-9][a-z0-9._-]{0,31})/gi;

const BLOCK = /```(?:[a-z0-9_+-]*\n)?([\s\S]*?)```/gi;

/**
 * What is code in a text, in two steps: every ```block``` up to the next fence (an unclosed
 * fence is prose), then in the prose between blocks every `span` of one or more characters
 * without a backtick or newline, leftmost first. The server cuts mentions out of code by the
 * same rule (src/model.rs, `pieces`); tests/fixtures/code_spans.json tests both.
 * Returns [{code, text, inner?}]: `inner` is a block's content without fences and language line.
 */
export function splitBlocks(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(BLOCK)) {
    if (m.index > last) out.push({ code: false, text: text.slice(last, m.index) });
    out.push({ code: true, text: m[0], inner: m[1] });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ code: false, text: text.slice(last) });
  return out;
}

/** The `inline code` spans of prose between blocks: [{code, text}]. */
export function splitInline(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(/`[^`\n]+`/g)) {
    if (m.index > last) out.push({ code: false, text: text.slice(last, m.index) });
    out.push({ code: true, text: m[0] });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ code: false, text: text.slice(last) });
  return out;
}

/** Both steps: the whole text as prose and code pieces, in order. */
export function splitCode(text) {
  return splitBlocks(text).flatMap((p) => (p.code ? [{ code: true, text: p.text }] : splitInline(p.text)));
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

/** ctx: {me: name of the signed-in user, names: Set of existing user names, display: name → display name, room: name → id of a room of the reader's} */
function inline(text, ctx, out) {
  for (const piece of splitInline(text)) {
    if (piece.code) out.append(el('code', null, piece.text.slice(1, -1)));
    else prose(piece.text, ctx, out);
  }
}

function prose(text, ctx, out) {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    const [tok] = m;
    let start = m.index;
    if (start > last) out.append(document.createTextNode(text.slice(last, start)));
    last = start + tok.length;
    if (m[1]) out.append(el('strong', null, tok.slice(1, -1)));
    else if (m[2]) out.append(el('em', null, tok.slice(1, -1)));
    else if (m[3]) {
      const a = el('a', null, tok);
      a.href = tok;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      out.append(a);
    } else if (m[5]) {
      roomRef(tok, ctx, out);
    } else {
      // @name: a trailing dot or dash belongs to the sentence, not the name.
      let name = tok.slice(1).replace(/[.\-]+$/, '');
      const rest = tok.slice(1 + name.length);
      name = name.toLowerCase();
      if (ctx.names && !ctx.names.has(name)) {
        out.append(document.createTextNode(tok));
      } else {
        // Shown by the name people know; the sign-in name (what was typed) in its title.
        const shown = ctx.display ? ctx.display(name) : null;
        const s = el('span', name === ctx.me ? 'mention mention-me' : 'mention', '@' + (shown || name));
        if (shown) s.title = '@' + name;
        s.dataset.name = name;
        out.append(s);
        if (rest) out.append(document.createTextNode(rest));
      }
    }
  }
  if (last < text.length) out.append(document.createTextNode(text.slice(last)));
}

/** #room: a button to a room of the reader's (ctx.room(name) → its id), else the text as it is. */
function roomRef(tok, ctx, out) {
  let name = tok.slice(1).replace(/[.\-]+$/, '');
  const rest = tok.slice(1 + name.length);
  name = name.toLowerCase();
  const id = ctx.room ? ctx.room(name) : null;
  if (id == null) { out.append(document.createTextNode(tok)); return; }
  const b = el('button', 'room-ref', '#' + name);
  b.type = 'button';
  b.dataset.conv = String(id); // conversation.js opens it (one listener for the page)
  b.dataset.testid = 'room-ref';
  out.append(b);
  if (rest) out.append(document.createTextNode(rest));
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

/** Blocks longer than this many lines are shown folded, with a button to show them whole. */
export const FOLD_LINES = 15;

/** Puts text on the clipboard; resolves with whether that worked. */
export async function copyText(text) {
  // The clipboard API needs a secure context; a LAN server on plain HTTP gets the old way.
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return true; } catch { /* the old way below */ }
  }
  const ta = el('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.style.cssText = 'position:fixed;left:-9999px;top:0;opacity:0';
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { /* not allowed */ }
  ta.remove();
  return ok;
}

function button(cls, text, onclick) {
  const b = el('button', cls, text);
  b.type = 'button';
  b.addEventListener('click', onclick);
  return b;
}

/** A code block: verbatim in monospace, with a copy button; a long one folded. */
function codeBlock(text) {
  const box = el('div', 'code-block');
  const pre = el('pre');
  pre.append(el('code', null, text));
  const copy = button('code-copy', 'Copy', async () => {
    const ok = await copyText(text);
    copy.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { copy.textContent = 'Copy'; }, 2000);
  });
  copy.dataset.testid = 'code-copy';
  copy.setAttribute('aria-label', 'Copy the code');
  box.append(copy, pre);
  const lines = text.split('\n').length;
  if (lines > FOLD_LINES) {
    box.classList.add('folded');
    const more = button('code-more link', `Show all ${lines} lines`, () => {
      const folded = box.classList.toggle('folded');
      more.textContent = folded ? `Show all ${lines} lines` : 'Show less';
      more.setAttribute('aria-expanded', String(!folded));
    });
    more.dataset.testid = 'code-more';
    more.setAttribute('aria-expanded', 'false');
    box.append(more);
  }
  return box;
}

/** Returns a DocumentFragment for a message text. */
/**
 * `text` as plain text with each `@name` of a person as the name people know: a desktop
 * notification has no markup to show it in, and sign-in names are not what colleagues see.
 */
export function displayText(text, ctx = {}) {
  return text.replace(/(?<![\w@])@([a-z0-9][a-z0-9._-]{0,31})/gi, (tok, typed) => {
    const name = typed.replace(/[.\-]+$/, '');
    const lower = name.toLowerCase();
    if (ctx.names && !ctx.names.has(lower)) return tok;
    const shown = ctx.display ? ctx.display(lower) : null;
    return shown ? `@${shown}${typed.slice(name.length)}` : tok;
  });
}

export function renderText(text, ctx = {}) {
  const frag = document.createDocumentFragment();
  const pieces = splitBlocks(text);
  pieces.forEach((piece, i) => {
    if (piece.code) {
      frag.append(codeBlock(piece.inner.replace(/\n$/, '')));
    } else {
      // A newline right next to a block belongs to the block's own line.
      const beforeBlock = i < pieces.length - 1;
      paragraph(piece.text.replace(beforeBlock ? /^\n|\n$/g : /^\n/, ''), ctx, frag);
    }
  });
  return frag;
}
