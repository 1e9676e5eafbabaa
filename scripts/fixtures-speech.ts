// Numeric half of scripts/make-speech-fixtures.sh: levels, SNR scaling, placement, mixing, the
// echo timeline and the manifest. The shell script does the espeak-ng/sox work (synthesis,
// resampling, noise generation, mu-law encoding and decoding) and calls this in two passes:
//
//   tsx scripts/fixtures-speech.ts build <work dir>      16-bit WAVs + a draft manifest in <work>/out16
//   tsx scripts/fixtures-speech.ts refs  <work dir> <fixture dir>
//                                                        reference onsets from the sox-DECODED
//                                                        mu-law files, so they describe exactly
//                                                        what is committed; writes manifest.json
//
// Definitions (also written into the manifest):
// - block: 10 ms (80 samples at 8 kHz), aligned to sample 0 of the file.
// - block energy: 10*log10(mean(x^2) / 32768^2) dBFS.
// - speech-active blocks: blocks of the CLEAN placed speech whose energy exceeds -40 dBFS.
// - active speech level: 10*log10 of the mean clean power over the active blocks.
// - SNR: active speech level minus the mean noise power over the SAME blocks (the noise actually
//   under the speech, which matters for brown noise whose short-term power wanders).
// - reference onset: the first active block of the clean speech; reference offset: the last.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const RATE = 8000;
const BLOCK = 80;
const ACTIVE_DBFS = -40;
const FS2 = 32768 * 32768;

// ---- WAV io (PCM16 and G.711 mu-law, mono) -------------------------------------------------

function decodeMulawByte(b: number): number {
  const u = ~b & 0xff;
  const exp = (u >> 4) & 7;
  const mag = ((((u & 0x0f) << 3) + 0x84) << exp) - 0x84;
  return u & 0x80 ? -mag : mag;
}

export function readWav(path: string): Float64Array {
  const buf = readFileSync(path);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error(`${path}: not a RIFF/WAVE file`);
  }
  let off = 12;
  let fmt = -1;
  let bits = 0;
  let channels = 0;
  let rate = 0;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      fmt = buf.readUInt16LE(body);
      channels = buf.readUInt16LE(body + 2);
      rate = buf.readUInt32LE(body + 4);
      bits = buf.readUInt16LE(body + 14);
      if (fmt === 0xfffe) fmt = buf.readUInt16LE(body + 24); // extensible: sub-format GUID
    } else if (id === 'data') {
      if (channels !== 1 || rate !== RATE) throw new Error(`${path}: want mono ${RATE} Hz`);
      const end = Math.min(body + size, buf.length);
      if (fmt === 1 && bits === 16) {
        const out = new Float64Array((end - body) >> 1);
        for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(body + 2 * i);
        return out;
      }
      if (fmt === 7 && bits === 8) {
        const out = new Float64Array(end - body);
        for (let i = 0; i < out.length; i++) out[i] = decodeMulawByte(buf[body + i]);
        return out;
      }
      throw new Error(`${path}: unsupported format ${fmt}/${bits}`);
    }
    off = body + size + (size & 1);
  }
  throw new Error(`${path}: no data chunk`);
}

