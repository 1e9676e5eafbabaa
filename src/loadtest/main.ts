#!/usr/bin/env node
// Entry of `npm run loadtest` (also `voicebridge loadtest`, through src/cli.ts).
import { runLoadtestCli } from './cli.js';

runLoadtestCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`loadtest: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
