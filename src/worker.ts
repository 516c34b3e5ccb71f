/**
 * `nest-egg worker`: runs background jobs and schedules from the BullMQ queue (REDIS_URL), with
 * WORKER_CONCURRENCY jobs at a time, and serves its own GET /metrics (the celery_* series,
 * plaid_syncs_total, budget_alerts_total, queue depth) and GET /health (database and Redis,
 * 503 when either fails or while stopping) on WORKER_PORT.
 *
 * SIGTERM/SIGINT: /health turns 503, the worker takes no new job and lets the running ones
 * finish (up to SHUTDOWN_TIMEOUT_MS; after that the process exits and the jobs' locks expire,
 * so another worker picks them up).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { assemble, openCore, stopOnSignal, type AssembleOptions, type CoreOptions, type Parts } from './composition.ts';
import { ConfigError, type Config } from './config.ts';
import { registerErrorHandlers } from './http/errors.ts';
import type { JobSystem } from './jobs/index.ts';
import type { HealthRegistry } from './observability/health.ts';
import { getLogger, type Logger } from './observability/logging.ts';
import type { Metrics } from './observability/metrics.ts';
import metricsRoutes from './routes/metrics.ts';

const HEALTH_PROBE_INTERVAL_MS = 15_000;

export interface WorkerProcess {
  http: FastifyInstance;
  jobs: JobSystem;
  health: HealthRegistry;
  metrics: Metrics;
  /** Stops taking jobs, waits for the running ones, closes the HTTP server, Redis and the database. */
  stop(): Promise<void>;
}

export type WorkerDeps = CoreOptions & Pick<AssembleOptions, 'provider' | 'schedules'>;

/** The worker's small HTTP face: /health and /metrics. */
export async function buildWorkerHttp(parts: Parts): Promise<FastifyInstance> {
  const { config, health } = parts;
  const http = Fastify({
    loggerInstance: parts.logger.child({ logger: 'worker.http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
  });
  http.decorate('config', config);
  http.decorate('metrics', parts.metrics);
  registerErrorHandlers(http);
  http.get('/health', async (_request, reply) => {
    const report = await health.readiness();
    const status = (name: string) => report.checks[name]?.status ?? 'not_configured';
    return reply.code(report.ready ? 200 : 503).send({
      status: report.ready ? 'healthy' : 'unhealthy',
      role: 'worker',
      version: config.version,
      timestamp: new Date().toISOString(),
      database: status('database'),
      redis: status('redis'),
      draining: report.draining,
      checks: report.checks,
    });
  });
  if (config.metrics.enabled) await http.register(metricsRoutes);
  return http;
}

export async function startWorker(config: Config, deps: WorkerDeps): Promise<WorkerProcess> {
  const log = getLogger(deps.logger, 'worker');
  if (!config.redisUrl) throw new ConfigError('Invalid configuration: REDIS_URL is required by nest-egg worker');
  const parts = assemble(await openCore(config, 'worker', deps), 'worker', deps);
  const { health, jobs, metrics } = parts;

  const http = await buildWorkerHttp(parts);
  // nest_egg_dependency_up is fed by the checks: run them on a timer too, not only when /health is asked.
  await health.readiness();
  const probe = setInterval(() => void health.readiness(), HEALTH_PROBE_INTERVAL_MS);
  probe.unref();
  // Loading the Plaid SDK blocks the event loop for a second or more; done during a job, it kept
  // BullMQ from renewing the locks of the jobs running beside it, and another worker ran them again.
  await parts.services.bankSync?.prepare();
  await jobs.runner.start();
  await http.listen({ port: config.workerPort, host: config.host });
  log.info(
    { port: config.workerPort, concurrency: config.jobs.concurrency, queue: config.jobs.queueName, database: parts.database.mode, bank_sync: config.bankSync.provider },
    'worker_started',
  );

  let stopped: Promise<void> | undefined;
  return {
    http,
    jobs,
    health,
    metrics,
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(probe);
        health.setDraining();
        await parts.close();
        await http.close();
      })()),
  };
}

/** The CLI's `worker` command: runs until SIGTERM/SIGINT, then stops gracefully. */
export async function runWorker(config: Config, logger: Logger, onStopped: () => Promise<void>): Promise<void> {
  const log = getLogger(logger, 'worker');
  const worker = await startWorker(config, { logger });
  stopOnSignal({
    log,
    logger,
    timeoutMs: config.shutdown.timeoutMs,
    timeoutEvent: 'worker_stop_timed_out',
    stop: async (signal) => {
      log.info({ signal, timeout_ms: config.shutdown.timeoutMs }, 'worker_stopping');
      await worker.stop();
      await onStopped();
      log.info('worker_stopped');
    },
  });
}
