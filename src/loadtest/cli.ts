// `npm run loadtest -- [--calls N] [--seconds T] [--ramp] [--soak] [...]`
// Head-to-head load test of voicebridge against two baseline bridges (bench/baselines), each in
// its own process, against the local model and a Twilio load generator in their own processes.
// Everything runs on 127.0.0.1, bounded in calls and time. See README "Load test".
import { writeFileSync } from 'node:fs';
import { formatDetails, formatHeadToHead, formatMachine, formatRamp, formatSoak, formatTargets } from './report.js';
import { machineInfo, procAvailable } from './proc.js';
import { BRIDGES, compareBridges, Harness, runRamp, runSoak, type LoadMeasurement, type RampResult, type SoakResult } from './run.js';

export const LOADTEST_USAGE = `usage: npm run loadtest -- [options]

  --calls N            concurrent calls per bridge (default 100)
  --seconds T          length of each call, s (default 15; >= 3 for a barge-in)
  --bridges LIST       comma list of vb24k,transcoding,vbpcmu,passthrough,floor (default all;
                       floor = the I/O floor: messages moved with no parsing or DSP)
  --no-compare         skip the head-to-head run (e.g. with --ramp or --soak only)
  --ramp               step the calls up until p99 added latency > --ramp-limit-ms (or errors)
  --ramp-limit-ms MS   ramp criterion (default 20)
  --ramp-start N       first ramp step (default 50); steps grow x1.5, a step failing on latency is run twice
  --ramp-max N         last ramp step (default 3000)
  --ramp-seconds T     call length in ramp steps (default 10)
  --ramp-bridges LIST  bridges to ramp (default vb24k,transcoding,vbpcmu,passthrough)
  --soak               10,000 short calls, bridge RSS before/after
  --soak-calls N       (default 10000)   --soak-concurrency N (default 200)
  --soak-seconds T     (default 1.5)     --soak-bridges LIST (default vb24k)
  --delta-ms MS        audio per model delta (default 20 = one Twilio frame)
  --json FILE          also write the raw results as JSON
`;

interface Args {
  calls: number;
  seconds: number;
  bridges: string[];
  compare: boolean;
  ramp: boolean;
  rampLimitMs: number;
  rampStart: number;
  rampMax: number;
  rampSeconds: number;
  rampBridges: string[];
  soak: boolean;
  soakCalls: number;
  soakConcurrency: number;
  soakSeconds: number;
  soakBridges: string[];
  deltaMs: number;
  json?: string;
}

export function parseArgs(argv: string[]): Args {
  const a: Args = {
    calls: 100, seconds: 15, bridges: Object.keys(BRIDGES), compare: true,
    ramp: false, rampLimitMs: 20, rampStart: 50, rampMax: 3000, rampSeconds: 10, rampBridges: ['vb24k', 'transcoding', 'vbpcmu', 'passthrough'],
    soak: false, soakCalls: 10_000, soakConcurrency: 200, soakSeconds: 1.5, soakBridges: ['vb24k'], deltaMs: 20,
  };
  const num = (name: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min || n > max) throw new Error(`${name} needs a number in [${min}, ${max}], got ${v}`);
    return n;
  };
  const list = (name: string, v: string | undefined): string[] => {
    const keys = (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    for (const k of keys) if (!BRIDGES[k]) throw new Error(`${name}: unknown bridge ${k} (known: ${Object.keys(BRIDGES).join(', ')})`);
    if (!keys.length) throw new Error(`${name} needs a list of bridges`);
    return keys;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    switch (k) {
      case '--calls': a.calls = Math.round(num(k, v, 1, 20_000)); i++; break;
      case '--seconds': a.seconds = num(k, v, 0.5, 3600); i++; break;
      case '--bridges': a.bridges = list(k, v); i++; break;
      case '--no-compare': a.compare = false; break;
      case '--ramp': a.ramp = true; break;
      case '--ramp-limit-ms': a.rampLimitMs = num(k, v, 0.1, 10_000); i++; break;
      case '--ramp-start': a.rampStart = Math.round(num(k, v, 1, 20_000)); i++; break;
      case '--ramp-max': a.rampMax = Math.round(num(k, v, 1, 20_000)); i++; break;
      case '--ramp-seconds': a.rampSeconds = num(k, v, 3, 3600); i++; break;
      case '--ramp-bridges': a.rampBridges = list(k, v); i++; break;
      case '--soak': a.soak = true; break;
      case '--soak-calls': a.soakCalls = Math.round(num(k, v, 1, 1_000_000)); i++; break;
      case '--soak-concurrency': a.soakConcurrency = Math.round(num(k, v, 1, 20_000)); i++; break;
      case '--soak-seconds': a.soakSeconds = num(k, v, 0.5, 60); i++; break;
      case '--soak-bridges': a.soakBridges = list(k, v); i++; break;
      case '--delta-ms': a.deltaMs = num(k, v, 5, 1000); i++; break;
      case '--json': a.json = v; i++; break;
      case '-h': case '--help': throw new HelpRequested();
      default: throw new Error(`unknown option ${k}`);
    }
  }
  return a;
}

