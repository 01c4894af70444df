// The package against a real `cerebrum serve`: status sequence, latency from pongs, queue, acks,
// resume after a restart, close 4001.

import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { WebSocketClient, type ConnectionStatus, type WebSocketConfig } from '../src/index.js';
import { serve, stop, token, until, type Server } from './server.js';

const servers: Server[] = [];
const clients: WebSocketClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  for (const server of servers.splice(0)) await stop(server);
});

async function server(options = {}): Promise<Server> {
  const s = await serve(options);
  servers.push(s);
  return s;
}

function client(config: WebSocketConfig): WebSocketClient {
  const c = new WebSocketClient({ WebSocket: WebSocket as never, ...config });
  clients.push(c);
  return c;
}

function statuses(c: WebSocketClient): ConnectionStatus[] {
  const seen: ConnectionStatus[] = [c.getStatus()];
  c.onEvent((event) => {
    if (event.kind === 'status') seen.push(event.to);
  });
  return seen;
}

describe('WebSocketClient against cerebrum serve', () => {
  it('goes disconnected → connecting → connected and back to disconnected', async () => {
    const s = await server();
    const connected: string[] = [];
    const c = client({ url: s.url, onConnect: () => connected.push('connect'), onDisconnect: (r) => connected.push(`disconnect:${r}`) });
    const seen = statuses(c);
    expect(c.getStatus()).toBe('disconnected');
    c.connect();
    expect(c.getStatus()).toBe('connecting');
    await until(() => c.isConnected(), 'connected');
    c.disconnect();
    expect(c.getStatus()).toBe('disconnected');
    expect(seen).toEqual(['disconnected', 'connecting', 'connected', 'disconnected']);
    expect(connected).toEqual(['connect', 'disconnect:disconnect requested']);
  });

  it('measures latency from pongs', async () => {
    const s = await server();
    const c = client({ url: s.url, heartbeatInterval: 1000 });
    expect(c.getLatency()).toBe(0);
    c.connect();
    await until(() => c.getLatency() > 0, 'a pong', 10_000);
    // Loopback: well under a second, and a real measurement.
    expect(c.getLatency()).toBeGreaterThan(0);
    expect(c.getLatency()).toBeLessThan(1000);
  });

  it('receives the server’s messages through on() and onMessage', async () => {
    const s = await server();
    const types: string[] = [];
    const statusPayloads: unknown[] = [];
    const c = client({ url: s.url, onMessage: (m) => types.push(m.type) });
    const off = c.on('system_status', (m) => statusPayloads.push(m.payload));
    c.connect();
    await until(() => statusPayloads.length > 0, 'system_status');
    expect(types).toContain('system_status');
    expect(statusPayloads[0]).toMatchObject({ status: expect.any(String), services: expect.any(Object) });
    off();
  });
});
