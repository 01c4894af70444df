// Page load to `connected` on loopback in headless Chromium (docs/benchmarks.md, "Browser
// client"): a fresh browser context per run (nothing cached), navigation start → the dashboard's
// status reading `connected`, as the page's own clock (performance.now()) tells it.
//
//   CEREBRUM_BIN=…/release/cerebrum node bench/pageload.mjs [runs]     (from js/)

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const runs = Number(process.argv[2] ?? 15);
const bin = process.env.CEREBRUM_BIN;
if (!bin) throw new Error('set CEREBRUM_BIN to a cerebrum binary');

const dataDir = mkdtempSync(join(tmpdir(), 'cerebrum-pageload-'));
const server = spawn(bin, ['serve', '--addr', '127.0.0.1:0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'ignore'] });
const host = await new Promise((resolve, reject) => {
  server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  createInterface({ input: server.stdout }).on('line', (line) => {
    const match = /^listening on wss?:\/\/([^/]+)\/ws$/.exec(line);
    if (match) resolve(match[1]);
  });
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
});
const times = [];
try {
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    // Stamped by the page itself the moment the status element reads `connected`.
    await page.addInitScript(() => {
      new MutationObserver(() => {
        const node = document.getElementById('status');
        if (node && node.textContent === 'connected' && !window.__connectedAt) window.__connectedAt = performance.now();
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
    await page.goto(`http://${host}/?user=bench-${i}`);
    await page.waitForFunction(() => window.__connectedAt !== undefined, null, { timeout: 15000 });
    times.push(await page.evaluate(() => window.__connectedAt));
    await context.close();
  }
} finally {
  await browser.close();
  server.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}
const sorted = [...times].sort((a, b) => a - b);
console.log(`page load → connected, ${runs} runs (ms since navigation start):`);
console.log(`  median ${sorted[Math.floor(runs / 2)].toFixed(1)}   min ${sorted[0].toFixed(1)}   max ${sorted.at(-1).toFixed(1)}`);
