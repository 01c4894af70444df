// React hooks with the origin's names and behaviour: `useWebSocket(config)` and
// `useWebSocketMessage(socket, type, handler)`.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import { WebSocketClient } from './client.js';
import type { ConnectionStatus, SendOptions, WebSocketConfig, WebSocketMessage } from './types.js';

/** What `useWebSocket` returns. */
export interface UseWebSocketResult {
  status: ConnectionStatus;
  isConnected: boolean;
  /** Last round-trip time from ping/pong, ms. */
  latency: number;
  send: WebSocketClient['send'];
  reconnect: () => void;
  disconnect: () => void;
  getQueuedMessages: () => WebSocketMessage[];
  clearQueue: () => void;
  /** The underlying client (for `on`, `subscribe`, …). */
  client: WebSocketClient;
}

/**
 * One client per component instance, connected on mount and disconnected on unmount.
 *
 * The client is made once, from the first render's config; later renders' callbacks
 * (`onConnect`, `onMessage`, …) are used without reconnecting. Under StrictMode's
 * mount → unmount → mount the disconnect of the simulated unmount is cancelled by the second
 * mount, so there is one connection.
 */
export function useWebSocket(config: WebSocketConfig): UseWebSocketResult {
  const latest = useRef(config);
  latest.current = config;
  const [client] = useState(
    () =>
      new WebSocketClient({
        ...config,
        onConnect: () => latest.current.onConnect?.(),
        onDisconnect: (reason) => latest.current.onDisconnect?.(reason),
        onError: (error) => latest.current.onError?.(error),
        onMessage: (message) => latest.current.onMessage?.(message),
      }),
  );
  const [status, setStatus] = useState<ConnectionStatus>(() => client.getStatus());
  const [latency, setLatency] = useState<number>(() => client.getLatency());
  const pendingDisconnect = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => {
    const stop = client.onEvent((event) => {
      if (event.kind === 'status') setStatus(event.to);
      else if (event.kind === 'latency') setLatency(event.ms);
    });
    if (pendingDisconnect.current !== null) {
      // StrictMode's second mount: the first mount's connection is kept.
      clearTimeout(pendingDisconnect.current);
      pendingDisconnect.current = null;
    } else {
      client.connect();
    }
    setStatus(client.getStatus());
    return () => {
      stop();
      pendingDisconnect.current = setTimeout(() => {
        pendingDisconnect.current = null;
        client.disconnect();
      }, 0);
    };
  }, [client]);

  const send = useCallback(
    ((type: string, payload: unknown, options?: SendOptions) => client.send(type, payload, options)) as WebSocketClient['send'],
    [client],
  );
  const reconnect = useCallback(() => client.reconnect(), [client]);
  const disconnect = useCallback(() => client.disconnect(), [client]);
  const getQueuedMessages = useCallback(() => client.getQueuedMessages(), [client]);
  const clearQueue = useCallback(() => client.clearQueue(), [client]);

  return useMemo(
    () => ({
      status,
      isConnected: status === 'connected',
      latency,
      send,
      reconnect,
      disconnect,
      getQueuedMessages,
      clearQueue,
      client,
    }),
    [status, latency, send, reconnect, disconnect, getQueuedMessages, clearQueue, client],
  );
}

/**
 * Calls `handler(payload, message)` for every message of `type`. A new handler identity on each
 * render does not resubscribe: the latest handler is called.
 */
export function useWebSocketMessage<T = unknown>(
  socket: UseWebSocketResult | WebSocketClient,
  type: string,
  handler: (payload: T, message: WebSocketMessage<T>) => void,
): void {
  const latest = useRef(handler);
  latest.current = handler;
  const client = socket instanceof WebSocketClient ? socket : socket.client;
  useEffect(
    () => client.on<T>(type, (message) => latest.current(message.payload, message)),
    [client, type],
  );
}
