// Offline measurement behind the echo (speakerphone) barge-in settings: runs the bridge's VAD
// (src/dsp/vad.ts, the same WASM kernel) frame by frame over the echo fixtures and the noisy
// utterances with the "bot may echo" input the bridge would give it, for a grid of settings, and
// prints false barge-ins vs detection delay. Not a test: `npx tsx test/e2e/tools/echo-sweep.ts`.
//
// Two ways to tell the VAD about the bot:
//  flag  - today's bridge: a boolean "bot audible (+ ECHO_TAIL_MS)" and fixed bot-mode parameters
//          relative to the noise floor (VAD_BOT_THRESHOLD_DB / VAD_BOT_MIN_SPEECH_MS);
//  ref   - the bridge knows what it played: the bot-mode threshold follows the loudest bot frame
//          played in the last ECHO_WINDOW_MS, minus an assumed echo return loss margin K
//          (threshold = max(floor + normal threshold, refMax - K)).
import { decodeMulaw } from '../../../src/dsp/g711.js';
import { Vad, type VadParams } from '../../../src/dsp/vad.js';
import { fixtureInfo, fixturePcm, manifest } from '../harness.js';

/** Energy of each 20 ms frame, dBFS (offline helper; the bridge gets these from WASM). */
export function frameEnergiesDb(pcm: Int16Array): Float64Array {
  const out = new Float64Array(Math.ceil(pcm.length / FRAME));
  for (let k = 0; k < out.length; k++) {
    let s = 0;
    for (let i = k * FRAME; i < Math.min(pcm.length, (k + 1) * FRAME); i++) s += pcm[i] * pcm[i];
    out[k] = 10 * Math.log10(s / FRAME / 32768 ** 2 + 1e-10);
  }
  return out;
}

/**
 * As EchoGate.refMaxDb (src/bridge/echo.ts): the loudest bot frame that played some of its 20 ms
 * within [t - windowMs, t); bot frame j plays from botStartMs + 20 j.
 */
export function refMaxDb(ref: Float64Array, botStartMs: number, t: number, windowMs: number): number {
  let m = -Infinity;
  for (let j = 0; j < ref.length; j++) {
    const s = botStartMs + 20 * j;
    if (s > t - windowMs - 20 && s < t && ref[j] > m) m = ref[j];
  }
  return m;
}

const FRAME = 160;
export type Scheme =
  | { kind: 'flag'; botThresholdDb: number; botMinSpeechMs: number; echoTailMs: number }
  | { kind: 'ref'; k: number; botMinSpeechMs: number; windowMs: number; echoTailMs: number; adaptS?: number };

const NORMAL: Pick<VadParams, 'thresholdDb' | 'minSpeechMs' | 'hangoverMs'> = { thresholdDb: 8, minSpeechMs: 20, hangoverMs: 300 };

/** Onset frames when `inbound` plays against bot audio `bot` starting at `botStartMs`. */
export function onsets(inbound: Int16Array, bot: Int16Array | null, botStartMs: number, s: Scheme): { frame: number; audible: boolean }[] {
  const vad = new Vad({ ...NORMAL, botThresholdDb: s.kind === 'flag' ? s.botThresholdDb : NORMAL.thresholdDb, botMinSpeechMs: s.botMinSpeechMs });
  const ref = bot ? frameEnergiesDb(bot) : new Float64Array(0);
  const botEndMs = botStartMs + (bot ? bot.length / 8 : 0);
  const out: { frame: number; audible: boolean }[] = [];
  // Adaptive variant: the smallest (bot level - inbound level) seen once the bot has played for a
  // whole window bounds the real echo return loss; it only ever relaxes the margin.
  let erlObs = Infinity;
  for (let k = 0; k * FRAME < inbound.length; k++) {
    const t = (k + 1) * 20; // the frame arrives at the end of its audio
    const audible = bot !== null && t > botStartMs && t < botEndMs + 20;
    let botFlag = bot !== null && t > botStartMs && t < botEndMs + s.echoTailMs;
    if (s.kind === 'ref') {
      const m = bot ? refMaxDb(ref, botStartMs, t, s.windowMs) : -Infinity;
      botFlag = m > -Infinity;
      const kEff = s.adaptS !== undefined && erlObs < Infinity ? Math.max(s.k, erlObs - s.adaptS) : s.k;
      const thr = botFlag ? Math.max(NORMAL.thresholdDb, m - kEff - vad.floorDb) : NORMAL.thresholdDb;
      vad.setParams({ botThresholdDb: thr });
    }
    const f = vad.process(inbound.subarray(k * FRAME, (k + 1) * FRAME), botFlag);
    if (s.kind === 'ref' && s.adaptS !== undefined && bot && t - botStartMs >= s.windowMs) {
      const m = refMaxDb(ref, botStartMs, t, s.windowMs);
      if (m > -Infinity) erlObs = Math.min(erlObs, m - vad.energyDb);
    }
    if (f & 2) out.push({ frame: k, audible });
  }
  vad.free();
  return out;
}

function tile(src: Int16Array, n: number): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = src[i % src.length];
  return out;
}

export interface EchoCase { name: string; only: Int16Array; withCaller: Int16Array; normal: Int16Array; callerOnsetMs: number; botStartMs: number }

