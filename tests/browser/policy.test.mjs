// The admin page's Records section (issues 16 and 17): alice, the admin, changes what the
// server keeps from "each conversation chooses" to "archive everything", and bob's open tab
// shows the archive banner at once, without a reload; then to "at most 7 days", and his
// banner says so. What an office would notice if it failed: people reading an old rule.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import { mkdirSync } from 'node:fs';
import { OUT, see, tid, convItem, launchBrowser, office } from './harness.mjs';

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

const bannerSays = (page, text) => tid(page, 'records-text').filter({ hasText: text });

test('an admin changes the records policy on the admin page and an open tab shows the new rule at once', async () => {
  const { alice, bob } = o.pages;
  await convItem(bob, 'general').click();
  await see(bannerSays(bob, 'Kept'), 'bob\'s banner does not show that #general is kept');

  await tid(alice, 'admin-button').click();
  await tid(alice, 'admin-nav-records').click();
  await see(tid(alice, 'policy-keep').and(alice.locator(':checked')), 'the Records section does not show the current policy');
  alice.once('dialog', (d) => d.accept());
  await tid(alice, 'policy-archive').check();
  await tid(alice, 'policy-save').click();
  await see(bannerSays(bob, 'Archived for compliance review'), 'bob\'s open tab does not show the archive banner after the admin archived everything');
  await bob.screenshot({ path: `${OUT}/policy-archived.png` });

  await tid(alice, 'policy-retain').check();
  await tid(alice, 'policy-days').fill('7');
  await tid(alice, 'policy-save').click();
  await see(bannerSays(bob, 'Kept for 7 days'), 'bob\'s banner does not follow the new limit of 7 days');
});
