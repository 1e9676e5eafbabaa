// Energy VAD for the caller's 8 kHz PCM16 (decoded mu-law).
//
// Decisions are made every 10 ms block (80 samples) on the energy of the last 20 ms (the block
// and the one before it): a 10 ms hop halves onset latency, the 20 ms window keeps the noise
// variance of one Twilio frame. All thresholds are in dB above an adaptive noise floor.
//
// Noise floor (dB):
// - calibration: the first CALIB_BLOCKS blocks set it to their mean, and no onset may fire
//   until they are seen, so a call never starts with a false trigger, yet a caller who speaks
//   at 300 ms is heard;
// - after that it follows windows below it quickly (A_DOWN) and windows up to GATE_DB above it
//   slowly (A_UP); louder windows (speech) do not move it, so speech cannot drag it up;
// - a minimum over the last 0.8-1 s (SUBS sub-windows of SUB_BLOCKS) lifts it when nothing in
//   that time came down to it: a louder noise bed is adopted within about a second instead of
//   being taken for endless speech. The price: speech that never dips to the noise for a second
//   lifts it too (a few dB on the fixtures; it comes back down within ~150 ms of silence);
// - it never goes below FLOOR_MIN_DB (digital silence would otherwise make any hiss "speech").
//
// Onset: a run of windows, the first above floor + threshold and the rest above floor +
// threshold - HYST_DB, lasting minSpeech; offset: hangover of windows at or below that lower
// threshold. While the bot plays (and BOT_TAIL_BLOCKS after, for the echo still in flight) the
// bot threshold and bot minimum speech apply instead: the bot's voice returning on the inbound
// track must not look like a barge-in.
//
// Streaming: input of any length is cut into 10 ms blocks; a partial block is kept in the state
// and completed by the next call, so the decisions do not depend on how the audio was split.
// The energy sum is exact integer arithmetic, so streaming and one-shot results are bit-equal.
// A block completed by a call is processed with that call's botPlaying value.

const BLOCK: i32 = 80;
const CALIB_BLOCKS: i32 = 10;
const A_DOWN: f32 = 0.1;
const A_UP: f32 = 0.05;
const GATE_DB: f32 = 6.0;
const HYST_DB: f32 = 3.0;
const SUB_BLOCKS: i32 = 20;
const SUBS: i32 = 4;
const FLOOR_MIN_DB: f32 = -70.0;
const ENERGY_MIN_DB: f32 = -100.0;
const BOT_TAIL_BLOCKS: i32 = 30;

// Defaults (see src/dsp/vad.ts for the reasoning and the measurements behind them).
const DEF_THRESHOLD_DB: f32 = 8.0;
const DEF_MIN_SPEECH_MS: i32 = 20;
const DEF_HANGOVER_MS: i32 = 300;
const DEF_BOT_THRESHOLD_DB: f32 = 32.0;
const DEF_BOT_MIN_SPEECH_MS: i32 = 150;

// State layout (bytes).
const O_THR: usize = 0; // f32
const O_MIN: usize = 4; // i32 blocks
const O_HANGB: usize = 8; // i32 blocks
const O_BOT_THR: usize = 12; // f32
const O_BOT_MIN: usize = 16; // i32 blocks
const O_FLOOR: usize = 20; // f32 dB
const O_ENERGY: usize = 24; // f32 dB, last 20 ms window
const O_PREV: usize = 32; // i64 sum of squares of the previous block
const O_STATE: usize = 40; // i32 0 silence, 1 speech
const O_RUN: usize = 44; // i32 blocks in the current onset run
const O_HANG: usize = 48; // i32 hangover blocks left
const O_CALIB: usize = 52; // i32 calibration blocks seen
const O_BLOCKS: usize = 56; // i32 blocks processed since reset
const O_ONSET_AT: usize = 60; // i32 block index of the last onset, -1
const O_OFFSET_AT: usize = 64; // i32 block index of the last offset, -1
const O_BOT_TAIL: usize = 68; // i32 blocks of bot mode left after botPlaying dropped
const O_PENDING: usize = 72; // i32 samples waiting in the carry buffer
const O_SUB_MIN: usize = 76; // f32 minimum of the current sub-window
const O_SUB_COUNT: usize = 80; // i32 blocks in the current sub-window
const O_SUB_FILLED: usize = 84; // i32 completed sub-windows (<= SUBS)
const O_SUB_IDX: usize = 88; // i32 ring position
const O_SUBS: usize = 96; // f32[SUBS]
const O_CARRY: usize = 112; // i16[BLOCK]
const STATE_SIZE: usize = O_CARRY + <usize>(BLOCK * 2);

const FLAG_SPEECH: i32 = 1;
const FLAG_ONSET: i32 = 2;
const FLAG_OFFSET: i32 = 4;

