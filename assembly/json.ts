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
  store<i32>(ONE_KEY, <i32>key);
  store<i32>(ONE_KEY, keyLen, 4);
  json_find_strings(msg, len, ONE_KEY, 1);
  const r = load<i32>(FOUND_OFF);
  if (r >= 0) lastLen = load<i32>(FOUND_LEN);
  return r;
}

// Results of the last json_find_strings, per key: offset, -1 or -2; and length.
const MULTI_MAX: i32 = 4;
const FOUND_OFF: usize = memory.data(MULTI_MAX * 4, 16);
const FOUND_LEN: usize = memory.data(MULTI_MAX * 4, 16);
// The key table of json_find_string.
const ONE_KEY: usize = memory.data(8, 8);

/**
 * json_find_string for up to four keys in one pass over the message: `keys` points to `count`
 * (pointer, length) pairs of i32. Afterwards json_found(k) is exactly what
 * json_find_string(msg, len, key k) returns (offset, -1 or -2) and json_found_len(k) the value's
 * length. Returns how many keys got an offset. The walk stops once every key is settled.
 *
 * The walk is the one described at the top (every string in order, a key when ':' follows),
 * shared by all keys: each key's own walk would visit the same strings, so it settles at the
 * same one. Two implementations of it: walkPlain for messages without backslashes (all real
 * media and delta messages), and the general `walk` for the rest.
 */
export function json_find_strings(msg: usize, len: i32, keys: usize, count: i32): i32 {
  count = min(max(count, 0), MULTI_MAX);
  clearFound(count);
  if (count == 0) return 0;
  // Short messages take the general walk, and so do messages with a backslash before the walk
  // is done: the plain walk stops there and the general one starts over.
  if (len >= 16) {
    const r = walkPlain(msg, len, keys, count);
    if (r >= 0) return r;
    clearFound(count);
  }
  return walk(msg, len, keys, count);
}

function clearFound(count: i32): void {
  for (let k = 0; k < count; k++) {
    store<i32>(FOUND_OFF + (<usize>k << 2), -1);
    store<i32>(FOUND_LEN + (<usize>k << 2), 0);
  }
}

// Rare state of walkPlain, kept out of its registers.
let plainKeys: usize = 0;
let plainCount: i32 = 0;
let plainPending: i32 = 0;
let plainFound: i32 = 0;
let plainValueAt: i32 = -1;
let plainValueKeys: i32 = 0;
// Splats, loaded rather than built: V8 rebuilds a constant splat at every use inside a loop.
const PLAIN_CONSTS: usize = memory.data<u8>([
  0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
  0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c, 0x5c,
], 16);

/**
 * The walk for a message without backslashes (so every string runs from a quote to the next
 * quote): quote bitmasks 64 bytes at a time, strings as pairs of bits. A string is looked at
 * more closely only if its length and first byte are those of a key still pending (or it is a
 * value being waited for). Returns the number of keys found, or -1 when it meets a backslash
 * before every key is settled.
 */
