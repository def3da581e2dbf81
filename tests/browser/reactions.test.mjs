// Reactions (issue 19): bob reacts to alice's message from the message's tools; alice sees the
// chip appear live with its count and, on hover, who reacted; a reaction made while alice is
// elsewhere gives general no unread badge. Clicking a chip takes one's own reaction back.
// Search results show the same chips, live, and a click (or Enter) on one toggles one's own.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { OUT, WAIT, see, tid, convItem, acksFromAnotherTab, fromAnotherTab, launchBrowser, messageWith, office, post, search } from './harness.mjs';

let browser;
let o;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await launchBrowser();
  o = await office(browser, [], [['bob', 'Bob Builder']]);
});

after(async () => {
  if (o) await o.close();
  if (browser) await browser.close();
});

/** The chip of `emoji` under the message with `text`. */
const chip = (page, text, emoji) => messageWith(page, text).getByTestId('reaction').filter({ hasText: emoji });

test('a reaction shows live for the other person with who gave it, and counts nowhere as unread', async () => {
  const { alice, bob } = o.pages;
  for (const p of [alice, bob]) await convItem(p, 'general').click();
  await post(alice, 'who wants coffee?');
  const message = messageWith(bob, 'who wants coffee?');
  await see(message, 'bob does not see the message');

  await message.hover();
  await message.getByTestId('message-react').click();
  await see(tid(bob, 'emoji-picker'), 'no picker opens from the message');
  await tid(bob, 'emoji-picker').getByRole('button', { name: 'thumbs up' }).click();
  await see(chip(bob, 'who wants coffee?', '👍'), 'bob does not see his own reaction');
  assert.equal(await chip(bob, 'who wants coffee?', '👍').getAttribute('aria-pressed'), 'true', 'his own is not marked as his');

  const seen = chip(alice, 'who wants coffee?', '👍');
  await see(seen, 'alice does not see bob\'s reaction without reloading');
  assert.match(await seen.textContent(), /👍\s*1/);
  assert.match(await seen.getAttribute('title'), /Bob Builder reacted with 👍/, 'hovering the chip does not say who reacted');
  assert.match(await seen.getAttribute('aria-label'), /Bob Builder/, 'a screen reader is not told who reacted');
  assert.equal(await seen.getAttribute('aria-pressed'), 'false', 'bob\'s reaction shows as alice\'s');

  // Alice adds hers by clicking the chip: two, and both names.
  await seen.click();
  await see(chip(bob, 'who wants coffee?', '👍').filter({ hasText: '2' }), 'bob does not see alice join his reaction');
  assert.match(await chip(bob, 'who wants coffee?', '👍').getAttribute('title'), /You and Alice Admin reacted with 👍/);

  // Alice goes elsewhere; bob reacts from the whole picker. No badge on general for it.
  const quiet = (await acksFromAnotherTab(alice, [{ type: 'create_room', ref: 'q', name: 'quiet' }])).q.conv;
  await convItem(alice, 'quiet').click();
  await message.hover();
  await message.getByTestId('message-react').click();
  await tid(bob, 'emoji-more').click();
  await tid(bob, 'emoji-picker').getByRole('button', { name: 'rocket' }).click();
  await see(chip(bob, 'who wants coffee?', '🚀'), 'bob\'s reaction from the whole picker does not show');
  // A barrier: bob's DM reaches alice's tab after the reaction did.
  const opened = await acksFromAnotherTab(bob, [{ type: 'open_dm', ref: 'd', users: [o.ids.alice] }]);
  await acksFromAnotherTab(bob, [{ type: 'send', ref: 's', conv: opened.d.conv, text: 'done' }]);
  await see(tid(alice, 'dm-list').getByTestId('unread-badge'),
    'the barrier DM does not reach alice');
  assert.equal(await convItem(alice, 'general').getByTestId('unread-badge').count(), 0, 'a reaction gave general an unread badge');
  assert.equal(await convItem(alice, 'general').getAttribute('data-unread'), '0');
  assert.ok(quiet, 'the room alice went to');

  await convItem(alice, 'general').click();
  await see(chip(alice, 'who wants coffee?', '🚀'), 'the reaction made while alice was elsewhere does not show');
  assert.equal(await tid(alice, 'new-line').count(), 0, 'a reaction brought a "New" line');

  // Bob takes his rocket back: gone for alice too.
  await chip(bob, 'who wants coffee?', '🚀').click();
  await chip(alice, 'who wants coffee?', '🚀').waitFor({ state: 'detached', timeout: WAIT })
    .catch(() => assert.fail('bob took his reaction back but alice still sees it'));
  await bob.screenshot({ path: `${OUT}/reactions.png` });
});

test('a search result shows its reactions, follows new ones live, and a chip there toggles one\'s own', async () => {
  const { alice, bob } = o.pages;
  const general = Number(await convItem(alice, 'general').getAttribute('data-conv-id'));
  const sent = await fromAnotherTab(alice, [{ type: 'send', ref: 'm', conv: general, text: 'budget <b>draft</b> is due' }]);
  await acksFromAnotherTab(bob, [{ type: 'react', ref: 'r', conv: general, seq: sent.m, emoji: '👍', on: true }]);

  await search(alice, 'budget');
  const result = tid(alice, 'search-result').filter({ hasText: 'budget <b>draft</b> is due' });
  await see(result, 'alice\'s search for "budget" does not find her message, its text shown as text');
  assert.equal(await result.locator('b').count(), 0, 'HTML in the message became an element in the result');
  const thumbs = result.getByTestId('reaction').filter({ hasText: '👍' });
  await see(thumbs, 'the search result does not show bob\'s 👍 under the message');
  assert.match(await thumbs.textContent(), /👍\s*1/);
  assert.match(await thumbs.getAttribute('title'), /Bob Builder reacted with 👍/, 'hovering the chip in a result does not say who reacted');
  assert.equal(await thumbs.getAttribute('aria-pressed'), 'false');

  // A click on the chip gives alice's own, and keeps her in the results (it opens nothing).
  await thumbs.click();
  await see(thumbs.filter({ hasText: '2' }), 'clicking the chip in a result does not add alice\'s reaction there');
  assert.equal(await thumbs.getAttribute('aria-pressed'), 'true', 'alice\'s reaction in the result is not marked as hers');
  assert.equal(await tid(alice, 'search-results').isVisible(), true, 'clicking a chip left the search results');

  // Bob reacts while the results are open: the new chip comes in live.
  await acksFromAnotherTab(bob, [{ type: 'react', ref: 'r', conv: general, seq: sent.m, emoji: '🎉', on: true }]);
  await see(result.getByTestId('reaction').filter({ hasText: '🎉' }), 'bob\'s new reaction does not show in the open results');

  // By keyboard: Enter on her chip takes hers back, and the focus stays on that chip.
  await thumbs.focus();
  await alice.keyboard.press('Enter');
  await see(thumbs.filter({ hasText: '1' }), 'Enter on the chip in a result does not take alice\'s reaction back');
  assert.equal(await thumbs.getAttribute('aria-pressed'), 'false');
  assert.equal(await thumbs.evaluate((el) => el === document.activeElement), true, 'the focus left the chip when the result redrew');
  await alice.screenshot({ path: `${OUT}/search-reactions.png` });
  await tid(alice, 'search-close').click();
});
