// Mock mode: a `WebSocket` whose server is the Rust crate's simulated `MockPeer`, compiled to its
// own WebAssembly module and loaded only when `enableMockMode` is set. The client's driver and
// core run unchanged: mock mode exercises the production path.

import init, { initSync, WasmMockPeer, mockDataStream } from '../wasm/cerebrum_mock.js';
import type { MockOptions, WebSocketConstructor, WebSocketLike } from './types.js';

const wasmUrl = new URL('../wasm/cerebrum_mock_bg.wasm', import.meta.url);
const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

if (isNode && wasmUrl.protocol === 'file:') {
  const { readFile } = await import('node:fs/promises');
  initSync({ module: await readFile(wasmUrl) });
} else {
  await init({ module_or_path: wasmUrl });
}

const now = (): number => performance.now();

type Output = { kind: 'opened' } | { kind: 'frame'; frame: string } | { kind: 'closed'; code: number; reason: string };

/**
 * A `WebSocket` constructor whose sockets all talk to one simulated server (one peer per client,
 * so a reconnect reaches the same simulated server, as in the Rust `MockTransport`).
 */
export function mockSocket(options: MockOptions): WebSocketConstructor {
  const peer = new WasmMockPeer(JSON.stringify(options), now(), Date.now());

  class MockWebSocket implements WebSocketLike {
    readyState = 0;
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: { code: number; reason: string }) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    private timer: ReturnType<typeof setTimeout> | null = null;

    constructor(_url: string, _protocols?: string | string[]) {
      peer.connect(now());
      // Reported asynchronously, like a real socket.
      this.schedule();
    }

    send(data: string): void {
      if (this.readyState !== 1) throw new Error('the mock socket is not open');
      peer.receive(data, now());
      this.schedule();
    }

    close(code = 1000, _reason?: string): void {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      peer.close(code, now());
      // The peer answers the close at once; nothing more is reported from this socket.
      while (peer.pollOutput(now()) !== undefined);
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
    }

    private schedule(): void {
      if (this.readyState >= 2) return;
      if (this.timer !== null) clearTimeout(this.timer);
      const at = peer.pollTimeout();
      // Never spin on a deadline already passed.
      const delay = at === undefined ? undefined : Math.max(1, at - now());
      this.timer = delay === undefined ? null : setTimeout(() => this.pump(), delay);
    }

    private pump(): void {
      this.timer = null;
      let text: string | undefined;
      while (this.readyState < 2 && (text = peer.pollOutput(now())) !== undefined) {
        const output = JSON.parse(text) as Output;
        if (output.kind === 'opened') {
          this.readyState = 1;
          this.onopen?.({});
        } else if (output.kind === 'frame') {
          this.onmessage?.({ data: output.frame });
        } else {
          this.readyState = 3;
          this.onclose?.({ code: output.code, reason: output.reason });
        }
      }
      this.schedule();
    }
  }

  return MockWebSocket;
}

/**
 * The first `ticks` batches of mock data for `seed` and `userId`, one every `intervalMs` from
 * `unixMs`: the same stream the Rust crate's `DataGenerator` makes for the same seed.
 */
export function mockData(seed: number, userId: string, unixMs: number, ticks: number, intervalMs = 5000): unknown[] {
  return JSON.parse(mockDataStream(BigInt(seed), userId, unixMs, ticks, intervalMs)) as unknown[];
}
