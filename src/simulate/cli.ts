// `voicebridge simulate`: call a running bridge as Twilio would, with a WAV as the caller.
// Exit code: 0 call completed with no protocol violations, 1 violations seen, 2 usage or
// connection error.

import { parseArgs } from 'node:util';
import { WavError, writeWavFile } from '../audio/wav.js';
import { loadCallerWav, simulateCall, SimulateConnectError, type DtmfEvent, type SimReport } from './simulator.js';

export const SIMULATE_USAGE = `usage: voicebridge simulate --url ws://localhost:5050/media-stream --in caller.wav [options]

  --url URL          media-stream WebSocket endpoint (required)
  --in FILE          caller audio: 8 kHz mono WAV, PCM16, mu-law or A-law (required)
  --out FILE         write what the caller heard (8 kHz PCM16 WAV, call timeline)
  --param k=v        start.customParameters entry (repeatable)
  --auth-token T     sign the upgrade (x-twilio-signature); default $TWILIO_AUTH_TOKEN if set
  --sign-url URL     URL the signature covers (default: --url with ws->wss, http->https)
  --speed N          run N times faster than real time (default 1)
  --tail-ms N        silence after the caller's audio before stop (default 2000)
  --dtmf D@MS        send DTMF digit D at call time MS (repeatable)
  --onsets MS,MS     caller speech onsets for barge-in latency (default: detected by energy)
  --json             print the report as JSON
  -v, --verbose      log every message
`;

const fmtMs = (v: number | null): string => (v === null ? '-' : `${Math.round(v)} ms`);

/** Human-readable report (what the CLI prints). */
export function formatReport(r: SimReport): string {
  const lines = [
    `call ${r.callSid}  stream ${r.streamSid}`,
    `  duration          ${fmtMs(r.callDurationMs)}   closed by ${r.closedBy} (code ${r.closeCode}${r.closeReason ? `, ${r.closeReason}` : ''})`,
    `  frames            sent ${r.framesSent}, received ${r.framesReceived} (${fmtMs(r.audioReceivedMs)} of audio, ${fmtMs(r.audioPlayedMs)} played)`,
    `  first audio       ${fmtMs(r.firstAudioMs)} after call start`,
    `  response latency  ${fmtMs(r.responseLatencyMs)} after the caller's first utterance` +
      (r.responseLatenciesMs.length > 1 ? `  (all: ${r.responseLatenciesMs.map(fmtMs).join(', ')})` : ''),
    `  caller speech     ${r.callerUtterances.map((u) => `${Math.round(u.startMs)}-${Math.round(u.endMs)}`).join(', ') || '-'} ms`,
    `  barge-in          ${
      r.bargeIns.length === 0
        ? 'none (no caller onset while the bot was playing)'
        : r.bargeIns.map((b) => `onset ${Math.round(b.onsetMs)} ms -> ${b.latencyMs === null ? 'no clear' : `clear after ${Math.round(b.latencyMs)} ms`}`).join('; ')
    }`,
    `  clears            ${r.clearsReceived}`,
    `  underruns         ${r.underruns} (${fmtMs(r.underrunMs)})`,
    `  marks             received ${r.marksReceived}, echoed ${r.marksEchoed} (${r.marksEchoedByClear} by clear), pending ${r.marksPending}`,
    `  dtmf sent         ${r.dtmfSent}`,
    `  violations        ${r.violations}`,
    ...r.violationMessages.map((m) => `    ${m}`),
  ];
  if (r.messagesAfterStop > 0) lines.push(`  after stop        ${r.messagesAfterStop} message(s) ignored`);
  return lines.join('\n') + '\n';
}

class UsageError extends Error {}

function num(name: string, v: string | undefined, def: number, positive: boolean): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (positive && n === 0)) {
    throw new UsageError(`--${name}: expected a ${positive ? 'positive' : 'non-negative'} number, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Entry point for `voicebridge simulate ARGS`; returns the process exit code. */
export async function runSimulateCli(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        in: { type: 'string' },
        out: { type: 'string' },
        param: { type: 'string', multiple: true },
        'auth-token': { type: 'string' },
        'sign-url': { type: 'string' },
        speed: { type: 'string' },
        'tail-ms': { type: 'string' },
        dtmf: { type: 'string', multiple: true },
        onsets: { type: 'string' },
        json: { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`voicebridge simulate: ${(e as Error).message}\n${SIMULATE_USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(SIMULATE_USAGE);
    return 0;
  }
  try {
    if (!values.url) throw new UsageError('--url is required');
    if (!values.in) throw new UsageError('--in is required');
    const parameters: Record<string, string> = {};
    for (const p of values.param ?? []) {
      const eq = p.indexOf('=');
      if (eq <= 0) throw new UsageError(`--param: expected k=v, got ${JSON.stringify(p)}`);
      parameters[p.slice(0, eq)] = p.slice(eq + 1);
    }
    const dtmf: DtmfEvent[] = (values.dtmf ?? []).map((d) => {
      const m = /^([0-9*#A-D])@(\d+(?:\.\d+)?)$/.exec(d);
      if (!m) throw new UsageError(`--dtmf: expected DIGIT@MS (e.g. 5@1500), got ${JSON.stringify(d)}`);
      return { digit: m[1], atMs: Number(m[2]) };
    });
    const onsets = values.onsets?.split(',').map((s) => {
      const n = Number(s.trim());
      if (!Number.isFinite(n) || n < 0) throw new UsageError(`--onsets: expected comma-separated ms, got ${JSON.stringify(values.onsets)}`);
      return n;
    });
    const speed = num('speed', values.speed, 1, true);
    const tailMs = num('tail-ms', values['tail-ms'], 2000, false);
    const caller = await loadCallerWav(values.in);

    const verbose = values.verbose === true;
    const report = await simulateCall({
      url: values.url,
      caller,
      authToken: values['auth-token'] ?? (process.env.TWILIO_AUTH_TOKEN || undefined),
      signUrl: values['sign-url'],
      parameters,
      speed,
      tailMs,
      dtmf,
      callerOnsetsMs: onsets,
      onMessage: verbose
        ? (dir, at, text) => {
            const shown = text.length > 160 ? text.slice(0, 160) + '…' : text;
            process.stderr.write(`${at.toFixed(0).padStart(7)} ms ${dir === 'out' ? '->' : '<-'} ${shown}\n`);
          }
        : undefined,
    });
    if (values.out) await writeWavFile(values.out, { sampleRate: 8000, channels: 1, codec: 'pcm16', data: report.heard });
    if (values.json) {
      const { heard: _h, heardMulaw: _m, ...rest } = report;
      process.stdout.write(JSON.stringify(rest, null, 2) + '\n');
    } else {
      process.stdout.write(formatReport(report));
      if (values.out) process.stdout.write(`  heard audio       ${values.out}\n`);
    }
    return report.violations > 0 ? 1 : 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`voicebridge simulate: ${e.message}\n${SIMULATE_USAGE}`);
      return 2;
    }
    if (e instanceof SimulateConnectError || e instanceof WavError || (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      process.stderr.write(`voicebridge simulate: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}
