// `WebSocketClient`: the origin's API on cerebrum's Rust client core (WebAssembly).
//
// This file is the JavaScript driver. Like `cerebrum-tokio`'s driver it only moves bytes and
// time: it owns the WebSocket and one timer, feeds the core (`handleOpen`, `handleFrame`,
// `handleClose`, `handleError`, `handleTimeout`, user intents), and after every input drains
// `pollCommand` (open / transmit / close, carried out here) and `pollEvent` (handed to the app),
// then re-arms its timer at `pollTimeout`. Every rule — backoff, heartbeat, queue, acks, resume,
// close codes — is the core's.

import { WasmClient } from './wasm.js';
import type {
  ConnectionStatus,
  CoreEvent,
  SendOptions,
  SubscribeOptions,
  WebSocketConfig,
  WebSocketConstructor,
  WebSocketLike,
  WebSocketMessage,
} from './types.js';
import { SendError } from './types.js';

type Command =
  | { kind: 'open'; url: string }
  | { kind: 'transmit'; frame: string }
  | { kind: 'close'; code: number; reason: string };

type Handler = (message: WebSocketMessage) => void;

/** What the core's `drain` returns. */
interface Drained {
  commands: Command[];
  events: Array<CoreEvent | { kind: 'message'; fed: true; appData?: true }>;
  timeout: number | null;
}

/** What `handleFrame` returns (crates/wasm: `FRAME_*`); anything else (0) means "drain". */
const FRAME_MESSAGE = 1;
const FRAME_APP_DATA = 2;
const FRAME_NOTHING = 3;

/** The subprotocol we offer; a server that does not select it still speaks JSON. */
const SUBPROTOCOL = 'cerebrum.v1.json';
const OPEN = 1;

const now = (): number => performance.now();

function randomSeed(): number {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  // 53 random bits: the largest integer JSON carries exactly.
  return (words[0]! & 0x1fffff) * 0x100000000 + words[1]!;
}

function ms(value: number | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new TypeError(`${field} must be a non-negative number of milliseconds`);
  }
  return value;
}

/** A core for `config`: the bindings take the options as arguments (durations in ms). */
function createCore(config: WebSocketConfig, url: string): WasmClient {
  const attempts = config.reconnectAttempts;
  if (attempts !== undefined && !(attempts === Infinity || (Number.isInteger(attempts) && attempts >= 0))) {
    throw new TypeError('reconnectAttempts must be a non-negative integer or Infinity');
  }
  return new WasmClient(
    url,
    config.preset,
    config.reconnect,
    attempts,
    ms(config.reconnectInterval, 'reconnectInterval'),
    undefined, // reconnectFactor: the preset's
    undefined, // maxReconnectDelay: the preset's
    undefined, // jitter: the preset's
    ms(config.heartbeatInterval ?? config.heartbeat, 'heartbeatInterval'),
    ms(config.heartbeatTimeout, 'heartbeatTimeout'),
    ms(config.connectionTimeout, 'connectionTimeout'),
    config.enableQueue,
    undefined, // queueCapacity: the origin's 100
    ms(config.ackTimeout, 'ackTimeout'),
    typeof config.token === 'string' ? config.token : undefined,
    config.tokenTransport,
    config.debug,
    config.seed ?? randomSeed(),
    config.autoAckNotifications,
    now(),
    Date.now(),
  );
}

interface AckWaiter {
  resolve: (messageId: string) => void;
  reject: (error: Error) => void;
}

/**
 * A real-time client with the origin's API: automatic reconnection with backoff, heartbeat
 * with latency, an offline queue of 100 messages, acks, channels with resume, mock mode.
 */
export class WebSocketClient {
  private readonly config: WebSocketConfig;
  private readonly core: WasmClient;
  private readonly factory: () => WebSocketConstructor | Promise<WebSocketConstructor>;
  private socket: WebSocketLike | null = null;
  /** The MessagePack codec, once loaded (only with `encoding: 'msgpack'`). */
  private codec: typeof import('./msgpack.js') | null = null;
  /** Bumped on every open/close: reports from an older socket (or token request) are dropped. */
  private generation = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt: number | null = null;
  private busy = false;
  private readonly pending: Array<() => void> = [];
  private retryAuth = false;
  /** The frame being fed, reused for the message the core delivers from it. */
  private frame: string | null = null;
  private authRetryUsed = false;
  private status: ConnectionStatus = 'disconnected';
  private latency = 0;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly channels = new Map<string, Set<{ handler: Handler; options: SubscribeOptions }>>();
  private readonly acks = new Map<string, AckWaiter>();
  private readonly listeners = new Set<(event: CoreEvent) => void>();

