// Worker-thread entry (src/cluster.ts starts N of these): one bridge per thread, with its own
// uWS app on the shared port and its own WASM instance (src/dsp/wasm.ts loads per thread).
import { startBridge, type BridgeDeps } from '../server.js';
import type { BridgeOps } from './ops.js';
import { runWorker } from './runtime.js';

void runWorker((config, log, deps) => {
  // BridgeDeps gains `ops?: BridgeOps` when server.ts mounts the ops routes and gate.
  const withOps: BridgeDeps & { ops: BridgeOps } = deps;
  return startBridge(config, log, withOps);
});
