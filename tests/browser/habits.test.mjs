// The habits people bring from Slack and Teams (issue 19): @-completion of a colleague by
// display name, #rooms, the quick switcher, code blocks with a copy button, the dark theme
// and keyboard-only edit and delete. One server, alice (the admin), bob and carol.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { OUT, see, tid, convItem, messageWith, launchBrowser, office } from './harness.mjs';

let browser;
let o;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await launchBrowser();
  o = await office(browser, [], [['bob', 'Bob Builder'], ['carol', 'Carol Danvers']]);
});

after(async () => {
  try { if (o) await o.close(); } finally { if (browser) await browser.close(); }
});

async function openRoom(page, name, who) {
  await convItem(page, name).click();
  await see(tid(page, 'conv-title').filter({ hasText: name }), `${who} clicked "${name}" but it does not open`);
}

test('@ and the first letters of a display name, then Tab, mention that colleague, who is notified', async () => {
  const { alice, bob } = o.pages;
  await tid(bob, 'create-room-button').click();
  await tid(bob, 'create-room-name').fill('bobs-desk');
  await tid(bob, 'create-room-submit').click();
  await see(tid(bob, 'conv-title').filter({ hasText: 'bobs-desk' }), 'bob does not get to his new room');

  await openRoom(alice, 'general', 'alice');
  const box = tid(alice, 'composer');
  await box.click();
  await box.pressSequentially('can you look at this, @Bui');
  const item = tid(alice, 'autocomplete-item');
  await see(item.filter({ hasText: 'Bob Builder' }), 'typing "@Bui" does not suggest Bob Builder (found by a word of his display name)');
  assert.equal(await item.count(), 1, 'typing "@Bui" suggests people whose names do not start so');
  await box.press('Tab');
  assert.equal(await box.inputValue(), 'can you look at this, @bob ', 'Tab does not complete "@Bui" to bob\'s sign-in name');
  await box.pressSequentially('thanks');
  await box.press('Enter');

  const sent = messageWith(alice, 'can you look at this');
  await see(sent, 'the message with the completed mention does not show as sent');
  await see(sent.locator('.mention').filter({ hasText: /^@Bob Builder$/ }), 'the mention is not shown with bob\'s display name');

  const badge = convItem(bob, 'general').getByTestId('unread-badge');
  await see(badge, 'bob, in another room, gets no unread badge on #general');
  assert.equal(await convItem(bob, 'general').getAttribute('data-mentions'), '1', 'bob is not told he was mentioned in #general');
  assert.match(await badge.getAttribute('class'), /badge-mention/, 'the badge of bob\'s mention does not look like a mention');

  // # completes the rooms of the person typing, and a #room in a message opens it.
  await box.pressSequentially('see #gen');
  await see(tid(alice, 'autocomplete-item').filter({ hasText: 'general' }), 'typing "#gen" does not suggest #general');
  await box.press('Enter');
  assert.equal(await box.inputValue(), 'see #general ', 'Enter does not complete "#gen" to #general');
  await box.fill('');
  await tid(bob, 'composer').pressSequentially('more in #bobs');
  await tid(bob, 'composer').press('Tab');
  await tid(bob, 'composer').pressSequentially('and #general');
  await tid(bob, 'composer').press('Enter');
  await see(messageWith(bob, 'more in #bobs-desk and'), 'bob\'s message naming two rooms does not show as sent');
  await messageWith(bob, 'more in #bobs-desk and').getByTestId('room-ref').filter({ hasText: '#general' }).click();
  await see(tid(bob, 'conv-title').filter({ hasText: 'general' }), 'clicking #general in a message does not open #general');
  // Adam, never signed in, sorts before bob by name but comes after the people online.
  await alice.evaluate(async () => {
    const r = await fetch('/api/users', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'adam', display_name: 'Adam Absent', password: 'long enough pw', role: 'member' }),
    });
    if (!r.ok) throw new Error(`adding adam: HTTP ${r.status}`);
  });
  await see(alice.locator('[data-testid="person-item"][data-user-name="adam"]'), 'alice does not see the new account adam among People');
  await box.pressSequentially('@');
  const names = await tid(alice, 'autocomplete-item').evaluateAll((els) => els.map((e) => e.dataset.value));
  assert.deepEqual(names, ['@bob', '@carol', '@adam'], 'a bare "@" does not list the colleagues online first');
  await box.press('Escape');
  await alice.locator('.composer-box [data-testid="autocomplete"]').waitFor({ state: 'hidden', timeout: 5000 }).catch(() => assert.fail('Escape does not close the suggestions'));
  await box.fill('');
});

