// Loads the client core's WebAssembly module once, at import (top-level await): in Node from the
// file beside the glue, in browsers with `fetch` (streaming compilation).

import init, { initSync, WasmClient, sessionChannel } from '../wasm/cerebrum_wasm.js';

const wasmUrl = new URL('../wasm/cerebrum_wasm_bg.wasm', import.meta.url);

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

if (isNode && wasmUrl.protocol === 'file:') {
  const { readFile } = await import('node:fs/promises');
  initSync({ module: await readFile(wasmUrl) });
} else {
  await init({ module_or_path: wasmUrl });
}

export { WasmClient, sessionChannel };
