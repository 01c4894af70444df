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

/** A `WebSocket` constructor that records every socket it makes (so a test can cut one). */
function recording(): { ctor: typeof WebSocket; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Recorded extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { ctor: Recorded as unknown as typeof WebSocket, sockets };
}

async function publish(s: Server, admin: string, channel: string, payload: unknown): Promise<number> {
  const response = await fetch(`http://${s.addr}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, type: 'news.item', payload }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { offset: number }).offset;
}

describe('queue, acks, resume and auth against cerebrum serve', () => {
  it('queues 100 messages while offline, refuses the 101st, lists and clears them, flushes on connect', async () => {
    const s = await server();
    const errors: Error[] = [];
    const c = client({ url: s.url, onError: (e) => errors.push(e) });
    for (let i = 0; i < 100; i++) c.send('quiz.answer', { n: i });
    expect(errors).toEqual([]);
    c.send('quiz.answer', { n: 100 });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/queue is full/);
    const queued = c.getQueuedMessages();
    expect(queued).toHaveLength(100);
    expect(queued.map((m) => (m.payload as { n: number }).n)).toEqual([...Array(100).keys()]);
    expect(queued[0]).toMatchObject({ type: 'quiz.answer', messageId: expect.any(String), timestamp: expect.any(Number) });
    c.clearQueue();
    expect(c.getQueuedMessages()).toEqual([]);
    // An acknowledged send removed from the queue rejects rather than hanging.
    const cleared = c.send('quiz.answer', { n: 'acked' }, { ack: true });
    c.clearQueue();
    await expect(cleared).rejects.toThrow(/removed from the queue/);
    c.send('quiz.answer', { n: 'after clear' });
    expect(c.getQueuedMessages()).toHaveLength(1);
    c.connect();
    await until(() => c.isConnected() && c.getQueuedMessages().length === 0, 'the queue flushed');
  });

  it('settles {ack: true} sends with the server’s ack or error, also for sends queued offline', async () => {
    const s = await server();
    const c = client({ url: s.url });
    const queued = c.send('study_session_start', { userId: 'ada', topic: 'Genetics' }, { ack: true });
    c.connect();
    await expect(queued).resolves.toEqual(expect.any(String));
    const refused = c.send('study_session_start', { userId: 'ada' }, { ack: true });
    await expect(refused).rejects.toMatchObject({ name: 'SendError', code: 'validation_failed' });
    // Bad input never reaches the wire: a clear error at once.
    await expect(c.send('Not A Type!', {}, { ack: true })).rejects.toThrow(/invalid/);
    expect(() => c.send('bad type', {})).toThrow(/invalid/);
    expect(() => c.subscribe('no spaces', () => {})).toThrow(/invalid/);
  });

  it('resumes a channel after a lost connection (replay) and after a server restart', async () => {
    const admin = 'js-admin';
    let s = await server({ adminToken: admin });
    const { ctor, sockets } = recording();
    const c = client({ url: s.url, WebSocket: ctor as never });
    const got: number[] = [];
    const subscribed: Array<{ recovered: boolean; missed: number }> = [];
    c.subscribe<{ n: number }>('news', (m) => got.push(m.payload.n), {
      onSubscribed: ({ recovered, missed }) => subscribed.push({ recovered, missed }),
    });
    c.connect();
    await until(() => subscribed.length === 1, 'subscribed');
    await publish(s, admin, 'news', { n: 1 });
    await until(() => got.length === 1, 'the first publication');

    // The link dies (no close frame); two publications happen while the client waits 3 s.
    sockets.at(-1)!.terminate();
    await until(() => c.getStatus() === 'reconnecting', 'reconnecting');
    await publish(s, admin, 'news', { n: 2 });
    await publish(s, admin, 'news', { n: 3 });
    await until(() => subscribed.length === 2, 're-subscribed', 20_000);
    expect(subscribed[1]).toEqual({ recovered: true, missed: 2 });
    await until(() => got.length === 3, 'the replay');
    expect(got).toEqual([1, 2, 3]);

    // The server restarts on the same port: its in-memory history is gone, the client says so.
    const addr = s.addr;
    await stop(s, { keepData: true });
    servers.splice(servers.indexOf(s), 1);
    s = await server({ addr, adminToken: admin, dataDir: s.dataDir });
    await until(() => subscribed.length === 3, 're-subscribed after the restart', 30_000);
    expect(subscribed[2]!.recovered).toBe(false);
    await publish(s, admin, 'news', { n: 4 });
    await until(() => got.length === 4, 'a publication after the restart');
    expect(got).toEqual([1, 2, 3, 4]);
  });

  it('speaks binary MessagePack with encoding: msgpack, the same messages as a JSON client', async () => {
    const admin = 'js-admin';
    const s = await server({ adminToken: admin });
    const { ctor, sockets } = recording();
    const packed = client({ url: s.url, WebSocket: ctor as never, encoding: 'msgpack' });
    const plain = client({ url: s.url });
    const got: Array<{ via: string; n: number; offset?: number }> = [];
    let ready = 0;
    for (const [via, c] of [['msgpack', packed], ['json', plain]] as const) {
      c.subscribe<{ n: number; x: number }>('news', (m) => got.push({ via, n: m.payload.n, offset: m.offset }), {
        onSubscribed: () => (ready += 1),
      });
      c.connect();
    }
    await until(() => ready === 2, 'both subscribed');
    const socket = sockets.at(-1)!;
    expect(socket.protocol).toBe('cerebrum.v1.msgpack');
    let binary = 0;
    socket.on('message', (_data, isBinary) => (binary += isBinary ? 1 : 0));
    const offset = await publish(s, admin, 'news', { n: 1, x: 1.5 });
    await until(() => got.length === 2, 'the publication on both');
    expect(binary).toBe(1);
    expect(got.find((g) => g.via === 'msgpack')).toEqual({ via: 'msgpack', n: 1, offset });
    expect(got.find((g) => g.via === 'json')).toEqual({ via: 'json', n: 1, offset });
    // And what it sends goes out as MessagePack, acked by the server.
    await expect(packed.send('chat.msg', { text: 'hi' }, { channel: 'news', ack: true })).resolves.toEqual(
      expect.any(String),
    );
  });

  it('gets compressed frames from a server with --compression, in JSON and in MessagePack', async () => {
    const admin = 'js-admin';
    const s = await server({ adminToken: admin, compression: true });
    const { ctor, sockets } = recording();
    const got: string[] = [];
    let ready = 0;
    for (const encoding of ['json', 'msgpack'] as const) {
      const c = client({ url: s.url, WebSocket: ctor as never, encoding });
      c.subscribe<{ text: string }>('news', (m) => got.push(`${encoding}:${m.payload.text.length}`), {
        onSubscribed: () => (ready += 1),
      });
      c.connect();
    }
    await until(() => ready === 2, 'both subscribed');
    // The runtime's WebSocket (here `ws`, in browsers the browser's) negotiates the extension.
    for (const socket of sockets) expect(socket.extensions).toMatch(/^permessage-deflate/);
    await publish(s, admin, 'news', { text: 'spaced repetition beats cramming. '.repeat(30) });
    await until(() => got.length === 2, 'the publication on both');
    expect(got.sort()).toEqual(['json:1020', 'msgpack:1020']);
  });

  it('closes 4001 on a bad token: status error, no reconnect loop', async () => {
    const secret = 'js-test-secret-js-test-secret-32b';
    const s = await server({ jwtSecret: secret });
    const { ctor, sockets } = recording();
    const errors: Error[] = [];
    const c = client({ url: s.url, WebSocket: ctor as never, token: 'not-a-jwt', onError: (e) => errors.push(e) });
    const seen = statuses(c);
    c.connect();
    await until(() => c.getStatus() === 'error', 'error status');
    // Nothing is scheduled: a second later there is still one socket and still `error`.
    await new Promise((r) => setTimeout(r, 1000));
    expect(sockets).toHaveLength(1);
    expect(c.getStatus()).toBe('error');
    expect(seen).toEqual(['disconnected', 'connecting', 'connected', 'error']);
    expect(errors.some((e) => /4001/.test(e.message))).toBe(true);

    // A valid token (sent in an auth frame, never in the URL) is accepted.
    const good = client({ url: s.url, WebSocket: ctor as never, token: token(secret, 'ada') });
    good.connect();
    await until(() => good.isConnected(), 'connected with a token');
    expect(sockets.at(-1)!.url).not.toContain('token');
  });

  it('asks an async token provider before each attempt, once more after 4001', async () => {
    const secret = 'js-test-secret-js-test-secret-32b';
    const s = await server({ jwtSecret: secret });
    const asked: string[] = [];
    const c = client({
      url: s.url,
      token: async () => {
        asked.push('asked');
        return asked.length === 1 ? 'stale' : token(secret, 'ada');
      },
    });
    c.connect();
    await until(() => c.isConnected() && asked.length === 2, 'connected with the second token');
  });
});

describe('bad input is a clear error', () => {
  it('refuses invalid options with a thrown Error, never a crash', () => {
    expect(() => new WebSocketClient({ url: 'http://example.org/ws', WebSocket: WebSocket as never })).toThrow(
      /ws:\/\/ or wss:\/\//,
    );
    expect(() => new WebSocketClient({ url: 'ws://h/ws', reconnectAttempts: -1, WebSocket: WebSocket as never })).toThrow(
      /reconnectAttempts/,
    );
    expect(() => new WebSocketClient({ url: 'ws://h/ws', heartbeatInterval: 0, WebSocket: WebSocket as never })).toThrow(
      /heartbeat_interval/,
    );
    expect(() => new WebSocketClient(undefined as never)).toThrow(/config object/);
    const c = new WebSocketClient({ url: 'ws://h/ws', WebSocket: WebSocket as never });
    expect(() => c.send('x', { big: 1n } as never)).toThrow(TypeError);
  });

  // Node 20 has no global WebSocket (Node 22 has one: nothing to ask for there).
  it.skipIf(typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'undefined')(
    'asks for a WebSocket constructor where the runtime has none',
    () => {
    expect(() => new WebSocketClient({ url: 'ws://h/ws' })).toThrow(/no global WebSocket/);
    },
  );
});