test('Ctrl+K and two letters of a colleague\'s name open a direct conversation with her; unread comes first', async () => {
  const { alice, carol } = o.pages;
  await openRoom(carol, 'general', 'carol');
  await carol.keyboard.press('Control+k');
  await see(tid(carol, 'switcher'), 'Ctrl+K does not open the quick switcher');
  assert.ok(await tid(carol, 'switcher-input').evaluate((el) => el === document.activeElement), 'the quick switcher opens without the cursor in its box');
  await carol.keyboard.type('al');
  const first = tid(carol, 'switcher-item').first();
  await see(first.filter({ hasText: 'Alice Admin' }), 'typing "al" in the quick switcher does not offer Alice Admin first');
  await carol.keyboard.press('Enter');
  await tid(carol, 'switcher').waitFor({ state: 'hidden', timeout: 5000 }).catch(() => assert.fail('Enter does not close the quick switcher'));
  await see(tid(carol, 'conv-title').filter({ hasText: 'Alice Admin' }), 'Enter in the quick switcher does not open the conversation with Alice Admin');
  await see(carol.locator('#dm-list [data-testid="conv-item"][data-kind="dm"]', { hasText: 'Alice Admin' }), 'the new direct conversation with alice is not among carol\'s direct messages');

  // Alice writes in #general while carol is in the DM: with nothing typed, #general comes first.
  await alice.keyboard.press('Escape');
  await tid(alice, 'composer').fill('news for everyone');
  await tid(alice, 'composer').press('Enter');
  await see(convItem(carol, 'general').getByTestId('unread-badge'), 'carol gets no unread badge on #general');
  await carol.keyboard.press('Control+k');
  await see(tid(carol, 'switcher-item').first().filter({ hasText: 'general' }), 'the quick switcher does not list the unread #general first');
  await carol.keyboard.press('Escape');
  await tid(carol, 'switcher').waitFor({ state: 'hidden', timeout: 5000 }).catch(() => assert.fail('Escape does not close the quick switcher'));

  // A public room carol is not in is offered too, and Enter joins it.
  await carol.keyboard.press('Control+k');
  await carol.keyboard.type('bobs');
  await see(tid(carol, 'switcher-item').first().filter({ hasText: 'bobs-desk' }), 'the quick switcher does not offer the public room bobs-desk, which carol has not joined');
  await carol.keyboard.press('Enter');
  await see(tid(carol, 'conv-title').filter({ hasText: 'bobs-desk' }), 'Enter on a room carol is not in does not join and open it');
  await see(convItem(carol, 'bobs-desk'), 'the room carol joined from the quick switcher is not in her sidebar');

  // "/" still goes to message search, where from:@ completes a colleague.
  await tid(carol, 'composer').blur();
  await carol.keyboard.press('/');
  assert.ok(await tid(carol, 'search-input').evaluate((el) => el === document.activeElement), '"/" does not put the cursor in the message search box');
  await carol.keyboard.type('from:@Adm');
  await see(tid(carol, 'autocomplete-item').filter({ hasText: 'Alice Admin' }), 'typing "from:@Adm" in the search box does not suggest Alice Admin');
  await carol.keyboard.press('Tab');
  assert.equal(await tid(carol, 'search-input').inputValue(), 'from:@alice ', 'Tab does not complete "from:@Adm" to alice');
  await carol.keyboard.type('news');
  await carol.keyboard.press('Enter');
  await see(tid(carol, 'search-result').filter({ hasText: 'news for everyone' }), 'the completed search "from:@alice news" does not find alice\'s message');
  await carol.keyboard.press('Escape');
});

