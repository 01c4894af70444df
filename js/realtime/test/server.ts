// Test support: a real `cerebrum serve` process on a free loopback port.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface Server {
  child: ChildProcess;
  /** `ws://127.0.0.1:PORT/ws` */
  url: string;
  /** `127.0.0.1:PORT` */
  addr: string;
  dataDir: string;
  logs: string[];
}

export interface ServeOptions {
  /** Listen on this address (default: a free port). */
  addr?: string;
  dataDir?: string;
  jwtSecret?: string;
  adminToken?: string;
  /** Start with `--compression` (permessage-deflate for clients that offer it). */
  compression?: boolean;
}

export function bin(): string {
  const path = process.env.CEREBRUM_BIN;
  if (!path) throw new Error('CEREBRUM_BIN is not set (the global setup builds it)');
  return path;
}

export function serve(options: ServeOptions = {}): Promise<Server> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'cerebrum-js-'));
  const args = ['serve', '--addr', options.addr ?? '127.0.0.1:0', '--data-dir', dataDir, '--log-format', 'json'];
  if (options.jwtSecret) args.push('--jwt-secret', options.jwtSecret);
  if (options.adminToken) args.push('--admin-token', options.adminToken);
  if (options.compression) args.push('--compression');
  const child = spawn(bin(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => logs.push(line));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + logs.join('\n'))), 30_000);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${logs.join('\n')}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^listening on (wss?:\/\/([^/]+)\/ws)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, url: match[1]!, addr: match[2]!, dataDir, logs });
      }
    });
  });
}

export function stop(server: Server, { keepData = false } = {}): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      if (!keepData) rmSync(server.dataDir, { recursive: true, force: true });
      resolve();
    };
    if (server.child.exitCode !== null || server.child.signalCode !== null) return done();
    server.child.once('exit', done);
    server.child.kill('SIGTERM');
  });
}

export function token(secret: string, user: string, ttlSecs = 3600): string {
  return execFileSync(bin(), ['token', '--secret', secret, '--user', user, '--ttl-secs', String(ttlSecs)], {
    encoding: 'utf8',
  }).trim();
}

/** Resolves when `predicate` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
