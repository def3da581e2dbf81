// Replies (issue 19): bob answers an older message of alice's with "Reply"; alice sees the
// quoted start above his reply, and clicking it takes her to the original, far up the list.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { OUT, see, tid, convItem, fromAnotherTab, inView, launchBrowser, messageWith, office } from './harness.mjs';

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

test('a reply quotes the start of the original, and the quote jumps to it', async () => {
  const { alice, bob } = o.pages;
  const general = await alice.evaluate(async () => (await (await fetch('/api/rooms')).json()).rooms.find((r) => r.name === 'general').id);
  const frames = [{ type: 'send', ref: 'q', conv: general, text: 'who has the projector key for room 4?' }];
  for (let i = 1; i <= 60; i++) frames.push({ type: 'send', ref: `f${i}`, conv: general, text: `filler line ${i}` });
  await fromAnotherTab(alice, frames);
  for (const p of [alice, bob]) {
    await convItem(p, 'general').click();
    await see(messageWith(p, 'filler line 60'), 'the messages do not show');
  }
  const original = messageWith(bob, 'who has the projector key');
  await original.scrollIntoViewIfNeeded();
  await original.hover();
  await original.getByTestId('message-reply').click();
  await see(tid(bob, 'reply-bar'), 'no bar says what bob answers');
  assert.match(await tid(bob, 'reply-bar').textContent(), /Replying to Alice Admin: who has the projector key/);
  await tid(bob, 'composer').fill('I do, it is in my drawer');
  await tid(bob, 'composer').press('Enter');
  await tid(bob, 'reply-bar').waitFor({ state: 'hidden' });

  const reply = messageWith(alice, 'I do, it is in my drawer');
  const quote = reply.getByTestId('message-quote');
  await see(quote, 'alice does not see what bob answered above his reply');
  assert.match(await quote.textContent(), /Alice Admin.*who has the projector key for room 4\?/);
  await inView(alice, reply, 'the reply is not in view at the bottom');
  await quote.click();
  const target = messageWith(alice, 'who has the projector key').first(); // the reply quotes it too
  await inView(alice, target, 'clicking the quote does not bring the original into view');
  assert.match(await target.getAttribute('class'), /flash/, 'the original is marked for a moment');
});
