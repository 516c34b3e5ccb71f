/**
 * The operator console's data and actions (/ops/api/*; the session hook of ./index.ts has already
 * admitted the caller): the overview, the sampled last hour, rate limits, jobs, this replica's
 * recent 5xx answers and security events, and the audit trail. Reads are not audited one by one
 * (the console refreshes every few seconds; its sign-in is on the trail); every action is:
 * `ops.rate_limit_reset`, `ops.job_retry`, `ops.job_discard`, with the admin as actor.
 */
import { z } from 'zod';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError, conflict, notFound } from '../../lib/errors.ts';
import { withTimeout } from '../../lib/timeout.ts';
import { maskIp } from '../../modules/audit/context.ts';
import type { AuditDetails } from '../../modules/audit/chain.ts';
import type { FailedJobAction } from '../../jobs/types.ts';
import type { MetricsHistory } from '../../observability/metrics-history.ts';
import { scrub, scrubErrorMessage } from '../../observability/redact.ts';
import { readAuditPage } from '../monitoring/audit.ts';
import { redisInfo } from '../monitoring/dashboards.ts';
import { QUEUE_TIMEOUT_MS, readJobsDashboard } from '../monitoring/jobs.ts';

/** Which process answered: the console shows it, since its charts and recent lists are per process. */
export interface ReplicaInfo {
  id: string;
  hostname: string;
  pid: number;
}

export interface ConsoleApiOptions {
  history: MetricsHistory;
  replica: ReplicaInfo;
  mode: 'embedded' | 'server';
}

const FAILURES_SHOWN = 50;

const resetBody = z.object({ client_id: z.string().min(1).max(200), endpoint: z.string().min(1).max(200).optional() });
const jobParams = z.object({ id: z.string().min(1).max(200) });

const link = (template: string | undefined, placeholder: string, id: string | null) => (template && id ? template.replace(placeholder, encodeURIComponent(id)) : null);

const routes: FastifyPluginAsyncZod<ConsoleApiOptions> = async (app, opts) => {
  const { history, replica, mode } = opts;
  const { config } = app;
  const hidden = { hide: true };

  app.get('/overview', { schema: hidden }, async () => {
    const [report, redis, queue] = await Promise.all([
      app.health.readiness(),
      redisInfo(app.redis),
      withTimeout(app.jobs.snapshot(), QUEUE_TIMEOUT_MS).catch(() => null),
    ]);
    const memory = process.memoryUsage();
    const pool = app.database.pool();
    return {
      replica,
      mode,
      version: config.version,
      environment: config.environment,
      uptime_seconds: Math.round(process.uptime() * 10) / 10,
      timestamp: new Date().toISOString(),
      readiness: {
        status: report.draining ? 'draining' : report.ready ? 'ready' : 'not_ready',
        checks: Object.entries(report.checks).map(([name, c]) => ({ name, required: app.health.isRequired(name), ...c })),
      },
      process: {
        cpu_percent: history.latestCpuPercent(),
        rss_bytes: memory.rss,
        heap_used_bytes: memory.heapUsed,
        heap_total_bytes: memory.heapTotal,
        event_loop_delay_ms: app.eventLoopDelay.snapshot(),
      },
      database: { mode: app.database.mode, pool_size: pool.size, pool_available: pool.available },
      redis,
      queue,
    };
  });

  app.get('/history', { schema: hidden }, async () => ({ metrics_enabled: config.metrics.enabled, ...history.view() }));

  app.get('/rate-limits', { schema: hidden }, async () => ({
    ...(await app.rateLimiter.dashboard()),
    store: app.rateLimiter.store.kind,
    timestamp: new Date().toISOString(),
  }));

  app.post('/rate-limits/reset', { schema: { ...hidden, body: resetBody } }, async (request) => {
    const { client_id, endpoint } = request.body;
    let reset: number;
    try {
      reset = await app.rateLimiter.reset(client_id, endpoint);
    } catch (error) {
      await audited(request, 'ops.rate_limit_reset', 'failure', 'rate_limit_client', client_id, { endpoint: endpoint ?? null, error: (error as Error).message });
      throw new AppError(503, 'The rate-limit store does not answer; try again shortly');
    }
    await audited(request, 'ops.rate_limit_reset', 'success', 'rate_limit_client', client_id, { endpoint: endpoint ?? null, windows_reset: reset });
    return { reset };
  });

  app.get('/jobs', { schema: hidden }, async () => {
    const view = await readJobsDashboard(app.jobs, FAILURES_SHOWN);
    // Scrubbed as log lines are: a task's error message or data may quote what it was given.
    return { ...view, recent_failures: view.recent_failures.map((f) => ({ ...f, failed_reason: scrubErrorMessage(f.failed_reason), data: scrub(f.data) })) };
  });

  const jobAction = (action: 'retry' | 'discard') =>
    app.post('/jobs/:id/' + action, { schema: { ...hidden, params: jobParams } }, async (request) => {
      const { id } = request.params;
      const auditAction = action === 'retry' ? 'ops.job_retry' : 'ops.job_discard';
      let outcome: FailedJobAction;
      try {
        outcome = await withTimeout(app.jobs[action](id), QUEUE_TIMEOUT_MS);
      } catch (error) {
        // The runners answer not_found / not_failed themselves (a job another operator moved
        // included); what is left is the queue's store away or slow, or the runner shutting down.
        await audited(request, auditAction, 'failure', 'job', id, { error: (error as Error).message });
        throw new AppError(503, 'The job queue does not answer (is Redis up?)');
      }
      await audited(request, auditAction, outcome === 'done' ? 'success' : 'failure', 'job', id, { outcome });
      if (outcome === 'not_found') throw notFound('Job');
      if (outcome === 'not_failed') throw conflict(`Job ${id} is not in the failed list`);
      return action === 'retry' ? { id, state: 'waiting' } : { id, discarded: true };
    });
  jobAction('retry');
  jobAction('discard');

  app.get('/errors', { schema: hidden }, async () => ({
    replica,
    errors: app.recentErrors.list().map((e) => ({
      ...e,
      sentry_url: link(config.ops.sentryEventUrl, '{event_id}', e.sentry_event_id),
      trace_url: link(config.ops.traceUrl, '{trace_id}', e.trace_id),
    })),
  }));

  app.get('/security', { schema: hidden }, async () => ({
    replica,
    events: app.securityEvents.recent.list().map((e) => ({
      ...e,
      details: typeof e.details.ip === 'string' ? { ...e.details, ip: maskIp(e.details.ip) } : e.details,
    })),
  }));

  app.get('/audit', { schema: hidden }, async (request) => readAuditPage(app, request.query));
};

function audited(request: FastifyRequest, action: string, outcome: 'success' | 'failure', targetType: string, targetId: string, details: AuditDetails) {
  return request.audit({ action, outcome, targetType, targetId, details });
}

export default routes;