  constructor(config: WebSocketConfig) {
    if (config === null || typeof config !== 'object' || typeof config.url !== 'string') {
      throw new TypeError('WebSocketClient needs a config object with a url');
    }
    if (config.encoding !== undefined && config.encoding !== 'json' && config.encoding !== 'msgpack') {
      throw new TypeError("encoding must be 'json' or 'msgpack'");
    }
    this.config = { ...config };
    // Mock mode talks to a simulated server whatever the URL; the core still wants a ws URL.
    const url = config.enableMockMode && !/^wss?:\/\//.test(config.url) ? 'ws://mock/ws' : config.url;
    // Throws a clear Error on an invalid option (the core validates the config).
    this.core = createCore(config, url);
    if (config.enableMockMode) {
      let mock: Promise<WebSocketConstructor> | null = null;
      this.factory = () => (mock ??= import('./mock.js').then((m) => m.mockSocket(config.mock ?? {})));
    } else {
      const ctor = config.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
      if (!ctor) {
        throw new Error(
          'this runtime has no global WebSocket: pass one in the config (e.g. `WebSocket` from the ws package)',
        );
      }
      this.factory = () => ctor;
    }
  }

  // ---- the origin's methods ----

  /** Starts connecting (no effect while connected or connecting). */
  connect(): void {
    this.input(() => this.core.connect(now()));
  }

  /** Closes the connection and stays disconnected until `connect` or `reconnect`. */
  disconnect(): void {
    this.input(() => this.core.disconnect(now()));
  }

  /** Closes now and reconnects, resetting the attempt count. */
  reconnect(): void {
    this.authRetryUsed = false;
    this.input(() => this.core.reconnect(now()));
  }

