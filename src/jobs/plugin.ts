/**
 * The job system inside the API: decorates app.jobs (the runner) and app.bankSync (the sync
 * service, undefined when bank sync is off). Embedded mode starts the in-process runner here;
 * in server mode the API only enqueues. Closing the app lets running jobs finish.
 */
import fp from 'fastify-plugin';
import type { Logger } from '../observability/logging.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { SyncService } from '../modules/sync/service.ts';
import { createJobSystem, type JobSystem } from './index.ts';
import type { JobRunner } from './types.ts';

declare module 'fastify' {
  interface FastifyInstance {
    jobs: JobRunner;
    bankSync: SyncService | undefined;
  }
}

export interface JobsPluginOptions {
  logger: Logger;
  metrics?: Metrics;
  /** A job system made by the caller (tests); one is made from the app's configuration otherwise. */
  system?: JobSystem;
}

export default fp<JobsPluginOptions>(
  async (app, opts) => {
    const system = opts.system ?? createJobSystem(app.config, { database: app.database, logger: opts.logger, metrics: opts.metrics, role: 'api' });
    app.decorate('jobs', system.runner);
    app.decorate('bankSync', system.sync);
    if (system.runner.backend === 'inline') await system.runner.start();
    app.addHook('onClose', async () => system.close());
  },
  { name: 'jobs' },
);
