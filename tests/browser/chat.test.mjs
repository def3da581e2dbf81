// End-to-end story of the Hallway web client in headless Debian chromium.
// Starts its own server (HALLWAY_BIN, default ../../target/debug/hallway) on a free port with a
// fresh data file, drives two browser contexts (alice, bob) and checks what a person would see.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BIN, CHROMIUM, OUT, WAIT, startServer, stopServer, watch as watchPage, see, tid, convItem, messageWith, inView, signIn, search, fromAnotherTab, launchBrowser,
} from './harness.mjs';

let server;      // {proc, base, setupUrl, output}
let tmp;
let browser;
let ctxA, ctxB, pageA, pageB;
const foreign = [];    // requests to any host other than the server
const pageErrors = []; // uncaught exceptions in the pages
const watch = (page, who) => watchPage(page, who, server.base, { foreign, pageErrors });

before(async () => {
  assert.ok(existsSync(BIN), `the server binary ${BIN} is missing: build it with "cargo build" (or set HALLWAY_BIN)`);
  assert.ok(existsSync(CHROMIUM), `chromium is missing at ${CHROMIUM}: install it with "apt-get install -y chromium"`);
  mkdirSync(OUT, { recursive: true });
  tmp = mkdtempSync(path.join(tmpdir(), 'hallway-browser-'));
  server = await startServer(tmp);
  browser = await launchBrowser();
  ctxA = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  ctxB = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  pageA = await ctxA.newPage();
  pageB = await ctxB.newPage();
  watch(pageA, 'alice');
  watch(pageB, 'bob');
});

