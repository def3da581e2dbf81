// The compliance views (docs/protocol.md "Review" and "GET /api/admin/audit"): on a server
// with `--records archive`, alice (the admin) adds bob (a member) and, through the Add-user
// dialog, carol (a reviewer). Bob posts, edits and deletes; carol searches the archive, reads
// the earlier versions and downloads an export; alice reads the audit log of what carol did.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import {
  OUT, see, tid, convItem, signIn, fromAnotherTab, launchBrowser, office,
} from './harness.mjs';

const PW = 'long enough pw';
let browser, o, pages;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await launchBrowser();
  o = await office(browser, ['--records', 'archive'], [['bob', 'Bob Member']]);
  pages = o.pages;
  const { alice, bob } = pages;
  // The reviewer comes from the dialog an admin uses, as in an office.
  await tid(alice, 'add-user-button').click();
  await tid(alice, 'add-user-name').fill('carol');
  await tid(alice, 'add-user-display-name').fill('Carol Reviewer');
  await tid(alice, 'add-user-password').fill(PW);
  await tid(alice, 'add-user-role').selectOption('reviewer');
  await tid(alice, 'add-user-submit').click();
  await see(tid(alice, 'toast').filter({ hasText: 'Added Carol Reviewer' }), 'alice adds a reviewer in the Add-user dialog but is not told it worked');

  await see(convItem(bob, 'general'), 'bob does not see #general');
  const conv = Number(await convItem(bob, 'general').getAttribute('data-conv-id'));
  // The deleted message carries a file: members lose it, the reviewer can still download it.
  const fileId = await bob.evaluate(async (conv) => {
    const r = await fetch(`/api/conversations/${conv}/files?name=zebra%20plan.pdf&type=application%2Fpdf`, { method: 'POST', body: '%PDF-1.4 zebra' });
    return (await r.json()).file.id;
  }, conv);
  const seqs = await fromAnotherTab(bob, [
    { type: 'send', ref: 'invoice', conv, text: 'the quarterly invoice is <b>ready</b>', client_id: 'r-1' },
    { type: 'send', ref: 'budget', conv, text: 'budget draft one', client_id: 'r-2' },
    { type: 'send', ref: 'plan', conv, text: 'secret plan zebra', client_id: 'r-3', attachments: [fileId] },
  ]);
  await fromAnotherTab(bob, [
    { type: 'edit', ref: 'e', conv, seq: seqs.budget, text: 'budget draft two' },
    { type: 'delete', ref: 'd', conv, seq: seqs.plan },
  ]);

  pages.carol = await o.newPage('carol');
  await pages.carol.goto(o.server.base + '/');
  await signIn(pages.carol, 'carol', PW);
});

after(async () => {
  try { if (o) await o.close(); } finally { if (browser) await browser.close(); }
});

/** Runs a review search with the given fields and waits for its status line to settle. */
async function reviewSearch(page, { words = '', person = '' }) {
  await tid(page, 'review-words').fill(words);
  await tid(page, 'review-person').fill(person);
  await tid(page, 'review-submit').click();
  await see(tid(page, 'review-status').filter({ hasText: /message|No messages/ }), `the reviewer searches for "${words || person}" and no answer comes`);
}

test('a reviewer searches the archive by a word and by a person', async () => {
  const carol = pages.carol;
  assert.equal(await tid(pages.bob, 'review-button').isVisible(), false, 'a member is offered the review archive');
  await see(tid(carol, 'review-button'), 'a reviewer has no "Review archive" entry');
  await tid(carol, 'review-button').click();
  await see(tid(carol, 'review-form'), 'the review archive opens without a search form');
  await see(tid(carol, 'review-conversation').filter({ hasText: '#general' }), 'the review archive does not list #general');

  await reviewSearch(carol, { words: 'invoice' });
  const hits = tid(carol, 'review-result');
  assert.equal(await hits.count(), 1, 'searching "invoice" does not find exactly bob\'s one message');
  assert.equal(await hits.first().getByTestId('review-result-author').textContent(), 'Bob Member', 'the result does not name its author');
  assert.equal(await hits.first().getByTestId('review-result-conv').textContent(), '#general', 'the result does not name its conversation');
  // Text, never HTML: the reviewer reads exactly what bob typed.
  assert.equal(await hits.first().getByTestId('review-result-text').textContent(), 'the quarterly invoice is <b>ready</b>', 'the result does not show the message as typed');
  assert.equal(await hits.first().locator('b').count(), 0, 'a message\'s text became HTML in the review results');

  await reviewSearch(carol, { person: 'bob' });
  const texts = await tid(carol, 'review-result-text').allTextContents();
  assert.ok(texts.includes('budget draft two') && texts.includes('the quarterly invoice is <b>ready</b>'),
    `searching by person "bob" does not find his messages (found ${JSON.stringify(texts)})`);
  const authors = await tid(carol, 'review-result-author').allTextContents();
  assert.ok(authors.every((a) => a === 'Bob Member'), `searching by bob shows others' messages too (${authors})`);
});

