// The Twilio call simulator: library surface (the CLI entry is ./cli.ts).
export {
  simulateCall,
  loadCallerWav,
  defaultSignUrl,
  SimulateConnectError,
  type SimulateOptions,
  type SimReport,
  type BargeIn,
  type DtmfEvent,
} from './simulator.js';
export { PlaybackModel, type PlaybackRun } from './playback.js';
export { detectUtterances, type Utterance, type UtteranceOptions } from './utterances.js';
export { runSimulateCli, formatReport, SIMULATE_USAGE } from './cli.js';