function writeWav16(path: string, x: Float64Array): number {
  const n = x.length;
  const buf = Buffer.alloc(44 + 2 * n);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + 2 * n, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(RATE, 24);
  buf.writeUInt32LE(RATE * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(2 * n, 40);
  let clipped = 0;
  for (let i = 0; i < n; i++) {
    let v = Math.round(x[i]);
    if (v > 32767 || v < -32768) {
      clipped++;
      v = Math.max(-32768, Math.min(32767, v));
    }
    buf.writeInt16LE(v, 44 + 2 * i);
  }
  writeFileSync(path, buf);
  return clipped;
}

// ---- measurements ------------------------------------------------------------------------

export function blockDb(x: Float64Array): number[] {
  const out: number[] = [];
  for (let b = 0; (b + 1) * BLOCK <= x.length; b++) {
    let s = 0;
    for (let i = b * BLOCK; i < (b + 1) * BLOCK; i++) s += x[i] * x[i];
    out.push(s === 0 ? -120 : 10 * Math.log10(s / BLOCK / FS2));
  }
  return out;
}

function activeBlocks(clean: Float64Array): number[] {
  const db = blockDb(clean);
  const act: number[] = [];
  db.forEach((d, i) => {
    if (d > ACTIVE_DBFS) act.push(i);
  });
  return act;
}

function meanPowerOver(x: Float64Array, blocks: number[]): number {
  let s = 0;
  for (const b of blocks) for (let i = b * BLOCK; i < (b + 1) * BLOCK; i++) s += x[i] * x[i];
  return s / (blocks.length * BLOCK);
}

function meanPower(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s / x.length;
}

const dbfs = (p: number) => 10 * Math.log10(p / FS2);
const round2 = (v: number) => Math.round(v * 100) / 100;

function scale(x: Float64Array, g: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * g;
  return y;
}

/** Scales speech so its active level (blocks above -40 dBFS after scaling) is `levelDb`. */
function normalizeActive(x: Float64Array, levelDb: number): Float64Array {
  let y = x;
  for (let it = 0; it < 6; it++) {
    const act = activeBlocks(y);
    const cur = dbfs(meanPowerOver(y, act));
    y = scale(y, 10 ** ((levelDb - cur) / 20));
  }
  return y;
}

/** Drops espeak's own leading/trailing silence so the lead-in we add is the only one. */
function trimSilence(x: Float64Array): Float64Array {
  let a = 0;
  let b = x.length;
  while (a < b && Math.abs(x[a]) <= 2) a++;
  while (b > a && Math.abs(x[b - 1]) <= 2) b--;
  return x.slice(a, b);
}

function place(x: Float64Array, leadMs: number, totalSamples: number): Float64Array {
  const y = new Float64Array(totalSamples);
  y.set(x.subarray(0, Math.max(0, Math.min(x.length, totalSamples - (leadMs * RATE) / 1000))), (leadMs * RATE) / 1000);
  return y;
}

function add(a: Float64Array, b: Float64Array, gb = 1): Float64Array {
  const y = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i] + gb * b[i];
  return y;
}

// ---- the plan --------------------------------------------------------------------------

interface Utt {
  id: string;
  voice: string;
  text: string;
  levelDbfs: number;
  leadInMs: number;
}
const COLOURS = ['white', 'pink', 'brown'] as const;
const SNRS = [30, 20, 10];
const TAIL_MS = 300;
const BED_SECONDS = 4;
const BED_LEVEL_DBFS = -35;
const EARLY_LEAD_MS = 300;
const EARLY_SNR = 20;

interface Plan {
  utterances: Utt[];
  early: string; // utterance id used for the "caller speaks 300 ms into the call" fixtures
  bot: { voice: string; text: string; levelDbfs: number };
  caller: { voice: string; text: string; levelDbfs: number };
}

function noiseSegment(noise: Float64Array, cursor: { at: number }, n: number): Float64Array {
  if (cursor.at + n > noise.length) cursor.at = 0;
  const seg = noise.slice(cursor.at, cursor.at + n);
  cursor.at += n + 4001; // distinct, non-overlapping stretches for each use
  return seg;
}

