/**
 * The layer rules of src/ (ARCHITECTURE §3), checked by `npm run lint:deps` in `npm run check`
 * and CI: layers point one way, and no file or folder imports one that imports it back.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular-files',
      severity: 'error',
      comment: 'A file never imports a file that (through others) imports it back.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-circular-folders',
      severity: 'error',
      comment: 'No folder imports a folder that imports it back.',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
    {
      name: 'modules-stay-in-the-domain',
      severity: 'error',
      comment: 'The domain never reaches up to routes, the job system or the app composition.',
      from: { path: '^src/modules/' },
      to: { path: ['^src/routes/', '^src/jobs/', '^src/app\\.ts$', '^src/composition\\.ts$', '^src/(main|commands|server|worker)\\.ts$'] },
    },
    {
      name: 'observability-and-db-know-no-domain',
      severity: 'error',
      comment: 'observability/ and db/ import no domain module, no routes, no jobs.',
      from: { path: '^src/(observability|db)/' },
      to: { path: ['^src/modules/', '^src/routes/', '^src/jobs/', '^src/ratelimit/', '^src/http/', '^src/app\\.ts$', '^src/composition\\.ts$'] },
    },
    {
      name: 'lib-is-the-bottom',
      severity: 'error',
      comment: 'src/lib/ holds helpers used by services and HTTP alike; it imports nothing of the project above it.',
      from: { path: '^src/lib/' },
      to: { path: '^src/(?!lib/)' },
    },
    {
      name: 'ratelimit-knows-no-configuration',
      severity: 'error',
      comment: 'The limiter takes its own options type (config.ts maps onto it) and knows nothing of the domain.',
      from: { path: '^src/ratelimit/' },
      to: { path: ['^src/config\\.ts$', '^src/modules/', '^src/routes/', '^src/jobs/', '^src/app\\.ts$'] },
    },
    {
      name: 'only-the-entry-starts-sentry',
      severity: 'error',
      comment: 'Nothing imports the entry point or the composition root but the process code above them.',
      from: { pathNot: '^src/(main|commands|server|worker|app)\\.ts$' },
      to: { path: ['^src/main\\.ts$', '^src/composition\\.ts$', '^src/commands\\.ts$', '^src/server\\.ts$'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
