// The load generator in its own process (its CPU is not the bridge's). IPC: run(LoadOptions).
import { announce, serve } from './child.js';
import { monoMs } from './clock.js';
import { runLoad, type LoadOptions } from './generator.js';

serve({
  run: (opts: LoadOptions) => runLoad(opts),
  now: () => monoMs(),
});
announce('ready');
