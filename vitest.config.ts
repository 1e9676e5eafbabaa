import { defineConfig } from 'vitest/config';

// Two groups, run one after the other: the pure unit tests in parallel, then the tests that drive
// real sockets in real time (end to end, worker threads, the load-test smoke run) one file at a
// time, so a CPU-heavy file never starves a timing-sensitive one on a 2-core machine.
const realtime = ['test/e2e/**/*.test.ts', 'test/loadtest/**/*.test.ts', 'test/cluster.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Sockets and WASM instances are per worker; forks keep a crashing native addon contained.
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: realtime, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'realtime', include: realtime, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
