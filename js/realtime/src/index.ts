// @cerebrum/realtime: the origin's `WebSocketClient` API on cerebrum-realtime's Rust client core,
// compiled to WebAssembly. React hooks live in `@cerebrum/realtime/react`.

export { WebSocketClient } from './client.js';
export { SendError } from './types.js';
/** The channel of the collaborative study session on a topic (`session:<slug>`), as the server names it. */
export { sessionChannel } from './wasm.js';
export type * from './types.js';
