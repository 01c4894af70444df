// @cerebrum/realtime: the origin's `WebSocketClient` API on cerebrum-realtime's Rust client core,
// compiled to WebAssembly. React hooks live in `@cerebrum/realtime/react`.

export { WebSocketClient } from './client.js';
export { SendError } from './types.js';
export type * from './types.js';
