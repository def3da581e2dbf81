// The admin page (docs/protocol.md "Accounts", "Sign-up"): alice, the first admin, makes an
// invite link and bob signs up through it; alice resets his password from the Users section (his open tab is signed out), and
// disables him (his open tab is signed out at once, and his sign-in is refused); bob signs
// another browser out and changes his own password; the page fits a phone 390 px wide.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { BIN, OUT, see, tid, convItem, signIn, launchBrowser, office } from './harness.mjs';

const PW = 'long enough pw';
let browser, o, server, tmp, pages;

const userRow = (page, name) => page.locator(`[data-testid="admin-user"][data-user-name="${name}"]`);

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await launchBrowser();
  o = await office(browser, []);
  ({ server, tmp, pages } = o);
});

after(async () => {
  try { if (o) await o.close(); } finally { if (browser) await browser.close(); }
});

/** Opens the admin page on `page` and waits for its Users list to show `name`. */
async function openUsers(page, name) {
  await tid(page, 'admin-button').click();
  await see(tid(page, 'admin-section-users'), 'the admin page opens without a Users section');
  await see(userRow(page, name), `the Users section does not list ${name}`);
}

test('an admin makes an invite link and a colleague signs up through it, once', async () => {
  const alice = pages.alice;
  await openUsers(alice, 'alice');
  await tid(alice, 'admin-nav-signup').click();
  await see(tid(alice, 'signup-mode-admin').and(alice.locator(':checked')), 'the Sign-up section does not say only admins create accounts by default');
  await tid(alice, 'signup-mode-invite').check();
  await see(tid(alice, 'invite-form'), 'choosing invite links offers no way to make one');
  await tid(alice, 'invite-uses-input').fill('1');
  await tid(alice, 'invite-create').click();
  await see(tid(alice, 'invite-created'), 'making an invite link shows no link');
  await alice.waitForFunction(() => document.querySelector('[data-testid="invite-qr"]')?.naturalWidth > 0, null, { timeout: 5000 })
    .catch(() => assert.fail('the invite\'s QR code does not show'));
  const link = await tid(alice, 'invite-link').inputValue();
  assert.match(link, /\/signup#[0-9a-f]{64}$/, 'the invite link does not open the sign-up page');
  await see(tid(alice, 'invite-item').filter({ hasText: 'used 0 of 1' }), 'the new link is not listed with its uses');

  const bob = pages.bob = await o.newPage('bob');
  await bob.goto(link);
  await see(tid(bob, 'signup-note').filter({ hasText: 'as a member' }), 'the sign-up page does not say what the link makes you');
  await tid(bob, 'signup-name').fill('bob');
  await tid(bob, 'signup-display-name').fill('Bob Member');
  await tid(bob, 'signup-password').fill(PW);
  await tid(bob, 'signup-submit').click();
  await see(tid(bob, 'composer'), 'bob signs up through the invite link but does not get to the chat');
  await see(convItem(bob, 'general'), 'a colleague who signed up is not in #general');
  assert.equal(await tid(bob, 'admin-button').isVisible(), false, 'a member is offered the admin page');
  await see(userRow(alice, 'bob').filter({ hasText: /Online now · 1 tab/ }), 'the Users list does not show bob, signed up, with his open tab');
  await see(tid(alice, 'invite-item').filter({ hasText: 'used 1 of 1' }), 'the link does not count its use');

  const late = await o.newPage('a second colleague');
  await late.goto(link);
  await see(tid(late, 'signup-error').filter({ hasText: /used/ }), 'a link of one use still offers a second sign-up');
  await late.context().close();
});

test('the last admin cannot step down, and the page says why', async () => {
  const alice = pages.alice;
  await userRow(alice, 'alice').getByTestId('admin-user-role').selectOption('member');
  await see(userRow(alice, 'alice').getByTestId('admin-user-error').filter({ hasText: /only admin/ }),
    'demoting the last admin is not refused with a reason');
  assert.equal(await userRow(alice, 'alice').getByTestId('admin-user-role').inputValue(), 'admin', 'the refused role stays selected');
});

test('an admin resets a password: the colleague\'s open tab is signed out and the new password works', async () => {
  const alice = pages.alice;
  const bob = pages.bob;
  const row = userRow(alice, 'bob');
  await row.getByTestId('admin-reset-password').click();
  await row.getByTestId('admin-reset-password-input').fill('a fresh password');
  await row.getByTestId('admin-reset-password-submit').click();
  await see(tid(alice, 'toast').filter({ hasText: 'New password set for Bob Member' }), 'alice is not told the password was reset');
  await see(tid(bob, 'signin-form'), 'bob\'s open tab stays signed in after his password was reset');
  await signIn(bob, 'bob', 'a fresh password');
});

test('an admin disables a colleague: the open tab is signed out at once and sign-in is refused', async () => {
  const alice = pages.alice;
  const bob = pages.bob;
  await see(userRow(alice, 'bob').filter({ hasText: /Online now/ }), 'bob\'s tab is not shown open again');
  await userRow(alice, 'bob').getByTestId('admin-user-disable').click();
  await see(tid(bob, 'signin-note').filter({ hasText: /disabled/ }), 'bob\'s open tab is not signed out with the reason when he is disabled');
  await see(userRow(alice, 'bob').getByTestId('admin-user-disabled'), 'the Users list does not mark bob disabled');
  await tid(bob, 'signin-name').fill('bob');
  await tid(bob, 'signin-password').fill('a fresh password');
  await tid(bob, 'signin-submit').click();
  await see(tid(bob, 'signin-error').filter({ hasText: /disabled/ }), 'a disabled colleague is not told why sign-in is refused');
  assert.equal(await alice.locator('[data-testid="person-item"][data-user-name="bob"]').count(), 0, 'a disabled colleague is still offered in People');

  await userRow(alice, 'bob').getByTestId('admin-user-enable').click();
  await see(userRow(alice, 'bob').getByTestId('admin-user-disable'), 'bob cannot be enabled again');
  await signIn(bob, 'bob', 'a fresh password');
});

test('a colleague signs another device out and changes their own password', async () => {
  const bob = pages.bob;
  const other = pages.bobOther = await o.newPage('bob elsewhere');
  await other.goto(server.base + '/');
  await signIn(other, 'bob', 'a fresh password');
  await tid(bob, 'account-button').click();
  await see(tid(bob, 'account-session').nth(1), 'bob\'s account page does not list his two signed-in browsers');
  assert.equal(await tid(bob, 'account-session').first().getAttribute('data-current'), 'true', 'this browser is not listed first');
  await tid(bob, 'account-sign-out-others').click();
  await see(tid(other, 'signin-form'), 'the other browser stays signed in after "Sign out all other devices"');
  await tid(bob, 'account-current').fill('a wrong guess');
  await tid(bob, 'account-password').fill('bobs own choice');
  await tid(bob, 'account-password-submit').click();
  await see(tid(bob, 'account-password-error').filter({ hasText: 'not your current password' }), 'a wrong current password is not refused');
  await tid(bob, 'account-current').fill('a fresh password');
  await tid(bob, 'account-password-submit').click();
  await see(tid(bob, 'toast').filter({ hasText: 'Password changed' }), 'bob is not told his password changed');
  await signIn(other, 'bob', 'bobs own choice');
  assert.equal(await tid(bob, 'composer').count() > 0 && await tid(bob, 'signin-form').isVisible(), false, 'changing his password signed bob out here');
});

test('an admin downloads a backup from the page, and it checks out', async () => {
  const { alice } = pages;
  await openUsers(alice, 'alice');
  await see(tid(alice, 'admin-section-backup'), 'the admin page has no Backup section');
  await see(tid(alice, 'admin-backup-schedule').filter({ hasText: 'No scheduled backups' }), 'the Backup section does not say there is no schedule');
  const [download] = await Promise.all([alice.waitForEvent('download'), tid(alice, 'admin-backup-download').click()]);
  assert.match(download.suggestedFilename(), /^hallway-\d{8}-\d{6}\.redb$/, 'the download is not named as a backup');
  const file = path.join(tmp, 'downloaded.redb');
  await download.saveAs(file);
  // `hallway check` exits non-zero on any problem (execFileSync then throws with its output).
  const report = execFileSync(BIN, ['check', file], { encoding: 'utf8' });
  assert.match(report, /^Checked .*: schema \d+: 2 accounts/, `hallway check did not pass the downloaded backup: ${report}`);
});

test('the admin page fits a phone 390 px wide', async () => {
  const alice = pages.alice;
  await alice.setViewportSize({ width: 390, height: 800 });
  // As on a phone: the menu, then the admin entry in the sidebar that slides in.
  await tid(alice, 'admin-close').click();
  await alice.locator('#btn-menu').click();
  await tid(alice, 'admin-button').click();
  await see(tid(alice, 'admin-view'), 'the admin page does not open on a phone');
  await alice.waitForFunction(() => document.querySelector('.sidebar').getBoundingClientRect().right <= 0, null, { timeout: 5000 })
    .catch(() => assert.fail('the sidebar stays over the admin page on a phone'));
  const overflow = await alice.evaluate(() => {
    const view = document.getElementById('admin-view');
    const wide = [...view.querySelectorAll('*')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && e.getClientRects().length);
    return { scroll: view.scrollWidth - view.clientWidth, wide: wide.slice(0, 5).map((e) => e.dataset.testid || e.className || e.tagName) };
  });
  assert.ok(overflow.scroll <= 0 && overflow.wide.length === 0, `the admin page is wider than the phone: ${JSON.stringify(overflow)}`);
  await alice.screenshot({ path: path.join(OUT, 'admin-390.png'), fullPage: true });
  const row = userRow(alice, 'bob');
  await see(row.getByTestId('admin-user-disable'), 'the Disable button is not visible at 390 px');
  await alice.setViewportSize({ width: 1280, height: 800 });
});