test('a reviewer reads the original of an edit and the text of a deleted message, and exports it', async () => {
  const carol = pages.carol;
  await reviewSearch(carol, { words: 'invoice' });
  await tid(carol, 'review-result').first().click();
  await see(tid(carol, 'review-title').filter({ hasText: '#general' }), 'clicking a result does not open its conversation read-only');
  const edited = tid(carol, 'review-message').filter({ hasText: 'budget draft two' });
  await see(edited, 'the edited message is not in the reviewer\'s conversation');
  const original = edited.locator('[data-testid="review-version"][data-label="original"]');
  await see(original, 'the reviewer does not see the original of an edited message');
  assert.match(await original.textContent(), /budget draft one/, 'the original shown is not what bob first wrote');
  const deleted = tid(carol, 'review-message').filter({ has: carol.getByTestId('review-deleted') });
  await see(deleted, 'the deleted message is not marked deleted in the reviewer\'s conversation');
  assert.match(await deleted.getByTestId('review-version-text').last().textContent(), /secret plan zebra/, 'the reviewer does not see what a deleted message said');
  assert.equal(await tid(carol, 'review-view').locator('textarea, [contenteditable]').count(), 0, 'the read-only conversation offers a message box');
  const file = deleted.getByTestId('review-file');
  await see(file, 'the reviewer is not offered the file of the deleted message');
  const [download] = await Promise.all([carol.waitForEvent('download'), file.click()]);
  assert.equal(download.suggestedFilename(), 'zebra plan.pdf', 'the reviewer\'s download does not keep the file\'s name');

  const link = tid(carol, 'review-export-html');
  assert.notEqual(await link.getAttribute('download'), null, 'the export is not a download link');
  const got = await carol.evaluate(async (href) => {
    const r = await fetch(href);
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  }, await link.getAttribute('href'));
  assert.equal(got.status, 200, 'the HTML export link does not answer');
  assert.match(got.type || '', /text\/html/, 'the HTML export link gives something other than HTML');
  assert.match(got.body, /budget draft one/, 'the HTML export lacks the earlier versions');
});

test('an admin reads in the audit log what the reviewer searched and how much it found', async () => {
  const alice = pages.alice;
  assert.equal(await tid(pages.carol, 'audit-button').isVisible(), false, 'a reviewer is offered the audit log');
  await see(tid(alice, 'audit-button'), 'an admin has no "Audit log" entry');
  await tid(alice, 'audit-button').click();
  const search = tid(alice, 'audit-entry').filter({ has: alice.getByTestId('audit-query').filter({ hasText: 'invoice' }) });
  await see(search, 'the audit log does not show the reviewer\'s search for "invoice"');
  const row = search.first();
  assert.equal(await row.getByTestId('audit-reviewer').textContent(), 'Carol Reviewer', 'the audit log does not name the reviewer');
  assert.equal(await row.getByTestId('audit-action').textContent(), 'search', 'the audit log does not say it was a search');
  assert.equal(await row.getByTestId('audit-results').textContent(), '1', 'the audit log does not give the search\'s result count');
});

test('a reviewer who writes in a conversation is told the message was not sent', async () => {
  const carol = pages.carol;
  await tid(carol, 'review-close').click();
  await convItem(carol, 'general').click();
  await tid(carol, 'composer').fill('may I post here?');
  await tid(carol, 'composer').press('Enter');
  // A refusal shown as "sending…" forever would let a reviewer believe people read it.
  await see(carol.locator('[data-testid="message"][data-pending] .send-failed').filter({ hasText: /Not sent \(.+\)/ }),
    'a reviewer\'s refused message is not marked "Not sent" with the server\'s reason');
  // Retrying cannot help: the server said no for good.
  assert.equal(await carol.locator('[data-testid="message"][data-pending] .send-failed button', { hasText: 'Retry' }).count(), 0,
    'a reviewer is offered to retry a post the server will always refuse');
});
