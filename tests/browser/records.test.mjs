// What a conversation keeps, as people see it (issue 16, docs/protocol.md "Records"): the
// banner over the message list, the header chip, the sidebar mark, the note over the message
// box, the setting dialog and its system line, and the sign-in notice of an archiving server.
// One server per records policy (the default, --records off, retain:30 and archive), each
// with alice (the admin who set it up) and, on the default one, bob (a member).
// Run: cd tests/browser && npm ci && node --test
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { keepPhrase, keepShort, keepText } from '../../web/records.js';
import {
  OUT, see, tid, convItem, messageWith, launchBrowser, office,
} from './harness.mjs';

const NOT_RECORDED = 'Not recorded — messages disappear when everyone has closed the tab';
const ARCHIVED = 'Archived for compliance review — an authorized reviewer can read this conversation';
const OFFLINE_NOTE = 'Not recorded: people who are offline will not see these messages.';
const ARCHIVE_NOTICE = 'This server archives every conversation for compliance review.';

let browser;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await launchBrowser();
});

after(async () => { if (browser) await browser.close(); });


const bannerSays = (page, text) => tid(page, 'records-text').filter({ hasText: new RegExp(`^${text.replace(/[()]/g, '\\$&')}$`) });
const chipSays = (page, text) => tid(page, 'recorded-indicator').filter({ hasText: new RegExp(`^${text}$`) });

/** A dialog a failed step left open would block every later click of that person. */
async function closeDialogs(o) {
  for (const p of Object.values(o.pages)) await p.evaluate(() => { for (const d of document.querySelectorAll('dialog[open]')) d.close(); }).catch(() => {});
}

/**
 * Whether the server's Conversation says who created a room (`created_by`): without it the
 * client cannot know who may change a room's rule, so it offers the form and the server decides.
 */
