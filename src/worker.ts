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
import { ConfigError, type Config } from './config.ts';
import { openDatabase, type Database } from './db/client.ts';
import { registerErrorHandlers } from './http/errors.ts';
import { createJobSystem, type JobSystem } from './jobs/index.ts';
import type { Schedule } from './jobs/types.ts';
import type { BankProvider } from './modules/sync/provider.ts';
import { HealthRegistry } from './observability/health.ts';
import { getLogger, type Logger } from './observability/logging.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import metricsRoutes from './routes/metrics.ts';

const HEALTH_PROBE_INTERVAL_MS = 15_000;

export interface WorkerProcess {
  http: FastifyInstance;
  jobs: JobSystem;
  health: HealthRegistry;
  metrics: Metrics;
  /** Stops taking jobs, waits for the running ones, closes the HTTP server and the database. */
  stop(): Promise<void>;
}

export interface WorkerDeps {
  logger: Logger;
  /** An open database (tests); opened (and migrated when MIGRATE_ON_START) from the configuration otherwise. */
  database?: Database;
  provider?: BankProvider;
  /** Replaces the configured schedules (tests). */
  schedules?: Schedule[];
}

/** The worker's small HTTP face: /health and /metrics. */
export async function buildWorkerHttp(config: Config, deps: { logger: Logger; health: HealthRegistry; metrics: Metrics }): Promise<FastifyInstance> {
  const http = Fastify({
    loggerInstance: deps.logger.child({ logger: 'worker.http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
  });
  registerErrorHandlers(http);
  http.get('/health', async (_request, reply) => {
    const report = await deps.health.readiness();
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
  if (config.metrics.enabled) await http.register(metricsRoutes, { metrics: deps.metrics, token: config.metrics.token });
  return http;
}

export async function startWorker(config: Config, deps: WorkerDeps): Promise<WorkerProcess> {
  const log = getLogger(deps.logger, 'worker');
  if (!config.redisUrl) throw new ConfigError('Invalid configuration: REDIS_URL is required by nest-egg worker');
  // The business gauges come from the API (its background refresh), not from every worker.
  const metrics = createMetrics({ version: config.version, environment: config.environment, processMetrics: config.metrics.enabled, businessGauges: false });
  const ownDatabase = !deps.database;
  const database =
    deps.database ??
    (await openDatabase({
      url: config.database.url,
      dataDir: config.database.dataDir,
      poolSize: config.database.poolSize,
      onQuery: config.metrics.enabled ? metrics.observeQuery : undefined,
      onPoolError: (error) => getLogger(deps.logger, 'db').warn({ error }, 'db_pool_client_error'),
    }));
  if (ownDatabase && config.database.migrateOnStart) await database.migrate();
  const jobs = createJobSystem(config, { database, logger: deps.logger, metrics, role: 'worker', provider: deps.provider, schedules: deps.schedules });
  const health = new HealthRegistry();
  health.register({ name: 'database', required: true, check: () => database.ping() });
  health.register({ name: 'redis', required: true, check: () => jobs.runner.ping() });
  health.onResult((name, up) => metrics.setDependencyUp(name, up));
  if (config.metrics.enabled) metrics.watchPool(() => database.pool());

  const http = await buildWorkerHttp(config, { logger: deps.logger, health, metrics });
  // nest_egg_dependency_up is fed by the checks: run them on a timer too, not only when /health is asked.
  await health.readiness();
  const probe = setInterval(() => void health.readiness(), HEALTH_PROBE_INTERVAL_MS);
  probe.unref();
  await jobs.runner.start();
  await http.listen({ port: config.workerPort, host: config.host });
  log.info(
    { port: config.workerPort, concurrency: config.jobs.concurrency, queue: config.jobs.queueName, database: database.mode, bank_sync: config.bankSync.provider },
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
        await jobs.close();
        await http.close();
        if (ownDatabase) await database.close();
      })()),
  };
}

/** The CLI's `worker` command: runs until SIGTERM/SIGINT, then stops gracefully. */
export async function runWorker(config: Config, logger: Logger, onStopped: () => Promise<void>): Promise<void> {
  const log = getLogger(logger, 'worker');
  const worker = await startWorker(config, { logger });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, timeout_ms: config.shutdown.timeoutMs }, 'worker_stopping');
    const force = setTimeout(() => {
      log.error({ timeout_ms: config.shutdown.timeoutMs }, 'worker_stop_timed_out');
      logger.flush();
      process.exit(1);
    }, config.shutdown.timeoutMs);
    force.unref();
    await worker.stop();
    await onStopped();
    log.info('worker_stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