function build(work: string): void {
  const plan = JSON.parse(readFileSync(join(work, 'plan.json'), 'utf8')) as Plan;
  const out = join(work, 'out16');
  mkdirSync(out, { recursive: true });
  const noises: Record<string, Float64Array> = {};
  const cursors: Record<string, { at: number }> = {};
  for (const c of COLOURS) {
    noises[c] = readWav(join(work, `noise_${c}.wav`));
    cursors[c] = { at: 0 };
  }
  const files: Record<string, unknown>[] = [];
  let clippedTotal = 0;
  const emit = (name: string, x: Float64Array, meta: Record<string, unknown>) => {
    clippedTotal += writeWav16(join(out, name), x);
    files.push({ file: name, samples: x.length, ...meta });
  };

  const mixWith = (clean: Float64Array, colour: string, snr: number) => {
    const act = activeBlocks(clean);
    const seg = noiseSegment(noises[colour], cursors[colour], clean.length);
    const s = meanPowerOver(clean, act);
    const n = meanPowerOver(seg, act);
    const g = Math.sqrt(s / (n * 10 ** (snr / 10)));
    const noise = scale(seg, g);
    return {
      mix: add(clean, noise),
      noiseLevelDbfs: round2(dbfs(meanPower(noise))),
      noiseUnderSpeechDbfs: round2(dbfs(meanPowerOver(noise, act))),
    };
  };

  for (const u of plan.utterances) {
    const raw = trimSilence(readWav(join(work, `${u.id}.wav`)));
    const speech = normalizeActive(raw, u.levelDbfs);
    const total = Math.ceil(((u.leadInMs + TAIL_MS) * RATE) / 1000 + speech.length);
    const clean = place(speech, u.leadInMs, total + ((BLOCK * 2 - (total % (BLOCK * 2))) % (BLOCK * 2)));
    emit(`${u.id}_clean.wav`, clean, { kind: 'clean', utterance: u.id });
    for (const colour of COLOURS) {
      for (const snr of SNRS) {
        const m = mixWith(clean, colour, snr);
        emit(`${u.id}_${colour}_${snr}db.wav`, m.mix, {
          kind: 'mix',
          utterance: u.id,
          clean: `${u.id}_clean.wav`,
          noise: colour,
          snrDb: snr,
          noiseLevelDbfs: m.noiseLevelDbfs,
          noiseUnderSpeechDbfs: m.noiseUnderSpeechDbfs,
        });
      }
    }
    if (u.id === plan.early) {
      const lead = EARLY_LEAD_MS;
      const t = Math.ceil(((lead + TAIL_MS) * RATE) / 1000 + speech.length);
      const early = place(speech, lead, t + ((BLOCK * 2 - (t % (BLOCK * 2))) % (BLOCK * 2)));
      emit(`${u.id}_early_clean.wav`, early, { kind: 'clean', utterance: u.id, leadInMs: lead });
      for (const colour of COLOURS) {
        const m = mixWith(early, colour, EARLY_SNR);
        emit(`${u.id}_early_${colour}_${EARLY_SNR}db.wav`, m.mix, {
          kind: 'early',
          utterance: u.id,
          clean: `${u.id}_early_clean.wav`,
          noise: colour,
          snrDb: EARLY_SNR,
          leadInMs: lead,
          noiseLevelDbfs: m.noiseLevelDbfs,
          noiseUnderSpeechDbfs: m.noiseUnderSpeechDbfs,
        });
      }
    }
  }

  // Noise-only beds, and a mains hum (60 Hz + harmonics) over a faint white bed.
  const bedN = BED_SECONDS * RATE;
  for (const colour of COLOURS) {
    const seg = noiseSegment(noises[colour], cursors[colour], bedN);
    const bed = scale(seg, Math.sqrt((FS2 * 10 ** (BED_LEVEL_DBFS / 10)) / meanPower(seg)));
    emit(`bed_${colour}.wav`, bed, { kind: 'bed', noise: colour, levelDbfs: BED_LEVEL_DBFS });
  }
  {
    const hum = new Float64Array(bedN);
    const harmonics = [
      [60, 1],
      [120, 0.5],
      [180, 0.7],
      [300, 0.3],
      [420, 0.15],
    ];
    for (let i = 0; i < bedN; i++) {
      let v = 0;
      for (const [f, a] of harmonics) v += a * Math.sin((2 * Math.PI * f * i) / RATE + f);
      hum[i] = v;
    }
    const humLevel = -40;
    const h = scale(hum, Math.sqrt((FS2 * 10 ** (humLevel / 10)) / meanPower(hum)));
    const seg = noiseSegment(noises.white, cursors.white, bedN);
    const w = scale(seg, Math.sqrt((FS2 * 10 ** (-60 / 10)) / meanPower(seg)));
    emit('bed_hum.wav', add(h, w), { kind: 'bed', noise: 'hum60+white', levelDbfs: humLevel });
  }

  // Echo: the bot's outbound audio, and the inbound track carrying it back delayed and attenuated.
  const botSpeech = normalizeActive(trimSilence(readWav(join(work, 'bot.wav'))), plan.bot.levelDbfs);
  const callerSpeech = normalizeActive(trimSilence(readWav(join(work, 'caller.wav'))), plan.caller.levelDbfs);
  emit('echo_bot_outbound.wav', botSpeech, { kind: 'echo-bot' });
  emit('echo_caller_clean.wav', callerSpeech, { kind: 'echo-caller' });
  const botStartMs = 1000;
  const callerStartMs = 2500;
  const echoNoiseDbfs = -55;
  const botMs = Math.ceil((botSpeech.length * 1000) / RATE / 10) * 10;
  const totalMs = botStartMs + 300 + botMs + 500;
  const echoTotal = (totalMs * RATE) / 1000;
  const variants = [
    { delayMs: 120, gainDb: -10 },
    { delayMs: 250, gainDb: -18 },
  ];
  const noiseBed = (() => {
    const seg = noiseSegment(noises.pink, cursors.pink, echoTotal);
    return scale(seg, Math.sqrt((FS2 * 10 ** (echoNoiseDbfs / 10)) / meanPower(seg)));
  })();
  const callerPlaced = place(callerSpeech, callerStartMs, echoTotal);
  for (const v of variants) {
    const echo = scale(place(botSpeech, botStartMs + v.delayMs, echoTotal), 10 ** (v.gainDb / 20));
    const base = add(noiseBed, echo);
    const tag = `d${v.delayMs}_g${-v.gainDb}`;
    const meta = {
      kind: 'echo',
      botStartMs,
      botEndMs: botStartMs + Math.round((botSpeech.length * 1000) / RATE),
      delayMs: v.delayMs,
      gainDb: v.gainDb,
      noise: 'pink',
      noiseLevelDbfs: echoNoiseDbfs,
      echoActiveLevelDbfs: plan.bot.levelDbfs + v.gainDb,
    };
    emit(`echo_${tag}_only.wav`, base, { ...meta, caller: null });
    emit(`echo_${tag}_caller.wav`, add(base, callerPlaced), {
      ...meta,
      caller: { file: 'echo_caller_clean.wav', startMs: callerStartMs, levelDbfs: plan.caller.levelDbfs },
    });
  }
  writeFileSync(join(out, 'draft.json'), JSON.stringify({ plan, files, clippedSamples: clippedTotal }, null, 1));
  if (clippedTotal > 0) console.warn(`warning: ${clippedTotal} samples clipped`);
}

