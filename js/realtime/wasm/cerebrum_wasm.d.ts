/* tslint:disable */
/* eslint-disable */

/**
 * The sans-IO client core, driven from JavaScript.
 *
 * Every input takes `now_ms`, the driver's monotonic clock in milliseconds
 * (`performance.now()`); after every input the driver drains [`poll_command`](Self::poll_command)
 * and [`poll_event`](Self::poll_event) and re-reads [`poll_timeout`](Self::poll_timeout).
 *
 * Not `Debug`: the core's `Debug` output (every internal table) would be compiled into the
 * module for nothing JavaScript can use.
 */
export class WasmClient {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Empties the offline queue; returns the removed messages' ids as a JSON array.
     */
    clearQueue(): string;
    /**
     * User intent: start connecting.
     */
    connect(now_ms: number): void;
    /**
     * User intent: close with 1000 and stay disconnected.
     */
    disconnect(now_ms: number): void;
    /**
     * Drains every output in one call (the fast path of the driver; equivalent to polling):
     * `{"commands":[…],"events":[…],"timeout":ms|null}` with the commands and events of
     * [`poll_command`](Self::poll_command) and [`poll_event`](Self::poll_event) in order,
     * the follow-ups (notification acks) fed and their outputs drained too, and
     * [`poll_timeout`](Self::poll_timeout) last. A message delivered from the frame of the
     * last [`handle_frame`](Self::handle_frame) is `{"kind":"message","fed":true}`: the driver
     * parses the frame it passed in (the core delivers it unchanged) rather than a copy.
     */
    drain(): string;
    /**
     * Feeds the answers the drained events call for (notification acks); returns whether it
     * fed any, in which case the driver drains commands and events again. Refused answers
     * (not connected any more) are dropped: they are best effort.
     */
    flushFollowUps(): boolean;
    /**
     * Transport report: the WebSocket closed (`code` is absent for 1005/1006: no close frame).
     */
    handleClose(code: number | null | undefined, reason: string, now_ms: number): void;
    /**
     * Transport report: the WebSocket failed.
     */
    handleError(reason: string, now_ms: number): void;
    /**
     * Transport report: a text frame arrived. Returns what the driver does next, so that the
     * common case (one message, nothing else) needs no [`drain`](Self::drain) call:
     *
     * - [`FRAME_DRAIN`] (0): outputs wait: call `drain()` (a message from this frame is in it as
     *   `{"kind":"message","fed":true}`);
     * - [`FRAME_MESSAGE`] (1): the frame is delivered unchanged as a message, and that is all:
     *   no command, no other event, the deadline of the last `drain()` stands;
     * - [`FRAME_APP_DATA`] (2): the same, for a message flagged `appData`;
     * - [`FRAME_NOTHING`] (3): nothing to hand out (a replayed publication already seen), the
     *   deadline of the last `drain()` stands.
     */
    handleFrame(frame: string, now_ms: number): number;
    /**
     * Transport report: the WebSocket opened.
     */
    handleOpen(now_ms: number): void;
    /**
     * Timer input: call at (or after) [`poll_timeout`](Self::poll_timeout).
     */
    handleTimeout(now_ms: number): void;
    /**
     * Whether a token is set.
     */
    hasToken(): boolean;
    /**
     * The last round-trip time from a matched pong, in ms (`undefined` before the first).
     */
    latency(): number | undefined;
    /**
     * User intent: the network changed (browser `online` event): probe or retry now.
     */
    networkChanged(now_ms: number): void;
    /**
     * A core for the options (those of [`ClientOptions`], in its order; `undefined` keeps a
     * default), created at `now_ms` on the driver's clock when the wall clock reads `unix_ms`.
     * Throws on invalid options.
     */
    constructor(url: string, preset: string | null | undefined, reconnect: boolean | null | undefined, reconnect_attempts: number | null | undefined, reconnect_interval: number | null | undefined, reconnect_factor: number | null | undefined, max_reconnect_delay: number | null | undefined, jitter: number | null | undefined, heartbeat_interval: number | null | undefined, heartbeat_timeout: number | null | undefined, connection_timeout: number | null | undefined, enable_queue: boolean | null | undefined, queue_capacity: number | null | undefined, ack_timeout: number | null | undefined, token: string | null | undefined, token_transport: string | null | undefined, debug: boolean | null | undefined, seed: number | null | undefined, auto_ack_notifications: boolean | null | undefined, now_ms: number, unix_ms: number);
    /**
     * The URL to open for `url` with the current token, following the token transport (the
     * query parameter is set, replaced or removed). Used after an async token provider answered.
     */
    openUrl(url: string): string;
    /**
     * The next command as JSON: `{"kind":"open","url"}`, `{"kind":"transmit","frame"}` or
     * `{"kind":"close","code","reason"}`; `undefined` when drained.
     */
    pollCommand(): string | undefined;
    /**
     * The next event as JSON (`{"kind": …}`); `undefined` when drained.
     */
    pollEvent(): string | undefined;
    /**
     * When to call [`handle_timeout`](Self::handle_timeout) next, on the driver's clock (ms);
     * `undefined` when no timer is armed.
     */
    pollTimeout(): number | undefined;
    /**
     * How many messages wait in the offline queue.
     */
    queuedCount(): number;
    /**
     * The messages waiting in the offline queue, in order, as a JSON array of envelopes.
     */
    queued(): string;
    /**
     * User intent: close now and reconnect, resetting the attempt count.
     */
    reconnect(now_ms: number): void;
    /**
     * Sends (or queues) a message of type `kind` whose payload is the JSON text
     * `payload_json`; returns its `messageId`. Throws when the core refuses it (full queue,
     * not connected with the queue off, too large, bad type or channel name, bad JSON).
     */
    send(kind: string, payload_json: string, channel: string | null | undefined, ack: boolean, volatile: boolean, now_ms: number): string;
    /**
     * Replaces the token used from the next connection attempt on.
     */
    setToken(token?: string | null): void;
    /**
     * The origin's status name: `connecting`, `connected`, `disconnected`, `reconnecting` or
     * `error`.
     */
    status(): string;
    /**
     * Subscribes to `channel` (re-subscribed with resume after every reconnect). Throws on a
     * malformed channel name.
     */
    subscribe(channel: string, now_ms: number): void;
    /**
     * Unsubscribes; `false` if the channel was not subscribed.
     */
    unsubscribe(channel: string, now_ms: number): boolean;
}

