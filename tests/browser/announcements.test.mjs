// Announcements (issue 19): alice, an admin, makes an announcements room and posts in it; bob,
// in a browser of his own, cannot post there and clicks "Got it"; alice's count goes up live
// and her list shows bob as acknowledged and carol as not yet. An admin switches an ordinary
// room to announcements and back from its header, by keyboard; every member's open tab follows.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { OUT, WAIT, see, tid, convItem, acksFromAnotherTab, fromAnotherTab, launchBrowser, messageWith, office, post } from './harness.mjs';

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

test('an admin makes a room an announcements room and back; the members\' open tabs follow live', async () => {
  const { alice, bob } = o.pages;
  const room = (await acksFromAnotherTab(alice, [{ type: 'create_room', ref: 'p', name: 'plans', members: [o.ids.bob] }])).p.conv;
  await fromAnotherTab(alice, [{ type: 'send', ref: 'a', conv: room, text: 'Offsite on the 12th' }]);
  for (const p of [alice, bob]) {
    await see(convItem(p, 'plans'), 'the room is not in the list');
    await convItem(p, 'plans').click();
    await see(messageWith(p, 'Offsite on the 12th'), 'the message does not show in the room');
  }
  await post(bob, 'Can we bring guests?');
  await see(messageWith(alice, 'Can we bring guests?'), 'bob\'s message does not reach alice');
  assert.equal(await tid(bob, 'posting-button').count(), 0, 'a member is offered the switch to an announcements room');

  // Alice, by keyboard: the header's button, "Only admins", Save.
  const button = tid(alice, 'posting-button');
  await see(button, 'the admin has no "Who can post" in the room\'s header');
  assert.equal(await button.getAttribute('aria-label'), 'Who can post: everyone');
  await button.focus();
  await alice.keyboard.press('Enter');
  await see(tid(alice, 'posting-dialog'), 'the button opens no dialog');
  assert.equal(await tid(alice, 'posting-everyone').isChecked(), true, 'the dialog does not say that everyone posts now');
  await tid(alice, 'posting-everyone').focus();
  await alice.keyboard.press('ArrowDown');
  assert.equal(await tid(alice, 'posting-admins').isChecked(), true);
  await alice.keyboard.press('Tab');
  await alice.keyboard.press('Tab');
  await alice.keyboard.press('Enter');
  await tid(alice, 'posting-dialog').waitFor({ state: 'hidden', timeout: WAIT }).catch(() => assert.fail('Save does not close the dialog'));
  await see(alice.locator('[data-testid="posting-button"][aria-label="Who can post: only admins"]'), 'the header does not say that only admins post now');
  assert.equal(await button.evaluate((el) => el === document.activeElement), true, 'the focus does not go back to the button');
  await see(messageWith(alice, 'Offsite on the 12th').getByTestId('ack-count'), 'alice\'s message does not become an announcement with its count');
  assert.equal(await tid(alice, 'composer').isVisible(), true, 'the admin lost her message box');

  // Bob's open tab, without a reload: no message box, and "Got it" under alice's message.
  await see(tid(bob, 'admins-only'), 'bob is not told that only admins post here now');
  assert.equal(await tid(bob, 'composer').isVisible(), false, 'bob still has a message box');
  const theirs = messageWith(bob, 'Offsite on the 12th');
  await see(theirs.getByTestId('ack-button'), 'bob gets no "Got it" under the message once the room is an announcements room');
  await theirs.getByTestId('ack-button').click();
  await see(theirs.getByTestId('ack-done'), 'bob\'s "Got it" does not become "Acknowledged"');

  // Bob made an admin, and a member again: his open tab follows at once.
  const role = (r) => alice.evaluate(async ([id, r]) => {
    const res = await fetch(`/api/admin/users/${id}/role`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ role: r }) });
    if (!res.ok) throw new Error(`role: HTTP ${res.status}`);
  }, [o.ids.bob, r]);
  await role('admin');
  await see(tid(bob, 'posting-button'), 'bob, made an admin, is not offered who can post');
  await see(tid(bob, 'composer'), 'bob, made an admin, gets no message box in the announcements room');
  await role('member');
  await tid(bob, 'posting-button').waitFor({ state: 'detached', timeout: WAIT }).catch(() => assert.fail('bob, a member again, still has who can post'));
  await see(tid(bob, 'admins-only'), 'bob, a member again, still has a message box');

  // And back to a room where everyone posts, by mouse this time.
  await button.click();
  await tid(alice, 'posting-everyone').check();
  await tid(alice, 'posting-submit').click();
  await see(tid(bob, 'composer'), 'bob does not get his message box back');
  assert.equal(await tid(bob, 'admins-only').isVisible(), false, 'bob is still told only admins post');
  await theirs.getByTestId('ack-bar').waitFor({ state: 'detached', timeout: WAIT })
    .catch(() => assert.fail('the "Got it" line stays under the message in an ordinary room'));
  await post(bob, 'Thanks, noted');
  await see(messageWith(alice, 'Thanks, noted'), 'bob cannot post in the room again');
  await alice.screenshot({ path: path.join(OUT, 'announcements-switch.png') });
});
