// Speed as people feel it (issue 19): the first load stays under 150 KB over the wire (every
// response the page got, headers and compressed bodies, from the address bar to a room on
// screen).
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { OUT, see, convItem, launchBrowser, office, signIn } from './harness.mjs';

const BUDGET = 150 * 1024;

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

test('the first load, signed in to a room, is under 150 KB over the wire', async (t) => {
  const page = await o.newPage('bob-fresh');
  const sizes = [];
  page.on('requestfinished', async (req) => {
    const s = await req.sizes().catch(() => null);
    if (s) sizes.push({ url: req.url(), bytes: s.responseHeadersSize + s.responseBodySize, headers: s.responseHeadersSize });
  });
  await page.goto(o.server.base + '/');
  await signIn(page, 'bob', 'long enough pw');
  await see(convItem(page, 'general'), 'bob does not see #general after signing in');
  await page.waitForLoadState('networkidle');
  const total = sizes.reduce((a, s) => a + s.bytes, 0);
  const biggest = [...sizes].sort((a, b) => b.bytes - a.bytes).slice(0, 5).map((s) => `${new URL(s.url).pathname} ${(s.bytes / 1024).toFixed(1)} KB`);
  const headers = sizes.reduce((a, s) => a + s.headers, 0);
  t.diagnostic(`first load: ${(total / 1024).toFixed(1)} KB in ${sizes.length} responses (${(headers / 1024).toFixed(1)} KB of it headers); biggest: ${biggest.join(', ')}`);
  assert.ok(sizes.some((s) => s.url.endsWith('/app.js')), 'the load was not measured: no app.js among the responses');
  assert.ok(total < BUDGET, `the first load took ${(total / 1024).toFixed(1)} KB over the wire, over 150 KB: ${biggest.join(', ')}`);
  await page.context().close();
});
