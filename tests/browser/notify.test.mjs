// Desktop notifications (issue 18): asked for from the setting, never on load; shown for a
// mention in a room left at "mentions" and not for other messages there; silent in
// do-not-disturb; clicking one opens its conversation; where the page is not a secure
// context, the setting says why and links to /ca. The page at 127.0.0.1 is a secure context,
// as HTTPS is; each shown notification is recorded by a wrapper around the real one.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { OUT, see, tid, convItem, launchBrowser, office, post, recordNotifications, shown } from './harness.mjs';

let browser;
let o;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await launchBrowser();
  o = await office(browser, [], [['bob', 'Bob Builder']]);
  const bob = o.pages.bob;
  await bob.context().grantPermissions(['notifications'], { origin: o.server.base });
  await bob.context().addInitScript(recordNotifications);
  await bob.reload();
  await see(convItem(bob, 'general'), 'bob does not get back to the chat after a reload');
});

after(async () => {
  try { if (o) await o.close(); } finally { if (browser) await browser.close(); }
});

test('a mention reaches the desktop, other room messages and do-not-disturb do not, and a click opens the room', async () => {
  const { alice, bob } = o.pages;
  assert.deepEqual(await shown(bob), [], 'bob got a notification before turning them on');

  await convItem(bob, 'general').click();
  await tid(bob, 'notify-button').click();
  await see(tid(bob, 'notify-desktop-state').filter({ hasText: 'off in this browser' }), 'the setting does not say notifications are off before bob turns them on');
  await tid(bob, 'notify-desktop-toggle').click();
  await see(tid(bob, 'notify-desktop-state').filter({ hasText: 'on in this browser' }), 'turning notifications on does not say they are on');
  assert.equal(await tid(bob, 'notify-level-mentions').isChecked(), true, 'a room does not default to "mentions only"');
  await tid(bob, 'notify-submit').click();

  // Bob looks at another room, his own; alice writes in #general.
  await tid(bob, 'create-room-button').click();
  await tid(bob, 'create-room-name').fill('bobs-corner');
  await tid(bob, 'create-room-submit').click();
  await see(tid(bob, 'conv-title').filter({ hasText: 'bobs-corner' }), 'bob does not get to his new room');

  await convItem(alice, 'general').click();
  await post(alice, 'the printer is fixed');
  await see(convItem(bob, 'general').getByTestId('unread-badge').filter({ hasText: /^1$/ }), 'bob does not see the unread message in #general');
  assert.deepEqual(await shown(bob), [], 'a room message without a mention reached bob\'s desktop in a room set to mentions');

  await post(alice, '@bob lunch at noon?');
  await bob.waitForFunction(() => window.__shown.length === 1, null, { timeout: 10_000 }).catch(() => {});
  assert.deepEqual(await shown(bob), [{ title: 'Alice Admin in #general', body: '@Bob Builder lunch at noon?' }], 'a mention did not reach bob\'s desktop as one notification, naming him as colleagues see him');

  await tid(bob, 'status-button').click();
  await tid(bob, 'status-dnd').check();
  await tid(bob, 'status-submit').click();
  await see(tid(bob, 'me-status').filter({ hasText: 'Do not disturb' }), 'bob\'s do-not-disturb does not show');
  await post(alice, '@bob are you there?');
  await see(convItem(bob, 'general').getByTestId('unread-badge').filter({ hasText: /^3$/ }), 'bob does not see the third unread message');
  assert.equal((await shown(bob)).length, 1, 'a mention reached bob\'s desktop while he is in do-not-disturb');

  await bob.evaluate(() => window.__shown[0].onclick());
  await see(tid(bob, 'conv-title').filter({ hasText: 'general' }), 'clicking the notification does not open #general');
});

test('where the page is not a secure context, the setting says why and links to /ca', async () => {
  const page = await o.newPage('alice-insecure');
  await page.context().addInitScript(() => Object.defineProperty(window, 'isSecureContext', { value: false }));
  await page.goto(o.server.base + '/');
  await tid(page, 'signin-name').fill('alice');
  await tid(page, 'signin-password').fill('correct horse battery');
  await tid(page, 'signin-submit').click();
  await see(convItem(page, 'general'), 'alice does not get to the chat');
  await tid(page, 'notify-button').click();
  await see(tid(page, 'notify-desktop-state').filter({ hasText: 'only on a secure page' }), 'the setting does not say why notifications cannot work here');
  assert.equal(await tid(page, 'notify-desktop-state').locator('a[href="/ca"]').count(), 1, 'the setting does not link to the certificate page');
  assert.equal(await tid(page, 'notify-desktop-toggle').isVisible(), false, 'an insecure page offers to turn on notifications that cannot work');
  await page.keyboard.press('Escape');
  await page.context().close();
});
