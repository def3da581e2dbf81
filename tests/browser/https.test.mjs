// HTTPS mode (issue 18): a browser that trusts the office's certificate authority (installed
// in its NSS database with certutil, as the /ca page tells Linux users) opens the chat at
// https://hallway.local:PORT/ without a warning; the page is a secure context there, which
// plain http://hallway.local is not, so desktop notifications work: one for a mention, none
// in do-not-disturb. Plain HTTP on the same port is redirected to HTTPS.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { OUT, see, tid, convItem, launchBrowser, office, post, recordNotifications, shown } from './harness.mjs';

let o;

/** Chromium on Linux trusts what is in $HOME/.pki/nssdb: a home of its own, with only this CA added. */
async function browserTrusting(server) {
  const home = path.join(server.dataDir, 'home');
  const db = path.join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'Hallway', '-i', path.join(server.dataDir, 'hallway.redb.tls', 'ca.pem')]);
  // hallway.local resolves to this machine only inside this browser: no mDNS here.
  return launchBrowser(['--host-resolver-rules=MAP hallway.local 127.0.0.1'], { ...process.env, HOME: home });
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  o = await office(browserTrusting, ['--https'], [['bob', 'Bob Builder']], { baseOf: (port) => `https://hallway.local:${port}` });
  const bob = o.pages.bob;
  await bob.context().grantPermissions(['notifications'], { origin: o.server.base });
  await bob.context().addInitScript(recordNotifications);
  await bob.reload();
  await see(convItem(bob, 'general'), 'bob does not get back to the chat after a reload');
});

after(async () => {
  const browser = o?.browser;
  try { if (o) await o.close(); } finally { if (browser) await browser.close(); }
});

test('over HTTPS with the office CA trusted, the chat is a secure page and a mention reaches the desktop', async () => {
  const { alice, bob } = o.pages;
  assert.equal(new URL(bob.url()).protocol, 'https:', 'bob is not on the HTTPS address');
  assert.equal(await bob.evaluate(() => window.isSecureContext), true, 'the chat over HTTPS is not a secure context');

  await convItem(bob, 'general').click();
  await tid(bob, 'notify-button').click();
  await tid(bob, 'notify-desktop-toggle').click();
  await see(tid(bob, 'notify-desktop-state').filter({ hasText: 'on in this browser' }), 'bob cannot turn notifications on over HTTPS');
  await tid(bob, 'notify-submit').click();
  await tid(bob, 'create-room-button').click();
  await tid(bob, 'create-room-name').fill('bobs-corner');
  await tid(bob, 'create-room-submit').click();
  await see(tid(bob, 'conv-title').filter({ hasText: 'bobs-corner' }), 'bob does not get to his new room');

  await convItem(alice, 'general').click();
  await post(alice, '@bob the certificate works');
  await bob.waitForFunction(() => window.__shown.length === 1, null, { timeout: 10_000 }).catch(() => {});
  assert.deepEqual(await shown(bob), [{ title: 'Alice Admin in #general', body: '@Bob Builder the certificate works' }], 'a mention did not reach bob\'s desktop over HTTPS');

  await tid(bob, 'status-button').click();
  await tid(bob, 'status-dnd').check();
  await tid(bob, 'status-submit').click();
  await see(tid(bob, 'me-status').filter({ hasText: 'Do not disturb' }), 'bob\'s do-not-disturb does not show');
  await post(alice, '@bob still there?');
  await see(convItem(bob, 'general').getByTestId('unread-badge').filter({ hasText: /^2$/ }), 'bob does not see the second mention');
  assert.equal((await shown(bob)).length, 1, 'a mention reached bob\'s desktop in do-not-disturb');
});

test('the plain address is redirected to HTTPS, and /ca offers the certificate', async () => {
  const page = await o.newPage('visitor');
  const plain = o.server.base.replace('https://', 'http://');
  await page.goto(plain + '/');
  assert.equal(new URL(page.url()).protocol, 'https:', 'the plain address did not take the visitor to HTTPS');
  await see(tid(page, 'signin-name'), 'the sign-in page does not show after the redirect');
  await page.goto(plain + '/ca');
  assert.equal(new URL(page.url()).protocol, 'http:', '/ca must be reachable over plain HTTP, before the CA is trusted');
  await see(page.getByRole('link', { name: /Download the certificate/ }), 'the /ca page does not offer the certificate');
  await page.screenshot({ path: path.join(OUT, 'https-ca-page.png'), fullPage: true });
  await page.context().close();
});
