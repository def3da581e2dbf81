// Speed as people feel it (issue 19): the first load stays under 150 KB over the wire (every
// response the page got, headers and compressed bodies, from the address bar to a room on
// screen), and a tab holding 10,000 messages of one room keeps a bounded window of them in
// the page while the reader scrolls from the newest to the very first.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { OUT, see, tid, convItem, messageWith, launchBrowser, office, signIn } from './harness.mjs';

const BUDGET = 150 * 1024;
const WINDOW_MAX = 620; // views/messages.js WINDOW (500) and STEP (100), and a few pending or system rows

let browser;
let o;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await launchBrowser();
  o = await office(browser, [], [['bob', 'Bob Builder']]);
});

after(async () => {
  try { if (o) await o.close(); } finally { if (browser) await browser.close(); }
});

test('the first load, signed in to a room, is under 150 KB over the wire', async (t) => {
  const page = await o.newPage('bob-fresh');
  const sizes = [];
  page.on('requestfinished', async (req) => {
    const s = await req.sizes().catch(() => null);
    if (s) sizes.push({ url: req.url(), bytes: s.responseHeadersSize + s.responseBodySize, headers: s.responseHeadersSize });
  });
  await page.goto(o.server.base + '/');
  await signIn(page, 'bob', 'long enough pw');
  await see(convItem(page, 'general'), 'bob does not see #general after signing in');
  await page.waitForLoadState('networkidle');
  const total = sizes.reduce((a, s) => a + s.bytes, 0);
  const biggest = [...sizes].sort((a, b) => b.bytes - a.bytes).slice(0, 5).map((s) => `${new URL(s.url).pathname} ${(s.bytes / 1024).toFixed(1)} KB`);
  const headers = sizes.reduce((a, s) => a + s.headers, 0);
  t.diagnostic(`first load: ${(total / 1024).toFixed(1)} KB in ${sizes.length} responses (${(headers / 1024).toFixed(1)} KB of it headers); biggest: ${biggest.join(', ')}`);
  assert.ok(sizes.some((s) => s.url.endsWith('/app.js')), 'the load was not measured: no app.js among the responses');
  assert.ok(total < BUDGET, `the first load took ${(total / 1024).toFixed(1)} KB over the wire, over 150 KB: ${biggest.join(', ')}`);
  await page.context().close();
});

test('10,000 messages in an open room: the page keeps a window of them, from the newest back to the first', { timeout: 300_000 }, async (t) => {
  const { alice, bob } = o.pages;
  await tid(bob, 'create-room-button').click();
  await tid(bob, 'create-room-name').fill('flood');
  await tid(bob, 'create-room-submit').click();
  await see(tid(bob, 'conv-title').filter({ hasText: 'flood' }), 'bob does not get to his new room');
  const conv = Number(await convItem(bob, 'flood').getAttribute('data-conv-id'));

  // Sent from another tab of bob's, in batches (each well inside a tab's queue, which also
  // carries the messages back to it), while this one is open in the room.
  await bob.evaluate((conv) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${location.host}/api/ws`);
    let sent = 0;
    let acked = 0;
    let done = false;
    const batch = () => {
      for (let k = 0; k < 200; k++) { sent++; ws.send(JSON.stringify({ type: 'send', conv, text: `flood message ${sent}`, client_id: `flood-${sent}`, ref: sent })); }
    };
    ws.onmessage = (ev) => {
      const f = JSON.parse(ev.data);
      if (f.type === 'hello' && f.last) batch();
      else if (f.type === 'ack') { if (++acked === sent) { if (sent === 10_000) { done = true; ws.close(); resolve(); } else batch(); } }
      else if (f.type === 'error') reject(new Error(f.message));
    };
    ws.onclose = (ev) => { if (!done) reject(new Error(`the sending tab was closed (${ev.code} ${ev.reason}) after ${acked} acks`)); };
  }), conv);
  await see(messageWith(bob, 'flood message 10000'), 'the 10,000th message does not show in bob\'s open room', 60_000);
  const held = await bob.evaluate(() => document.querySelectorAll('[data-testid="message"]').length);
  t.diagnostic(`rows in the page with 10,000 messages held: ${held}`);
  assert.ok(held <= WINDOW_MAX, `bob's page holds ${held} message rows for 10,000 messages: the list is not windowed`);

  // Scrolling to the top again and again walks back through the window to the first message.
  const older = [];
  bob.on('request', (r) => { if (/\/messages\?.*before=/.test(r.url())) older.push(r.url()); });
  let steps = 0;
  let most = 0;
  for (; steps < 200; steps++) {
    const state = await bob.evaluate(async () => {
      const list = document.getElementById('messages');
      list.scrollTop = 0;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const rows = list.querySelectorAll('[data-testid="message"]');
      return { rows: rows.length, first: rows[0]?.querySelector('[data-testid="message-text"]')?.textContent, start: !!list.querySelector('.conv-start') };
    });
    most = Math.max(most, state.rows);
    if (state.start && state.first === 'flood message 1') break;
  }
  t.diagnostic(`scrolled back to the first message in ${steps} steps, at most ${most} rows in the page`);
  assert.ok(steps < 200, 'scrolling up does not reach the first of the 10,000 messages');
  assert.ok(most <= WINDOW_MAX, `while scrolling back the page held up to ${most} message rows`);
  assert.deepEqual(older, [], 'scrolling back through messages the tab holds asked the server for them again');

  // Up in the empty box edits bob's last message, far below the rows now in the page.
  await tid(bob, 'composer').focus();
  await bob.keyboard.press('ArrowUp');
  const edit = tid(bob, 'edit-input');
  await see(edit, 'Up in an empty box does nothing when one\'s last message is outside the rows in the page');
  assert.equal(await edit.inputValue(), 'flood message 10000', 'Up opens another message than bob\'s last for editing');
  await edit.press('Escape');

  // And down again to the newest, where a new message from alice shows.
  for (let k = 0; k < 200; k++) {
    const done = await bob.evaluate(async () => {
      const list = document.getElementById('messages');
      list.scrollTop = list.scrollHeight;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return !!document.querySelector('[data-testid="message"]:last-of-type')
        && [...list.querySelectorAll('[data-testid="message-text"]')].at(-1)?.textContent === 'flood message 10000';
    });
    if (done) break;
  }
  await tid(alice, 'composer').focus();
  await tid(bob, 'invite-button').click();
  await bob.locator('[data-testid="pick-person"][data-user-name="alice"] input').check();
  await tid(bob, 'people-submit').click();
  await see(convItem(alice, 'flood'), 'alice does not get the room bob invited her to');
  await convItem(alice, 'flood').click();
  await tid(alice, 'composer').fill('that was a lot');
  await tid(alice, 'composer').press('Enter');
  await see(messageWith(bob, 'that was a lot'), 'back at the newest, bob does not see alice\'s new message');
  assert.ok(await bob.evaluate(() => document.querySelectorAll('[data-testid="message"]').length) <= WINDOW_MAX, 'the window grew past its size with a new message');
});
