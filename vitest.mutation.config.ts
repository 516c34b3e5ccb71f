import { defineConfig } from 'vitest/config';

// The unit tests only, for StrykerJS (stryker.config.mjs): no service probe, no API or integration
// tier. Stryker runs, for each mutant, only the tests that cover it.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
