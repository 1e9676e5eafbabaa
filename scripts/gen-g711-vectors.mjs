#!/usr/bin/env node
// Writes the G.711 reference vectors in test/fixtures/g711/ from a line-by-line port of the
// ITU-T G.191 STL module src/g711/g711.c (version 3.01, 31.Jan.2000: alaw_compress, alaw_expand,
// ulaw_compress, ulaw_expand). The STL is the oracle because it is what G.711 conformance is
// tested against; Python audioop and npm alawmulaw round negative inputs differently.
//
// The port keeps the C data flow and emulates C `short` storage (`s16`) wherever the STL assigns
// to a short, so the loops are deliberately naive: this is a reference, not an implementation.
//
// Output (all little-endian, deterministic):
//   ulaw_compress.bin  65536 B: code for input x = -32768..32767 in ascending order (index x+32768)
//   alaw_compress.bin  65536 B: same for A-law
//   ulaw_expand.bin      512 B: int16 sample for codes 0..255
//   alaw_expand.bin      512 B: int16 sample for codes 0..255
//
// Usage: node scripts/gen-g711-vectors.mjs [outDir]   (default test/fixtures/g711)
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** C `short` assignment: keep the low 16 bits, sign-extended. */
const s16 = (v) => (v << 16) >> 16;

// --- alaw_compress (STL g711.c) ---
export function alawCompress(linbuf) {
  const logbuf = new Int16Array(linbuf.length);
  for (let n = 0; n < linbuf.length; n++) {
    const x = s16(linbuf[n]);
    let ix = s16(x < 0 ? ~x >> 4 : x >> 4); // 1's complement for negative values
    if (ix > 15) {
      let iexp = 1;
      while (ix > 16 + 15) {
        ix = s16(ix >> 1);
        iexp++;
      }
      ix = s16(ix - 16); // remove leading '1'
      ix = s16(ix + (iexp << 4));
    }
    if (x >= 0) ix = s16(ix | 0x0080);
    logbuf[n] = s16(ix ^ 0x0055);
  }
  return logbuf;
}

// --- alaw_expand (STL g711.c) ---
export function alawExpand(logbuf) {
  const linbuf = new Int16Array(logbuf.length);
  for (let n = 0; n < logbuf.length; n++) {
    const code = s16(logbuf[n]);
    let ix = s16(code ^ 0x0055);
    ix = s16(ix & 0x007f);
    const iexp = s16(ix >> 4);
    let mant = s16(ix & 0x000f);
    if (iexp > 0) mant = s16(mant + 16);
    mant = s16((mant << 4) + 0x0008);
    if (iexp > 1) mant = s16(mant << (iexp - 1));
    linbuf[n] = s16(code > 127 ? mant : -mant);
  }
  return linbuf;
}

// --- ulaw_compress (STL g711.c) ---
export function ulawCompress(linbuf) {
  const logbuf = new Int16Array(linbuf.length);
  for (let n = 0; n < linbuf.length; n++) {
    const x = s16(linbuf[n]);
    // 14 bit left justified -> right justified; 33 = difference between A-law and u-law thresholds
    let absno = s16(x < 0 ? (~x >> 2) + 33 : (x >> 2) + 33);
    if (absno > 0x1fff) absno = 0x1fff;
    let i = s16(absno >> 6);
    let segno = 1;
    while (i !== 0) {
      segno++;
      i = s16(i >> 1);
    }
    const highNibble = s16(0x0008 - segno);
    let lowNibble = s16((absno >> segno) & 0x000f);
    lowNibble = s16(0x000f - lowNibble);
    let out = s16((highNibble << 4) | lowNibble);
    if (x >= 0) out = s16(out | 0x0080);
    logbuf[n] = out;
  }
  return logbuf;
}

// --- ulaw_expand (STL g711.c) ---
export function ulawExpand(logbuf) {
  const linbuf = new Int16Array(logbuf.length);
  for (let n = 0; n < logbuf.length; n++) {
    const code = s16(logbuf[n]);
    const sign = code < 0x0080 ? -1 : 1; // sign bit = 1 for positive values
    let mantissa = s16(~code);
    const exponent = s16((mantissa >> 4) & 0x0007);
    const segment = s16(exponent + 1);
    mantissa = s16(mantissa & 0x000f);
    const step = s16(4 << segment);
    // C int arithmetic (short operands promote), then stored to a short
    linbuf[n] = s16(sign * ((0x0080 << exponent) + step * mantissa + Math.trunc(step / 2) - 4 * 33));
  }
  return linbuf;
}

function main() {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const outDir = process.argv[2] ?? join(root, 'test/fixtures/g711');
  mkdirSync(outDir, { recursive: true });

  const inputs = new Int16Array(65536);
  for (let i = 0; i < 65536; i++) inputs[i] = i - 32768;
  const codes = new Int16Array(256);
  for (let c = 0; c < 256; c++) codes[c] = c;

  const toBytes = (logbuf) => {
    const b = new Uint8Array(logbuf.length);
    for (let i = 0; i < logbuf.length; i++) {
      if (logbuf[i] < 0 || logbuf[i] > 255) throw new Error(`code out of range at ${i}`);
      b[i] = logbuf[i];
    }
    return b;
  };
  const toInt16LE = (lin) => {
    const b = Buffer.alloc(lin.length * 2);
    for (let i = 0; i < lin.length; i++) b.writeInt16LE(lin[i], i * 2);
    return b;
  };

  writeFileSync(join(outDir, 'ulaw_compress.bin'), toBytes(ulawCompress(inputs)));
  writeFileSync(join(outDir, 'alaw_compress.bin'), toBytes(alawCompress(inputs)));
  writeFileSync(join(outDir, 'ulaw_expand.bin'), toInt16LE(ulawExpand(codes)));
  writeFileSync(join(outDir, 'alaw_expand.bin'), toInt16LE(alawExpand(codes)));
  console.log(`wrote G.191 vectors to ${outDir}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