function serverNamesCreators(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${location.host}/api/ws`);
    const convs = [];
    ws.onmessage = (ev) => {
      const f = JSON.parse(ev.data);
      if (f.type !== 'hello') return;
      convs.push(...f.conversations);
      if (f.last) { ws.close(); resolve(convs.some((c) => 'created_by' in c)); }
    };
    ws.onerror = () => reject(new Error('no WebSocket'));
  }));
}

/** Opens #general and waits for its header. */
async function openGeneral(page, who) {
  await convItem(page, 'general').click();
  await see(tid(page, 'conv-title').filter({ hasText: 'general' }), `${who} clicked "general" but it does not open`);
}

test('the words for each way of keeping are the ones the protocol gives', () => {
  // If these drift, people read a banner that promises something the server does not do.
  assert.equal(keepText({ keep: 'nothing' }), NOT_RECORDED);
  assert.equal(keepText({ keep: 'until_read', days: null }), 'Kept until everyone has read it');
  assert.equal(keepText({ keep: 'until_read', days: 7 }), 'Kept until everyone has read it (at most 7 days)');
  assert.equal(keepText({ keep: 'days', days: 30 }), 'Kept for 30 days');
  assert.equal(keepText({ keep: 'forever' }), 'Kept');
  assert.equal(keepText({ keep: 'archive' }), ARCHIVED);
  assert.deepEqual(['nothing', 'until_read', 'days', 'forever', 'archive'].map((keep) => keepShort({ keep, days: 30 })),
    ['Not recorded', 'Until read', '30 days', 'Kept', 'Archived']);
  assert.equal(keepPhrase({ keep: 'days', days: 7 }), 'kept for 7 days');
});

describe('a server with the default policy', () => {
  let o;
  before(async () => { o = await office(browser, [], [['bob', 'Bob Builder']]); });
  after(async () => { if (o) await o.close(); });
  afterEach(() => closeDialogs(o));

  test('#general says it is kept, and the sidebar marks nothing', async () => {
    const { alice, bob } = o.pages;
    for (const [page, who] of [[alice, 'alice'], [bob, 'bob']]) {
      await openGeneral(page, who);
      await see(bannerSays(page, 'Kept'), `${who} opens #general on an ordinary server but no banner says its messages are kept`);
      await see(chipSays(page, 'Kept'), `${who} opens #general but the header chip does not say "Kept"`);
      assert.equal(await tid(page, 'composer-note').isVisible(), false, `${who} is warned that offline people will miss messages in a recorded room`);
      assert.equal(await tid(page, 'records-mark').count(), 0, `${who}'s sidebar marks a conversation that keeps what every conversation keeps`);
    }
  });

  test('bob, who did not create #general, sees its rule read-only', async () => {
    const { bob } = o.pages;
    assert.ok(await serverNamesCreators(bob), 'the server does not say who created a room, so the page cannot tell bob may not change it');
    await tid(bob, 'recorded-indicator').click();
    await see(tid(bob, 'records-dialog'), 'bob clicks the "Kept" chip but no dialog says what #general keeps');
    await see(tid(bob, 'records-rule').filter({ hasText: "Only the room's creator" }), "bob is not told that only the room's creator or an admin can change it");
    assert.equal(await tid(bob, 'records-keep-nothing').isVisible(), false, 'bob, a plain member, is offered to switch recording off in a room he did not create');
    assert.equal(await tid(bob, 'records-submit').isVisible(), false, 'bob, a plain member, gets a Save button for a rule he may not change');
    await tid(bob, 'records-cancel').click();
  });

  test('bob may change the room he created himself', async () => {
    const { bob } = o.pages;
    await tid(bob, 'create-room-button').click();
    await tid(bob, 'create-room-name').fill('bobs-room');
    await tid(bob, 'create-room-submit').click();
    await see(tid(bob, 'conv-title').filter({ hasText: 'bobs-room' }), 'bob created #bobs-room but it does not open');
    await tid(bob, 'recorded-indicator').click();
    await see(tid(bob, 'records-keep-nothing'), 'bob created #bobs-room but is not offered to change what it keeps');
    await tid(bob, 'records-cancel').click();
  });

  test('alice sets #general to not recorded: both tabs show it, with a system line', async () => {
    const { alice, bob } = o.pages;
    await openGeneral(alice, 'alice');
    await openGeneral(bob, 'bob');
    await tid(alice, 'recorded-indicator').click();
    await see(tid(alice, 'records-keep-nothing'), 'alice, the admin, opens the dialog but cannot choose "Not recorded"');
    await tid(alice, 'records-keep-nothing').check();
    await tid(alice, 'records-submit').click();
    await tid(alice, 'records-dialog').waitFor({ state: 'hidden' }).catch(() => assert.fail('alice saved "Not recorded" but the dialog stays open'));
    const line = 'Alice Admin set this conversation to: not recorded';
    for (const [page, who] of [[alice, 'alice'], [bob, 'bob']]) {
      await see(bannerSays(page, NOT_RECORDED), `alice switched recording off but ${who}'s banner does not say "${NOT_RECORDED}"`);
      await see(chipSays(page, 'Not recorded'), `alice switched recording off but ${who}'s header chip does not say "Not recorded"`);
      await see(tid(page, 'system-line').filter({ hasText: line }), `${who} is not told "${line}"`);
      await see(tid(page, 'composer-note').filter({ hasText: OFFLINE_NOTE }), `${who} writes in an unrecorded room without being told offline people will not see it`);
      await see(convItem(page, 'general').locator(`[data-testid="records-mark"][aria-label="${NOT_RECORDED}"]`),
        `${who}'s sidebar does not mark #general as not recorded`);
      assert.equal(await tid(page, 'system-line').filter({ hasText: line }).locator('button').count(), 0,
        `${who} is offered to edit or delete the line saying who changed the recording`);
    }
    await see(tid(alice, 'records-who').filter({ hasText: 'set by you' }), 'alice is not told she set it');
    await see(tid(bob, 'records-who').filter({ hasText: 'set by Alice Admin' }), 'bob is not told alice set it');
  });

  test('alice keeps #general for 7 days; a reload of bob\'s tab still says so', async () => {
    const { alice, bob } = o.pages;
    await tid(alice, 'records-change').click();
    await tid(alice, 'records-days').fill('7');
    await tid(alice, 'records-submit').click();
    const line = 'Alice Admin set this conversation to: kept for 7 days';
    await see(bannerSays(bob, 'Kept for 7 days'), 'alice keeps #general for 7 days but bob\'s banner does not say "Kept for 7 days"');
    await see(tid(bob, 'system-line').filter({ hasText: line }), `bob is not told "${line}"`);
    await bob.reload();
    await see(bannerSays(bob, 'Kept for 7 days'), 'bob reloads and his banner no longer says "Kept for 7 days"');
    await see(tid(bob, 'system-line').filter({ hasText: line }), 'bob reloads and the line saying alice changed the recording is gone');
    await see(tid(bob, 'system-line').filter({ hasText: 'Alice Admin set this conversation to: not recorded' }),
      'bob reloads and the earlier line (alice switched recording off) is gone');
    assert.equal(await tid(bob, 'composer-note').isVisible(), false, 'bob is still warned about offline people in a room that is kept again');
  });

  test('a DM shows each person\'s choice and keeps the least', async () => {
    const { alice, bob } = o.pages;
    await bob.locator('[data-testid="person-item"][data-user-name="alice"]').click();
    await see(tid(bob, 'conv-title').filter({ hasText: 'Alice Admin' }), 'bob clicked alice but their DM does not open');
    await tid(bob, 'recorded-indicator').click();
    await tid(bob, 'records-keep-until-read').check();
    await tid(bob, 'records-submit').click();
    await alice.locator('[data-testid="person-item"][data-user-name="bob"]').click();
    await see(bannerSays(alice, 'Kept until everyone has read it'), 'bob chose "until read" for the DM but alice\'s banner does not say "Kept until everyone has read it"');
    await see(tid(alice, 'records-who').filter({ hasText: 'chosen by Bob Builder' }), 'alice is not told that bob\'s choice holds the DM there');
    await tid(alice, 'recorded-indicator').click();
    await see(tid(alice, 'records-choice').filter({ hasText: 'Bob Builder: kept until everyone has read it' }), 'alice\'s dialog does not show bob\'s choice');
    await see(tid(alice, 'records-rule').filter({ hasText: 'keeps the least' }), 'alice is not told that the DM keeps the least of their choices');
    // Alice choosing more than bob changes nothing: the DM keeps bob's.
    await tid(alice, 'records-keep-forever').check();
    await tid(alice, 'records-submit').click();
    // (Her line about it is kept only until both have read it, like every message here.)
    await see(bannerSays(alice, 'Kept until everyone has read it'), 'alice chose "Keep" and the DM is kept longer than bob chose');
  });

  test('in the DM kept until read, a message both have read leaves both tabs', async () => {
    const { alice, bob } = o.pages;
    // Bob looks at #general: the message reaches him unread, and is kept for him.
    await convItem(bob, 'general').click();
    await see(tid(bob, 'conv-title').filter({ hasText: 'general' }), 'bob does not get to #general');
    await tid(alice, 'composer').fill('the door code is 2580');
    await tid(alice, 'composer').press('Enter');
    const dm = bob.locator('[data-testid="conv-item"][data-kind="dm"]').first();
    await see(dm.getByTestId('unread-badge'), 'bob is not shown the unread message in the DM');
    await see(messageWith(alice, 'the door code is 2580'), 'alice\'s message goes before bob has read it');
    // Bob opens the DM and reads it: now everyone has read it, and it goes from both tabs.
    await dm.click();
    await messageWith(bob, 'the door code is 2580').waitFor({ state: 'detached', timeout: 15_000 })
      .catch(() => assert.fail('the message both have read stays in bob\'s tab; the purged frame should take it away'));
    await messageWith(alice, 'the door code is 2580').waitFor({ state: 'detached', timeout: 15_000 })
      .catch(() => assert.fail('the message both have read stays in alice\'s tab'));
  });
});

