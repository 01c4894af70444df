// Browser end-to-end test of the web dashboard that `cerebrum serve` serves at `/`.
//
// Runs real headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core against a
// real `cerebrum serve` process on a free loopback port:
//   the page loads (served with a Content-Security-Policy, its client being @cerebrum/realtime on
//   the WebAssembly core) and shows `connected`; a notification posted over HTTP appears, its
//   action a link only for http(s) URLs and site paths; a second client starting a session on
//   the same topic appears in the participant list; the server restarted -> the page shows
//   `reconnecting`, then `connected` again; with auth on, the token given in the page's URL
//   travels in an `auth` frame, never in the WebSocket URL, and leaves the address bar.
// Screenshots are saved to e2e/artifacts/ (dashboard.png, dashboard-phone.png,
// dashboard-reconnected.png).
//
// Environment: CEREBRUM_BIN (path of the `cerebrum` binary, required), CHROMIUM_PATH (default
// /usr/bin/chromium), E2E_REQUIRE_BROWSER=1 (fail instead of skipping when Chromium is absent;
// CI sets it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { adminToken, chromiumPath, missingPiece, serve, stop } from './server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const bin = process.env.CEREBRUM_BIN;
const missing = missingPiece('browser end-to-end test');

/** A second student: a plain WebSocket client of the protocol. */
async function classmate(url, userId, topic) {
  const { default: WebSocket } = await import('ws');
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({
    type: 'study_session_start',
    payload: { userId, topic, timestamp: Date.now() },
    timestamp: Date.now(),
    messageId: `e2e-${Date.now()}`,
  }));
  return socket;
}

test('web dashboard in headless Chromium', { skip: missing ?? false, timeout: 180000 }, async () => {
  const { chromium } = await import('playwright-core');
  const dataDir = mkdtempSync(join(tmpdir(), 'cerebrum-e2e-'));
  const artifacts = join(here, 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  let server = await serve('127.0.0.1:0', dataDir);
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  let other;
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const pageErrors = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') {
        console.error('page:', msg.text());
        pageErrors.push(msg.text());
      }
    });
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    const wasm = page.waitForResponse((r) => r.url().endsWith('/wasm/cerebrum_wasm_bg.wasm'));
    const loaded = await page.goto(`http://${server.host}/?user=e2e-asha&name=Asha`);
    const csp = loaded.headers()['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/, `CSP header: ${csp}`);
    assert.doesNotMatch(csp, /unsafe-inline/);
    await page.locator('#status', { hasText: /^connected$/ }).waitFor({ timeout: 15000 });
    assert.equal(await page.locator('#status').textContent(), 'connected');
    // The client is the package on the WebAssembly core (compiled under the CSP), not a
    // hand-written one.
    const wasmResponse = await wasm;
    assert.equal(wasmResponse.headers()['content-type'], 'application/wasm');
    assert.equal(
      await page.evaluate(() => typeof window.cerebrum.getQueuedMessages === 'function' && window.cerebrum.getStatus()),
      'connected',
    );
    assert.deepEqual(pageErrors.filter((e) => /Content Security Policy|Refused/.test(e)), []);

    // A notification posted over HTTP appears in the feed.
    const response = await fetch(`http://${server.host}/api/notifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        title: 'Quiz result', message: 'You scored 42/45 on Genetics.',
        type: 'success', priority: 'high', userId: 'e2e-asha',
        actionUrl: '/quizzes/genetics', actionText: 'Review answers',
      }),
    });
    assert.equal(response.status, 202, await response.text());
    const notification = page.locator('#notifications li', { hasText: 'You scored 42/45 on Genetics.' });
    await notification.waitFor({ timeout: 10000 });
    assert.equal(await notification.locator('a').getAttribute('href'), '/quizzes/genetics');
    // Only http(s) URLs and site paths become links: anything else stays text.
    const verdicts = await page.evaluate(async () => {
      const { safeActionUrl } = await import('/app.js');
      return ['javascript:alert(1)', 'data:text/html,x', '//evil.example/x', 'https://example.org/a', '/a']
        .map((u) => safeActionUrl(u));
    });
    assert.deepEqual(verdicts, [null, null, null, 'https://example.org/a', '/a']);

    // Start a session, then a classmate joins the same topic: both appear.
    await page.fill('#topic-input', 'Molecular Basis of Inheritance');
    await page.click('#study-button');
    other = await classmate(server.url, 'e2e-ben', 'Molecular Basis of Inheritance');
    const participants = page.locator('#sessions li[data-topic="Molecular Basis of Inheritance"] .participants li');
    await page.locator('#sessions .participants li[data-user-id="e2e-ben"]').waitFor({ timeout: 10000 });
    assert.ok((await participants.count()) >= 2, 'both students are listed');
    await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
    // Phone-sized: the panels stack in one column and nothing overflows sideways.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone screen`);
    await page.screenshot({ path: join(artifacts, 'dashboard-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1200, height: 900 });

    // Restart the server on the same port and data dir: reconnecting, then connected.
    other.close();
    const host = server.host;
    assert.equal(await stop(server), 0, 'graceful shutdown exits 0');
    await page.locator('#status', { hasText: 'reconnecting' }).waitFor({ timeout: 15000 });
    server = await serve(host, dataDir);
    await page.locator('#status', { hasText: /^connected$/ }).waitFor({ timeout: 30000 });
    await page.screenshot({ path: join(artifacts, 'dashboard-reconnected.png'), fullPage: true });

    // Auth on: the token of the page's URL goes in the `auth` frame, not in the socket's URL.
    assert.equal(await stop(server), 0);
    const secret = 'e2e-secret-e2e-secret-e2e-secret-32';
    server = await serve(host, dataDir, ['--jwt-secret', secret]);
    const jwt = execFileSync(bin, ['token', '--secret', secret, '--user', 'e2e-asha'], { encoding: 'utf8' }).trim();
    const authed = await browser.newPage();
    const sockets = [];
    const sent = [];
    authed.on('websocket', (ws) => {
      sockets.push(ws.url());
      ws.on('framesent', (frame) => sent.push(String(frame.payload)));
    });
    await authed.goto(`http://${server.host}/?user=e2e-asha&token=${jwt}`);
    await authed.locator('#status', { hasText: /^connected$/ }).waitFor({ timeout: 15000 });
    assert.ok(sockets.length > 0);
    for (const url of sockets) assert.doesNotMatch(url, /token/, `socket URL ${url}`);
    assert.ok(sent.some((f) => f.startsWith('{"type":"auth"') && f.includes(jwt)), 'an auth frame carried the token');
    assert.doesNotMatch(authed.url(), /token=/, 'the token left the address bar');
    await authed.close();
  } finally {
    other?.terminate();
    await browser.close();
    await stop(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
