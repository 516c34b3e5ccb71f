/**
 * GET /api/v1/monitoring/jobs (platform admin): the background queue at a glance — jobs per
 * state, workers connected, the schedules with their next run, and the latest failed jobs
 * (kept for inspection, up to JOB_KEEP_FAILED).
 */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../../lib/errors.ts';
import { JOB_STATES, type JobRunner } from '../../jobs/types.ts';
import { withTimeout } from '../../lib/timeout.ts';

/** How long an admin read or action waits for the job queue (Redis in server mode). */
export const QUEUE_TIMEOUT_MS = 1_000;

const jobsDashboard = z.object({
  backend: z.enum(['bullmq', 'inline']),
  queue: z.string(),
  counts: z.object(Object.fromEntries(JOB_STATES.map((s) => [s, z.number().int()])) as Record<(typeof JOB_STATES)[number], z.ZodNumber>),
  workers: z.number().int(),
  schedules: z.array(z.object({ id: z.string(), task: z.string(), every: z.string(), next_run_at: z.string().nullable() })),
  recent_failures: z.array(
    z.object({
      id: z.string(),
      task_name: z.string(),
      failed_reason: z.string(),
      attempts_made: z.number().int(),
      failed_at: z.string().nullable(),
      data: z.unknown(),
    }),
  ),
  timestamp: z.string(),
});

/** The queue at a glance (shared with the operator console's jobs view); 503 when the queue does not answer in time. */
export async function readJobsDashboard(jobs: JobRunner, failures: number): Promise<z.infer<typeof jobsDashboard>> {
  try {
    const [snapshot, schedules, recent] = await withTimeout(
      Promise.all([jobs.snapshot(), jobs.schedules(), failures > 0 ? jobs.recentFailures(failures) : []]),
      QUEUE_TIMEOUT_MS,
    );
    return { ...snapshot, schedules, recent_failures: recent, timestamp: new Date().toISOString() };
  } catch {
    throw new AppError(503, 'The job queue does not answer (is Redis up?)');
  }
}

const routes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/jobs',
    {
      onRequest: app.requireAdmin,
      onSend: app.auditAdminRead,
      schema: {
        tags: ['monitoring'],
        summary: 'Background jobs (platform admin): counts per state, workers, schedules and recent failures.',
        security: [{ bearer: [] }],
        querystring: z.object({ failures: z.coerce.number().int().min(0).max(100).default(20) }),
        response: { 200: jobsDashboard },
      },
    },
    async (request) => readJobsDashboard(app.jobs, request.query.failures),
  );
};

export default routes;
