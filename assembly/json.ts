// A minimal JSON key scanner for the per-frame messages (Twilio `media`, OpenAI
// `response.output_audio.delta`), so the hot path never runs JSON.parse over a large base64 string.
//
// It is token-aware but not a validator: it walks the message string by string (skipping string
// contents, escapes included), and a string counts as a key when the next non-whitespace byte is
// ':'. So a key name appearing inside another string value (say a customParameter whose value is
// `"payload":"`) is never mistaken for a key. The first key that matches wins, at any depth.
// Keys are compared byte for byte with their raw (still escaped) text.
//
// All offsets are relative to msg. Nothing is read at or past msg + len: a truncated message
// yields -1, never a partial value.

const QUOTE: u8 = 0x22;
const BACKSLASH: u8 = 0x5c;
const COLON: u8 = 0x3a;

let lastLen: i32 = 0;

/** Length of the value found by the last successful json_find_string / json_find_raw. */
export function json_last_len(): i32 {
  return lastLen;
}

// @ts-ignore: decorator
@inline
function isWs(c: u32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

function skipWs(msg: usize, i: i32, len: i32): i32 {
  while (i < len && isWs(<u32>load<u8>(msg + <usize>i))) i++;
  return i;
}

/** Index of the first '"' at or after i, or len. */
function findQuote(msg: usize, i: i32, len: i32): i32 {
  const q = i8x16.splat(QUOTE);
  while (i + 16 <= len) {
    const m = i8x16.bitmask(i8x16.eq(v128.load(msg + <usize>i), q));
    if (m != 0) return i + ctz(m);
    i += 16;
  }
  while (i < len && load<u8>(msg + <usize>i) != QUOTE) i++;
  return i;
}

/** Index of the first '"' or '\' at or after i, or len. */
function findQuoteOrEscape(msg: usize, i: i32, len: i32): i32 {
  const q = i8x16.splat(QUOTE);
  const b = i8x16.splat(BACKSLASH);
  while (i + 16 <= len) {
    const v = v128.load(msg + <usize>i);
    const m = i8x16.bitmask(v128.or(i8x16.eq(v, q), i8x16.eq(v, b)));
    if (m != 0) return i + ctz(m);
    i += 16;
  }
  while (i < len) {
    const c = load<u8>(msg + <usize>i);
    if (c == QUOTE || c == BACKSLASH) break;
    i++;
  }
  return i;
}

/** Index of the quote closing the string whose contents start at i, or len if unterminated. */
function stringEnd(msg: usize, i: i32, len: i32): i32 {
  while (true) {
    i = findQuoteOrEscape(msg, i, len);
    if (i >= len) return len;
    if (load<u8>(msg + <usize>i) == QUOTE) return i;
    i += 2; // the escaped byte, whatever it is, cannot close the string
  }
}

function bytesEqual(a: usize, b: usize, n: i32): bool {
  for (let k = 0; k < n; k++) {
    if (load<u8>(a + <usize>k) != load<u8>(b + <usize>k)) return false;
  }
  return true;
}

/**
 * Scans from `from` for the next string equal to key that is followed by ':'. Returns the offset
 * of the first non-whitespace byte after the ':', or -1.
 */
function nextKeyValue(msg: usize, from: i32, len: i32, key: usize, keyLen: i32): i32 {
  let i = from;
  while (true) {
    i = findQuote(msg, i, len);
    if (i >= len) return -1;
    const s = i + 1;
    const e = stringEnd(msg, s, len);
    if (e >= len) return -1;
    i = e + 1;
    if (e - s == keyLen && bytesEqual(msg + <usize>s, key, keyLen)) {
      const k = skipWs(msg, i, len);
      if (k < len && load<u8>(msg + <usize>k) == COLON) {
        const v = skipWs(msg, k + 1, len);
        if (v >= len) return -1;
        return v;
      }
    }
  }
}

/**
 * Finds the first `"key"` followed by optional whitespace, ':', optional whitespace and a string,
 * at any depth. Returns the offset of the string's contents (after the opening quote) and sets
 * json_last_len() to their length; -1 if there is none (or the message is truncated); -2 if that
 * string contains a backslash escape (the caller should fall back to a full parser).
 */
export function json_find_string(msg: usize, len: i32, key: usize, keyLen: i32): i32 {
  let i: i32 = 0;
  while (true) {
    const v = nextKeyValue(msg, i, len, key, keyLen);
    if (v < 0) return -1;
    if (load<u8>(msg + <usize>v) == QUOTE) {
      const s = v + 1;
      const e = findQuoteOrEscape(msg, s, len);
      if (e >= len) return -1;
      if (load<u8>(msg + <usize>e) == BACKSLASH) return -2;
      lastLen = e - s;
      return s;
    }
    i = v; // not a string value: keep looking for a later occurrence
  }
}

/**
 * Finds the first `"key"` followed by ':' at any depth and returns the offset of its raw value
 * token, setting json_last_len() to the token's length: a number or literal up to the next ',',
 * '}', ']' or whitespace; a string including its quotes (escapes allowed); an object or array up
 * to its matching bracket. -1 if the key is absent or the value is cut off by the end of input.
 */
export function json_find_raw(msg: usize, len: i32, key: usize, keyLen: i32): i32 {
  const v = nextKeyValue(msg, 0, len, key, keyLen);
  if (v < 0) return -1;
  const c = <u32>load<u8>(msg + <usize>v);
  let e: i32;
  if (c == QUOTE) {
    e = stringEnd(msg, v + 1, len);
    if (e >= len) return -1;
    e++;
  } else if (c == 0x7b || c == 0x5b) {
    // '{' or '[': count brackets outside strings
    let depth = 0;
    e = v;
    while (true) {
      if (e >= len) return -1;
      const d = <u32>load<u8>(msg + <usize>e);
      if (d == QUOTE) {
        e = stringEnd(msg, e + 1, len);
        if (e >= len) return -1;
      } else if (d == 0x7b || d == 0x5b) {
        depth++;
      } else if (d == 0x7d || d == 0x5d) {
        if (--depth == 0) break;
      }
      e++;
    }
    e++;
  } else {
    e = v;
    while (true) {
      if (e >= len) return -1; // no delimiter yet: the token may continue past the cut
      const d = <u32>load<u8>(msg + <usize>e);
      if (d == 0x2c || d == 0x7d || d == 0x5d || isWs(d)) break;
      e++;
    }
    if (e == v) return -1; // ':' followed directly by a delimiter is not a value
  }
  lastLen = e - v;
  return v;
}