function walkPlain(msg: usize, len: i32, keys: usize, count: i32): i32 {
  plainKeys = keys;
  plainCount = count;
  plainPending = (1 << count) - 1;
  plainFound = 0;
  plainValueAt = -1;
  // (length | first byte << 8) of each key; the first byte of an empty string is its closing
  // quote. -1 never matches.
  let sig0 = -1, sig1 = -1, sig2 = -1, sig3 = -1;
  for (let j = 0; j < count; j++) {
    const kp = keys + (<usize>j << 3);
    const n = load<i32>(kp, 4);
    const sig = n | (n == 0 ? <i32>QUOTE : <i32>load<u8>(load<usize>(kp))) << 8;
    if (j == 0) sig0 = sig;
    else if (j == 1) sig1 = sig;
    else if (j == 2) sig2 = sig;
    else sig3 = sig;
  }
  const q = v128.load(PLAIN_CONSTS);
  const b = v128.load(PLAIN_CONSTS, 16);
  let valueAt = -1;
  let open = -1; // the current string's opening quote, -1 between strings
  let i = 0;
  while (i < len) {
    let m: u64;
    let step: i32;
    if (i + 64 <= len) {
      const v0 = v128.load(msg + <usize>i);
      const v1 = v128.load(msg + <usize>i, 16);
      const v2 = v128.load(msg + <usize>i, 32);
      const v3 = v128.load(msg + <usize>i, 48);
      const bs = v128.or(v128.or(i8x16.eq(v0, b), i8x16.eq(v1, b)), v128.or(i8x16.eq(v2, b), i8x16.eq(v3, b)));
      if (v128.any_true(bs)) return -1;
      m = <u64><u32>(i8x16.bitmask(i8x16.eq(v0, q)) | i8x16.bitmask(i8x16.eq(v1, q)) << 16) |
        <u64><u32>(i8x16.bitmask(i8x16.eq(v2, q)) | i8x16.bitmask(i8x16.eq(v3, q)) << 16) << 32;
      step = 64;
    } else {
      // 16 bytes at a time; the last block is the message's last 16 bytes (len >= 16), less the
      // ones already seen
      const at = min(i, len - 16);
      const v = v128.load(msg + <usize>at);
      const shift = i - at;
      if ((i8x16.bitmask(i8x16.eq(v, b)) >>> shift) != 0) return -1;
      m = <u64>(<u32>i8x16.bitmask(i8x16.eq(v, q)) >>> shift);
      step = 16;
    }
    while (m != 0) {
      const k = i + <i32>ctz(m);
      m &= m - 1;
      if (open < 0) {
        open = k;
        continue;
      }
      const s = open + 1;
      const at = open;
      open = -1;
      if (at == valueAt) {
        if (plainValue(s, k)) return plainFound;
        valueAt = -1;
      }
      // A key is followed by ':', perhaps after whitespace; other strings cannot be one.
      const next = k + 1 < len ? <u32>load<u8>(msg + <usize>(k + 1)) : 0;
      if (next != COLON && !isWs(next)) continue;
      const sig = (k - s) | <i32>load<u8>(msg + <usize>s) << 8;
      if (sig == sig0 || sig == sig1 || sig == sig2 || sig == sig3) {
        if (plainKey(msg, len, s, k)) return plainFound;
        valueAt = plainValueAt;
      }
    }
    i += step;
  }
  return plainFound;
}

// The value [s, e) that walkPlain was waiting for: settles its keys; true when none is left.
function plainValue(s: i32, e: i32): bool {
  const which = plainValueKeys;
  plainValueAt = -1;
  settle(which, plainCount, s, e - s);
  plainFound += popcnt(which);
  plainPending &= ~which;
  return plainPending == 0;
}

// A string [s, e) of walkPlain that may be a pending key (length and first byte match, and ':'
// or whitespace follows). If it is one and a string value follows, walkPlain waits for that
// value (plainValueAt). True when the walk is done: nothing but whitespace is left.
function plainKey(msg: usize, len: i32, s: i32, e: i32): bool {
  const n = e - s;
  let hit = 0;
  for (let j = 0; j < plainCount; j++) {
    const kp = plainKeys + (<usize>j << 3);
    if (((plainPending >> j) & 1) != 0 && load<i32>(kp, 4) == n && bytesEqual(msg + <usize>s, load<usize>(kp), n)) {
      hit |= 1 << j;
    }
  }
  if (hit == 0) return false;
  let colon = e + 1;
  if (load<u8>(msg + <usize>colon) != COLON) {
    colon = skipWs(msg, colon, len);
    if (colon >= len) return true;
    if (load<u8>(msg + <usize>colon) != COLON) return false;
  }
  let v = colon + 1;
  if (v < len && load<u8>(msg + <usize>v) != QUOTE) v = skipWs(msg, v, len);
  if (v >= len) return true;
  if (load<u8>(msg + <usize>v) == QUOTE) {
    plainValueAt = v;
    plainValueKeys = hit;
  }
  return false;
}