test('a 40-line code block is folded with "show all 40 lines", and its copy button copies the code', async () => {
  const { alice, bob } = o.pages;
  await bob.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: o.server.base });
  await openRoom(alice, 'general', 'alice');
  await openRoom(bob, 'general', 'bob');
  const code = Array.from({ length: 40 }, (_, i) => `setting_${i + 1} = ${i * 7}`).join('\n');
  await tid(alice, 'composer').fill('our config:\n```\n' + code + '\n```');
  await tid(alice, 'composer').press('Enter');

  const msg = messageWith(bob, 'our config:');
  await see(msg, 'alice\'s config paste does not reach bob');
  const block = msg.locator('.code-block');
  const more = block.getByTestId('code-more');
  await see(more.filter({ hasText: 'Show all 40 lines' }), 'the 40-line block has no "Show all 40 lines"');
  const heights = () => block.locator('pre').evaluate((pre) => ({ shown: pre.clientHeight, whole: pre.scrollHeight }));
  const folded = await heights();
  assert.ok(folded.shown < folded.whole / 2, `the 40-line block is not folded: ${folded.shown}px shown of ${folded.whole}px`);

  await block.getByTestId('code-copy').click();
  await see(block.getByTestId('code-copy').filter({ hasText: 'Copied' }), 'the copy button does not say it copied');
  assert.equal(await bob.evaluate(() => navigator.clipboard.readText()), code, 'the copy button does not put the code on the clipboard');

  await more.click();
  const open = await heights();
  assert.ok(open.shown >= open.whole - 1, `"Show all 40 lines" does not show the whole block: ${open.shown}px of ${open.whole}px`);
  await see(more.filter({ hasText: 'Show less' }), 'the unfolded block offers no way to fold it again');

  // A short block is not folded, but has its copy button too.
  await tid(alice, 'composer').fill('```\nls -la\n```');
  await tid(alice, 'composer').press('Enter');
  const short = messageWith(bob, 'ls -la').locator('.code-block');
  await see(short.getByTestId('code-copy'), 'a short code block has no copy button');
  assert.equal(await short.getByTestId('code-more').count(), 0, 'a 1-line block is folded');
});

/** Text against background contrast (WCAG 2) of the first element matching each selector, in `page`. */
function contrasts(page, selectors) {
  return page.evaluate((selectors) => {
    const parse = (c) => {
      const [r, g, b, a = 1] = c.match(/[\d.]+/g).map(Number);
      return { r, g, b, a };
    };
    const over = (top, under) => ({
      r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1,
    });
    const lum = ({ r, g, b }) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const out = {};
    for (const sel of selectors) {
      const el = document.querySelector(sel);
      if (!el) { out[sel] = 'missing'; continue; }
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const bg = parse(getComputedStyle(e).backgroundColor);
        if (bg.a > 0) layers.push(bg);
        if (bg.a >= 1) break;
      }
      let bg = { r: 255, g: 255, b: 255, a: 1 };
      for (const l of layers.reverse()) bg = over(l, bg);
      const fg = over(parse(getComputedStyle(el).color), bg);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      out[sel] = Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100;
    }
    return out;
  }, selectors);
}

const WAIT_MS = 10_000;

const TEXTS = [
  '[data-testid="message"] .msg-text', '[data-testid="message"] .author', '[data-testid="message"] .time', '.msg-text .mention:not(.mention-me)',
  '.msg-text .mention-me', '.msg-text a', '.msg-text code:not(pre code)', '.msg-text pre code', '.code-copy', '.code-more', '.day span',
  '.conv-item .label', '.side-scroll h2 span', '.records-text', '.conv-topic', '#me-status', '#composer', '.conv-title',
];

test('the dark theme follows the system and a switch keeps a choice; both themes meet AA contrast', async () => {
  const { alice, bob } = o.pages;
  await openRoom(alice, 'general', 'alice');
  await tid(alice, 'composer').fill('the wiki is at http://wiki.local/printers and `lpstat -p` lists them, @bob and @carol');
  await tid(alice, 'composer').press('Enter');
  await openRoom(bob, 'general', 'bob');
  await see(messageWith(bob, 'the wiki is at'), 'alice\'s message with a link does not reach bob');
  const background = () => bob.evaluate(() => getComputedStyle(document.body).backgroundColor);

  await bob.emulateMedia({ colorScheme: 'light' });
  assert.equal(await background(), 'rgb(255, 255, 255)', 'a light system does not get the light page');
  const low = (c) => Object.entries(c).filter(([, r]) => r === 'missing' || r < 4.5);
  assert.deepEqual(low(await contrasts(bob, TEXTS)), [], 'text in the light theme is below AA contrast (4.5:1), or missing');

  await bob.emulateMedia({ colorScheme: 'dark' });
  const dark = await background();
  assert.notEqual(dark, 'rgb(255, 255, 255)', 'a dark system still gets the light page');
  assert.deepEqual(low(await contrasts(bob, TEXTS)), [], 'text in the dark theme is below AA contrast (4.5:1), or missing');
  await bob.screenshot({ path: path.join(OUT, 'dark.png') });

  // The switch: system → dark → light (kept over a reload, against the dark system) → system.
  const theme = tid(bob, 'theme-button');
  assert.equal(await theme.getAttribute('data-theme'), 'system', 'the theme does not start as the system\'s');
  await theme.click();
  assert.equal(await theme.getAttribute('data-theme'), 'dark');
  await theme.click();
  assert.equal(await background(), 'rgb(255, 255, 255)', 'choosing the light theme on a dark system does not make the page light');
  await bob.reload();
  await see(tid(bob, 'composer'), 'bob does not get back to the chat after a reload');
  assert.equal(await background(), 'rgb(255, 255, 255)', 'the light theme chosen is not kept over a reload');
  await tid(bob, 'theme-button').click();
  assert.equal(await background(), dark, 'going back to the system\'s theme does not follow the dark system');
  await bob.emulateMedia({ colorScheme: 'light' });
});

