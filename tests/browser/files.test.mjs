// Files (issue 19, docs/protocol.md "Files"): alice and bob, each in a browser context of
// their own, on a server that takes files up to 2 MB. A pasted PNG shows inline for the other
// and opens full size; a PDF dropped on the page (never opened by the tab) downloads with its
// name; a file over the limit is refused before any upload; a phone screenshot with an image.
// Run: cd tests/browser && npm ci && node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { OUT, WAIT, see, tid, convItem, launchBrowser, messageWith, office } from './harness.mjs';

let browser;
let o;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await launchBrowser();
  o = await office(browser, ['--max-file-size', '2000000'], [['bob', 'Bob Builder']]);
  for (const p of [o.pages.alice, o.pages.bob]) {
    await convItem(p, 'general').click();
    await see(tid(p, 'composer'), 'the message box of general is not shown');
  }
});

after(async () => {
  if (o) await o.close();
  if (browser) await browser.close();
});

/** Uploads the page started (POSTs to .../files), counted from now on. */
function countUploads(page) {
  const seen = { n: 0 };
  page.on('request', (r) => { if (r.method() === 'POST' && /\/api\/conversations\/\d+\/files/.test(r.url())) seen.n++; });
  return seen;
}

test('a PNG pasted into the message box shows inline for the other and opens full size', async () => {
  const { alice, bob } = o.pages;
  await tid(alice, 'composer').click();
  await alice.evaluate(async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 800; canvas.height = 600;
    const g = canvas.getContext('2d');
    g.fillStyle = '#1264a3'; g.fillRect(0, 0, 800, 600);
    g.fillStyle = '#ffd400'; g.fillRect(100, 100, 600, 400);
    const blob = await new Promise((r) => canvas.toBlob(r, 'image/png'));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'floor-plan.png', { type: 'image/png' }));
    document.getElementById('composer').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  });
  await see(alice.locator('[data-testid="attachment-upload"][data-state="done"]'), 'the pasted image does not finish uploading in the tray');
  await tid(alice, 'composer').fill('the new floor plan');
  await tid(alice, 'composer').press('Enter');

  const image = messageWith(bob, 'the new floor plan').getByTestId('attachment-image');
  await see(image, 'bob does not see the pasted image in alice\'s message');
  const thumb = image.locator('img');
  await bob.waitForFunction((img) => img.complete && img.naturalWidth > 0, await thumb.elementHandle(), { timeout: WAIT });
  const width = await thumb.evaluate((img) => img.naturalWidth);
  assert.ok(width > 0 && width <= 360, `the inline picture is the small copy (${width} px wide), not the original`);
  await image.click();
  const full = tid(bob, 'attachment-full').locator('img');
  await see(full, 'clicking the picture does not open it full size');
  await bob.waitForFunction((img) => img.complete && img.naturalWidth > 0, await full.elementHandle(), { timeout: WAIT });
  assert.equal(await full.evaluate((img) => img.naturalWidth), 800, 'full size is the original, 800 px wide');
  await bob.keyboard.press('Escape');
  await tid(bob, 'attachment-full').waitFor({ state: 'detached', timeout: WAIT });
});

test('a PDF dropped anywhere on the page attaches without leaving it, and downloads with its name', async () => {
  const { alice, bob } = o.pages;
  const url = bob.url();
  await bob.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['%PDF-1.4\n% quarterly report\n'], 'Q3 report.pdf', { type: 'application/pdf' }));
    const target = document.getElementById('messages');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  });
  await see(bob.locator('[data-testid="attachment-upload"][data-state="done"]'), 'the dropped PDF does not upload');
  assert.equal(bob.url(), url, 'the tab stayed on the chat');
  await tid(bob, 'composer').fill('report attached');
  await tid(bob, 'composer').press('Enter');

  const card = messageWith(alice, 'report attached').getByTestId('attachment-file');
  await see(card, 'alice does not see the PDF as a file card');
  const shown = await card.textContent();
  assert.match(shown, /Q3 report\.pdf/);
  assert.match(shown, /application\/pdf/, 'the card shows the type');
  assert.match(shown, /\d+ bytes/, 'the card shows the size');
  const [download] = await Promise.all([alice.waitForEvent('download'), card.getByTestId('attachment-download').click()]);
  assert.equal(download.suggestedFilename(), 'Q3 report.pdf', 'the download keeps the file\'s name');
});

test('a file over the limit is refused before anything is sent, and the error shows the limit', async () => {
  const { alice } = o.pages;
  const uploads = countUploads(alice);
  await tid(alice, 'attach-input').setInputFiles({ name: 'video.mp4', mimeType: 'video/mp4', buffer: Buffer.alloc(3_000_000, 1) });
  const chip = alice.locator('[data-testid="attachment-upload"][data-state="failed"]');
  await see(chip, 'the oversized file is not refused in the tray');
  assert.match(await chip.textContent(), /at most 2 MB/, 'the refusal names the limit');
  // The ping barrier: whatever the page would have sent, it has by the pong.
  await alice.evaluate(() => new Promise((resolve) => {
    const ws = new WebSocket(`ws://${location.host}/api/ws`);
    ws.onmessage = (ev) => { const f = JSON.parse(ev.data); if (f.type === 'hello' && f.last) ws.send('{"type":"ping"}'); if (f.type === 'pong') { ws.close(); resolve(); } };
  }));
  assert.equal(uploads.n, 0, 'no upload request was made');
  await chip.getByTestId('attachment-cancel').click();
  await chip.waitFor({ state: 'detached', timeout: WAIT });
});

test('an upload shows its progress and can be cancelled', async () => {
  const { alice } = o.pages;
  // A slow uplink, so that the upload is seen under way.
  const cdp = await alice.context().newCDPSession(alice);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 64 * 1024 });
  const failed = new Promise((resolve) => alice.on('requestfailed', (r) => { if (/\/files\?/.test(r.url())) resolve(r); }));
  await tid(alice, 'attach-input').setInputFiles({ name: 'slides.pdf', mimeType: 'application/pdf', buffer: Buffer.alloc(1_500_000, 2) });
  const chip = alice.locator('[data-testid="attachment-upload"][data-state="uploading"]');
  await see(chip.locator('progress'), 'the upload shows no progress bar');
  await alice.waitForFunction(() => document.querySelector('[data-testid="attachment-upload"] progress')?.value > 0, null, { timeout: WAIT })
    .catch(() => assert.fail('the progress bar does not move'));
  await chip.getByTestId('attachment-cancel').click();
  await chip.waitFor({ state: 'detached', timeout: WAIT });
  // The browser dropped the request: the server removes what it had (tests/files.rs).
  await Promise.race([failed, new Promise((_, reject) => setTimeout(() => reject(new Error('cancel did not stop the upload request')), WAIT))]);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await cdp.detach();
});

test('on a 390 px phone the picture fits the message list', async () => {
  const { bob } = o.pages;
  await bob.setViewportSize({ width: 390, height: 800 });
  await bob.waitForFunction(() => document.querySelector('.sidebar').getBoundingClientRect().right <= 0, null, { timeout: WAIT })
    .catch(() => assert.fail('the sidebar stays over the conversation on a phone'));
  const image = messageWith(bob, 'the new floor plan').getByTestId('attachment-image');
  await image.scrollIntoViewIfNeeded();
  const box = await image.boundingBox();
  assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `the picture fits the phone's width (${JSON.stringify(box)})`);
  await bob.screenshot({ path: path.join(OUT, 'files-390.png') });
});
