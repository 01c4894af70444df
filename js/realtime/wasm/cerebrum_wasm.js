/* @ts-self-types="./cerebrum_wasm.d.ts" */

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
    __destroy_into_raw() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        WasmClientFinalization.unregister(this);
        return ptr;
    }
    free() {
        const ptr = this.__destroy_into_raw();
        wasm.__wbg_wasmclient_free(ptr, 0);
    }
    /**
     * Empties the offline queue; returns the removed messages' ids as a JSON array.
     * @returns {string}
     */
    clearQueue() {
        let deferred1_0;
        let deferred1_1;
        try {
            const ret = wasm.wasmclient_clearQueue(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * User intent: start connecting.
     * @param {number} now_ms
     */
    connect(now_ms) {
        wasm.wasmclient_connect(this.__wbg_ptr, now_ms);
    }
    /**
     * User intent: close with 1000 and stay disconnected.
     * @param {number} now_ms
     */
    disconnect(now_ms) {
        wasm.wasmclient_disconnect(this.__wbg_ptr, now_ms);
    }
    /**
     * Drains every output in one call (the fast path of the driver; equivalent to polling):
     * `{"commands":[…],"events":[…],"timeout":ms|null}` with the commands and events of
     * [`poll_command`](Self::poll_command) and [`poll_event`](Self::poll_event) in order,
     * the follow-ups (notification acks) fed and their outputs drained too, and
     * [`poll_timeout`](Self::poll_timeout) last. A message delivered from the frame of the
     * last [`handle_frame`](Self::handle_frame) is `{"kind":"message","fed":true}`: the driver
     * parses the frame it passed in (the core delivers it unchanged) rather than a copy.
     * @returns {string}
     */
    drain() {
        let deferred1_0;
        let deferred1_1;
        try {
            const ret = wasm.wasmclient_drain(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * Feeds the answers the drained events call for (notification acks); returns whether it
     * fed any, in which case the driver drains commands and events again. Refused answers
     * (not connected any more) are dropped: they are best effort.
     * @returns {boolean}
     */
    flushFollowUps() {
        const ret = wasm.wasmclient_flushFollowUps(this.__wbg_ptr);
        return ret !== 0;
    }
    /**
     * Transport report: the WebSocket closed (`code` is absent for 1005/1006: no close frame).
     * @param {number | null | undefined} code
     * @param {string} reason
     * @param {number} now_ms
     */
    handleClose(code, reason, now_ms) {
        const val2 = +(isLikeNone(code) ? 0xFFFFFF : code);
        const val3 = +now_ms;
        const ptr0 = passStringToWasm0(reason, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        wasm.wasmclient_handleClose(this.__wbg_ptr, val2, ptr0, len0, val3);
    }
    /**
     * Transport report: the WebSocket failed.
     * @param {string} reason
     * @param {number} now_ms
     */
    handleError(reason, now_ms) {
        const val2 = +now_ms;
        const ptr0 = passStringToWasm0(reason, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        wasm.wasmclient_handleError(this.__wbg_ptr, ptr0, len0, val2);
    }
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
     * @param {string} frame
     * @param {number} now_ms
     * @returns {number}
     */
    handleFrame(frame, now_ms) {
        const val2 = +now_ms;
        const ptr0 = passStringToWasm0(frame, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.wasmclient_handleFrame(this.__wbg_ptr, ptr0, len0, val2);
        return ret;
    }
    /**
     * Transport report: the WebSocket opened.
     * @param {number} now_ms
     */
    handleOpen(now_ms) {
        wasm.wasmclient_handleOpen(this.__wbg_ptr, now_ms);
    }
    /**
     * Timer input: call at (or after) [`poll_timeout`](Self::poll_timeout).
     * @param {number} now_ms
     */
    handleTimeout(now_ms) {
        wasm.wasmclient_handleTimeout(this.__wbg_ptr, now_ms);
    }
    /**
     * Whether a token is set.
     * @returns {boolean}
     */
    hasToken() {
        const ret = wasm.wasmclient_hasToken(this.__wbg_ptr);
        return ret !== 0;
    }
    /**
     * The last round-trip time from a matched pong, in ms (`undefined` before the first).
     * @returns {number | undefined}
     */
    latency() {
        const ret = wasm.wasmclient_latency(this.__wbg_ptr);
        return ret[0] === 0 ? undefined : ret[1];
    }
    /**
     * User intent: the network changed (browser `online` event): probe or retry now.
     * @param {number} now_ms
     */
    networkChanged(now_ms) {
        wasm.wasmclient_networkChanged(this.__wbg_ptr, now_ms);
    }
    /**
     * A core for the options (those of [`ClientOptions`], in its order; `undefined` keeps a
     * default), created at `now_ms` on the driver's clock when the wall clock reads `unix_ms`.
     * Throws on invalid options.
     * @param {string} url
     * @param {string | null | undefined} preset
     * @param {boolean | null | undefined} reconnect
     * @param {number | null | undefined} reconnect_attempts
     * @param {number | null | undefined} reconnect_interval
     * @param {number | null | undefined} reconnect_factor
     * @param {number | null | undefined} max_reconnect_delay
     * @param {number | null | undefined} jitter
     * @param {number | null | undefined} heartbeat_interval
     * @param {number | null | undefined} heartbeat_timeout
     * @param {number | null | undefined} connection_timeout
     * @param {boolean | null | undefined} enable_queue
     * @param {number | null | undefined} queue_capacity
     * @param {number | null | undefined} ack_timeout
     * @param {string | null | undefined} token
     * @param {string | null | undefined} token_transport
     * @param {boolean | null | undefined} debug
     * @param {number | null | undefined} seed
     * @param {boolean | null | undefined} auto_ack_notifications
     * @param {number} now_ms
     * @param {number} unix_ms
     */
    constructor(url, preset, reconnect, reconnect_attempts, reconnect_interval, reconnect_factor, max_reconnect_delay, jitter, heartbeat_interval, heartbeat_timeout, connection_timeout, enable_queue, queue_capacity, ack_timeout, token, token_transport, debug, seed, auto_ack_notifications, now_ms, unix_ms) {
        const val5 = +(isLikeNone(reconnect_attempts) ? 0 : reconnect_attempts);
        const val6 = +(isLikeNone(reconnect_interval) ? 0 : reconnect_interval);
        const val7 = +(isLikeNone(reconnect_factor) ? 0 : reconnect_factor);
        const val8 = +(isLikeNone(max_reconnect_delay) ? 0 : max_reconnect_delay);
        const val9 = +(isLikeNone(jitter) ? 0 : jitter);
        const val10 = +(isLikeNone(heartbeat_interval) ? 0 : heartbeat_interval);
        const val11 = +(isLikeNone(heartbeat_timeout) ? 0 : heartbeat_timeout);
        const val12 = +(isLikeNone(connection_timeout) ? 0 : connection_timeout);
        const val13 = +(isLikeNone(queue_capacity) ? Number.MAX_SAFE_INTEGER : (queue_capacity) >>> 0);
        const val14 = +(isLikeNone(ack_timeout) ? 0 : ack_timeout);
        const val15 = +(isLikeNone(seed) ? 0 : seed);
        const val16 = +now_ms;
        const val17 = +unix_ms;
        let ptr0, len0, ptr1, len1, ptr2, len2, ptr3, len3;
        try {
            ptr0 = passStringToWasm0(url, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len0 = WASM_VECTOR_LEN;
            ptr1 = isLikeNone(preset) ? 0 : passStringToWasm0(preset, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len1 = WASM_VECTOR_LEN;
            ptr2 = isLikeNone(token) ? 0 : passStringToWasm0(token, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len2 = WASM_VECTOR_LEN;
            ptr3 = isLikeNone(token_transport) ? 0 : passStringToWasm0(token_transport, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            len3 = WASM_VECTOR_LEN;
        } catch (e) {
            if (ptr3) { wasm.__wbindgen_free(ptr3, len3 * 1, 1); }
            if (ptr2) { wasm.__wbindgen_free(ptr2, len2 * 1, 1); }
            if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
            if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
            throw e;
        }
        const ret = wasm.wasmclient_new(ptr0, len0, ptr1, len1, isLikeNone(reconnect) ? 0xFFFFFF : reconnect ? 1 : 0, !isLikeNone(reconnect_attempts), val5, !isLikeNone(reconnect_interval), val6, !isLikeNone(reconnect_factor), val7, !isLikeNone(max_reconnect_delay), val8, !isLikeNone(jitter), val9, !isLikeNone(heartbeat_interval), val10, !isLikeNone(heartbeat_timeout), val11, !isLikeNone(connection_timeout), val12, isLikeNone(enable_queue) ? 0xFFFFFF : enable_queue ? 1 : 0, val13, !isLikeNone(ack_timeout), val14, ptr2, len2, ptr3, len3, isLikeNone(debug) ? 0xFFFFFF : debug ? 1 : 0, !isLikeNone(seed), val15, isLikeNone(auto_ack_notifications) ? 0xFFFFFF : auto_ack_notifications ? 1 : 0, val16, val17);
        if (ret[2]) {
            throw takeFromExternrefTable0(ret[1]);
        }
        this.__wbg_ptr = ret[0];
        WasmClientFinalization.register(this, this.__wbg_ptr, this);
        return this;
    }
    /**
     * The URL to open for `url` with the current token, following the token transport (the
     * query parameter is set, replaced or removed). Used after an async token provider answered.
     * @param {string} url
     * @returns {string}
     */
    openUrl(url) {
        let deferred2_0;
        let deferred2_1;
        try {
            const ptr0 = passStringToWasm0(url, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
            const len0 = WASM_VECTOR_LEN;
            const ret = wasm.wasmclient_openUrl(this.__wbg_ptr, ptr0, len0);
            deferred2_0 = ret[0];
            deferred2_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            wasm.__wbindgen_free(deferred2_0, deferred2_1, 1);
        }
    }
    /**
     * The next command as JSON: `{"kind":"open","url"}`, `{"kind":"transmit","frame"}` or
     * `{"kind":"close","code","reason"}`; `undefined` when drained.
     * @returns {string | undefined}
     */
    pollCommand() {
        const ret = wasm.wasmclient_pollCommand(this.__wbg_ptr);
        let v1;
        if (ret[0] !== 0) {
            v1 = getStringFromWasm0(ret[0], ret[1]);
            wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        }
        return v1;
    }
    /**
     * The next event as JSON (`{"kind": …}`); `undefined` when drained.
     * @returns {string | undefined}
     */
    pollEvent() {
        const ret = wasm.wasmclient_pollEvent(this.__wbg_ptr);
        let v1;
        if (ret[0] !== 0) {
            v1 = getStringFromWasm0(ret[0], ret[1]);
            wasm.__wbindgen_free(ret[0], ret[1] * 1, 1);
        }
        return v1;
    }
    /**
     * When to call [`handle_timeout`](Self::handle_timeout) next, on the driver's clock (ms);
     * `undefined` when no timer is armed.
     * @returns {number | undefined}
     */
    pollTimeout() {
        const ret = wasm.wasmclient_pollTimeout(this.__wbg_ptr);
        return ret[0] === 0 ? undefined : ret[1];
    }
    /**
     * How many messages wait in the offline queue.
     * @returns {number}
     */
    queuedCount() {
        const ret = wasm.wasmclient_queuedCount(this.__wbg_ptr);
        return ret >>> 0;
    }
    /**
     * The messages waiting in the offline queue, in order, as a JSON array of envelopes.
     * @returns {string}
     */
    queued() {
        let deferred1_0;
        let deferred1_1;
        try {
            const ret = wasm.wasmclient_queued(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * User intent: close now and reconnect, resetting the attempt count.
     * @param {number} now_ms
     */
    reconnect(now_ms) {
        wasm.wasmclient_reconnect(this.__wbg_ptr, now_ms);
    }
    /**
     * Sends (or queues) a message of type `kind` whose payload is the JSON text
     * `payload_json`; returns its `messageId`. Throws when the core refuses it (full queue,
     * not connected with the queue off, too large, bad type or channel name, bad JSON).
     * @param {string} kind
     * @param {string} payload_json
     * @param {string | null | undefined} channel
     * @param {boolean} ack
     * @param {boolean} volatile
     * @param {number} now_ms
     * @returns {string}
     */
    send(kind, payload_json, channel, ack, volatile, now_ms) {
        let deferred8_0;
        let deferred8_1;
        try {
            const val4 = +ack;
            const val5 = +volatile;
            const val6 = +now_ms;
            let ptr0, len0, ptr1, len1, ptr2, len2;
            try {
                ptr0 = passStringToWasm0(kind, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len0 = WASM_VECTOR_LEN;
                ptr1 = passStringToWasm0(payload_json, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len1 = WASM_VECTOR_LEN;
                ptr2 = isLikeNone(channel) ? 0 : passStringToWasm0(channel, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
                len2 = WASM_VECTOR_LEN;
            } catch (e) {
                if (ptr2) { wasm.__wbindgen_free(ptr2, len2 * 1, 1); }
                if (ptr1) { wasm.__wbindgen_free(ptr1, len1 * 1, 1); }
                if (ptr0) { wasm.__wbindgen_free(ptr0, len0 * 1, 1); }
                throw e;
            }
            const ret = wasm.wasmclient_send(this.__wbg_ptr, ptr0, len0, ptr1, len1, ptr2, len2, val4, val5, val6);
            var ptr7 = ret[0];
            var len7 = ret[1];
            if (ret[3]) {
                ptr7 = 0; len7 = 0;
                throw takeFromExternrefTable0(ret[2]);
            }
            deferred8_0 = ptr7;
            deferred8_1 = len7;
            return getStringFromWasm0(ptr7, len7);
        } finally {
            wasm.__wbindgen_free(deferred8_0, deferred8_1, 1);
        }
    }
    /**
     * Replaces the token used from the next connection attempt on.
     * @param {string | null} [token]
     */
    setToken(token) {
        var ptr0 = isLikeNone(token) ? 0 : passStringToWasm0(token, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        var len0 = WASM_VECTOR_LEN;
        wasm.wasmclient_setToken(this.__wbg_ptr, ptr0, len0);
    }
    /**
     * The origin's status name: `connecting`, `connected`, `disconnected`, `reconnecting` or
     * `error`.
     * @returns {string}
     */
    status() {
        let deferred1_0;
        let deferred1_1;
        try {
            const ret = wasm.wasmclient_status(this.__wbg_ptr);
            deferred1_0 = ret[0];
            deferred1_1 = ret[1];
            return getStringFromWasm0(ret[0], ret[1]);
        } finally {
            wasm.__wbindgen_free(deferred1_0, deferred1_1, 1);
        }
    }
    /**
     * Subscribes to `channel` (re-subscribed with resume after every reconnect). Throws on a
     * malformed channel name.
     * @param {string} channel
     * @param {number} now_ms
     */
    subscribe(channel, now_ms) {
        const val2 = +now_ms;
        const ptr0 = passStringToWasm0(channel, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.wasmclient_subscribe(this.__wbg_ptr, ptr0, len0, val2);
        if (ret[1]) {
            throw takeFromExternrefTable0(ret[0]);
        }
    }
    /**
     * Unsubscribes; `false` if the channel was not subscribed.
     * @param {string} channel
     * @param {number} now_ms
     * @returns {boolean}
     */
    unsubscribe(channel, now_ms) {
        const val2 = +now_ms;
        const ptr0 = passStringToWasm0(channel, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.wasmclient_unsubscribe(this.__wbg_ptr, ptr0, len0, val2);
        return ret !== 0;
    }
}
if (Symbol.dispose) WasmClient.prototype[Symbol.dispose] = WasmClient.prototype.free;

/**
 * The channel of the collaborative study session on `topic` (`session:<slug>`), as the server
 * names it. Throws when the topic has no letter or digit to make a slug of.
 * @param {string} topic
 * @returns {string}
 */
export function sessionChannel(topic) {
    let deferred3_0;
    let deferred3_1;
    try {
        const ptr0 = passStringToWasm0(topic, wasm.__wbindgen_malloc, wasm.__wbindgen_realloc);
        const len0 = WASM_VECTOR_LEN;
        const ret = wasm.sessionChannel(ptr0, len0);
        var ptr2 = ret[0];
        var len2 = ret[1];
        if (ret[3]) {
            ptr2 = 0; len2 = 0;
            throw takeFromExternrefTable0(ret[2]);
        }
        deferred3_0 = ptr2;
        deferred3_1 = len2;
        return getStringFromWasm0(ptr2, len2);
    } finally {
        wasm.__wbindgen_free(deferred3_0, deferred3_1, 1);
    }
}
function __wbg_get_imports() {
    const import0 = {
        __proto__: null,
        __wbg_Error_208446807d0d1e30: function(arg0, arg1) {
            const ret = Error(getStringFromWasm0(arg0, arg1));
            return ret;
        },
        __wbg___wbindgen_throw_4c88d8bf264fd984: function(arg0, arg1) {
            throw new Error(getStringFromWasm0(arg0, arg1));
        },
        __wbindgen_init_externref_table: function() {
            const table = wasm.__wbindgen_externrefs;
            table.set(0, undefined);
            table.set(1024, undefined);
            table.set(1025, null);
            table.set(1026, true);
            table.set(1027, false);
        },
    };
    return {
        __proto__: null,
        "./cerebrum_wasm_bg.js": import0,
    };
}

const WasmClientFinalization = (typeof FinalizationRegistry === 'undefined')
    ? { register: () => {}, unregister: () => {} }
    : new FinalizationRegistry(ptr => wasm.__wbg_wasmclient_free(ptr, 1));

function getStringFromWasm0(ptr, len) {
    ptr = ptr >>> 0;
    return decodeText(getUint8ArrayMemory0().subarray(ptr, ptr + len));
}

let cachedUint8ArrayMemory0 = null;
function getUint8ArrayMemory0() {
    if (cachedUint8ArrayMemory0 === null || cachedUint8ArrayMemory0.byteLength === 0) {
        cachedUint8ArrayMemory0 = new Uint8Array(wasm.memory.buffer);
    }
    return cachedUint8ArrayMemory0;
}

function isLikeNone(x) {
    return x === undefined || x === null;
}

function passStringToWasm0(arg, malloc, realloc) {
    if (realloc === undefined) {
        const buf = cachedTextEncoder.encode(arg);
        const ptr = malloc(buf.length, 1) >>> 0;
        getUint8ArrayMemory0().subarray(ptr, ptr + buf.length).set(buf);
        WASM_VECTOR_LEN = buf.length;
        return ptr;
    }

    let len = arg.length;
    let ptr = malloc(len, 1) >>> 0;

    const mem = getUint8ArrayMemory0();

    let offset = 0;

    for (; offset < len; offset++) {
        const code = arg.charCodeAt(offset);
        if (code > 0x7F) break;
        mem[ptr + offset] = code;
    }
    if (offset !== len) {
        if (offset !== 0) {
            arg = arg.slice(offset);
        }
        ptr = realloc(ptr, len, len = offset + arg.length * 3, 1) >>> 0;
        const view = getUint8ArrayMemory0().subarray(ptr + offset, ptr + len);
        const ret = cachedTextEncoder.encodeInto(arg, view);

        offset += ret.written;
        ptr = realloc(ptr, len, offset, 1) >>> 0;
    }

    WASM_VECTOR_LEN = offset;
    return ptr;
}

function takeFromExternrefTable0(idx) {
    const value = wasm.__wbindgen_externrefs.get(idx);
    wasm.__externref_table_dealloc(idx);
    return value;
}

let cachedTextDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
cachedTextDecoder.decode();
const MAX_SAFARI_DECODE_BYTES = 2146435072;
let numBytesDecoded = 0;
function decodeText(bytes) {
    numBytesDecoded += bytes.length;
    if (numBytesDecoded >= MAX_SAFARI_DECODE_BYTES) {
        cachedTextDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
        cachedTextDecoder.decode();
        numBytesDecoded = bytes.length;
    }
    return cachedTextDecoder.decode(bytes);
}

const cachedTextEncoder = new TextEncoder();

if (!('encodeInto' in cachedTextEncoder)) {
    cachedTextEncoder.encodeInto = function (arg, view) {
        const buf = cachedTextEncoder.encode(arg);
        view.set(buf);
        return {
            read: arg.length,
            written: buf.length
        };
    };
}

let WASM_VECTOR_LEN = 0;

let wasmModule, wasmInstance, wasm;
function __wbg_finalize_init(instance, module) {
    wasmInstance = instance;
    wasm = instance.exports;
    wasmModule = module;
    cachedUint8ArrayMemory0 = null;
    wasm.__wbindgen_start();
    return wasm;
}

async function __wbg_load(module, imports) {
    if (typeof Response === 'function' && module instanceof Response) {
        if (!module.ok) {
            throw new Error(`failed to fetch Wasm: ${module.status} ${module.statusText} fetching '${module.url}'`);
        }

        if (typeof WebAssembly.instantiateStreaming === 'function') {
            try {
                return await WebAssembly.instantiateStreaming(module, imports);
            } catch (e) {
                const validResponse = expectedResponseType(module.type);

                if (validResponse && module.headers.get('Content-Type') !== 'application/wasm') {
                    console.warn("`WebAssembly.instantiateStreaming` failed because your server does not serve Wasm with `application/wasm` MIME type. Falling back to `WebAssembly.instantiate` which is slower. Original error:\n", e);

                } else { throw e; }
            }
        }

        const bytes = await module.arrayBuffer();
        return await WebAssembly.instantiate(bytes, imports);
    } else {
        const instance = await WebAssembly.instantiate(module, imports);

        if (instance instanceof WebAssembly.Instance) {
            return { instance, module };
        } else {
            return instance;
        }
    }

    function expectedResponseType(type) {
        switch (type) {
            case 'basic': case 'cors': case 'default': return true;
        }
        return false;
    }
}

function initSync(module) {
    if (wasm !== undefined) return wasm;


    if (module !== undefined) {
        if (Object.getPrototypeOf(module) === Object.prototype) {
            ({module} = module)
        } else {
            console.warn('using deprecated parameters for `initSync()`; pass a single object instead')
        }
    }

    const imports = __wbg_get_imports();
    if (!(module instanceof WebAssembly.Module)) {
        module = new WebAssembly.Module(module);
    }
    const instance = new WebAssembly.Instance(module, imports);
    return __wbg_finalize_init(instance, module);
}

let __wbg_init_promise;
async function __wbg_init(module_or_path) {
    if (wasm !== undefined) return wasm;
    if (__wbg_init_promise === undefined) {
        __wbg_init_promise = __wbg_init_once(module_or_path);
        __wbg_init_promise.catch(() => { __wbg_init_promise = undefined; });
    }
    return __wbg_init_promise;
}

async function __wbg_init_once(module_or_path) {

    if (module_or_path !== undefined) {
        if (Object.getPrototypeOf(module_or_path) === Object.prototype) {
            ({module_or_path} = module_or_path)
        } else {
            console.warn('using deprecated parameters for the initialization function; pass a single object instead')
        }
    }

    if (module_or_path === undefined) {
        module_or_path = new URL('cerebrum_wasm_bg.wasm', import.meta.url);
    }
    const imports = __wbg_get_imports();

    if (typeof module_or_path === 'string' || (typeof Request === 'function' && module_or_path instanceof Request) || (typeof URL === 'function' && module_or_path instanceof URL)) {
        module_or_path = fetch(module_or_path);
    }

    const { instance, module } = await __wbg_load(await module_or_path, imports);

    return __wbg_finalize_init(instance, module);
}

export { initSync, __wbg_init as default };