test('keyboard only: an older own message is edited and another deleted; new messages are announced', async () => {
  const { alice, bob } = o.pages;
  await openRoom(alice, 'general', 'alice');
  await openRoom(bob, 'general', 'bob');
  const post = async (page, text) => {
    await tid(page, 'composer').fill(text);
    await tid(page, 'composer').press('Enter');
    await see(messageWith(page, text), `"${text}" does not show as sent`);
  };
  await post(bob, 'first of mine');
  await post(alice, 'from alice in between');
  await see(messageWith(bob, 'from alice in between'), 'alice\'s message does not reach bob');
  assert.equal(await tid(bob, 'announcer').textContent(), 'Alice Admin: from alice in between', 'alice\'s new message is not announced to screen readers');
  await post(bob, 'second of mine');
  await post(bob, 'third of mine');

  const focused = () => bob.evaluate(() => {
    const row = document.activeElement?.closest('[data-testid="message"]');
    return row ? { text: row.querySelector('[data-testid="message-text"]')?.textContent ?? '', row: row === document.activeElement, outline: getComputedStyle(row).outlineStyle } : null;
  });
  // Up in the empty message box edits the last own message; Escape goes back.
  await tid(bob, 'composer').focus();
  await bob.keyboard.press('ArrowUp');
  await see(tid(bob, 'edit-input'), 'Up in the empty message box does not edit bob\'s last message');
  assert.equal(await tid(bob, 'edit-input').inputValue(), 'third of mine');
  await bob.keyboard.press('Escape');

  await bob.keyboard.press('Shift+Tab');
  let f = await focused();
  assert.ok(f?.row && f.text === 'third of mine', `Shift+Tab from the message box does not go to the newest message: ${JSON.stringify(f)}`);
  assert.equal(f.outline, 'solid', 'the focused message has no visible focus');
  for (let i = 0; i < 3; i++) await bob.keyboard.press('ArrowUp');
  f = await focused();
  assert.ok(f?.row && f.text === 'first of mine', `three times Up does not reach "first of mine": ${JSON.stringify(f)}`);

  await bob.keyboard.press('e');
  await see(tid(bob, 'edit-input'), 'E on bob\'s own message does not open it for editing');
  await bob.keyboard.press('Control+a');
  await bob.keyboard.type('first of mine, corrected for @Dan');
  await see(tid(bob, 'autocomplete-item').filter({ hasText: 'Carol Danvers' }), 'the edit box does not complete "@Dan" to Carol Danvers');
  await bob.keyboard.press('Enter');
  assert.equal(await tid(bob, 'edit-input').inputValue(), 'first of mine, corrected for @carol ', 'Enter in the edit box does not complete the mention before saving');
  await bob.keyboard.press('Enter');
  await see(messageWith(alice, 'first of mine, corrected').getByTestId('message-edited'), 'the edit made by keyboard does not reach alice as edited');
  await bob.waitForFunction(() => document.activeElement?.matches('[data-testid="message"]') && document.activeElement.textContent.includes('first of mine, corrected'), null, { timeout: 5000 })
    .catch(() => assert.fail('after the edit the focus does not stay on the edited message'));

  await bob.keyboard.press('ArrowDown');
  await bob.keyboard.press('ArrowDown');
  f = await focused();
  assert.ok(f?.row && f.text === 'second of mine', `Down twice from the edited message does not reach "second of mine": ${JSON.stringify(f)}`);
  const asked = [];
  bob.once('dialog', (d) => { asked.push(d.message()); d.accept(); });
  await bob.keyboard.press('d');
  await messageWith(alice, 'second of mine').waitFor({ state: 'detached', timeout: 10_000 })
    .catch(() => assert.fail('D on bob\'s own message, confirmed, does not delete it for alice'));
  assert.equal(asked.length, 1, 'deleting by keyboard does not ask for a confirmation first');
  await see(messageWith(bob, 'third of mine'), 'bob\'s newest message went away with the deleted one');
  await bob.keyboard.press('Escape');
  assert.ok(await tid(bob, 'composer').evaluate((el) => el === document.activeElement), 'Escape in the message list does not go back to the message box');
});