after(async () => {
  try {
    if (pageA) await pageA.screenshot({ path: path.join(OUT, 'alice.png') }).catch(() => {});
    if (pageB) await pageB.screenshot({ path: path.join(OUT, 'bob.png') }).catch(() => {});
    if (browser) await browser.close();
  } finally {
    if (server) await stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
});

test('the setup link creates the first admin and opens the chat', async () => {
  await pageA.goto(server.setupUrl);
  await see(tid(pageA, 'setup-form'), 'opening the setup link does not show the "Set up Hallway" form');
  await tid(pageA, 'setup-name').fill('alice');
  await tid(pageA, 'setup-display-name').fill('Alice Admin');
  await tid(pageA, 'setup-password').fill('correct horse battery');
  await tid(pageA, 'setup-submit').click();
  await see(tid(pageA, 'composer'), 'after submitting the setup form, alice does not get to the chat (no message box)');
  await see(convItem(pageA, 'general'), 'alice does not see the room "general" that setup creates in her sidebar');
  await see(tid(pageA, 'add-user-button'), 'alice is the admin but sees no "Add user" button');
  assert.equal(new URL(pageA.url()).pathname, '/', 'after setup the address bar still shows the one-time setup link');
});

test('the admin adds bob with the "Add user" form', async () => {
  await tid(pageA, 'add-user-button').click();
  await see(tid(pageA, 'add-user-form'), 'clicking "Add user" does not open the add-user form');
  await tid(pageA, 'add-user-name').fill('bob');
  await tid(pageA, 'add-user-display-name').fill('Bob Builder');
  await tid(pageA, 'add-user-password').fill('hunter22hunter');
  await tid(pageA, 'add-user-role').selectOption('member');
  await tid(pageA, 'add-user-submit').click();
  await see(pageA.locator('[data-testid="person-item"][data-user-name="bob"]'),
    'after adding bob, alice does not see Bob in the People list');
  const err = (await tid(pageA, 'add-user-error').textContent()) || '';
  assert.equal(err.trim(), '', `adding bob shows an error: ${err}`);
});

test('bob signs in; a wrong password is refused with a clear message', async () => {
  await pageB.goto(server.base + '/');
  await see(tid(pageB, 'signin-form'), 'bob opens Hallway without a session and sees no sign-in form');
  await tid(pageB, 'signin-name').fill('bob');
  await tid(pageB, 'signin-password').fill('not his password');
  await tid(pageB, 'signin-submit').click();
  await see(tid(pageB, 'signin-error').filter({ hasText: /wrong name or password/i }),
    'a wrong password does not tell bob "Wrong name or password"');
  await tid(pageB, 'signin-password').fill('hunter22hunter');
  await tid(pageB, 'signin-submit').click();
  await see(tid(pageB, 'composer'), 'bob signs in with the right password but does not get to the chat');
  await see(convItem(pageB, 'general'), 'bob is not in the room "general" (every new account should be)');
});

test('both open general; bob sees alice online and what general keeps', async () => {
  await convItem(pageA, 'general').click();
  await convItem(pageB, 'general').click();
  for (const [page, who] of [[pageA, 'alice'], [pageB, 'bob']]) {
    await see(tid(page, 'conv-title').filter({ hasText: 'general' }), `${who} clicked "general" but the header does not say general`);
    await see(tid(page, 'recorded-indicator').filter({ hasText: /^Kept$/ }), `${who} is not told that "general" keeps its messages`);
    await see(tid(page, 'records-text').filter({ hasText: /^Kept$/ }), `${who} sees no banner saying what "general" keeps`);
  }
  await see(pageB.locator('[data-testid="person-item"][data-user-name="alice"] [data-testid="presence-dot"][data-state="online"]'),
    'bob does not see a green "online" dot next to alice, who has Hallway open');
});

test("alice's message reaches bob, and bob's reply reaches alice", async () => {
  const hello = 'Hello Bob, lunch at noon?';
  await tid(pageA, 'composer').click();
  await tid(pageA, 'composer').pressSequentially('Hello Bob, ');
  await see(tid(pageB, 'typing-indicator').filter({ hasText: /Alice Admin is typing/ }),
    'while alice types, bob does not see "Alice Admin is typing…"');
  await tid(pageA, 'composer').pressSequentially('lunch at noon?');
  await tid(pageA, 'composer').press('Enter');
  await see(messageWith(pageA, hello), "alice pressed Enter but her message never shows as sent in her own window");
  assert.equal(await tid(pageA, 'composer').inputValue(), '', 'the message box is not emptied after sending');
  await see(messageWith(pageB, hello), "alice's message does not appear in bob's window");
  await see(messageWith(pageB, hello).getByTestId('message-author').filter({ hasText: 'Alice Admin' }),
    "bob sees alice's message but not who wrote it");

  const reply = 'Sure, see you there @alice';
  await tid(pageB, 'composer').fill(reply);
  await tid(pageB, 'composer').press('Enter');
  await see(messageWith(pageA, reply), "bob's reply does not appear in alice's window");
  const mention = messageWith(pageA, reply);
  assert.equal(await mention.first().getAttribute('data-mentions-me'), 'true', "bob's @alice is not highlighted for alice");

  // Shift+Enter makes a new line instead of sending.
  await tid(pageB, 'composer').fill('line one');
  await tid(pageB, 'composer').press('Shift+Enter');
  await tid(pageB, 'composer').pressSequentially('line two');
  assert.equal(await tid(pageB, 'composer').inputValue(), 'line one\nline two', 'Shift+Enter does not start a new line in the message box');
  await tid(pageB, 'composer').press('Enter');
  await see(messageWith(pageA, 'line two'), 'a two-line message from bob does not reach alice');

  // Text that looks like HTML is shown as text, never run.
  const html = '<img src=x onerror="window.__pwned=1"><b>bold?</b>';
  await tid(pageB, 'composer').fill(html);
  await tid(pageB, 'composer').press('Enter');
  await see(messageWith(pageA, '<b>bold?</b>'), 'a message containing HTML is not shown literally to alice');
  assert.equal(await pageA.locator('[data-testid="message-list"] img').count(), 0, 'HTML in a message became a real element on the page');
  assert.equal(await pageA.evaluate(() => window.__pwned), undefined, 'HTML in a message ran script in the page');
});

test('after the server restarts, both tabs reconnect and nothing is lost or doubled', async () => {
  // Bob's tab checks its session before each reconnect attempt; holding that request back keeps
  // bob away while alice posts, so he has to catch up from history when he returns.
  const holdBob = (route) => route.abort('connectionrefused');
  await pageB.route('**/api/me', holdBob);
  const listen = new URL(server.base).host;
  await stopServer(server);
  // A graceful stop (SIGTERM) tells each tab first: its banner says so, not just "Reconnecting…".
  await see(tid(pageA, 'reconnect-banner').filter({ hasText: 'The server is restarting' }),
    'the server stopped but alice is not told "The server is restarting"');
  await see(tid(pageB, 'reconnect-banner').filter({ hasText: 'The server is restarting' }),
    'the server stopped but bob is not told "The server is restarting"');

  await tid(pageA, 'composer').fill('typed while the server was down');
  await tid(pageA, 'composer').press('Enter');
  await see(pageA.locator('[data-testid="message"][data-pending]', { hasText: 'typed while the server was down' }),
    'a message alice sends while disconnected is not shown as pending');

  server = await startServer(tmp, listen, false);
  await tid(pageA, 'reconnect-banner').waitFor({ state: 'hidden', timeout: 20_000 })
    .catch(() => assert.fail('alice still sees "Reconnecting…" 20 s after the server came back'));
  await see(messageWith(pageA, 'typed while the server was down'), 'the message alice typed while offline is never sent');
  for (const text of ['posted while bob was away', 'and one more']) {
    await tid(pageA, 'composer').fill(text);
    await tid(pageA, 'composer').press('Enter');
    await see(messageWith(pageA, text), `alice's message "${text}" is not confirmed after the restart`);
  }
  assert.equal(await messageWith(pageB, 'posted while bob was away').count(), 0, 'bob should still be disconnected here');

  const catchUps = [];
  const onRequest = (req) => { if (/\/messages\?.*after=/.test(req.url())) catchUps.push(req.url()); };
  pageB.on('request', onRequest);
  await pageB.unroute('**/api/me', holdBob);
  await tid(pageB, 'reconnect-banner').waitFor({ state: 'hidden', timeout: 20_000 })
    .catch(() => assert.fail('bob still sees "Reconnecting…" 20 s after the server came back'));
  await see(messageWith(pageB, 'and one more'), 'bob reconnected but the messages posted while he was away are missing');
  pageB.off('request', onRequest);
  assert.ok(catchUps.length > 0, "bob's tab did not fetch what it missed (no ?after= history request)");
  for (const [page, who] of [[pageA, 'alice'], [pageB, 'bob']]) {
    const texts = await page.locator('[data-testid="message"] [data-testid="message-text"]').allTextContents();
    const tail = texts.slice(-3);
    assert.deepEqual(tail, ['typed while the server was down', 'posted while bob was away', 'and one more'],
      `after reconnecting, ${who} sees the last messages out of order, doubled or missing: ${JSON.stringify(texts.slice(-6))}`);
    assert.equal(new Set(texts).size, texts.length, `${who} sees a message twice: ${JSON.stringify(texts)}`);
  }
});

test('a direct message: the header names bob and nothing else; bob gets a badge and a "New" line', async () => {
  await pageA.locator('[data-testid="person-item"][data-user-name="bob"]').click();
  await see(tid(pageA, 'conv-title').filter({ hasText: 'Bob Builder' }), 'alice clicked Bob in People but the header does not name him');
  const header = (await tid(pageA, 'conv-header').innerText()).replace(/\s+/g, ' ');
  assert.doesNotMatch(header, /null|undefined/, `the header of alice's DM with bob shows placeholder text: "${header}"`);
  await tid(pageA, 'composer').fill('psst, a direct question');
  await tid(pageA, 'composer').press('Enter');
  await see(messageWith(pageA, 'psst, a direct question'), 'alice sent bob a direct message but it never shows as sent');

  const dm = pageB.locator('#dm-list [data-testid="conv-item"]', { hasText: 'Alice Admin' });
  await see(dm.locator('[data-testid="unread-badge"]').filter({ hasText: '1' }), 'bob does not see an unread badge on his new DM from alice');
  await dm.click();
  await see(messageWith(pageB, 'psst, a direct question'), "alice's direct message does not appear when bob opens the DM");
  await see(tid(pageB, 'new-line'), 'bob opens a DM with an unread message but nothing marks where the new part starts');
  await dm.locator('[data-testid="unread-badge"]').waitFor({ state: 'detached', timeout: WAIT })
    .catch(() => assert.fail('bob read the DM but its unread badge stays'));
});


test('search: a word finds the message, highlighted; a click opens it in its conversation; from: and in: narrow it', async () => {
  await tid(pageB, 'composer').blur();
  await pageB.keyboard.press('/');
  assert.ok(await tid(pageB, 'search-input').evaluate((el) => el === document.activeElement), '"/" does not put the cursor in the search box');
  await search(pageB, 'LUNCH');
  const hit = pageB.locator('[data-testid="search-result"]', { hasText: 'Hello Bob, lunch at noon?' });
  await see(hit, 'bob searched for "LUNCH" but alice\'s "Hello Bob, lunch at noon?" is not among the results');
  await see(tid(pageB, 'search-title').filter({ hasText: 'Results for “LUNCH”' }), 'the search results have no "Results for …" header');
  assert.equal(await tid(pageB, 'search-result').count(), 1, 'one message mentions lunch, but the search shows a different number of results');
  assert.deepEqual(await hit.locator('[data-testid="search-result-text"] mark').allTextContents(), ['lunch'],
    'the searched word is not highlighted (in a <mark>) in the result');
  assert.equal(await hit.getAttribute('data-conv-name'), 'general', 'the result does not say it is in #general');
  await see(hit.getByTestId('search-result-author').filter({ hasText: 'Alice Admin' }), 'the result does not say alice wrote it');
  await pageB.screenshot({ path: path.join(OUT, 'search.png') });

  await hit.click();
  await tid(pageB, 'search-results').waitFor({ state: 'hidden', timeout: WAIT })
    .catch(() => assert.fail('bob clicked a search result but the results stay in front of the conversation'));
  await see(tid(pageB, 'conv-title').filter({ hasText: 'general' }), 'clicking the result does not open #general, where the message is');
  await inView(pageB, messageWith(pageB, 'Hello Bob, lunch at noon?'), 'clicking the result opens #general but does not show the message');

  // "/" (outside a text box) focuses the search box too; from: narrows to one author.
  await tid(pageB, 'composer').blur();
  await pageB.keyboard.press('/');
  assert.ok(await tid(pageB, 'search-input').evaluate((el) => el === document.activeElement), '"/" does not put the cursor in the search box');
  await search(pageB, 'from:@bob');
  await see(tid(pageB, 'search-result').filter({ hasText: 'line two' }), 'searching "from:@bob" does not find bob\'s messages');
  const authors = await tid(pageB, 'search-result').evaluateAll((els) => els.map((e) => e.dataset.authorName));
  assert.deepEqual(authors, ['bob', 'bob', 'bob'], `"from:@bob" should find bob's three messages, newest first; it shows messages by ${authors.join(', ')}`);
  assert.equal(await tid(pageB, 'search-results').locator('img').count(), 0, 'HTML in a message became a real element in the search results');

  const searched = [];
  const onRequest = (req) => { if (req.url().includes('/api/search')) searched.push(req.url()); };
  pageB.on('request', onRequest);
  await search(pageB, 'from:bob lunch');
  await see(tid(pageB, 'search-status').filter({ hasText: 'No messages found' }), 'bob never wrote "lunch", but the search does not say "No messages found"');
  await search(pageB, 'in:#general from:alice lunch');
  await see(tid(pageB, 'search-result').filter({ hasText: 'Hello Bob, lunch at noon?' }), '"in:#general from:alice lunch" does not find alice\'s message');
  assert.match(searched.at(-1), /conv=\d+/, 'in:#general is not sent to the server as conv');
  const before = searched.length;
  await search(pageB, 'lunch in:#nowhere');
  await see(tid(pageB, 'search-status').filter({ hasText: 'not in a room named #nowhere' }), 'in: naming an unknown room does not say so');
  assert.equal(searched.length, before, 'a search in an unknown room was sent to the server anyway');
  await search(pageB, 'lunch in:#');
  await see(tid(pageB, 'search-status').filter({ hasText: 'Name a conversation after in:' }), 'an empty in:# is searched as the word "in"');
  assert.equal(searched.length, before, 'a search with an empty in: was sent to the server anyway');
  await search(pageB, 'from:@nobody');
  await see(tid(pageB, 'search-status').filter({ hasText: /no user named nobody/ }), 'the server refused from:@nobody, but its reason is not shown');
  pageB.off('request', onRequest);

  await pageB.keyboard.press('Escape');
  await tid(pageB, 'search-results').waitFor({ state: 'hidden', timeout: WAIT })
    .catch(() => assert.fail('Escape does not close the search results'));
  await see(tid(pageB, 'conv-title').filter({ hasText: 'general' }), 'closing the search results does not go back to the conversation');
});


test('search: a result older than the loaded history is reached by paging back through it', async () => {
  // Bob posts 300 messages to general from a second connection: after a reload alice's tab loads
  // only the newest 200 of them, and "lunch" lies further back.
  const conv = Number(await convItem(pageB, 'general').getAttribute('data-conv-id'));
  const reports = Array.from({ length: 300 }, (_, k) =>
    ({ type: 'send', conv, text: `status report ${k + 1}`, client_id: `filler-${k + 1}`, ref: k + 1 }));
  const seqs = await fromAnotherTab(pageB, reports);
  await pageA.reload();
  await see(tid(pageA, 'composer'), 'alice reloaded the page but does not get back to the chat');
  const pages = [];
  const onRequest = (req) => { if (/\/messages\?.*before=/.test(req.url())) pages.push(req.url()); };
  pageA.on('request', onRequest);

  // 300 matches come 20 at a time, newest first; "More results" brings the next 20.
  await search(pageA, 'status report');
  await see(tid(pageA, 'search-more'), '300 messages match "status report" but there is no "More results" button');
  await tid(pageA, 'search-more').click();
  await pageA.waitForFunction(() => document.querySelectorAll('[data-testid="search-result"]').length === 40, null, { timeout: WAIT })
    .catch(() => assert.fail('"More results" does not add the next 20 results'));
  const texts = await pageA.getByTestId('search-result-text').allTextContents();
  assert.deepEqual([texts[0], texts[19], texts[20], texts[39]], ['status report 300', 'status report 281', 'status report 280', 'status report 261'],
    'the results of "status report" are not newest first, or "More results" repeats or skips some');

  // Bob edits an old message that alice's open #general has not loaded: her tab hears of the
  // edit, and must still load every message when it pages back past it.
  await convItem(pageA, 'general').click();
  await see(messageWith(pageA, 'status report 300'), 'alice opened #general but does not see the newest message');
  await fromAnotherTab(pageB, [{ type: 'edit', ref: 'e', conv, seq: seqs[5], text: 'status report 5, corrected' }]);

  await search(pageA, 'lunch');
  const hit = pageA.locator('[data-testid="search-result"]', { hasText: 'Hello Bob, lunch at noon?' });
  await see(hit, 'alice searched for "lunch" but does not find her own message');
  await hit.click();
  await see(tid(pageA, 'conv-title').filter({ hasText: 'general' }), 'clicking the result does not open #general');
  await inView(pageA, messageWith(pageA, 'Hello Bob, lunch at noon?'),
    'the message is older than the newest page of #general, and clicking its search result does not scroll back to it');
  pageA.off('request', onRequest);
  assert.ok(pages.length > 0, 'the message was reached without loading older history: the test did not test paging back');
  await see(messageWith(pageA, 'status report 5, corrected'), 'the edited old message is not shown with its new text');
  assert.equal(await pageA.locator('[data-testid="message"]', { hasText: /status report \d+/ }).count(), 300,
    'paging back past an old message edited meanwhile left a gap in the history');

  // Open results follow a delete: bob deletes his newest report while alice looks at them.
  await search(pageA, 'status report');
  await see(pageA.getByTestId('search-result-text').filter({ hasText: /^status report 300$/ }), 'the newest report is not the first result');
  await fromAnotherTab(pageB, [{ type: 'delete', ref: 'd', conv, seq: seqs[300] }]);
  await pageA.waitForFunction(() => document.querySelector('[data-testid="search-result-text"]')?.textContent === 'status report 299', null, { timeout: WAIT })
    .catch(() => assert.fail('a message deleted while its search result was shown is still in the results'));
});

test('a long paste (sent by the server in fragments) arrives whole', async () => {
  await convItem(pageA, 'general').click();
  await convItem(pageB, 'general').click();
  const paste = Array.from({ length: 200 }, (_, i) => `${i} a line of a pasted log file — ünïcödé`).join('\n');
  await tid(pageA, 'composer').fill(paste);
  await tid(pageA, 'composer').press('Enter');
  const last = '199 a line of a pasted log file';
  await see(messageWith(pageB, last), 'a long paste from alice never shows in bob\'s window');
  const shown = await messageWith(pageB, last).getByTestId('message-text').first().innerText();
  assert.equal(shown, paste, 'the long paste bob sees differs from what alice sent');
});

test('a Japanese word is found inside a sentence and highlighted', async () => {
  await tid(pageA, 'composer').fill('明日の会議は東京で行います');
  await tid(pageA, 'composer').press('Enter');
  await see(messageWith(pageB, '明日の会議は東京で行います'), 'alice\'s Japanese message does not reach bob');
  await search(pageB, '東京');
  const hit = pageB.locator('[data-testid="search-result"]', { hasText: '明日の会議は東京で行います' });
  await see(hit, 'bob searched for 東京 but does not find the sentence that contains it');
  assert.deepEqual(await hit.locator('[data-testid="search-result-text"] mark').allTextContents(), ['東京'],
    'the searched Japanese word is not the highlighted part of the result');
  await search(pageB, '東京 会議');
  await see(hit.locator('mark').filter({ hasText: '会議' }), 'a search for two Japanese words does not highlight the second');
  assert.deepEqual(await hit.locator('[data-testid="search-result-text"] mark').allTextContents(), ['会議', '東京'],
    'both searched Japanese words are highlighted, in the order they stand');
  await tid(pageB, 'search-close').click();
});

test('a search made before the chat connection is up stays open when it comes up, and keeps the cursor', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  watch(page, 'a slow connection');
  try {
    // The server's frames (hello first) are held back until release().
    let held;
    let release;
    const hold = () => { held = new Promise((resolve) => { release = resolve; }); };
    hold();
    await page.routeWebSocket(/\/api\/ws$/, (ws) => {
      const server = ws.connectToServer();
      server.onMessage(async (message) => { await held; ws.send(message); });
    });
    await page.goto(server.base + '/');
    await signIn(page, 'alice', 'correct horse battery');
    await search(page, 'lunch');
    await see(page.locator('[data-testid="search-result"]', { hasText: 'Hello Bob, lunch at noon?' }), 'alice searched before the connection was up and found nothing');
    release();
    await see(tid(page, 'conv-title').filter({ hasText: /\S/ }), 'the connection came up but no conversation opened');
    assert.ok(await tid(page, 'search-results').isVisible(), 'the connection came up and closed the search results alice was reading');

    // After a reload she is still typing her search when the connection comes up.
    hold();
    await page.reload();
    await see(tid(page, 'composer'), 'alice reloaded but does not get back to the chat');
    await tid(page, 'search-input').fill('noon');
    release();
    await see(tid(page, 'conv-title').filter({ hasText: /\S/ }), 'the connection came up but no conversation opened');
    assert.ok(await tid(page, 'search-input').evaluate((el) => el === document.activeElement),
      'the connection came up and took the cursor out of the search box alice was typing in');
    await page.keyboard.press('Enter');
    await see(tid(page, 'search-title').filter({ hasText: 'noon' }), 'Enter in the search box does not run the search');
  } finally {
    await ctx.close();
  }
});

