/* tslint:disable */
/* eslint-disable */
export const memory: WebAssembly.Memory;
export const __wbg_wasmmockpeer_free: (a: number, b: number) => void;
export const mockDataStream: (a: bigint, b: number, c: number, d: number, e: number, f: number) => [number, number, number, number];
export const wasmmockpeer_close: (a: number, b: number, c: number) => void;
export const wasmmockpeer_connect: (a: number, b: number) => void;
export const wasmmockpeer_new: (a: number, b: number, c: number, d: number) => [number, number, number];
export const wasmmockpeer_pollOutput: (a: number, b: number) => [number, number];
export const wasmmockpeer_pollTimeout: (a: number) => [number, number];
export const wasmmockpeer_receive: (a: number, b: number, c: number, d: number) => void;
export const __wbindgen_externrefs: WebAssembly.Table;
export const __wbindgen_malloc: (a: number, b: number) => number;
export const __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
export const __wbindgen_free: (a: number, b: number, c: number) => void;
export const __externref_table_dealloc: (a: number) => void;
export const __wbindgen_start: () => void;