test('People filter by name; presence beside authors; a room\'s creator removes a member, who loses the room', async () => {
  const { alice, bob, carol } = o.pages;
  await tid(alice, 'people-search').fill('danv');
  const people = () => alice.locator('[data-testid="person-item"]').evaluateAll((els) => els.map((e) => e.dataset.userName));
  await alice.waitForFunction(() => document.querySelectorAll('[data-testid="person-item"]').length === 1, null, { timeout: 5000 }).catch(() => {});
  assert.deepEqual(await people(), ['carol'], 'filtering People by "danv" does not leave Carol Danvers alone');
  await tid(alice, 'people-search').press('Escape');
  await alice.waitForFunction(() => document.querySelectorAll('[data-testid="person-item"]').length === 4, null, { timeout: 5000 })
    .catch(() => assert.fail('Escape in the People filter does not show everyone again'));

  // Bob's messages carry his presence, live.
  await openRoom(alice, 'general', 'alice');
  const dotOfBob = alice.locator('[data-testid="message"][data-author-name="bob"] [data-testid="author-presence"]').first();
  await see(dotOfBob, 'bob\'s messages show no presence beside his name');
  assert.equal(await dotOfBob.getAttribute('data-state'), 'online');
  await tid(bob, 'status-button').click();
  await tid(bob, 'status-dnd').check();
  await tid(bob, 'status-submit').click();
  await see(alice.locator('[data-testid="message"][data-author-name="bob"] [data-testid="author-presence"][data-state="dnd"]'),
    'bob went into do-not-disturb, but the dot beside his messages does not follow');

  // Carol joins bob's room; she may not remove anyone, bob (its creator) removes her.
  const desk = Number(await convItem(bob, 'bobs-desk').getAttribute('data-conv-id'));
  await carol.evaluate((conv) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${location.host}/api/ws`);
    ws.onmessage = (ev) => {
      const f = JSON.parse(ev.data);
      if (f.type === 'hello' && f.last) ws.send(JSON.stringify({ type: 'join', conv, ref: 'j' }));
      else if (f.type === 'ack' && f.ref === 'j') { ws.close(); resolve(); } else if (f.type === 'error') reject(new Error(f.message));
    };
  }), desk);
  await openRoom(carol, 'bobs-desk', 'carol');
  await tid(carol, 'member-count').click();
  await see(tid(carol, 'member').filter({ hasText: 'Bob Builder' }), 'the members of bobs-desk do not list bob');
  assert.equal(await tid(carol, 'member-remove').count(), 0, 'carol, neither the room\'s creator nor an admin, is offered to remove members');
  await tid(carol, 'members-close').click();

  await openRoom(bob, 'bobs-desk', 'bob');
  await tid(bob, 'member-count').click();
  const carolRow = tid(bob, 'member').filter({ hasText: 'Carol Danvers' });
  await see(carolRow, 'bob does not see carol among the members of his room');
  bob.once('dialog', (d) => d.accept());
  await carolRow.getByTestId('member-remove').click();
  await carolRow.waitFor({ state: 'detached', timeout: WAIT_MS }).catch(() => assert.fail('carol stays in the members list after bob removed her'));
  await tid(bob, 'members-close').click();
  await convItem(carol, 'bobs-desk').waitFor({ state: 'detached', timeout: WAIT_MS }).catch(() => assert.fail('carol still has bobs-desk after bob removed her'));
  await see(tid(carol, 'toast').filter({ hasText: 'Bob Builder removed you from #bobs-desk' }), 'carol is not told who removed her');
  await see(bob.getByTestId('system-line').filter({ hasText: 'Bob Builder removed Carol Danvers' }), 'the room does not say bob removed carol');

  await tid(bob, 'status-button').click();
  await tid(bob, 'status-dnd').uncheck();
  await tid(bob, 'status-submit').click();
});
