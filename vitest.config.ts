import { defineConfig, type TestProjectInlineConfiguration, type ViteUserConfig } from 'vitest/config';
import { REQUIRE_SERVICES, servicesAvailable } from './test/helpers/services.ts';

// One command (`npm test`) runs every tier: unit, API on PGlite, API again on Postgres, integration,
// browser.
// The Postgres run of the API suite is left out, with a visible message, where no Postgres answers
// (and is a failure with REQUIRE_SERVICES=1).
export default defineConfig(async (): Promise<ViteUserConfig> => {
  const postgres = REQUIRE_SERVICES || (await servicesAvailable('api tests on Postgres', 'postgres'));
  return {
    test: {
      testTimeout: 30_000,
      hookTimeout: 60_000,
      pool: 'forks',
      projects: [
        { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
        { extends: true, test: { name: 'api', include: ['test/api/**/*.test.ts'], env: { TEST_DB: 'pglite' } } },
        ...(postgres
          ? [{ extends: true, test: { name: 'api-postgres', include: ['test/api/**/*.test.ts'], env: { TEST_DB: 'postgres' } } } satisfies TestProjectInlineConfiguration]
          : []),
        {
          extends: true,
          test: { name: 'integration', include: ['test/integration/**/*.test.ts'], fileParallelism: false, testTimeout: 120_000 },
        },
        // The operator console in real headless Chromium (skipped, visibly, where there is none).
        { extends: true, test: { name: 'browser', include: ['test/browser/**/*.test.ts'], fileParallelism: false, testTimeout: 120_000 } },
      ],
    },
  };
});