function msToBlocks(ms: i32): i32 {
  const b = (ms + 9) / 10;
  return b < 1 ? 1 : b;
}

/** A VAD for 8 kHz PCM16 with default parameters. Free with vad_free. */
export function vad_new(): usize {
  const p = heap.alloc(STATE_SIZE);
  store<f32>(p, DEF_THRESHOLD_DB, O_THR);
  store<i32>(p, msToBlocks(DEF_MIN_SPEECH_MS), O_MIN);
  store<i32>(p, msToBlocks(DEF_HANGOVER_MS), O_HANGB);
  store<f32>(p, DEF_BOT_THRESHOLD_DB, O_BOT_THR);
  store<i32>(p, msToBlocks(DEF_BOT_MIN_SPEECH_MS), O_BOT_MIN);
  vad_reset(p);
  return p;
}

export function vad_free(p: usize): void {
  if (p != 0) heap.free(p);
}

/** Forgets the signal (floor, state, carried samples); keeps the parameters. */
export function vad_reset(p: usize): void {
  memory.fill(p + O_FLOOR, 0, STATE_SIZE - O_FLOOR);
  store<i32>(p, -1, O_ONSET_AT);
  store<i32>(p, -1, O_OFFSET_AT);
  store<f32>(p, ENERGY_MIN_DB, O_ENERGY);
  store<f32>(p, f32.MAX_VALUE, O_SUB_MIN);
}

/** Milliseconds are rounded up to whole 10 ms blocks (at least one). */
export function vad_set_params(
  p: usize,
  thresholdDb: f32,
  minSpeechMs: i32,
  hangoverMs: i32,
  botThresholdDb: f32,
  botMinSpeechMs: i32,
): void {
  store<f32>(p, thresholdDb, O_THR);
  store<i32>(p, msToBlocks(minSpeechMs), O_MIN);
  store<i32>(p, msToBlocks(hangoverMs), O_HANGB);
  store<f32>(p, botThresholdDb, O_BOT_THR);
  store<i32>(p, msToBlocks(botMinSpeechMs), O_BOT_MIN);
}

// Sum of squares of 80 samples. dot_i16x8_s gives per lane a*a + b*b <= 2^31, exact as an
// unsigned 32-bit value (it wraps as signed only for two -32768s), so widen unsigned to i64.
// @ts-ignore: decorator
@inline
function sumSquares80(src: usize): i64 {
  let acc = i64x2.splat(0);
  for (let i: usize = 0; i < <usize>(BLOCK * 2); i += 16) {
    const v = v128.load(src + i);
    const d = i32x4.dot_i16x8_s(v, v);
    acc = i64x2.add(acc, i64x2.extend_low_i32x4_u(d));
    acc = i64x2.add(acc, i64x2.extend_high_i32x4_u(d));
  }
  return i64x2.extract_lane(acc, 0) + i64x2.extract_lane(acc, 1);
}

function updateFloor(p: usize, w: f32): void {
  if (w < FLOOR_MIN_DB) w = FLOOR_MIN_DB;
  let floor = load<f32>(p, O_FLOOR);
  const calib = load<i32>(p, O_CALIB);
  if (calib < CALIB_BLOCKS) {
    const n = calib + 1;
    store<i32>(p, n, O_CALIB);
    floor = n == 1 ? w : floor + (w - floor) / <f32>n;
    store<f32>(p, floor, O_FLOOR);
    return;
  }
  if (w < floor) floor += A_DOWN * (w - floor);
  else if (w < floor + GATE_DB) floor += A_UP * (w - floor);

  let subMin = load<f32>(p, O_SUB_MIN);
  if (w < subMin) subMin = w;
  let count = load<i32>(p, O_SUB_COUNT) + 1;
  let filled = load<i32>(p, O_SUB_FILLED);
  if (count == SUB_BLOCKS) {
    const idx = load<i32>(p, O_SUB_IDX);
    store<f32>(p + O_SUBS + (<usize>idx << 2), subMin);
    store<i32>(p, (idx + 1) % SUBS, O_SUB_IDX);
    if (filled < SUBS) store<i32>(p, ++filled, O_SUB_FILLED);
    subMin = f32.MAX_VALUE;
    count = 0;
  }
  store<f32>(p, subMin, O_SUB_MIN);
  store<i32>(p, count, O_SUB_COUNT);
  if (filled == SUBS) {
    let m = subMin;
    for (let i = 0; i < SUBS; i++) m = min(m, load<f32>(p + O_SUBS + (<usize>i << 2)));
    if (m > floor) floor = m;
  }
  store<f32>(p, floor, O_FLOOR);
}

