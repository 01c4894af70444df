import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['realtime/test/**/*.test.{ts,tsx}'],
    globalSetup: ['realtime/test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // The tests start real servers: one file at a time keeps the 2-core machine sane.
    fileParallelism: false,
    // Node-style module transforms for DOM tests too: the web transform would rewrite
    // `new URL('…wasm', import.meta.url)` into a dev-server URL that Node cannot fetch.
    testTransformMode: { ssr: ['**/*'] },
  },
});
