// TwiML for a bidirectional Media Stream: <Response><Connect><Stream url=...>.
//
// Twilio rejects a stream URL that is not wss:// or that carries a query string (errors
// 31920/31922) only when the call is already ringing, so both are checked here, when the TwiML is
// built. Per-call data goes in <Parameter> elements and arrives in `start.customParameters`.
//
// Parameter size: Twilio requires name + value of each <Parameter> to be under 500 characters.
// Parameters over the limit are REJECTED (TwimlError), never truncated: a silently cut tenant id
// or token would route the call wrongly, which is worse than failing the webhook loudly. Length
// is JS string length (UTF-16 code units), which is never less than the character count, so
// anything accepted here is under Twilio's limit by either count.

export interface ConnectStreamOptions {
  /** Public `wss://host/path` of the media-stream endpoint; no query string, no fragment. */
  streamUrl: string;
  /** Optional http(s) URL for stream-started/stopped/error callbacks. */
  statusCallback?: string;
  /** HTTP method for statusCallback (Twilio's default is POST). */
  statusCallbackMethod?: 'GET' | 'POST';
  /** Optional unique stream name (the `name` attribute). */
  name?: string;
  /** Per-call data: each becomes `<Parameter name=".." value=".."/>`, in insertion order. */
  parameters?: Record<string, string>;
}

export class TwimlError extends Error {
  override name = 'TwimlError';
}

/** Max of name.length + value.length for one <Parameter> ("under 500"). */
export const MAX_PARAMETER_LENGTH = 499;

// XML 1.0 cannot carry these at all, escaped or not.
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Escapes text for use inside a double-quoted XML attribute (or element content). */
export function escapeXml(text: string, what = 'value'): string {
  if (XML_INVALID.test(text)) throw new TwimlError(`${what} contains a character XML cannot carry (control character or lone surrogate)`);
  return text.replace(/[&<>"'\t\n\r]/g, (c) => {
    switch (c) {
      case '&': return '&amp;';
      case '<': return '&lt;';
      case '>': return '&gt;';
      case '"': return '&quot;';
      case "'": return '&apos;';
      // Attribute-value normalization would turn raw whitespace into spaces; keep it exact.
      case '\t': return '&#9;';
      case '\n': return '&#10;';
      default: return '&#13;';
    }
  });
}

function checkStreamUrl(raw: string): void {
  if (typeof raw !== 'string' || raw.length === 0) throw new TwimlError('streamUrl is required');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TwimlError(`streamUrl ${JSON.stringify(raw)} is not an absolute URL`);
  }
  if (u.protocol !== 'wss:') {
    throw new TwimlError(`streamUrl must use wss:// (Twilio error 31920), got ${u.protocol}//`);
  }
  if (raw.includes('?')) {
    throw new TwimlError('streamUrl must not contain a query string (Twilio error 31922); pass per-call data as parameters');
  }
  if (raw.includes('#')) throw new TwimlError('streamUrl must not contain a fragment');
  if (u.username || u.password) throw new TwimlError('streamUrl must not contain credentials');
}

function checkCallbackUrl(raw: string): void {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TwimlError(`statusCallback ${JSON.stringify(raw)} is not an absolute URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new TwimlError(`statusCallback must be an http(s) URL, got ${u.protocol}//`);
  }
}

/**
 * Builds the TwiML that connects the call to a bidirectional Media Stream.
 * Throws TwimlError on a non-wss URL, a query string, an empty parameter name, a parameter over
 * MAX_PARAMETER_LENGTH, or text XML cannot represent.
 */
export function connectStreamTwiml(opts: ConnectStreamOptions): string {
  checkStreamUrl(opts.streamUrl);
  let attrs = ` url="${escapeXml(opts.streamUrl, 'streamUrl')}"`;
  if (opts.name !== undefined) {
    if (opts.name.length === 0) throw new TwimlError('stream name must not be empty when given');
    attrs += ` name="${escapeXml(opts.name, 'stream name')}"`;
  }
  if (opts.statusCallback !== undefined) {
    checkCallbackUrl(opts.statusCallback);
    attrs += ` statusCallback="${escapeXml(opts.statusCallback, 'statusCallback')}"`;
  }
  if (opts.statusCallbackMethod !== undefined) {
    if (opts.statusCallbackMethod !== 'GET' && opts.statusCallbackMethod !== 'POST') {
      throw new TwimlError(`statusCallbackMethod must be GET or POST, got ${String(opts.statusCallbackMethod)}`);
    }
    attrs += ` statusCallbackMethod="${opts.statusCallbackMethod}"`;
  }

  let params = '';
  for (const [name, value] of Object.entries(opts.parameters ?? {})) {
    if (typeof value !== 'string') throw new TwimlError(`parameter ${JSON.stringify(name)}: value must be a string`);
    if (name.length === 0) throw new TwimlError('parameter names must not be empty');
    const len = name.length + value.length;
    if (len > MAX_PARAMETER_LENGTH) {
      throw new TwimlError(
        `parameter ${JSON.stringify(name.slice(0, 40))}: name + value is ${len} characters; Twilio requires under 500`,
      );
    }
    params += `<Parameter name="${escapeXml(name, `parameter name ${JSON.stringify(name)}`)}" value="${escapeXml(value, `parameter ${JSON.stringify(name)}`)}"/>`;
  }

  const stream = params ? `<Stream${attrs}>${params}</Stream>` : `<Stream${attrs}/>`;
  return `<?xml version="1.0" encoding="UTF-8"?><Response><Connect>${stream}</Connect></Response>`;
}
