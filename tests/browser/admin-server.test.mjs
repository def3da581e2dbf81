// The admin page's Server section (web/views/admin/server.js), mounted on its own into the
// signed-in page as the admin page will: alice (the admin) and bob post, and the section
// shows today's messages as the last bar of a 30-day chart, both of them active, and who
// has tabs open. It is drawn at 390 px wide too. A member's section says it is not allowed.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { OUT, see, tid, convItem, fromAnotherTab, launchBrowser, office } from './harness.mjs';

let browser, o, pages;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await launchBrowser();
  o = await office(browser, [], [['bob', 'Bob Member']]);
  pages = o.pages;
  const { alice, bob } = pages;
  await see(convItem(bob, 'general'), 'bob does not see #general');
  const conv = Number(await convItem(bob, 'general').getAttribute('data-conv-id'));
  await fromAnotherTab(bob, [
    { type: 'send', ref: 'a', conv, text: 'one', client_id: 's-1' },
    { type: 'send', ref: 'b', conv, text: 'two', client_id: 's-2' },
  ]);
  await fromAnotherTab(alice, [{ type: 'send', ref: 'c', conv, text: 'three', client_id: 's-3' }]);
});

after(async () => {
  try { if (o) await o.close(); } finally { if (browser) await browser.close(); }
});

/** Mounts the section into a fresh element of the page, as the admin page will. */
async function mount(page) {
  await page.evaluate(async () => {
    const { mountServer } = await import('/views/admin/server.js');
    document.querySelector('[data-testid="admin-server"]')?.remove();
    const div = document.createElement('div');
    document.body.prepend(div);
    await mountServer(div);
  });
}

test('the Server section shows the messages per day, who is active and who has tabs open', async () => {
  const alice = pages.alice;
  await mount(alice);
  const bars = alice.locator('[data-testid="messages-chart"] rect');
  assert.equal(await bars.count(), 30, 'the chart has a bar for each of the last 30 days');
  assert.equal(await bars.last().getAttribute('data-messages'), '3', "today's bar counts the three messages");
  assert.match(await bars.last().locator('title').textContent(), /^\d{4}-\d\d-\d\d: 3 messages$/, 'a bar says its day and count');
  const height = Number(await bars.last().getAttribute('height'));
  assert.ok(height > 0 && Number(await bars.first().getAttribute('height')) === 0, 'only the days with messages have a bar');
  await see(tid(alice, 'stat-active').filter({ hasText: '2 today, 2 this week' }), 'alice is not shown both of them as active');
  await see(tid(alice, 'stat-version').filter({ hasText: /\d+\.\d+\.\d+/ }), 'the version is missing');
  await see(tid(alice, 'stat-free-disk').filter({ hasText: /B$/ }), 'the free disk space is missing');
  const rows = tid(alice, 'stat-tabs').locator('tbody tr');
  await see(rows.filter({ hasText: 'Bob Member (bob)' }), 'bob is not in the list of open tabs');
  await see(rows.filter({ hasText: 'Alice Admin (alice)' }), 'alice is not in the list of open tabs');

  await alice.setViewportSize({ width: 390, height: 800 });
  await mount(alice);
  const box = await tid(alice, 'messages-chart').boundingBox();
  assert.ok(box && box.width <= 390 && box.width > 200, `the chart fits a phone's width: ${JSON.stringify(box)}`);
  await alice.screenshot({ path: path.join(OUT, 'admin-server-390.png') });
});

test("a member's Server section says the figures are for admins", async () => {
  await mount(pages.bob);
  await see(tid(pages.bob, 'admin-server').locator('.form-error').filter({ hasText: /role does not allow/ }),
    'a member sees something other than a refusal');
});
