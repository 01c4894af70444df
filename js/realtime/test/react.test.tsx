// @vitest-environment happy-dom
// The React hooks with React Testing Library, against a real `cerebrum serve`.

import { StrictMode, useState } from 'react';
import { act, cleanup, render, screen, waitFor } from '@testing-library/react';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import NodeWebSocket from 'ws';

import type { WebSocketConfig } from '../src/index.js';
import { useWebSocket, useWebSocketMessage } from '../src/react.js';
import { serve, stop, type Server } from './server.js';

let server: Server;
const sockets: NodeWebSocket[] = [];

/** `ws`, recording every socket (to count connections and see them closed). */
class Counted extends NodeWebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    sockets.push(this);
  }
}

beforeAll(async () => {
  server = await serve();
});
afterAll(async () => {
  await stop(server);
});
afterEach(() => {
  cleanup();
  sockets.length = 0;
});

function config(extra: Partial<WebSocketConfig> = {}): WebSocketConfig {
  return { url: server.url, WebSocket: Counted as never, ...extra };
}

function Status({ extra }: { extra?: Partial<WebSocketConfig> }) {
  const socket = useWebSocket(config(extra));
  return (
    <div>
      <p data-testid="status">{socket.status}</p>
      <p data-testid="connected">{socket.isConnected ? 'yes' : 'no'}</p>
      <p data-testid="latency">{socket.latency}</p>
    </div>
  );
}

describe('useWebSocket', () => {
  it('connects on mount, with status, isConnected and latency from pongs', async () => {
    render(<Status extra={{ heartbeatInterval: 1000 }} />);
    expect(screen.getByTestId('status').textContent).toBe('connecting');
    await waitFor(() => expect(screen.getByTestId('connected').textContent).toBe('yes'), { timeout: 10_000 });
    expect(screen.getByTestId('status').textContent).toBe('connected');
    await waitFor(() => expect(Number(screen.getByTestId('latency').textContent)).toBeGreaterThan(0), {
      timeout: 10_000,
    });
  });

  it('opens one connection under StrictMode’s double mount, and cleanup disconnects', async () => {
    const view = render(
      <StrictMode>
        <Status />
      </StrictMode>,
    );
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('connected'), { timeout: 10_000 });
    expect(sockets).toHaveLength(1);
    view.unmount();
    await waitFor(() => expect(sockets[0]!.readyState).toBe(NodeWebSocket.CLOSED), { timeout: 5_000 });
    expect(sockets).toHaveLength(1);
  });

  it('exposes send, the queue and reconnect', async () => {
    let api: ReturnType<typeof useWebSocket> | null = null;
    function Queue() {
      api = useWebSocket(config({ url: 'ws://127.0.0.1:9/ws', reconnect: false }));
      return <p data-testid="status">{api.status}</p>;
    }
    render(<Queue />);
    act(() => {
      api!.send('quiz.answer', { n: 1 });
      api!.send('quiz.answer', { n: 2 });
    });
    expect(api!.getQueuedMessages().map((m) => m.payload)).toEqual([{ n: 1 }, { n: 2 }]);
    act(() => api!.clearQueue());
    expect(api!.getQueuedMessages()).toEqual([]);
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('disconnected'), { timeout: 10_000 });
    act(() => api!.disconnect());
    expect(api!.client.getStatus()).toBe('disconnected');
  });
});

describe('useWebSocketMessage', () => {
  it('delivers payloads of one type, and a new handler identity does not resubscribe', async () => {
    const seen: string[] = [];
    let subscriptions = 0;
    let rerender: () => void = () => {};
    function Metrics() {
      const socket = useWebSocket(config());
      const [renders, setRenders] = useState(0);
      rerender = () => setRenders((n) => n + 1);
      // Counts how often the hook registers a handler with the client.
      const on = socket.client.on.bind(socket.client);
      socket.client.on = ((type: string, handler: never) => {
        subscriptions += 1;
        return on(type, handler);
      }) as typeof socket.client.on;
      // A new function on every render.
      useWebSocketMessage<{ status: string }>(socket, 'system_status', (payload) => {
        seen.push(`${renders}:${payload.status}`);
      });
      return <p data-testid="renders">{renders}</p>;
    }
    render(<Metrics />);
    await waitFor(() => expect(seen.length).toBeGreaterThan(0), { timeout: 10_000 });
    const before = subscriptions;
    act(() => rerender());
    act(() => rerender());
    expect(screen.getByTestId('renders').textContent).toBe('2');
    expect(subscriptions).toBe(before);
    // The latest handler is the one called.
    act(() => {
      const client = sockets[0]!;
      client.emit('message', Buffer.from(JSON.stringify({ type: 'system_status', payload: { status: 'degraded' } })), false);
    });
    await waitFor(() => expect(seen.at(-1)).toBe('2:degraded'));
  });
});