test("a late answer to a signed-out user's request does not reach whoever signs in next in that tab", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  watch(page, 'a shared computer');
  try {
    await page.goto(server.base + '/');
    await signIn(page, 'bob', 'hunter22hunter');
    // Bob's search is held on its way back; he signs out and alice signs in meanwhile.
    let held = null;
    await page.route('**/api/search*', (route) => { held = route; });
    await search(page, 'lunch');
    for (let i = 0; i < 100 && !held; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(held, "bob's search never went out");
    await tid(page, 'signout-button').click();
    await signIn(page, 'alice', 'correct horse battery');
    await see(tid(page, 'me-name').filter({ hasText: 'Alice Admin' }), 'alice signed in after bob but the tab does not show her name');
    // Bob's session is over, so the server would answer his search with a 401.
    await held.fulfill({ status: 401, contentType: 'application/json', body: '{"code":"unauthorized","message":"sign in first"}' });
    await page.evaluate(() => new Promise((r) => setTimeout(r, 300)));
    assert.ok(await tid(page, 'composer').isVisible(), "the 401 answering bob's old search signed alice out");
    assert.equal(await tid(page, 'signin-form').isVisible(), false, "the 401 answering bob's old search brought back the sign-in form");
  } finally {
    await ctx.close();
  }
});

