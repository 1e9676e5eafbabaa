// X-Twilio-Signature: base64(HMAC-SHA1(authToken, url + name1 + value1 + name2 + value2 ...)) with
// the POST params sorted by name. Behaviour matches validateRequest/getExpectedTwilioSignature of
// the official `twilio` package (src/webhooks/webhooks.ts):
//  - the URL is signed exactly as given (with its query string);
//  - params sorted by name (JS default sort, i.e. UTF-16 code units); an array value (repeated form
//    field) contributes each DISTINCT value once, sorted, as name+value;
//  - validation tries the URL without its port, with the default port added, and both again with
//    the query string re-encoded the legacy `querystring` way, because Twilio's signing side is
//    inconsistent about both;
//  - comparison in constant time (crypto.timingSafeEqual; different lengths are simply unequal).
// Two deliberate differences: the URL string exactly as given is also tried, and twilio-node adds ":80" for every scheme but https; here wss gets
// ":443" and ws ":80" too, since the Media Streams upgrade is signed over a wss:// URL. For http
// and https the behaviour is identical.
//
// For the WebSocket upgrade Twilio signs the public wss://HOST/path with no params
// (PROTOCOLS.md §1); pass `{}`.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { parse as qsParse, stringify as qsStringify } from 'node:querystring';

export type SignatureParams = Record<string, string | readonly string[] | undefined>;

/** Header carrying the signature (Node lowercases incoming header names). */
export const SIGNATURE_HEADER = 'x-twilio-signature';

function paramData(params: SignatureParams): string {
  let data = '';
  for (const name of Object.keys(params).sort()) {
    const v = params[name];
    if (v === undefined) continue;
    if (typeof v === 'string') {
      data += name + v;
    } else {
      for (const one of Array.from(new Set(v)).sort()) data += name + one;
    }
  }
  return data;
}

/** base64 HMAC-SHA1 over `url` (as given) followed by the sorted params. */
export function computeSignature(authToken: string, url: string, params: SignatureParams = {}): string {
  return createHmac('sha1', authToken).update(Buffer.from(url + paramData(params), 'utf8')).digest('base64');
}

const DEFAULT_PORT: Record<string, string> = { 'https:': '443', 'wss:': '443', 'http:': '80', 'ws:': '80' };

function withoutPort(u: URL): string {
  const c = new URL(u);
  c.port = '';
  return c.toString();
}

function withPort(u: URL): string {
  if (u.port) return u.toString();
  // URL.toString() drops a default port, so the string is built by hand.
  const port = DEFAULT_PORT[u.protocol] ?? '80';
  const auth = u.username || u.password ? `${u.username}${u.password ? ':' + u.password : ''}@` : '';
  return `${u.protocol}//${auth}${u.host}:${port}${u.pathname}${u.search}${u.hash}`;
}

function withLegacyQuerystring(url: string): string {
  const u = new URL(url);
  if (!u.search) return url;
  const qs = qsParse(u.search.slice(1));
  u.search = '';
  return u.toString() + '?' + qsStringify(qs);
}

/** The URL spellings a valid signature may have been computed over (see the header comment). */
export function signatureUrlVariants(url: string): string[] {
  const u = new URL(url);
  const a = withoutPort(u);
  const b = withPort(u);
  // `url` itself is tried too (twilio-node does not): it is exactly what the operator configured.
  return [...new Set([a, b, withLegacyQuerystring(a), withLegacyQuerystring(b), url])];
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  if (x.length !== y.length) return false;
  return timingSafeEqual(x, y);
}

/**
 * True if `signature` (the X-Twilio-Signature header value) is valid for this URL and params.
 * A missing/empty signature or an unparsable URL is simply invalid (false), never a throw.
 */
export function validateRequest(
  authToken: string,
  signature: string | undefined | null,
  url: string,
  params: SignatureParams = {},
): boolean {
  const sig = signature ?? '';
  if (!authToken || sig.length === 0) return false;
  let variants: string[];
  try {
    variants = signatureUrlVariants(url);
  } catch {
    return false;
  }
  let ok = false;
  // Every variant is computed and compared so timing does not reveal which one matched.
  for (const v of variants) ok = safeEqual(sig, computeSignature(authToken, v, params)) || ok;
  return ok;
}

/**
 * Parses an application/x-www-form-urlencoded body (a Twilio webhook POST) into signature params;
 * repeated fields become arrays, as Express' urlencoded parser gives them to twilio-node.
 */
export function formParams(body: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(body)) {
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else out[k] = [prev, v];
  }
  return out;
}
