// The package's public types: the origin's `WebSocketConfig`, `WebSocketMessage` and status
// names, plus ours. Payload types are generated from the Rust protocol types
// (`./generated/protocol.ts`, see `crates/wasm/tests/typescript.rs`).

import type {
  CollaborativeSession,
  Notification,
  StudyMetrics,
  SystemStatus,
} from './generated/protocol.js';

export type * from './generated/protocol.js';

/** The origin's payload names, kept as aliases so origin code compiles unchanged. */
export type StudyMetricsPayload = StudyMetrics;
/** The origin's name for a `collaborative_session_update` payload. */
export type CollaborativeSessionPayload = CollaborativeSession;
/** The origin's name for a `notification` payload. */
export type NotificationPayload = Notification;
/** The origin's name for a `system_status` payload. */
export type SystemStatusPayload = SystemStatus;

/** The five statuses of the origin. */
export type ConnectionStatus = 'connecting' | 'connected' | 'disconnected' | 'reconnecting' | 'error';

/** One message as it travels (the origin's envelope, plus our optional v1 fields). */
export interface WebSocketMessage<T = unknown> {
  type: string;
  payload: T;
  timestamp: number;
  messageId: string;
  /** v1: the channel a publication was delivered from. */
  channel?: string;
  /** v1: the publication's position in its channel. */
  offset?: number;
}

/** What a `WebSocket` constructor must provide (the browser's, Node 22's, or the `ws` package's). */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server selected ('' for none). */
  readonly protocol?: string;
  /** How binary frames arrive; set to 'arraybuffer' when MessagePack is asked for. */
  binaryType?: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A `WebSocket` constructor. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** A token, or a function that returns one (called before every connection attempt). */
export type TokenSource = string | (() => string | Promise<string>);

/** Options of the simulated server in mock mode. */
export interface MockOptions {
  /** Seed of every random choice: the same seed gives the same data stream as the Rust crate. */
  seed?: number;
  /** The simulated user. */
  userId?: string;
  /** How often generated data arrives, ms (default 5000, as the origin's mock). */
  dataInterval?: number;
  /** Simulated handshake time, ms (default 300). */
  connectDelay?: number;
  /** Simulated one-way latency range, ms (default [20, 80]). */
  latencyMs?: [number, number];
  /** The heartbeat interval the simulated server announces, ms. */
  heartbeatInterval?: number;
}

/** Every option of the origin's `WebSocketConfig`, with its defaults, plus ours. */
export interface WebSocketConfig {
  /** WebSocket server URL (`ws://` or `wss://`). */
  url: string;
  /** Auto-reconnect on disconnect (default: true). */
  reconnect?: boolean;
  /** Max reconnect attempts (default: 5; `Infinity` for no limit). */
  reconnectAttempts?: number;
  /** Initial reconnect delay in ms (default: 3000); each next one is 1.5 times longer. */
  reconnectInterval?: number;
  /** Ping interval in ms (default: 30000). */
  heartbeatInterval?: number;
  /** The origin README's spelling of `heartbeatInterval` (used when that one is absent). */
  heartbeat?: number;
  /** Connection timeout in ms (default: 10000). */
  connectionTimeout?: number;
  /** Queue messages when offline (default: true; at most 100). */
  enableQueue?: boolean;
  /** Enable demo mode (default: false): a simulated server, data every 5 s. */
  enableMockMode?: boolean;
  /** Enable console logging (default: false). */
  debug?: boolean;
  /** Connection callback. */
  onConnect?: () => void;
  /** Disconnection callback. */
  onDisconnect?: (reason?: string) => void;
  /** Error callback. */
  onError?: (error: Error) => void;
  /** Message callback (every inbound message). */
  onMessage?: (message: WebSocketMessage) => void;