// The general walk of json_find_strings (results already reset). It looks at quotes and
// backslashes only: a bitmask of them per 16 bytes, then bit by bit. In a string a backslash hides
// the next byte; outside strings it means nothing.
function walk(msg: usize, len: i32, keys: usize, count: i32): i32 {
  let pending = (1 << count) - 1;
  const q = i8x16.splat(QUOTE);
  const b = i8x16.splat(BACKSLASH);
  let found = 0;
  let inString = false;
  let s = 0; // contents of the current string start here
  let valueOf = 0; // keys whose value is the current string
  let valueAt = -1; // where the opening quote of the value of `valueKeys` is
  let valueKeys = 0;
  let skipTo = 0; // an escape hides the byte after the backslash
  for (let i = 0; i < len; i += 16) {
    let m: i32;
    if (i + 16 <= len) {
      const v = v128.load(msg + <usize>i);
      m = i8x16.bitmask(v128.or(i8x16.eq(v, q), i8x16.eq(v, b)));
    } else if (len >= 16) {
      // the last 16 bytes, without the ones already seen
      const v = v128.load(msg + <usize>(len - 16));
      m = i8x16.bitmask(v128.or(i8x16.eq(v, q), i8x16.eq(v, b))) >>> (i - (len - 16));
    } else {
      m = 0;
      for (let k = 0; k < len; k++) {
        const c = load<u8>(msg + <usize>k);
        if (c == QUOTE || c == BACKSLASH) m |= 1 << k;
      }
    }
    while (m != 0) {
      const k = i + ctz(m);
      m &= m - 1;
      if (k < skipTo) continue;
      const c = load<u8>(msg + <usize>k);
      if (!inString) {
        if (c != QUOTE) continue;
        inString = true;
        s = k + 1;
        valueOf = k == valueAt ? valueKeys : 0;
        continue;
      }
      if (c == BACKSLASH) {
        if (valueOf != 0) {
          settle(valueOf, count, -2, 0); // an escaped value: the caller parses the message
          pending &= ~valueOf;
          valueOf = 0;
          if (pending == 0) return found;
        }
        skipTo = k + 2;
        continue;
      }
      // the closing quote of [s, k)
      inString = false;
      if (valueOf != 0) {
        settle(valueOf, count, s, k - s);
        found += popcnt(valueOf);
        pending &= ~valueOf;
        valueOf = 0;
        if (pending == 0) return found;
      }
      const n = k - s;
      let hit = 0;
      for (let j = 0; j < count; j++) {
        const kp = keys + (<usize>j << 3);
        if (((pending >> j) & 1) != 0 && load<i32>(kp, 4) == n && bytesEqual(msg + <usize>s, load<usize>(kp), n)) {
          hit |= 1 << j;
        }
      }
      if (hit == 0) continue;
      const colon = skipWs(msg, k + 1, len);
      if (colon >= len) return found; // only whitespace is left: no more strings
      if (load<u8>(msg + <usize>colon) != COLON) continue;
      const v = skipWs(msg, colon + 1, len);
      if (v >= len) return found;
      // A string value settles these keys at its first quote or backslash; any other value
      // leaves them to a later occurrence.
      if (load<u8>(msg + <usize>v) == QUOTE) {
        valueAt = v;
        valueKeys = hit;
      }
    }
  }
  return found;
}

// @ts-ignore: decorator
@inline
function settle(which: i32, count: i32, off: i32, n: i32): void {
  for (let j = 0; j < count; j++) {
    if (((which >> j) & 1) != 0) {
      store<i32>(FOUND_OFF + (<usize>j << 2), off);
      store<i32>(FOUND_LEN + (<usize>j << 2), n);
    }
  }
}

/** Result for key k of the last json_find_strings: offset, -1 (not found) or -2 (escaped). */
export function json_found(k: i32): i32 {
  return <u32>k < <u32>MULTI_MAX ? load<i32>(FOUND_OFF + (<usize>k << 2)) : -1;
}

/** Length of key k's value in the last json_find_strings (0 unless json_found(k) >= 0). */
export function json_found_len(k: i32): i32 {
  return <u32>k < <u32>MULTI_MAX ? load<i32>(FOUND_LEN + (<usize>k << 2)) : 0;
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
