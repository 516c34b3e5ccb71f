/**
 * The job system inside the API: decorates app.jobs (the runner). Embedded mode starts the
 * in-process runner here; in server mode the API only enqueues. The runner is stopped by the
 * composition root's close, after the HTTP server.
 */
import fp from 'fastify-plugin';
import type { JobRunner } from './types.ts';

declare module 'fastify' {
  interface FastifyInstance {
    jobs: JobRunner;
  }
}

export interface JobsPluginOptions {
  runner: JobRunner;
}

export default fp<JobsPluginOptions>(
  async (app, opts) => {
    app.decorate('jobs', opts.runner);
    if (opts.runner.backend === 'inline') await opts.runner.start();
  },
  { name: 'jobs' },
);