  // --- ours ---
  /** Auth token, or an (async) provider asked before every attempt and once more after close 4001. */
  token?: TokenSource;
  /** How the token reaches the server: an `auth` frame (default, keeps it out of URLs) or `?token=`. */
  tokenTransport?: 'auth' | 'query';
  /** `origin` (default: 5 attempts, exact schedule) or `fleet` (unlimited attempts, full jitter). */
  preset?: 'origin' | 'fleet';
  /** The `WebSocket` constructor for runtimes without a global one (e.g. `ws` on Node 20). */
  WebSocket?: WebSocketConstructor;
  /**
   * Frames on the wire: `'json'` text (default) or `'msgpack'`, which offers the subprotocol
   * `cerebrum.v1.msgpack` first; a server that selects it sends and takes binary MessagePack
   * (smaller frames), one that does not speaks JSON text as usual. The MessagePack codec is
   * loaded only then (a separate module), so the default bundle does not carry it.
   */
  encoding?: 'json' | 'msgpack';
  /** How long past a heartbeat interval without any inbound frame the link is dead, ms (default 10000). */
  heartbeatTimeout?: number;
  /** How long an `{ack: true}` send waits for its ack once transmitted, ms (default 10000). */
  ackTimeout?: number;
  /** Seed of the jitter and message ids (default: random). */
  seed?: number;
  /** Answer every notification with `ack` so the server stops re-sending it (default: true). */
  autoAckNotifications?: boolean;
  /** Options of mock mode's simulated server. */
  mock?: MockOptions;
}

/** Options of `send`. */
export interface SendOptions {
  /** Ask the server to confirm: `send` returns a promise settled by its `ack` or `error`. */
  ack?: boolean;
  /** Publish to this channel (v1; the client must be subscribed to it). */
  channel?: string;
  /** Never queued nor re-sent: dropped when not connected (typing indicators, cursors). */
  volatile?: boolean;
}

/** What `subscribe` reports once the server answered. */
export interface SubscribedInfo {
  channel: string;
  /** Whether the server replayed everything missed since the last publication seen. */
  recovered: boolean;
  /** How many publications it replays. */
  missed: number;
}

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** Called after every (re-)subscription with what the server recovered. */
  onSubscribed?: (info: SubscribedInfo) => void;
  /** Called if the server refuses the subscription. */
  onError?: (error: Error) => void;
}

/** The error a refused `{ack: true}` send rejects with. */
export class SendError extends Error {
  /** The server's error code (`forbidden`, `validation_failed`, …), when the server refused it. */
  readonly code: string | undefined;
  /** The message's id. */
  readonly messageId: string;

  constructor(message: string, messageId: string, code?: string) {
    super(message);
    this.name = 'SendError';
    this.code = code;
    this.messageId = messageId;
  }
}

/** Every event of the core, as the driver receives it (for dashboards and diagnostics). */
export type CoreEvent =
  | { kind: 'status'; from: ConnectionStatus; to: ConnectionStatus; reason: string }
  | { kind: 'connected' }
  | { kind: 'serverLevel'; level: 'v1' | 'level0'; features: string[] }
  | { kind: 'welcome'; welcome: import('./generated/protocol.js').Welcome }
  | { kind: 'disconnected'; code: number | null; reason: string; willReconnect: boolean }
  | { kind: 'reconnectScheduled'; attempt: number; delayMs: number }
  | { kind: 'gaveUp'; attempts: number }
  | { kind: 'message'; message: WebSocketMessage; appData?: true }
  | { kind: 'latency'; ms: number }
  | { kind: 'acked'; messageId: string }
  | { kind: 'sendFailed'; messageId: string; reason: string; error: import('./generated/protocol.js').ErrorPayload | null }
  | { kind: 'queueOverflow'; dropped: string }
  | { kind: 'subscribed'; channel: string; recovered: boolean; missed: number }
  | { kind: 'unsubscribed'; channel: string }
  | { kind: 'subscribeFailed'; channel: string; reason: string; error: import('./generated/protocol.js').ErrorPayload | null }
  | { kind: 'serverError'; error: import('./generated/protocol.js').ErrorPayload }
  | { kind: 'protocolViolation'; reason: string }
  | { kind: 'error'; reason: string }
  | { kind: 'other'; debug: string };