  /**
   * Sends a message, or queues it while offline (flushed in order after connecting). With
   * `{ack: true}` it returns a promise resolved with the message's id when the server confirms
   * it, rejected with a `SendError` when the server refuses it or it fails.
   * Throws on bad input (a type or channel name the protocol refuses, a payload that is not
   * JSON); a full queue is reported to `onError`.
   */
  send<T = unknown>(type: string, payload: T, options: SendOptions & { ack: true }): Promise<string>;
  send<T = unknown>(type: string, payload: T, options?: SendOptions): void;
  send<T = unknown>(type: string, payload: T, options: SendOptions = {}): Promise<string> | void {
    if (options.ack) {
      return new Promise<string>((resolve, reject) => {
        try {
          const id = this.transmit(type, payload, options);
          this.acks.set(id, { resolve, reject });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    }
    try {
      this.transmit(type, payload, options);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (error.message.startsWith('the offline queue is full') || error.message.startsWith('not connected')) {
        this.log('send refused:', error.message);
        this.config.onError?.(error);
        return;
      }
      throw error;
    }
  }

  /** Registers a handler for one message type (`'*'` for every message); returns its unsubscribe function. */
  on<T = unknown>(type: string, handler: (message: WebSocketMessage<T>) => void): () => void {
    if (typeof handler !== 'function') throw new TypeError('on() needs a handler function');
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    const h = handler as Handler;
    set.add(h);
    return () => {
      set.delete(h);
      if (set.size === 0) this.handlers.delete(type);
    };
  }

  /**
   * Subscribes to a channel (v1). After every reconnect the client re-subscribes from the last
   * publication it saw, and the server replays what was missed. Returns the unsubscribe function.
   * Throws on a malformed channel name.
   */
  subscribe<T = unknown>(
    channel: string,
    handler: (message: WebSocketMessage<T>) => void,
    options: SubscribeOptions = {},
  ): () => void {
    if (typeof handler !== 'function') throw new TypeError('subscribe() needs a handler function');
    let set = this.channels.get(channel);
    const entry = { handler: handler as Handler, options };
    if (!set) {
      // Throws (before anything is registered) if the name is malformed.
      this.input(() => this.core.subscribe(channel, now()));
      this.channels.set(channel, (set = new Set()));
    }
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.channels.get(channel) === set) {
        this.channels.delete(channel);
        this.input(() => {
          this.core.unsubscribe(channel, now());
        });
      }
    };
  }

  /** The origin's status name. */
  getStatus(): ConnectionStatus {
    return this.status;
  }

  /** Whether the status is `connected`. */
  isConnected(): boolean {
    return this.status === 'connected';
  }

  /** The last round-trip time measured by ping/pong, ms (0 before the first pong). */
  getLatency(): number {
    return this.latency;
  }

  /** The messages waiting in the offline queue, oldest first. */
  getQueuedMessages(): WebSocketMessage[] {
    return JSON.parse(this.core.queued()) as WebSocketMessage[];
  }

  /** Empties the offline queue (acknowledged sends among them reject). */
  clearQueue(): void {
    const ids = JSON.parse(this.core.clearQueue()) as string[];
    for (const id of ids) {
      const waiter = this.acks.get(id);
      if (waiter) {
        this.acks.delete(id);
        waiter.reject(new SendError('the message was removed from the queue before it was sent', id));
      }
    }
  }

  // ---- ours ----

  /** Listens to every event of the core (status changes, reconnect delays, latency, …). */
  onEvent(listener: (event: CoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Replaces the token used from the next connection attempt on. */
  setToken(token: string | null): void {
    this.authRetryUsed = false;
    this.core.setToken(token ?? undefined);
  }

  /** Tells the client the network changed (e.g. the browser's `online` event): probe or retry now. */
  networkChanged(): void {
    this.input(() => this.core.networkChanged(now()));
  }

  // ---- the driver ----

  private log(...args: unknown[]): void {
    if (this.config.debug) console.log('[cerebrum]', ...args);
  }

  private transmit(type: string, payload: unknown, options: SendOptions): string {
    const json = JSON.stringify(payload === undefined ? null : payload);
    if (typeof json !== 'string') throw new TypeError('the payload cannot be written as JSON');
    let id = '';
    this.input(() => {
      id = this.core.send(type, json, options.channel, options.ack === true, options.volatile === true, now());
    });
    return id;
  }

  /**
   * Feeds one input to the core, then drains its outputs. An input that arrives while outputs
   * are being handed out (a handler that sends) waits until the drain is over, so the core
   * always sees input, drain, input, drain. Errors thrown by `feed` (refused intents) propagate.
   * `feed` may return the code of `handleFrame`, which can stand for the drain.
   */
  private input(feed: () => number | void): void {
    if (this.busy) {
      // Only synchronous refusals matter to the caller, and intents fed later cannot be
      // refused synchronously any more, so the queued feed swallows nothing it could report:
      // it runs before control returns to the caller's caller.
      this.pending.push(feed);
      return;
    }
    this.busy = true;
    let events: CoreEvent[] = [];
    try {
      const code = feed();
      events = code === undefined ? this.drain() : this.settle(code);
    } finally {
      this.busy = false;
    }
    this.dispatch(events);
    while (this.pending.length > 0) {
      const next = this.pending.shift()!;
      try {
        this.input(next);
      } catch (err) {
        this.log('deferred input refused:', err);
      }
    }
  }

  /**
   * After `handleFrame`: the usual outcome (the frame is one message and nothing else happened,
   * the timer stands) comes as a code, without a `drain` call; anything else is drained.
   */
  private settle(code: number): CoreEvent[] {
    if (code === FRAME_MESSAGE || code === FRAME_APP_DATA) {
      const message = JSON.parse(this.frame!) as WebSocketMessage;
      const event: CoreEvent =
        code === FRAME_APP_DATA ? { kind: 'message', message, appData: true } : { kind: 'message', message };
      this.frame = null;
      this.observe(event);
      return [event];
    }
    if (code === FRAME_NOTHING) {
      this.frame = null;
      return [];
    }
    return this.drain();
  }

  /**
   * Drains commands (executed) and events (returned, handed out after the drain) with one call
   * into the core, then re-arms the timer at the deadline it reports.
   */
  private drain(): CoreEvent[] {
    const events: CoreEvent[] = [];
    for (;;) {
      const out = JSON.parse(this.core.drain()) as Drained;
      for (const command of out.commands) this.execute(command);
      for (const raw of out.events) {
        // The message is the frame just fed, unchanged: parse the text we hold.
        const event: CoreEvent =
          raw.kind === 'message' && 'fed' in raw
            ? {
                kind: 'message',
                message: JSON.parse(this.frame!) as WebSocketMessage,
                ...(raw.appData === true ? { appData: true as const } : {}),
              }
            : (raw as CoreEvent);
        this.observe(event);
        events.push(event);
      }
      this.frame = null;
      if (this.retryAuth) {
        this.retryAuth = false;
        this.log('close 4001: asking the token provider once more');
        this.core.connect(now());
        continue;
      }
      this.armTimer(out.timeout ?? undefined);
      return events;
    }
  }

  /** The one timer: re-armed after every input at the core's `pollTimeout`. */
  private armTimer(at: number | undefined): void {
    if (at === this.timerAt || (at === undefined && this.timerAt === null)) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = at ?? null;
    if (at === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = null;
      this.input(() => this.core.handleTimeout(now()));
    }, Math.max(0, Math.ceil(at - now())));
  }

  private execute(command: Command): void {
    switch (command.kind) {
      case 'open':
        this.open(command.url);
        break;
      case 'transmit':
        if (this.socket && this.socket.readyState === OPEN) {
          try {
            const codec = this.socket.protocol === 'cerebrum.v1.msgpack' ? this.codec : null;
            this.socket.send(codec ? codec.fromJson(command.frame) : command.frame);
          } catch (err) {
            this.log('frame not sent:', err);
          }
        } else {
          this.log('frame not sent: the socket is not open');
        }
        break;
      case 'close':
        this.detach(command.code, command.reason);
        break;
    }
  }

  /** Closes the current socket, if any, and ignores whatever it reports afterwards. */
  private detach(code = 1000, reason = ''): void {
    this.generation += 1;
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onerror = null;
    socket.onclose = null;
    try {
      socket.close(code, reason);
    } catch (err) {
      this.log('close failed:', err);
    }
  }

  private open(url: string): void {
    this.detach();
    const generation = this.generation;
    const token = this.config.token;
    const ready = typeof token === 'function' ? Promise.resolve().then(token) : null;
    const ctor = this.factory();
    const codec =
      this.config.encoding === 'msgpack' && this.codec === null
        ? import('./msgpack.js').then((loaded) => {
            this.codec = loaded;
          })
        : null;
    if (ready === null && codec === null && typeof (ctor as Promise<unknown>).then !== 'function') {
      this.attach(ctor as WebSocketConstructor, url, generation);
      return;
    }
    Promise.all([ready, ctor, codec]).then(
      ([fresh, socketCtor]) => {
        if (generation !== this.generation) return;
        let target = url;
        if (ready !== null) {
          if (typeof fresh !== 'string' || fresh === '') {
            this.input(() => this.core.handleError('the token provider returned no token', now()));
            return;
          }
          this.core.setToken(fresh);
          target = this.core.openUrl(url);
        }
        this.attach(socketCtor, target, generation);
      },
      (err: unknown) => {
        if (generation !== this.generation) return;
        const reason = err instanceof Error ? err.message : String(err);
        this.input(() => this.core.handleError(`the token provider failed: ${reason}`, now()));
      },
    );
  }

  private attach(ctor: WebSocketConstructor, url: string, generation: number): void {
    let socket: WebSocketLike;
    try {
      socket = new ctor(url, this.codec ? [this.codec.MSGPACK_SUBPROTOCOL, SUBPROTOCOL] : SUBPROTOCOL);
      if (this.codec) socket.binaryType = 'arraybuffer';
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      queueMicrotask(() => {
        if (generation === this.generation) this.input(() => this.core.handleError(reason, now()));
      });
      return;
    }
    this.socket = socket;
    let failed = false;
    const live = () => generation === this.generation && this.socket === socket;
    socket.onopen = () => {
      if (live()) this.input(() => this.core.handleOpen(now()));
    };
    socket.onmessage = (event) => {
      if (!live()) return;
      if (typeof event.data === 'string') {
        const frame = event.data;
        this.input(() => {
          this.frame = frame;
          return this.core.handleFrame(frame, now());
        });
      } else if (this.codec && socket.protocol === this.codec.MSGPACK_SUBPROTOCOL) {
        let frame: string;
        try {
          frame = this.codec.toJson(event.data as ArrayBuffer | ArrayBufferView);
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          this.error(new Error(`protocol violation: a binary frame that is not MessagePack (${reason})`));
          return;
        }
        this.input(() => {
          this.frame = frame;
          return this.core.handleFrame(frame, now());
        });
      } else {
        this.log('binary frame ignored (the protocol is JSON text)');
      }
    };
    socket.onerror = () => {
      failed = true;
    };
    socket.onclose = (event) => {
      if (!live()) return;
      this.socket = null;
      this.generation += 1;
      // 1005 and 1006 mean "no close frame": the core takes them as an absent code.
      const code = event.code === 1005 || event.code === 1006 ? undefined : event.code;
      if (failed && code === undefined) {
        this.input(() => this.core.handleError(event.reason || 'the WebSocket failed', now()));
      } else {
        this.input(() => this.core.handleClose(code, event.reason ?? '', now()));
      }
    };
  }

  /** Driver bookkeeping that must happen during the drain (state the next input depends on). */
  private observe(event: CoreEvent): void {
    switch (event.kind) {
      case 'status':
        this.status = event.to;
        break;
      case 'latency':
        this.latency = event.ms;
        break;
      case 'disconnected':
        if (event.code === 4001 && typeof this.config.token === 'function' && !this.authRetryUsed) {
          this.authRetryUsed = true;
          this.retryAuth = true;
        }
        break;
      case 'welcome':
      case 'message':
        this.authRetryUsed = false;
        break;
      default:
        break;
    }
  }

  /** Hands events to the app, after the drain. */
  private dispatch(events: CoreEvent[]): void {
    const debug = this.config.debug === true;
    for (const event of events) {
      if (debug) this.log('event', event);
      for (const listener of this.listeners) this.guard(() => listener(event));
      switch (event.kind) {
        case 'connected':
          this.guard(() => this.config.onConnect?.());
          break;
        case 'disconnected':
          this.guard(() => this.config.onDisconnect?.(event.reason));
          if (event.code === 4001 || event.code === 4003) {
            this.error(new Error(`the server refused the client (close ${event.code}): ${event.reason}`));
          }
          break;
        case 'message':
          this.deliver(event.message, event.appData === true);
          break;
        case 'acked': {
          const waiter = this.acks.get(event.messageId);
          if (waiter) {
            this.acks.delete(event.messageId);
            waiter.resolve(event.messageId);
          }
          break;
        }
        case 'sendFailed': {
          const waiter = this.acks.get(event.messageId);
          const error = new SendError(event.reason, event.messageId, event.error?.code);
          if (waiter) {
            this.acks.delete(event.messageId);
            waiter.reject(error);
          } else {
            this.error(error);
          }
          break;
        }
        case 'subscribed':
          for (const entry of this.channels.get(event.channel) ?? []) {
            this.guard(() => entry.options.onSubscribed?.({ channel: event.channel, recovered: event.recovered, missed: event.missed }));
          }
          break;
        case 'subscribeFailed': {
          const error = new Error(`subscription to ${event.channel} failed: ${event.reason}`);
          const entries = this.channels.get(event.channel);
          this.channels.delete(event.channel);
          if (entries && entries.size > 0) {
            for (const entry of entries) this.guard(() => (entry.options.onError ?? this.config.onError)?.(error));
          } else {
            this.error(error);
          }
          break;
        }
        case 'gaveUp':
          this.error(new Error(`gave up after ${event.attempts} reconnect attempts`));
          break;
        case 'error':
          this.error(new Error(event.reason));
          break;
        case 'serverError':
          this.error(new Error(`server error ${event.error.code}: ${event.error.message}`));
          break;
        case 'protocolViolation':
          this.error(new Error(`protocol violation: ${event.reason}`));
          break;
        case 'queueOverflow':
          this.error(new Error(`the offline queue overflowed: message ${event.dropped} dropped`));
          break;
        default:
          break;
      }
    }
  }

  /**
   * Hands a message to `onMessage`, its channel's subscribers and the handlers of its type. An
   * `appData` message (a server type published into an app channel, which the core flags) is
   * app data of that channel: the handlers of its type, which trust it as the server's, never
   * see it.
   */
  private deliver(message: WebSocketMessage, appData: boolean): void {
    const onMessage = this.config.onMessage;
    if (onMessage) this.call(onMessage, message);
    if (message.channel !== undefined) {
      const entries = this.channels.get(message.channel);
      if (entries) for (const entry of entries) this.call(entry.handler, message);
    }
    const typed = appData ? undefined : this.handlers.get(message.type);
    if (typed) for (const handler of typed) this.call(handler, message);
    const all = this.handlers.get('*');
    if (all) for (const handler of all) this.call(handler, message);
  }

  /** `handler(message)`, a throw logged (the hot path of `guard`, without a closure). */
  private call(handler: Handler, message: WebSocketMessage): void {
    try {
      handler(message);
    } catch (err) {
      console.error('[cerebrum] a handler threw:', err);
    }
  }

  private error(error: Error): void {
    this.log('error:', error.message);
    this.guard(() => this.config.onError?.(error));
  }

  /** A throwing app handler must not break the driver: it is logged and the next one runs. */
  private guard(call: () => void): void {
    try {
      call();
    } catch (err) {
      console.error('[cerebrum] a handler threw:', err);
    }
  }
}