test('leaving a room from another tab keeps open search results, without the ones from that room', async () => {
  const general = Number(await convItem(pageB, 'general').getAttribute('data-conv-id'));
  const dm = pageB.locator('#dm-list [data-testid="conv-item"]', { hasText: 'Alice Admin' });
  const dmId = Number(await dm.getAttribute('data-conv-id'));
  await fromAnotherTab(pageB, [
    { type: 'send', ref: 's1', conv: general, text: 'zebra crossing here', client_id: 'zebra-1' },
    { type: 'send', ref: 's2', conv: dmId, text: 'zebra crossing there', client_id: 'zebra-2' },
  ]);
  await convItem(pageB, 'general').click();
  await see(tid(pageB, 'conv-title').filter({ hasText: 'general' }), 'bob clicked #general but it does not open');
  await search(pageB, 'zebra');
  await pageB.waitForFunction(() => document.querySelectorAll('[data-testid="search-result"]').length === 2, null, { timeout: WAIT })
    .catch(() => assert.fail('bob searched "zebra", in one message of #general and one of his DM, but does not get both'));

  await fromAnotherTab(pageB, [{ type: 'leave', ref: 'l', conv: general }]);
  await convItem(pageB, 'general').waitFor({ state: 'detached', timeout: WAIT })
    .catch(() => assert.fail('bob left #general from another tab but it stays in his sidebar'));
  await see(pageB.getByTestId('search-result-text').filter({ hasText: 'zebra crossing there' }),
    'bob left #general, which he had open, and his search results closed or lost the DM result');
  assert.equal(await tid(pageB, 'search-result').count(), 1, 'the result from #general, which bob left, is still shown');
  await tid(pageB, 'search-close').click();
  assert.doesNotMatch(await tid(pageB, 'conv-title').innerText(), /general/, 'bob left #general but it is still the open conversation');
});

test('screenshots are taken and the pages loaded nothing from elsewhere', async () => {
  await pageA.screenshot({ path: path.join(OUT, 'alice.png') });
  await pageB.screenshot({ path: path.join(OUT, 'bob.png') });
  assert.deepEqual(foreign, [], `the page contacted hosts other than the Hallway server: ${foreign.join(', ')}`);
  assert.deepEqual(pageErrors, [], `the page hit JavaScript errors: ${pageErrors.join('; ')}`);
});
