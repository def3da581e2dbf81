// Announcements (issue 19): alice, an admin, makes an announcements room and posts in it; bob,
// in a browser of his own, cannot post there and clicks "Got it"; alice's count goes up live
// and her list shows bob as acknowledged and carol as not yet.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { OUT, see, tid, convItem, fromAnotherTab, launchBrowser, messageWith, office, post } from './harness.mjs';

let browser;
let o;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await launchBrowser();
  o = await office(browser, [], [['bob', 'Bob Builder'], ['carol', 'Carol Chen']]);
});

after(async () => {
  if (o) await o.close();
  if (browser) await browser.close();
});

test("an announcement's Got it shows up in the author's list", async () => {
  const { alice, bob } = o.pages;
  // Only an admin is offered the kind of room.
  await tid(bob, 'create-room-button').click();
  assert.equal(await tid(bob, 'create-room-announcements').isVisible(), false, 'a member is offered an announcements room');
  await bob.keyboard.press('Escape');

  await tid(alice, 'create-room-button').click();
  await tid(alice, 'create-room-name').fill('news');
  await tid(alice, 'create-room-announcements').check();
  await tid(alice, 'create-room-submit').click();
  await see(convItem(alice, 'news'), 'the new room is not in alice\'s list');
  const room = await alice.evaluate(async () => (await (await fetch('/api/rooms')).json()).rooms.find((r) => r.name === 'news').id);
  await fromAnotherTab(alice, [
    { type: 'invite', ref: 'b', conv: room, user: o.ids.bob },
    { type: 'invite', ref: 'c', conv: room, user: o.ids.carol },
  ]);
  await convItem(alice, 'news').click();
  await post(alice, 'The office is closed on Friday');
  const own = messageWith(alice, 'The office is closed on Friday');
  await see(own.getByTestId('ack-count'), 'alice does not see how many got her announcement');
  assert.equal((await own.getByTestId('ack-count').textContent()).trim(), '0 of 2 got it');

  await see(convItem(bob, 'news'), 'bob was not added to the room');
  await convItem(bob, 'news').click();
  const theirs = messageWith(bob, 'The office is closed on Friday');
  await see(theirs, 'bob does not see the announcement');
  await see(tid(bob, 'admins-only'), 'bob is not told that only admins post here');
  assert.equal((await tid(bob, 'admins-only').textContent()).trim(), 'Only admins post in this room');
  assert.equal(await tid(bob, 'composer').isVisible(), false, 'bob still has a message box in an announcements room');
  await theirs.getByTestId('ack-button').click();
  await see(theirs.getByTestId('ack-done'), 'bob\'s "Got it" does not become "Acknowledged"');

  // Live at alice's, without a reload.
  await alice.waitForFunction(() => [...document.querySelectorAll('[data-testid="ack-count"]')].some((e) => e.textContent.trim() === '1 of 2 got it'), null, { timeout: 10_000 })
    .catch(() => assert.fail('alice\'s count does not go to "1 of 2 got it" when bob clicks Got it'));
  await own.getByTestId('ack-count').click();
  await see(own.getByTestId('ack-has'), 'clicking the count shows no list');
  await alice.waitForFunction(() => /Bob Builder/.test(document.querySelector('[data-testid="ack-has"]')?.textContent || ''), null, { timeout: 10_000 })
    .catch(() => assert.fail('bob is not among those who got it'));
  assert.match(await own.getByTestId('ack-has').textContent(), /Got it: Bob Builder$/);
  assert.match(await own.getByTestId('ack-not').textContent(), /Not yet: Carol Chen$/);
  await alice.screenshot({ path: path.join(OUT, 'announcements.png') });
});
