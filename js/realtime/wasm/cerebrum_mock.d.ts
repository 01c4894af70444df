/* tslint:disable */
/* eslint-disable */

/**
 * The simulated server of mock mode, driven from JavaScript with the driver's clock (ms).
 *
 * Not `Debug`, like `WasmClient`: nothing JavaScript could use.
 */
export class WasmMockPeer {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The client closes the connection.
     */
    close(code: number, now_ms: number): void;
    /**
     * The client opens a connection.
     */
    connect(now_ms: number): void;
    /**
     * A simulated server (options: `seed`, `userId`, `dataInterval`, `connectDelay`,
     * `latencyMs: [low, high]`, `heartbeatInterval`) created at `now_ms` when the wall clock
     * reads `unix_ms`. Throws on invalid options.
     */
    constructor(options_json: string, now_ms: number, unix_ms: number);
    /**
     * The next output due at `now_ms`, as JSON (`opened`, `frame`, `closed`); `undefined`
     * when nothing is due.
     */
    pollOutput(now_ms: number): string | undefined;
    /**
     * When the peer next has something to do (ms on the driver's clock).
     */
    pollTimeout(): number | undefined;
    /**
     * The client sent a text frame.
     */
    receive(frame: string, now_ms: number): void;
}

/**
 * The first `ticks` batches of the data generator for `seed` and `user_id`, one batch every
 * `interval_ms` from `unix_ms`, as a JSON array of `{type, payload}`: the same seed gives the
 * same stream here and in the Rust crate. Throws on a bad interval.
 */
export function mockDataStream(seed: bigint, user_id: string, unix_ms: number, ticks: number, interval_ms: number): string;

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_wasmmockpeer_free: (a: number, b: number) => void;
    readonly mockDataStream: (a: bigint, b: number, c: number, d: number, e: number, f: number) => [number, number, number, number];
    readonly wasmmockpeer_close: (a: number, b: number, c: number) => void;
    readonly wasmmockpeer_connect: (a: number, b: number) => void;
    readonly wasmmockpeer_new: (a: number, b: number, c: number, d: number) => [number, number, number];
    readonly wasmmockpeer_pollOutput: (a: number, b: number) => [number, number];
    readonly wasmmockpeer_pollTimeout: (a: number) => [number, number];
    readonly wasmmockpeer_receive: (a: number, b: number, c: number, d: number) => void;
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
