// @ts-check
/**
 * Mutation testing of the core modules: `npm run test:mutation` (test/mutation/run.mjs picks a
 * Node >= 22, runs this and checks each module's score). See the README's testing section.
 */
import { CORE_MODULES, MUTATION_THRESHOLD, mutatePatterns } from './test/mutation/modules.mjs';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  // Unit tests only; for each mutant, only the tests that cover it run (perTest coverage).
  vitest: { configFile: 'vitest.mutation.config.ts', related: true },
  coverageAnalysis: 'perTest',
  mutate: mutatePatterns(CORE_MODULES),
  // A shared 2-core machine: one test runner process.
  concurrency: 1,
  // Reruns test only the mutants whose code or covering tests changed since the last report.
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  // break is over all mutated files together; the per-module check is in test/mutation/run.mjs.
  thresholds: { high: 90, low: MUTATION_THRESHOLD, break: MUTATION_THRESHOLD },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
