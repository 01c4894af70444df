// Behaviour in time, with fake timers: the origin's five backoff delays, and mock mode's data
// every 5 s from the Rust crate's simulated server.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { WebSocketClient, type WebSocketLike } from '../src/index.js';
// Loaded before the clock is faked (the mock module loads its WebAssembly asynchronously).
import { mockData } from '../src/mock.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('backoff', () => {
  it('waits 3, 4.5, 6.75, 10.125 and 15.1875 s between attempts, then gives up with `error`', async () => {
    const opened: number[] = [];
    const failed: number[] = [];
    // A server that is down: every socket fails at once, as a refused TCP connection does.
    class Refused implements WebSocketLike {
      readyState = 0;
      onopen = null;
      onmessage = null;
      onclose: ((event: { code: number; reason: string }) => void) | null = null;
      onerror: ((event: unknown) => void) | null = null;
      constructor() {
        opened.push(performance.now());
        setTimeout(() => {
          failed.push(performance.now());
          this.readyState = 3;
          this.onerror?.({});
          this.onclose?.({ code: 1006, reason: '' });
        }, 0);
      }
      send(): void {
        throw new Error('not open');
      }
      close(): void {}
    }
    const delays: number[] = [];
    const errors: string[] = [];
    const client = new WebSocketClient({
      url: 'ws://127.0.0.1:9/ws',
      WebSocket: Refused,
      onError: (e) => errors.push(e.message),
    });
    client.onEvent((e) => {
      if (e.kind === 'reconnectScheduled') delays.push(e.delayMs);
    });
    client.connect();
    await vi.advanceTimersByTimeAsync(60_000);
    // From each failure to the next attempt.
    const gaps = opened.slice(1).map((t, i) => t - failed[i]!);
    expect(delays).toEqual([3000, 4500, 6750, 10125, 15187.5]);
    // The one timer fires at the core's deadline (rounded up to a whole ms: 15187.5 → 15188).
    gaps.forEach((gap, i) => expect(Math.abs(gap - delays[i]!)).toBeLessThanOrEqual(1));
    expect(opened).toHaveLength(6);
    expect(client.getStatus()).toBe('error');
    expect(errors.at(-1)).toMatch(/gave up after 5/);
  });
});

describe('mock mode', () => {
  it('connects to the simulated server and delivers generated data every 5 s', async () => {
    const arrivals: number[] = [];
    const kinds = new Set<string>();
    const client = new WebSocketClient({ url: 'wss://api.example.org/ws', enableMockMode: true, mock: { seed: 42 } });
    client.on('study_metrics_update', () => arrivals.push(performance.now()));
    client.on('*', (m) => kinds.add(m.type));
    client.connect();
    expect(client.getStatus()).toBe('connecting');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(client.getStatus()).toBe('connected');
    await vi.advanceTimersByTimeAsync(20_000);
    expect(arrivals.length).toBeGreaterThanOrEqual(4);
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
    // Data every 5 s; each batch reaches the client after the same simulated latency band.
    gaps.forEach((gap) => expect(gap).toBe(5000));
    expect(kinds).toContain('system_status');
    // The simulated server answers pings: latency is measured in mock mode too.
    await vi.advanceTimersByTimeAsync(31_000);
    expect(client.getLatency()).toBeGreaterThanOrEqual(20);
    client.disconnect();
    expect(client.getStatus()).toBe('disconnected');
  });

  it('generates the same stream as the Rust crate for the same seed', async () => {
    const { readFileSync } = await import('node:fs');
    const fixture = JSON.parse(
      readFileSync(new URL('./fixtures/mock-stream-seed-42.json', import.meta.url), 'utf8'),
    ) as unknown[];
    expect(fixture.length).toBeGreaterThan(3);
    expect(mockData(42, 'user-123', 1_732_752_000_000, 4)).toEqual(fixture);
    expect(mockData(43, 'user-123', 1_732_752_000_000, 4)).not.toEqual(fixture);
  });
});