function refs(work: string, fixtures: string): void {
  const draft = JSON.parse(readFileSync(join(work, 'out16', 'draft.json'), 'utf8')) as {
    plan: Plan;
    files: Record<string, unknown>[];
  };
  // The committed files are mu-law; measure what the decoder will actually see.
  const decoded = (name: string) => readWav(join(fixtures, name));
  const refOf = (clean: Float64Array, shiftBlocks = 0) => {
    const db = blockDb(clean);
    const first = db.findIndex((d) => d > ACTIVE_DBFS);
    let last = -1;
    db.forEach((d, i) => {
      if (d > ACTIVE_DBFS) last = i;
    });
    const start = db.findIndex((d) => d > -60);
    return { onsetBlock: first + shiftBlocks, offsetBlock: last + shiftBlocks, speechStartBlock: start + shiftBlocks };
  };
  const files = draft.files.map((f) => {
    const out: Record<string, unknown> = { ...f };
    if (typeof f.clean === 'string') {
      const r = refOf(decoded(f.clean));
      out.onsetBlock = r.onsetBlock;
      out.onsetMs = r.onsetBlock * 10;
      out.offsetBlock = r.offsetBlock;
      out.speechStartBlock = r.speechStartBlock;
    }
    if (f.kind === 'mix' || f.kind === 'early' || f.kind === 'bed' || f.kind === 'echo') {
      const x = decoded(String(f.file));
      out.measuredLevelDbfs = round2(dbfs(meanPower(x)));
    }
    if (f.kind === 'echo' && f.caller) {
      const c = f.caller as { startMs: number };
      const r = refOf(decoded('echo_caller_clean.wav'), c.startMs / 10);
      out.onsetBlock = r.onsetBlock;
      out.onsetMs = r.onsetBlock * 10;
      out.offsetBlock = r.offsetBlock;
      out.speechStartBlock = r.speechStartBlock;
    }
    return out;
  });
  const manifest = {
    generator: 'scripts/make-speech-fixtures.sh (espeak-ng + sox) with scripts/fixtures-speech.ts',
    format: 'WAV, G.711 mu-law (format tag 7), 8000 Hz mono; decode with the standard G.711 table',
    blockMs: 10,
    definitions: {
      blockEnergy: '10*log10(mean(x^2)/32768^2) over a 10 ms block (80 samples) aligned to sample 0',
      activeBlock: `a block of the clean speech with energy above ${ACTIVE_DBFS} dBFS`,
      snr:
        'active speech level (mean clean power over its active blocks) minus the mean power of the ' +
        'added noise over the same blocks, computed on the 16-bit signals before mu-law encoding',
      onsetBlock: `index of the first 10 ms block whose clean-speech energy exceeds ${ACTIVE_DBFS} dBFS ` +
        '(measured on the decoded mu-law clean file); offsetBlock is the last such block; ' +
        'speechStartBlock is the first block above -60 dBFS (where the speech really begins)',
      echo:
        'inbound = pink noise + bot outbound delayed by (botStartMs + delayMs) and scaled by gainDb ' +
        '(+ the caller utterance at caller.startMs in the *_caller variants); bot audio plays on the ' +
        'outbound from botStartMs to botEndMs',
    },
    plan: draft.plan,
    files,
  };
  writeFileSync(join(fixtures, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
}

function main(): void {
  const [cmd, work, fixtures] = process.argv.slice(2);
  if (cmd === 'build' && work) build(work);
  else if (cmd === 'refs' && work && fixtures) refs(work, fixtures);
  else {
    console.error('usage: fixtures-speech.ts build <work> | refs <work> <fixtures>');
    process.exit(2);
  }
}

// Also importable (readWav, blockDb) by analysis scripts without running.
if (process.argv[1]?.endsWith('fixtures-speech.ts')) main();