describe('a server started with --records off', () => {
  let o;
  before(async () => { o = await office(browser, ['--records', 'off']); });
  after(async () => { if (o) await o.close(); });

  test('every conversation says it is not recorded, and nobody can change that', async () => {
    const { alice } = o.pages;
    await openGeneral(alice, 'alice');
    await see(bannerSays(alice, NOT_RECORDED), `on a server that records nothing, #general's banner does not say "${NOT_RECORDED}"`);
    await see(chipSays(alice, 'Not recorded'), 'on a server that records nothing, the header chip does not say "Not recorded"');
    await see(tid(alice, 'composer-note').filter({ hasText: OFFLINE_NOTE }), 'alice writes on a server that records nothing without being told offline people will not see it');
    await tid(alice, 'recorded-indicator').click();
    await see(tid(alice, 'records-rule').filter({ hasText: 'This server records nothing' }), 'the dialog does not say the server records nothing');
    assert.equal(await tid(alice, 'records-keep-forever').isVisible(), false, 'alice is offered to keep messages on a server that records nothing');
    await tid(alice, 'records-cancel').click();
  });
});

describe('a server started with --records retain:30', () => {
  let o;
  before(async () => { o = await office(browser, ['--records', 'retain:30']); });
  after(async () => { if (o) await o.close(); });

  test('#general says it is kept for 30 days; more than 30 cannot be chosen', async () => {
    const { alice } = o.pages;
    await openGeneral(alice, 'alice');
    await see(bannerSays(alice, 'Kept for 30 days'), 'on a server that keeps 30 days, #general\'s banner does not say "Kept for 30 days"');
    await see(chipSays(alice, '30 days'), 'on a server that keeps 30 days, the header chip does not say "30 days"');
    await tid(alice, 'recorded-indicator').click();
    await see(tid(alice, 'records-keep-forever').locator('xpath=..').filter({ hasText: 'as long as the server allows (30 days)' }),
      'the dialog offers to keep messages forever on a server that keeps them 30 days');
    await tid(alice, 'records-days').fill('45');
    await tid(alice, 'records-submit').click();
    await see(tid(alice, 'records-error').filter({ hasText: 'at most 30 days' }), 'alice asks for 45 days on a 30-day server and is not told why that cannot be');
    await tid(alice, 'records-days').fill('10');
    await tid(alice, 'records-submit').click();
    await see(bannerSays(alice, 'Kept for 10 days'), 'alice chose 10 days but the banner does not say "Kept for 10 days"');
    await see(convItem(alice, 'general').locator('[data-testid="records-mark"][aria-label="Kept for 10 days"]'),
      'the sidebar does not mark #general, which keeps less than the server\'s 30 days');
  });
});