class HelpRequested extends Error {}

function rampSteps(start: number, max: number): number[] {
  const out: number[] = [];
  for (let n = start; n <= max; n = Math.max(n + 1, Math.round((n * 1.5) / 50) * 50)) out.push(n);
  if (out[out.length - 1] !== max && out[out.length - 1] < max) out.push(max);
  return out;
}

export async function runLoadtestCli(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof HelpRequested) {
      process.stdout.write(LOADTEST_USAGE);
      return 0;
    }
    process.stderr.write(`loadtest: ${(e as Error).message}\n${LOADTEST_USAGE}`);
    return 2;
  }
  if (!procAvailable()) {
    process.stderr.write('loadtest: needs Linux /proc to read the bridge process\'s CPU time and RSS\n');
    return 2;
  }
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const machine = machineInfo();
  out(formatMachine(machine));
  const longest = Math.max(args.seconds, args.ramp ? args.rampSeconds : 0, args.soak ? args.soakSeconds : 0);
  const h = new Harness({ deltaMs: args.deltaMs, speed: 1, botSeconds: longest + 1, log: out });
  const results: LoadMeasurement[] = [];
  const ramps: RampResult[] = [];
  const soaks: SoakResult[] = [];
  const stopSignals = () => {
    void h.close().then(() => process.exit(130));
  };
  process.once('SIGINT', stopSignals);
  process.once('SIGTERM', stopSignals);
  try {
    await h.start();
    if (args.compare) {
      out(`\nhead-to-head: ${args.calls} concurrent calls x ${args.seconds} s per bridge, model deltas ${args.deltaMs} ms at real time`);
      results.push(...await compareBridges(h, args.bridges, { calls: args.calls, seconds: args.seconds, measure: true, bargeIn: true }, {
        onStart: (spec) => out(`  running ${spec.label} ...`),
      }));
      out('');
      out(formatHeadToHead(results));
      out('');
      for (const m of results) out(formatDetails(m));
    }
    if (args.ramp) {
      const steps = rampSteps(args.rampStart, args.rampMax);
      out(`\nramp: steps ${steps.join(', ')} calls x ${args.rampSeconds} s`);
      for (const key of args.rampBridges) {
        const r = await runRamp(h, BRIDGES[key], steps, args.rampSeconds, args.rampLimitMs, out);
        ramps.push(r);
        out(formatRamp(r, args.rampLimitMs));
      }
    }
    if (args.soak) {
      out(`\nsoak: ${args.soakCalls} calls x ${args.soakSeconds} s, ${args.soakConcurrency} concurrent`);
      for (const key of args.soakBridges) {
        const s = await runSoak(h, BRIDGES[key], args.soakCalls, args.soakConcurrency, args.soakSeconds, out);
        soaks.push(s);
        out(formatSoak(s));
      }
    }
    out('');
    out(formatTargets(results, ramps, soaks));
    out(formatMachine({ ...machine, loadAvg: machineInfo().loadAvg }).replace('at start', 'at end'));
    if (args.json) {
      writeFileSync(args.json, JSON.stringify({ machine, args, results: results.map(strip), ramps: ramps.map((r) => ({ ...r, steps: r.steps.map((s) => ({ ...s, m: strip(s.m) })) })), soaks }, null, 1));
      out(`raw results: ${args.json}`);
    }
    return 0;
  } finally {
    await h.close();
  }
}

/** Drops the per-call arrays from a measurement (JSON output). */
function strip(m: LoadMeasurement): unknown {
  const { records: _r, ...gen } = m.gen;
  return { ...m, gen: { ...gen, barge: { ...gen.barge, latencies: undefined } } };
}