/** Processes one complete block; returns onset/offset flags for it. */
function processBlock(p: usize, src: usize, botPlaying: i32): i32 {
  const sum = sumSquares80(src);
  const prev = load<i64>(p, O_PREV);
  const blocks = load<i32>(p, O_BLOCKS);
  store<i64>(p, sum, O_PREV);
  // The first block of a call has no predecessor: use it alone rather than half of it.
  const n: f64 = blocks == 0 ? <f64>BLOCK : <f64>(BLOCK * 2);
  const pow = <f64>(sum + prev) / (n * 1073741824.0);
  let w = <f32>(10.0 * Math.log10(pow + 1e-10));
  if (w < ENERGY_MIN_DB) w = ENERGY_MIN_DB;
  store<f32>(p, w, O_ENERGY);
  store<i32>(p, blocks + 1, O_BLOCKS);

  updateFloor(p, w);

  let bot = botPlaying != 0;
  if (bot) {
    store<i32>(p, BOT_TAIL_BLOCKS, O_BOT_TAIL);
  } else {
    const tail = load<i32>(p, O_BOT_TAIL);
    if (tail > 0) {
      store<i32>(p, tail - 1, O_BOT_TAIL);
      bot = true;
    }
  }
  const floor = load<f32>(p, O_FLOOR);
  const on = floor + (bot ? load<f32>(p, O_BOT_THR) : load<f32>(p, O_THR));
  const off = on - HYST_DB;
  const minRun = bot ? load<i32>(p, O_BOT_MIN) : load<i32>(p, O_MIN);

  let flags = 0;
  if (load<i32>(p, O_STATE) == 0) {
    let run = load<i32>(p, O_RUN);
    if (load<i32>(p, O_CALIB) >= CALIB_BLOCKS && (run > 0 ? w > off : w > on)) {
      run++;
      if (run >= minRun) {
        store<i32>(p, 1, O_STATE);
        store<i32>(p, load<i32>(p, O_HANGB), O_HANG);
        store<i32>(p, blocks, O_ONSET_AT);
        flags = FLAG_ONSET;
      }
    } else {
      run = 0;
    }
    store<i32>(p, run, O_RUN);
  } else if (w > off) {
    store<i32>(p, load<i32>(p, O_HANGB), O_HANG);
  } else {
    const hang = load<i32>(p, O_HANG) - 1;
    store<i32>(p, hang, O_HANG);
    if (hang <= 0) {
      store<i32>(p, 0, O_STATE);
      store<i32>(p, 0, O_RUN);
      store<i32>(p, blocks, O_OFFSET_AT);
      flags = FLAG_OFFSET;
    }
  }
  return flags;
}

/**
 * Feeds `n` samples of 8 kHz PCM16 at `pcm` (any n >= 0; a Twilio frame is 160). Returns
 * bit0 = speech after the last complete block, bit1 = an onset in a block completed by this
 * call, bit2 = an offset likewise. Allocates nothing.
 */
export function vad_process(p: usize, pcm: usize, n: i32, botPlaying: i32): i32 {
  if (n <= 0) return load<i32>(p, O_STATE);
  let flags = 0;
  let pending = load<i32>(p, O_PENDING);
  let i = 0;
  const carry = p + O_CARRY;
  if (pending > 0) {
    const take = min(BLOCK - pending, n);
    memory.copy(carry + (<usize>pending << 1), pcm, <usize>take << 1);
    pending += take;
    i = take;
    if (pending == BLOCK) {
      flags |= processBlock(p, carry, botPlaying);
      pending = 0;
    }
  }
  while (n - i >= BLOCK) {
    flags |= processBlock(p, pcm + (<usize>i << 1), botPlaying);
    i += BLOCK;
  }
  if (i < n) {
    memory.copy(carry + (<usize>pending << 1), pcm + (<usize>i << 1), <usize>(n - i) << 1);
    pending += n - i;
  }
  store<i32>(p, pending, O_PENDING);
  return flags | load<i32>(p, O_STATE);
}

/** Energy of the last 20 ms (ending at the last complete 10 ms block), dBFS, >= -100. */
export function vad_energy_db(p: usize): f32 {
  return load<f32>(p, O_ENERGY);
}

/** Current noise floor estimate, dBFS (0 before the first block). */
export function vad_floor_db(p: usize): f32 {
  return load<f32>(p, O_FLOOR);
}

/** 10 ms blocks processed since vad_new / vad_reset. */
export function vad_blocks(p: usize): i32 {
  return load<i32>(p, O_BLOCKS);
}

/** Index (in 10 ms blocks since reset) of the block that declared the last onset, or -1. */
export function vad_onset_block(p: usize): i32 {
  return load<i32>(p, O_ONSET_AT);
}

/** Index of the block that declared the last offset, or -1. */
export function vad_offset_block(p: usize): i32 {
  return load<i32>(p, O_OFFSET_AT);
}
