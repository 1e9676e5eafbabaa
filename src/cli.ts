#!/usr/bin/env node
// voicebridge start | simulate | convert | demo | loadtest
const USAGE = `usage: voicebridge <command> [options]

commands:
  start                  run the bridge (config from the environment; see README)
  simulate [options]     act as Twilio: call a running bridge with a WAV file
                         --url ws://localhost:5050/media-stream --in caller.wav --out heard.wav
                         [--param k=v]... [--auth-token T] [--speed N] [--tail-ms N]
  convert IN.wav OUT.wav --rate 8000|16000|24000 --codec pcm16|mulaw|alaw
                         run a file through the bridge's DSP to hear what the model hears
  demo                   bridge + local model + simulator: a short call with a barge-in
  loadtest [options]     head-to-head load test against the baseline bridges (see README)
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start': {
      const { runStart } = await import('./start.js');
      return runStart();
    }
    case 'simulate': {
      const { runSimulateCli } = await import('./simulate/cli.js');
      return runSimulateCli(rest);
    }
    case 'convert': {
      const { runConvertCli } = await import('./convert.js');
      return runConvertCli(rest);
    }
    case 'loadtest': {
      const { runLoadtestCli } = await import('./loadtest/cli.js');
      return runLoadtestCli(rest);
    }
    case 'demo': {
      const { runDemo } = await import('./demo.js');
      return runDemo(rest);
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`voicebridge: unknown command "${cmd}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`voicebridge: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
