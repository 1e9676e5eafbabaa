// `npm run bench`: ns per 20 ms frame for each DSP kernel and the two whole frame paths, with
// their peers in the same run, printed as one table (ratios to the best peer of each group),
// the machine, and the goals.
//   npm run bench                       full run (~40 s)
//   npm run bench -- --quick            shorter timing budgets (rougher numbers)
//   npm run bench -- --json out.json    also write the rows, quality figures and machine as JSON
//   npm run bench -- --filter resample  only groups whose title contains the text (a,b: either)
import './flags.js'; // must stay the first import: V8 flags for WASM compilation
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { base64Groups, jsonGroup, vadGroup } from './misc.js';
import { assertNotGrown } from './dsp.js';
import { g711Groups } from './g711.js';
import { formatTable, runGroup, type Group, type Row } from './harness.js';
import { inboundGroup, outboundGroup, twilioMedia } from './paths.js';
import { resampleGroups, type ResampleQuality } from './resample.js';
import { frames, speechLike } from './signal.js';
import { ulawEncodeTable } from './baselines/g711-table.js';

interface Args {
  json?: string;
  quick: boolean;
  filter?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--json') a.json = argv[++i];
    else if (v === '--quick') a.quick = true;
    else if (v === '--filter') a.filter = argv[++i];
    else if (v === '-h' || v === '--help') {
      process.stdout.write('usage: npm run bench -- [--quick] [--json out.json] [--filter TEXT]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${v}`);
  }
  if (a.json === '' || (argv.includes('--json') && !a.json)) throw new Error('--json needs a file name');
  return a;
}

function machine(): { cpu: string; cores: number; node: string; v8: string; platform: string } {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux: os.cpus() it is
  }
  return { cpu, cores: os.cpus().length, node: process.version, v8: process.versions.v8, platform: `${os.platform()} ${os.arch()}` };
}

interface Goal {
  text: string;
  value: number;
  met: boolean;
  shown: string;
  /** Where the time goes, when it helps to read the result. */
  detail?: string;
}

function goals(rows: Row[]): Goal[] {
  const find = (group: string, name: string): Row | undefined =>
    rows.find((r) => r.group.startsWith(group) && r.name.startsWith(name));
  const out: Goal[] = [];
  const ours = find('resample 8k->24k', 'WASM');
  const simd = find('resample 8k->24k', '@echogarden');
  if (ours && simd) {
    const v = simd.ns / ours.ns;
    out.push({ text: '8k->24k >= 2.5x faster than speex SIMD q5', value: v, met: v >= 2.5, shown: `${v.toFixed(2)}x faster` });
  }
  for (const dir of ['encode', 'decode']) {
    const w = find(`mu-law ${dir}`, 'WASM block kernel (in');
    const js = find(`mu-law ${dir}`, 'plain JS');
    if (w && js) {
      const v = js.ns / w.ns;
      out.push({ text: `mu-law ${dir} >= 1.5x faster than the plain-JS table`, value: v, met: v >= 1.5, shown: `${v.toFixed(2)}x faster` });
    }
  }
  const inb = find('inbound path', 'CallDsp');
  const bare = find('inbound path', 'bare Buffer');
  if (inb && bare) {
    const v = inb.ns / bare.ns;
    const parts: Array<[string, Row | undefined]> = [
      ['key scan', find('JSON', 'WASM key scan (message')],
      ['b64 decode', find('base64 decode, 216', 'WASM')],
      ['mu-law decode', find('mu-law decode', 'WASM block kernel (in')],
      ['VAD', find('VAD', 'WASM')],
      ['8k->24k', find('resample 8k->24k', 'WASM')],
      ['b64 encode', find('base64 encode, 960', 'WASM')],
    ];
    let detail: string | undefined;
    if (parts.every(([, r]) => r)) {
      const sum = parts.reduce((a, [, r]) => a + r!.ns, 0);
      const rs = parts[4][1]!.ns;
      detail =
        `kernels one by one: ${parts.map(([n, r]) => `${n} ${r!.ns.toFixed(0)}`).join(' + ')} = ${sum.toFixed(0)} ns; ` +
        `the resampler alone is ${(rs / bare.ns).toFixed(2)}x the bare base64`;
    }
    out.push({ text: 'inbound path <= 2x bare base64 decode + encode', value: v, met: v <= 2, shown: `${v.toFixed(2)}x the bare base64`, detail });
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const opts = args.quick ? { time: 150, warmupTime: 50 } : { time: 600, warmupTime: 150 };

  // 1 s of speech-like audio: 50 frames of 20 ms at each rate
  const pcm8 = speechLike(8000, 1, 1);
  const pcm24 = speechLike(24000, 1, 2);
  const f8 = frames(pcm8, 160);
  const f24 = frames(pcm24, 480);
  const mu = f8.map((f) => { const c = new Uint8Array(160); ulawEncodeTable(f, c, 160); return c; });
  const bytes24 = f24.map((f) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength));

  // Each group is built right before it runs (builders allocate in WASM memory).
  const builders: Array<() => Promise<Group[]> | Group[]> = [
    () => g711Groups(f8),
    async () => {
      const r = await resampleGroups(pcm8, pcm24);
      resampleQuality = r.quality;
      return r.groups;
    },
    () => [vadGroup(f8)],
    () => base64Groups(mu, 'mu-law frame'),
    () => base64Groups(bytes24, 'PCM16 24 kHz frame'),
    () => [jsonGroup(mu.map((m, i) => twilioMedia(m, i)))],
    async () => [await inboundGroup(f8)],
    async () => [await outboundGroup(f24)],
  ];
  let resampleQuality: Record<string, ResampleQuality> = {};
  const rows: Row[] = [];
  for (const build of builders) {
    for (const g of await build()) {
      if (args.filter && !args.filter.split(',').some((f) => g.title.includes(f))) continue;
      process.stderr.write(`  ${g.title} ...\n`);
      rows.push(...(await runGroup(g, opts)));
    }
  }
  assertNotGrown();

  const m = machine();
  const lines = [
    '',
    `voicebridge DSP bench — ${m.cpu} (${m.cores} cores), Node ${m.node} (V8 ${m.v8}), ${m.platform}`,
    'per frame = median time per 20 ms of audio; ±% = 95% margin of the mean; vs best peer = best peer time / this time (>1 is faster)',
    'marks: * ours, = reference (the least any implementation must do), blank = peer; all WASM (ours and peers) compiled by TurboFan up front (--no-liftoff)',
    '',
    formatTable(rows),
    '',
  ];
  const g = goals(rows);
  if (g.length) {
    lines.push('goals (benchmark targets, not assertions):');
    for (const x of g) {
      lines.push(`  [${x.met ? 'met' : 'MISSED'}] ${x.text}: ${x.shown}`);
      if (x.detail) lines.push(`      ${x.detail}`);
    }
    lines.push('');
  }
  lines.push(`total ${((performance.now() - t0) / 1000).toFixed(1)} s${args.quick ? ' (--quick)' : ''}`);
  process.stdout.write(lines.join('\n') + '\n');

  if (args.json) {
    writeFileSync(args.json, JSON.stringify({ machine: m, date: new Date().toISOString(), quick: args.quick, rows, resampleQuality, goals: g }, null, 2) + '\n');
    process.stdout.write(`wrote ${args.json}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
