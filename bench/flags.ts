// Imported first by bench/index.ts, before any WASM module is compiled.
//
// V8 runs new WASM code in its baseline compiler (Liftoff) and tiers hot functions up to
// TurboFan in the background. On a busy machine that tier-up was seen to lag for whole
// measurements (our resampler at ~4x its optimised time in one run, fine in the next), which made
// the table depend on luck. With --no-liftoff every WASM module here, ours and the speex peers
// alike, is compiled by TurboFan from the start, so each is measured at the tier a long-running
// server reaches.
import v8 from 'node:v8';

v8.setFlagsFromString('--no-liftoff');