describe('a server started with --records archive', () => {
  let o;
  before(async () => { o = await office(browser, ['--records', 'archive']); });
  after(async () => { if (o) await o.close(); });

  test('sign-in says the server archives everything, before anyone signs in', async () => {
    const visitor = o.pages.visitor = await o.newPage('visitor');
    await visitor.goto(o.server.base + '/');
    await see(tid(visitor, 'signin-form'), 'the sign-in form is not shown');
    await see(tid(visitor, 'records-notice').filter({ hasText: ARCHIVE_NOTICE }), 'someone about to sign in to an archiving server is not told it archives every conversation');
  });

  test('every conversation says it is archived, and nobody can change that', async () => {
    const { alice } = o.pages;
    await openGeneral(alice, 'alice');
    await see(bannerSays(alice, ARCHIVED), `on an archiving server, #general's banner does not say "${ARCHIVED}"`);
    await see(chipSays(alice, 'Archived'), 'on an archiving server, the header chip does not say "Archived"');
    await tid(alice, 'recorded-indicator').click();
    await see(tid(alice, 'records-rule').filter({ hasText: 'nobody can change it' }), 'the dialog does not say that nobody can change the archiving');
    assert.equal(await tid(alice, 'records-keep-nothing').isVisible(), false, 'alice is offered to switch recording off on an archiving server');
    await tid(alice, 'records-cancel').click();
    await tid(alice, 'signout-button').click();
    await see(tid(alice, 'records-notice').filter({ hasText: ARCHIVE_NOTICE }), 'alice signs out and the sign-in form no longer says the server archives everything');
  });
});
