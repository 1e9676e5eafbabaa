// Joins what the generator saw with what the model saw into per-frame latencies.
//
// Inbound (caller -> model): frame headerAt + k of call `id` was sent at sendTimes[headerAt + k]
// (generator clock); the k-th append after the header start arrived at appendTimes[k] (model
// clock, the same monotonic clock). Frames sent before the model session was ready are skipped
// (bridges hold or drop them by design). The barge-in burst is loud, so the first loud append
// after the header must sit at k = bargeAt - headerAt: a call where it does not (a bridge dropped
// or added an append) is reported as misaligned and left out.
//
// Outbound (model -> caller): the model's deltas of the first response cover consecutive spans of
// 8 kHz samples; the generator's media frames (until the first `clear`) cover consecutive spans
// of mu-law bytes (1 byte = 1 sample). A delta's latency is the arrival of the frame holding the
// delta's middle sample minus the delta's send time (the middle, so a resampler's few samples of
// delay cannot move the match to a neighbouring frame).
import type { CallRecord, LoadResult } from './generator.js';
import type { ModelCollect, SessionRecord } from './model-proc.js';
import { HEADER_FRAMES } from './script.js';
import { F64List, summarize, type Summary } from './stats.js';

export interface Latencies {
  inbound: Summary;
  outbound: Summary;
  /** |inter-arrival - previous frame's duration| of the bridge's media frames at the generator (first response). */
  jitter: Summary;
  /** |inter-send - delta length| of the model's deltas: the part of `jitter` not due to the bridge. */
  modelJitter: Summary;
  barge: Summary;
  /** Onset sent -> the caller stops hearing the bot (clear or end of its audio). */
  silenced: Summary;
  matchedCalls: number;
  unmatchedCalls: number;
  misalignedCalls: number;
  /** Frames sent after the model was ready that never reached the model. */
  inboundLost: number;
  /** Latencies below -1 ms (would mean a bad pairing; should be 0). */
  negative: number;
}

/**
 * `exclude`: time windows (e.g. a forced GC for the RSS reading) whose frames are left out: a frame
 * sent, a delta sent or a media frame received inside one does not count.
 */
export function analyze(gen: LoadResult, model: ModelCollect, speed = 1, exclude: Array<[number, number]> = []): Latencies {
  const skip = (t: number) => {
    for (const [a, b] of exclude) if (t >= a && t <= b) return true;
    return false;
  };
  const byId = new Map<number, SessionRecord>();
  for (const r of model.records) if (!byId.has(r.id)) byId.set(r.id, r);
  const inbound = new F64List(1 << 16);
  const outbound = new F64List(1 << 16);
  const jitter = new F64List(1 << 16);
  const modelJitter = new F64List(1 << 16);
  let matched = 0;
  let unmatched = 0;
  let misaligned = 0;
  let lost = 0;
  let negative = 0;

  for (const c of gen.records) {
    if (c.headerAt < 0) continue;
    const m = byId.get(c.id);
    if (!m) {
      unmatched++;
      continue;
    }
    if (!aligned(c, m)) {
      misaligned++;
      continue;
    }
    matched++;
    // inbound
    for (let f = c.headerAt; f < c.sendTimes.length; f++) {
      const sent = c.sendTimes[f];
      if (Number.isNaN(sent) || sent < m.readyAt || Number.isNaN(m.readyAt) || skip(sent)) continue;
      const k = f - c.headerAt;
      if (k >= m.appendTimes.length) {
        lost++;
        continue;
      }
      const lat = m.appendTimes[k] - sent;
      if (lat < -1) negative++;
      inbound.push(lat);
    }
    // outbound
    let j = 0;
    let frameStart = 0;
    let deltaStart = 0;
    for (let i = 0; i < m.deltaTimes.length; i++) {
      const mid = deltaStart + m.deltaSamples[i] / 2;
      deltaStart += m.deltaSamples[i];
      while (j < c.recvTimes.length && frameStart + c.recvBytes[j] <= mid) frameStart += c.recvBytes[j++];
      if (j >= c.recvTimes.length) break;
      if (skip(m.deltaTimes[i]) || skip(c.recvTimes[j])) continue;
      const lat = c.recvTimes[j] - m.deltaTimes[i];
      if (lat < -1) negative++;
      outbound.push(lat);
      if (i > 0) modelJitter.push(Math.abs(m.deltaTimes[i] - m.deltaTimes[i - 1] - m.deltaSamples[i - 1] / 8 / speed));
    }
    for (let i = 1; i < c.recvTimes.length; i++) {
      if (skip(c.recvTimes[i]) || skip(c.recvTimes[i - 1])) continue;
      jitter.push(Math.abs(c.recvTimes[i] - c.recvTimes[i - 1] - c.recvBytes[i - 1] / 8));
    }
  }
  return {
    inbound: summarize(inbound.toArray()),
    outbound: summarize(outbound.toArray()),
    jitter: summarize(jitter.toArray()),
    modelJitter: summarize(modelJitter.toArray()),
    barge: summarize(gen.barge.latencies),
    silenced: summarize(gen.barge.silenced),
    matchedCalls: matched,
    unmatchedCalls: unmatched,
    misalignedCalls: misaligned,
    inboundLost: lost,
    negative,
  };
}

/** The first loud append after the header is where the generator sent its barge-in burst. */
function aligned(c: CallRecord, m: SessionRecord): boolean {
  const bargeAt = c.bargeAt;
  if (bargeAt < 0) return true; // nothing to check against
  const expected = bargeAt - c.headerAt;
  for (let k = HEADER_FRAMES; k < m.loud.length; k++) if (m.loud[k]) return k === expected;
  // The burst never reached the model (e.g. the call was cut short): nothing contradicts.
  return m.loud.length <= expected;
}
