// What the browser tests share: starting and stopping a server on a free port with a fresh
// data file, and the steps a person takes (see, sign in, search) with failures that say what
// a person would notice.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.HALLWAY_BIN || path.resolve(here, '../../target/debug/hallway');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const OUT = path.join(here, 'out');
export const WAIT = 10_000;

/**
 * Starts the server; resolves once it printed its address (and, on a first start, the setup
 * link). `listen` is 127.0.0.1:0 (any free port) or the address of a previous run to restart it;
 * `extraArgs` are more options for the server (say `['--records', 'archive']`).
 */
/** Debian's chromium, headless, with a fresh profile and nothing that calls home. */
export function launchBrowser(extraArgs = [], env = process.env) {
  return chromium.launch({
    executablePath: CHROMIUM, headless: true, env,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', ...extraArgs],
  });
}

/** A page of its own (its own cookies) for `who`, watched for foreign requests and errors. */
export async function openPage(browser, who, base, log) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  watch(page, who, base, log);
  return page;
}

export function startServer(dataDir, listen = '127.0.0.1:0', needSetup = true, extraArgs = [], baseOf = (port) => `http://127.0.0.1:${port}`) {
  return new Promise((resolve, reject) => {
    // Rate limits off: steps post hundreds of messages and rooms from one scripted connection
    // at once to set a scene (tests/isolation.rs tests the limits).
    const proc = spawn(BIN, ['--listen', listen, '--data', path.join(dataDir, 'hallway.redb'), '--no-mdns', '--no-rate-limits', ...extraArgs], {
      cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' },
    });
    let output = '';
    let base = null;
    let setupUrl = null;
    let done = false;
    const timer = setTimeout(() => {
      reject(new Error(`the server did not print "serving on 127.0.0.1:PORT"${needSetup ? ' and a setup link' : ''} within 30 s; it printed:\n${output}`));
    }, 30_000);
    // Both pipes are read until the end: a full pipe would block the server's logging.
    const onData = (chunk) => {
      output = (output + chunk.toString()).slice(-200_000);
      if (done) return;
      const serving = /serving on 127\.0\.0\.1:(\d+)/.exec(output);
      if (serving) base = baseOf(serving[1]);
      const setup = /\/setup#([^\s"']+)/.exec(output);
      if (setup && base) setupUrl = `${base}/setup#${setup[1]}`;
      if (base && (setupUrl || !needSetup)) {
        done = true;
        clearTimeout(timer);
        resolve({ proc, base, setupUrl, dataDir, get output() { return output; } });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start the server ${BIN}: ${e.message}`)); });
    proc.on('exit', (code, sig) => {
      if (!done) { clearTimeout(timer); reject(new Error(`the server exited (${code ?? sig}) before serving:\n${output}`)); }
    });
  });
}

/** Stops the server by its PID (never by name): SIGTERM, then SIGKILL after 5 s. */
export async function stopServer(srv) {
  if (srv.proc.exitCode !== null || srv.proc.signalCode !== null) return;
  const exited = new Promise((r) => srv.proc.once('exit', r));
  process.kill(srv.proc.pid, 'SIGTERM');
  const t = setTimeout(() => { try { process.kill(srv.proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
  await exited;
  clearTimeout(t);
}

/** Records in `log` requests to other hosts (log.foreign) and uncaught exceptions (log.pageErrors). */
export function watch(page, who, base, log) {
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.protocol === 'data:' || url.protocol === 'blob:') return;
    if (url.host !== new URL(base).host) log.foreign.push(`${who}: ${req.url()}`);
  });
  page.on('websocket', (ws) => {
    if (new URL(ws.url()).host !== new URL(base).host) log.foreign.push(`${who} websocket: ${ws.url()}`);
  });
  page.on('pageerror', (err) => log.pageErrors.push(`${who}: ${err.stack || err.message}`));
}

/** Waits for a locator to be visible, failing with what a person would notice. */
export async function see(locator, whatIsWrong, timeout = WAIT) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch {
    // What the page showed, for whoever reads the failure (tests/browser/out/).
    const page = locator.page();
    const shot = path.join(OUT, `failed-${Date.now()}.png`);
    await page.screenshot({ path: shot }).catch(() => {});
    const status = await page.getByTestId('search-status').textContent({ timeout: 1000 }).catch(() => null);
    assert.fail(`${whatIsWrong} (screenshot: ${shot}${status ? `; search status: "${status}"` : ''})`);
  }
}

export const tid = (page, id) => page.getByTestId(id);
export const convItem = (page, name) => page.locator(`[data-testid="conv-item"][data-conv-name="${name}"]`);
export const messageWith = (page, text) => page.locator('[data-testid="message"]:not([data-pending])', { hasText: text });

/** Waits until the element is scrolled into the visible part of the message list. */
export async function inView(page, locator, whatIsWrong) {
  const el = await locator.first().elementHandle();
  await page.waitForFunction((e) => {
    const r = e.getBoundingClientRect();
    const l = document.getElementById('messages').getBoundingClientRect();
    return r.height > 0 && r.top >= l.top - 1 && r.bottom <= l.bottom + 1;
  }, el, { timeout: WAIT }).catch(() => assert.fail(whatIsWrong));
}

/** Signs in on a page showing the sign-in form and waits for the chat. */
export async function signIn(page, name, password) {
  await see(tid(page, 'signin-form'), 'the sign-in form is not shown');
  await tid(page, 'signin-name').fill(name);
  await tid(page, 'signin-password').fill(password);
  await tid(page, 'signin-submit').click();
  await see(tid(page, 'composer'), `${name} signs in but does not get to the chat`);
}

/** Types a search into the box and runs it with Enter. */
export async function search(page, text) {
  await tid(page, 'search-input').fill(text);
  await tid(page, 'search-input').press('Enter');
}

/**
 * Sends frames (each with a ref) on a second WebSocket of page's user, as another tab of theirs
 * would, and resolves with each ref's ack frame once every frame is acknowledged.
 */
export function acksFromAnotherTab(page, frames, timeout = 60_000) {
  return page.evaluate(([frames, timeout]) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${location.host}/api/ws`);
    const acks = {};
    let acked = 0;
    const timer = setTimeout(() => reject(new Error(`only ${acked} of ${frames.length} frames were acknowledged`)), timeout);
    ws.onmessage = (ev) => {
      const f = JSON.parse(ev.data);
      if (f.type === 'hello' && f.last) for (const frame of frames) ws.send(JSON.stringify(frame));
      else if (f.type === 'ack') {
        acks[f.ref] = f;
        if (++acked === frames.length) { clearTimeout(timer); ws.close(); resolve(acks); }
      } else if (f.type === 'error') { clearTimeout(timer); reject(new Error(f.message)); }
    };
  }), [frames, timeout]);
}

