// `cerebrum serve` for the browser end-to-end tests: started on a free loopback port with the
// binary of CEREBRUM_BIN, stopped with SIGTERM.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

export const adminToken = 'e2e-admin-token';
export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * What is missing to run `what` (Chromium, the `cerebrum` binary), or null. Says so loudly, and
 * throws instead when E2E_REQUIRE_BROWSER=1 (CI).
 */
export function missingPiece(what) {
  const bin = process.env.CEREBRUM_BIN;
  const missing = !existsSync(chromiumPath)
    ? `Chromium not found at ${chromiumPath}`
    : !bin || !existsSync(bin)
      ? `CEREBRUM_BIN not set or missing (${bin})`
      : null;
  if (missing) {
    const line = `!!! ${what.toUpperCase()} SKIPPED: ${missing} !!!`;
    console.error('\n' + '!'.repeat(line.length) + '\n' + line + '\n' + '!'.repeat(line.length) + '\n');
    if (process.env.E2E_REQUIRE_BROWSER === '1') {
      throw new Error(`${what} required but cannot run: ${missing}`);
    }
  }
  return missing;
}

/** Starts `cerebrum serve` and resolves with its process and ws URL once it listens. */
export function serve(addr, dataDir, extra = []) {
  const child = spawn(
    process.env.CEREBRUM_BIN,
    ['serve', '--addr', addr, '--data-dir', dataDir, '--admin-token', adminToken, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs = [];
  createInterface({ input: child.stderr }).on('line', (line) => logs.push(line));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + logs.join('\n'))), 30000);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${logs.join('\n')}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /^listening on (wss?:\/\/([^/]+)\/ws)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1], host: match[2], logs });
      }
    });
  });
}

export function stop(server) {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve(server.child.exitCode);
    server.child.removeAllListeners('exit');
    server.child.on('exit', (code) => resolve(code));
    server.child.kill('SIGTERM');
  });
}