export function echoCases(): EchoCase[] {
  const out: EchoCase[] = [];
  for (const f of manifest().files) {
    if (f.kind !== 'echo' || !f.caller) continue;
    const withCaller = fixturePcm(f.file);
    const only = fixturePcm(f.file.replace('_caller', '_only'));
    // The caller alone over the same line noise: the difference isolates the caller, the part
    // before the echo starts is the noise.
    const noise = only.slice(0, Math.floor((f.botStartMs! + f.delayMs!) * 8 * 0.9));
    const normal = tile(noise, withCaller.length);
    for (let i = 0; i < normal.length; i++) normal[i] = Math.max(-32768, Math.min(32767, normal[i] + withCaller[i] - only[i]));
    out.push({ name: f.file.replace('_caller.wav', ''), only, withCaller, normal, callerOnsetMs: f.onsetMs!, botStartMs: f.botStartMs! });
  }
  return out;
}

export function firstOnsetFrame(inbound: Int16Array): number {
  const r = onsets(inbound, null, 0, { kind: 'flag', botThresholdDb: 99, botMinSpeechMs: 20, echoTailMs: 0 });
  return r.length ? r[0].frame : -1;
}

async function main(): Promise<void> {
  const bot = fixturePcm('echo_bot_outbound.wav');
  const cases = echoCases();
  const normalFrames = cases.map((c) => firstOnsetFrame(c.normal));
  const utts = manifest().files.filter((f) => f.file.startsWith('u') && f.onsetMs !== undefined);
  const schemes: Scheme[] = [];
  const full = process.argv.includes('--full');
  const thrs = full ? [12, 16, 18, 20, 22, 25, 28, 30, 32, 35] : [22, 28, 32];
  const mins = full ? [20, 40, 60, 100, 150] : [20, 40, 150];
  for (const thr of thrs) for (const min of mins) schemes.push({ kind: 'flag', botThresholdDb: thr, botMinSpeechMs: min, echoTailMs: 400 });
  for (const k of full ? [0, 3, 6, 8, 10, 12] : [6, 8, 10]) for (const min of full ? [20, 40, 60] : [20, 40]) for (const w of full ? [300, 400, 500] : [400, 500]) {
    schemes.push({ kind: 'ref', k, botMinSpeechMs: min, windowMs: w, echoTailMs: 400 });
  }
  for (const a of [3, 6, 10]) for (const min of [20, 40]) schemes.push({ kind: 'ref', k: 8, botMinSpeechMs: min, windowMs: 400, echoTailMs: 400, adaptS: a });
  // Baseline: the same utterances with no bot at all.
  {
    const lat: number[] = [];
    let missed = 0;
    for (const u of utts) {
      const on = onsets(fixturePcm(u.file), null, 0, { kind: 'flag', botThresholdDb: 99, botMinSpeechMs: 20, echoTailMs: 0 })
        .filter((o) => (o.frame + 1) * 20 > u.onsetMs! - 100);
      if (!on.length) missed++;
      else lat.push((on[0].frame + 1) * 20 - u.onsetMs!);
    }
    lat.sort((a, b) => a - b);
    console.log(`no bot at all: u* mixes missed ${missed}/${utts.length}, median ${lat[lat.length >> 1]} ms, max ${lat[lat.length - 1]} ms after the reference onset`);
  }
  console.log(`normal detection (no bot) frames: ${cases.map((c, i) => `${c.name} ${normalFrames[i]} (${(normalFrames[i] + 1) * 20 - c.callerOnsetMs} ms after onset)`).join(', ')}`);
  console.log('scheme | false barge-ins on echo-only | caller-over-echo delay vs normal, frames | no-echo barge-in (u* mixes, bot playing): missed / median / max ms after ref onset');
  for (const s of schemes) {
    let falses = 0;
    const delays: string[] = [];
    cases.forEach((c, i) => {
      falses += onsets(c.only, bot, c.botStartMs, s).filter((o) => o.audible).length;
      const on = onsets(c.withCaller, bot, c.botStartMs, s).filter((o) => o.audible);
      const early = on.filter((o) => (o.frame + 1) * 20 <= c.callerOnsetMs);
      const hit = on.find((o) => (o.frame + 1) * 20 > c.callerOnsetMs);
      delays.push(early.length ? `false@${early[0].frame}` : hit ? String(hit.frame - normalFrames[i]) : 'miss');
    });
    const lat: number[] = [];
    let missed = 0;
    for (const u of utts) {
      const inb = fixturePcm(u.file);
      const on = onsets(inb, bot, 0, s).filter((o) => (o.frame + 1) * 20 > u.onsetMs! - 100);
      if (!on.length) missed++;
      else lat.push((on[0].frame + 1) * 20 - u.onsetMs!);
    }
    lat.sort((a, b) => a - b);
    const desc = s.kind === 'flag' ? `flag thr=${s.botThresholdDb} min=${s.botMinSpeechMs}`
      : `ref K=${s.k} min=${s.botMinSpeechMs} win=${s.windowMs}${s.adaptS !== undefined ? ` adapt-${s.adaptS}` : ''}`;
    console.log(`${desc.padEnd(30)} | ${String(falses).padStart(3)} | ${delays.join(' ').padEnd(12)} | ${missed}/${utts.length} ${lat[lat.length >> 1] ?? '-'} ${lat[lat.length - 1] ?? '-'}`);
  }
}

if (process.argv[1]?.endsWith('echo-sweep.ts')) await main();
void decodeMulaw;
void fixtureInfo;
