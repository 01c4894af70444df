// Benchmarks of the browser client (docs/benchmarks.md, "Browser client"):
//
//   node bench/inbound.mjs            (from js/, after `npm ci`)
//
// 1. Size of what a page loads for the client: the core's .wasm + its JS glue (and the
//    dashboard's whole bundle), raw and gzip -9; the mock module, loaded only in mock mode.
// 2. Cost of one inbound `study_metrics_update`, from the socket's message event to the app's
//    handler: @cerebrum/realtime (JS driver → wasm core → handler) beside the old app.js client
//    (js/bench/baseline-appjs.mjs), same frames, same process. Median over batches.

import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';

import { WebSocketClient } from '../realtime/dist/index.js';
import { CerebrumClient } from './baseline-appjs.mjs';

const here = (p) => new URL(p, import.meta.url);

function size(label, ...files) {
  const bytes = files.map((f) => readFileSync(here(f)));
  const raw = bytes.reduce((n, b) => n + b.length, 0);
  const gz = bytes.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0);
  console.log(`${label.padEnd(58)} raw ${String(raw).padStart(7)} B   gzip ${String(gz).padStart(6)} B`);
  return { raw, gz };
}

console.log('## sizes (gzip -9 per file)');
size('client core: cerebrum_wasm_bg.wasm + cerebrum_wasm.js', '../realtime/wasm/cerebrum_wasm_bg.wasm', '../realtime/wasm/cerebrum_wasm.js');
size('  cerebrum_wasm_bg.wasm', '../realtime/wasm/cerebrum_wasm_bg.wasm');
size('  cerebrum_wasm.js (glue)', '../realtime/wasm/cerebrum_wasm.js');
size('dashboard: realtime.js (bundle incl. glue) + .wasm', '../../crates/server/web/realtime.js', '../../crates/server/web/wasm/cerebrum_wasm_bg.wasm');
size('mock mode only: cerebrum_mock_bg.wasm + cerebrum_mock.js', '../realtime/wasm/cerebrum_mock_bg.wasm', '../realtime/wasm/cerebrum_mock.js');
size('old app.js client (baseline, whole file incl. page code)', '../bench/baseline-appjs.mjs');

// ---- inbound cost ----

const N = 2_000; // messages per batch
const BATCHES = 60;

function frames(count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    out.push(JSON.stringify({
      type: 'study_metrics_update',
      payload: { userId: 'user-123', studyHours: 12.5 + i / 1000, progress: 42.5, currentTopic: 'Molecular Basis of Inheritance', sessionDuration: 1800 + i, streak: 7 },
      timestamp: 1732752000000 + i,
      messageId: `01JDR12NW8${String(i).padStart(16, '0')}`,
    }));
  }
  return out;
}

/** A socket the benchmark drives by hand. */
class BenchSocket {
  static last = null;
  readyState = 0;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  constructor() {
    BenchSocket.last = this;
  }
  send() {}
  close() {}
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function measure(label, deliver, received) {
  const batch = frames(N);
  // Warm-up (JIT, wasm tier-up).
  for (let w = 0; w < 5; w++) for (const f of batch) deliver(f);
  const perMessageUs = [];
  for (let b = 0; b < BATCHES; b++) {
    const before = received();
    const t0 = performance.now();
    for (const f of batch) deliver(f);
    const t1 = performance.now();
    if (received() - before !== N) throw new Error(`${label}: ${received() - before} of ${N} delivered`);
    perMessageUs.push(((t1 - t0) * 1000) / N);
  }
  const sorted = [...perMessageUs].sort((a, b) => a - b);
  console.log(
    `${label.padEnd(58)} median ${median(perMessageUs).toFixed(2)} µs/msg   (min ${sorted[0].toFixed(2)}, max ${sorted.at(-1).toFixed(2)}; ${BATCHES} batches of ${N})`,
  );
}

console.log('\n## one inbound study_metrics_update, socket message event → app handler');

{
  let count = 0;
  const client = new WebSocketClient({ url: 'ws://bench/ws', WebSocket: BenchSocket });
  client.on('study_metrics_update', (m) => {
    if (m.payload.streak === 7) count += 1;
  });
  client.connect();
  const socket = BenchSocket.last;
  socket.readyState = 1;
  socket.onopen({});
  // A v1 server's welcome, so the core runs in v1 mode as against cerebrum serve.
  socket.onmessage({ data: JSON.stringify({ type: 'welcome', payload: { connectionId: 'c', protocol: 1, heartbeatIntervalMs: 30000, features: ['ack', 'channels', 'presence', 'resume'], serverTime: Date.now() }, timestamp: Date.now(), messageId: 'w1' }) });
  if (!client.isConnected()) throw new Error('not connected');
  measure('@cerebrum/realtime (JS driver + wasm core)', (f) => socket.onmessage({ data: f }), () => count);
  client.disconnect();
}

{
  let count = 0;
  globalThis.WebSocket ??= class { static OPEN = 1; };
  const client = new CerebrumClient('ws://bench/ws');
  client.addEventListener('study_metrics_update', (e) => {
    if (e.detail.payload.streak === 7) count += 1;
  });
  measure('old app.js client (baseline)', (f) => client.receive(f), () => count);
}

console.log(`\nnode ${process.version}, ${process.platform}/${process.arch}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