/**
 * The channel of the collaborative study session on `topic` (`session:<slug>`), as the server
 * names it. Throws when the topic has no letter or digit to make a slug of.
 */
export function sessionChannel(topic: string): string;

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_wasmclient_free: (a: number, b: number) => void;
    readonly sessionChannel: (a: number, b: number) => [number, number, number, number];
    readonly wasmclient_clearQueue: (a: number) => [number, number];
    readonly wasmclient_connect: (a: number, b: number) => void;
    readonly wasmclient_disconnect: (a: number, b: number) => void;
    readonly wasmclient_drain: (a: number) => [number, number];
    readonly wasmclient_flushFollowUps: (a: number) => number;
    readonly wasmclient_handleClose: (a: number, b: number, c: number, d: number, e: number) => void;
    readonly wasmclient_handleError: (a: number, b: number, c: number, d: number) => void;
    readonly wasmclient_handleFrame: (a: number, b: number, c: number, d: number) => number;
    readonly wasmclient_handleOpen: (a: number, b: number) => void;
    readonly wasmclient_handleTimeout: (a: number, b: number) => void;
    readonly wasmclient_hasToken: (a: number) => number;
    readonly wasmclient_latency: (a: number) => [number, number];
    readonly wasmclient_networkChanged: (a: number, b: number) => void;
    readonly wasmclient_new: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, i: number, j: number, k: number, l: number, m: number, n: number, o: number, p: number, q: number, r: number, s: number, t: number, u: number, v: number, w: number, x: number, y: number, z: number, a1: number, b1: number, c1: number, d1: number, e1: number, f1: number, g1: number, h1: number, i1: number) => [number, number, number];
    readonly wasmclient_openUrl: (a: number, b: number, c: number) => [number, number];
    readonly wasmclient_pollCommand: (a: number) => [number, number];
    readonly wasmclient_pollEvent: (a: number) => [number, number];
    readonly wasmclient_pollTimeout: (a: number) => [number, number];
    readonly wasmclient_queued: (a: number) => [number, number];
    readonly wasmclient_queuedCount: (a: number) => number;
    readonly wasmclient_reconnect: (a: number, b: number) => void;
    readonly wasmclient_send: (a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, i: number, j: number) => [number, number, number, number];
    readonly wasmclient_setToken: (a: number, b: number, c: number) => void;
    readonly wasmclient_status: (a: number) => [number, number];
    readonly wasmclient_subscribe: (a: number, b: number, c: number, d: number) => [number, number];
    readonly wasmclient_unsubscribe: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
