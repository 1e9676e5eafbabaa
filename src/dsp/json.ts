// Typed access to the JSON key scanner of the DSP core (assembly/json.ts). It finds one value in
// a message held in WASM memory without JSON.parse; offsets are relative to the message pointer.
import { bytesAt, loadDsp, type DspExports } from './wasm.js';

interface JsonExports extends DspExports {
  json_find_string(msg: number, len: number, key: number, keyLen: number): number;
  json_find_raw(msg: number, len: number, key: number, keyLen: number): number;
  json_last_len(): number;
}

let dsp: JsonExports | undefined;
function json(): JsonExports {
  return (dsp ??= loadDsp() as JsonExports);
}

/** No such key with a string value (or the message is cut off before its end). */
export const JSON_NOT_FOUND = -1;
/** The value contains a backslash escape: decode the message with JSON.parse instead. */
export const JSON_ESCAPED = -2;

/** A key name placed in WASM memory once, for the scanner to compare against. */
export interface JsonKey {
  readonly ptr: number;
  readonly len: number;
}

const keys = new Map<string, JsonKey>();

/** The key's UTF-8 bytes in WASM memory, allocated on first use per name (at startup, not per frame). */
export function jsonKey(name: string): JsonKey {
  let k = keys.get(name);
  if (!k) {
    const bytes = new TextEncoder().encode(name);
    const ptr = json().dsp_alloc(Math.max(bytes.length, 1));
    bytesAt(ptr, bytes.length).set(bytes);
    k = { ptr, len: bytes.length };
    keys.set(name, k);
  }
  return k;
}

/**
 * Offset of the contents of the first string value of `key` (any depth) in the `len` bytes at
 * `msg`; its length is then jsonLastLen(). JSON_NOT_FOUND or JSON_ESCAPED otherwise.
 */
export function jsonFindString(msg: number, len: number, key: JsonKey): number {
  return json().json_find_string(msg, len, key.ptr, key.len);
}

/**
 * Offset of the raw value token of the first `key` (number/literal, quoted string, object or
 * array); its length is then jsonLastLen(). JSON_NOT_FOUND if absent or cut off.
 */
export function jsonFindRaw(msg: number, len: number, key: JsonKey): number {
  return json().json_find_raw(msg, len, key.ptr, key.len);
}

/** Length of the value found by the last successful jsonFindString/jsonFindRaw. */
export function jsonLastLen(): number {
  return json().json_last_len();
}
