// The `cerebrum.v1.msgpack` codec of the package: loaded (with `@msgpack/msgpack`) only when a
// client asks for `encoding: 'msgpack'`, so the default bundle does not carry it.
//
// A MessagePack frame is the JSON envelope's value encoded in MessagePack (docs/protocol.md,
// "MessagePack frames"); the core speaks JSON text, so frames are transcoded at the socket.

import { decode, encode } from '@msgpack/msgpack';

/** The subprotocol that selects MessagePack frames. */
export const MSGPACK_SUBPROTOCOL = 'cerebrum.v1.msgpack';

/** The JSON text of a binary MessagePack frame; throws when it is not MessagePack of a JSON value. */
export function toJson(data: ArrayBuffer | ArrayBufferView): string {
  const bytes =
    data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const text = JSON.stringify(decode(bytes));
  if (typeof text !== 'string') throw new TypeError('the frame is not MessagePack of a JSON value');
  return text;
}

/** The MessagePack frame of a JSON text (the core's own frames: always valid JSON). */
export function fromJson(text: string): Uint8Array {
  return encode(JSON.parse(text));
}