/** As acksFromAnotherTab, resolving with each ref's acked seq. */
export async function fromAnotherTab(page, frames) {
  const acks = await acksFromAnotherTab(page, frames);
  return Object.fromEntries(Object.entries(acks).map(([ref, ack]) => [ref, ack.seq]));
}

/**
 * In `browser`, a server started with `args`, set up by alice (the admin), with `people` (members, password
 * "long enough pw") signed in, each in a browser context of their own. `browser` may instead be a
 * function of the started server that launches one; `opts.baseOf(port)` is the address pages open
 * (default http://127.0.0.1:PORT).
 */
export async function office(browser, args, people = [], opts = {}) {
  const o = { tmp: mkdtempSync(path.join(tmpdir(), 'hallway-office-')), pages: {}, ids: {}, log: { foreign: [], pageErrors: [] } };
  o.server = await startServer(o.tmp, '127.0.0.1:0', true, args, opts.baseOf);
  // A browser that needs the server first (one that trusts its certificate authority).
  if (typeof browser === 'function') browser = await browser(o.server);
  o.browser = browser;
  o.newPage = (who) => openPage(browser, who, o.server.base, o.log);
  const alice = o.pages.alice = await o.newPage('alice');
  await alice.goto(o.server.setupUrl);
  await tid(alice, 'setup-name').fill('alice');
  await tid(alice, 'setup-display-name').fill('Alice Admin');
  await tid(alice, 'setup-password').fill('correct horse battery');
  await tid(alice, 'setup-submit').click();
  await see(convItem(alice, 'general'), 'alice does not get to the chat after setup');
  o.ids.alice = await alice.evaluate(async () => (await (await fetch('/api/me')).json()).user.id);
  for (const [name, display] of people) {
    o.ids[name] = await alice.evaluate(async ([name, display]) => {
      const r = await fetch('/api/users', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name, display_name: display, password: 'long enough pw', role: 'member' }),
      });
      if (!r.ok) throw new Error(`adding ${name}: HTTP ${r.status}`);
      return (await r.json()).user.id;
    }, [name, display]);
    o.pages[name] = await o.newPage(name);
    await o.pages[name].goto(o.server.base + '/');
    await signIn(o.pages[name], name, 'long enough pw');
  }
  o.close = async () => {
    try {
      for (const p of Object.values(o.pages)) await p.context().close();
    } finally {
      await stopServer(o.server);
      rmSync(o.tmp, { recursive: true, force: true });
    }
    assert.deepEqual(o.log.pageErrors, [], 'the page threw errors');
    assert.deepEqual(o.log.foreign, [], 'the page loaded something from another host');
  };
  return o;
}

/** Posts `text` from the open conversation's message box. */
export async function post(page, text) {
  await tid(page, 'composer').fill(text);
  await tid(page, 'composer').press('Enter');
}

/**
 * An init script (`context.addInitScript(recordNotifications)`): records every Notification the
 * page shows, keeping the browser's own behaviour; `shown(page)` lists their titles and bodies.
 */
export function recordNotifications() {
  window.__shown = [];
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) {
      super(title, options);
      window.__shown.push(this);
    }
  };
}

export const shown = (page) => page.evaluate(() => window.__shown.map((n) => ({ title: n.title, body: n.body })));
