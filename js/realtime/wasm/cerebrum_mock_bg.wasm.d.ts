/* tslint:disable */
/* eslint-disable */
export const memory: WebAssembly.Memory;
export const __wbg_wasmmockpeer_free: (a: number, b: number) => void;
export const mockDataStream: (a: number, b: bigint, c: number, d: number, e: number, f: number, g: number) => void;
export const wasmmockpeer_close: (a: number, b: number, c: number) => void;
export const wasmmockpeer_connect: (a: number, b: number) => void;
export const wasmmockpeer_new: (a: number, b: number, c: number, d: number, e: number) => void;
export const wasmmockpeer_pollOutput: (a: number, b: number, c: number) => void;
export const wasmmockpeer_pollTimeout: (a: number, b: number) => void;
export const wasmmockpeer_receive: (a: number, b: number, c: number, d: number) => void;
export const __wbindgen_externrefs: WebAssembly.Table;
export const __wbindgen_add_to_stack_pointer: (a: number) => number;
export const __wbindgen_export: (a: number, b: number) => number;
export const __wbindgen_export2: (a: number, b: number, c: number, d: number) => number;
export const __wbindgen_export3: (a: number, b: number, c: number) => void;
export const __wbindgen_export4: (a: number) => void;
export const __wbindgen_start: () => void;
