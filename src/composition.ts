/**
 * The composition root: the one place that builds a process's shared parts, once, for every role.
 *
 * - `openCore` — configuration's logger and metrics registry, and the database (every role:
 *   serve, worker, migrate, create-admin);
 * - `assemble` — over an open core: the Redis connections (one factory), the health registry, the
 *   domain services (bank sync, budget alerts), the job system and the secrets (serve, worker).
 *
 * `serve` and `worker` differ only in what they start (src/server.ts, src/worker.ts); tests hand
 * in a database, a metrics registry, a bank provider or schedules of their own.
 */
import { requireSharedSecrets, type Config } from './config.ts';
import { openDatabase, type Database, type QueryTracer } from './db/client.ts';
import { createJobSystem, type JobRole, type JobSystem } from './jobs/index.ts';
import { schedulesOf } from './jobs/tasks.ts';
import type { Schedule } from './jobs/types.ts';
import { resolveJwtSecret } from './modules/auth/secret.ts';
import { BudgetAlertService } from './modules/budgets/alerts.ts';
import { AuditTrail } from './modules/audit/trail.ts';
import { createBankSync } from './modules/sync/index.ts';
import type { BankProvider } from './modules/sync/provider.ts';
import type { SyncService } from './modules/sync/service.ts';
import { HealthRegistry } from './observability/health.ts';
import { getLogger, type Logger } from './observability/logging.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { createTracing, exportCounters, startChildSpan, type Tracing } from './observability/tracing.ts';
import { RedisConnections, type Redis } from './redis.ts';

export type Role = 'serve' | 'worker' | 'migrate' | 'create-admin' | 'audit';

export interface Core {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  database: Database;
  /** The audit trail's recorder (every role records: the API, jobs, the CLI). */
  audit: AuditTrail;
  /** True when the database was opened here (and is closed with the process). */
  ownsDatabase: boolean;
  /** The head sampling policy and the OTLP export (closed, flushing, with the parts). */
  tracing: Tracing;
}

export interface CoreOptions {
  logger: Logger;
  /** An open database (tests); the caller keeps it and closes it. */
  database?: Database;
  /** A metrics registry of the caller's (tests read it). */
  metrics?: Metrics;
}

/** The metrics registry and the database, timed into it; migrated at start for serve and worker unless MIGRATE_ON_START=false. */
export async function openCore(config: Config, role: Role, opts: CoreOptions): Promise<Core> {
  // Before anything is opened: replicas that would not agree on their secrets do not start.
  if (role === 'serve' || role === 'worker') requireSharedSecrets(config);
  const metrics =
    opts.metrics ??
    createMetrics({
      version: config.version,
      environment: config.environment,
      processMetrics: config.metrics.enabled,
      // The business gauges come from the API (its background refresh), not from every worker.
      businessGauges: role !== 'worker',
    });
  const tracing = createTracing(config.tracing, exportCounters(metrics), getLogger(opts.logger, 'tracing'));
  const audit = (database: Database) =>
    new AuditTrail(database.db, { logger: getLogger(opts.logger, 'audit'), onWriteFailure: () => metrics.auditWriteFailures.inc() });
  if (opts.database) return { config, logger: opts.logger, metrics, database: opts.database, audit: audit(opts.database), ownsDatabase: false, tracing };
  const log = getLogger(opts.logger, 'db');
  const database = await openDatabase({
    url: config.database.url,
    dataDir: config.database.dataDir,
    poolSize: config.database.poolSize,
    onQuery: config.metrics.enabled ? metrics.observeQuery : undefined,
    traceQuery: tracing.export ? traceQuery : undefined,
    onPoolError: (error) => log.warn({ error }, 'db_pool_client_error'),
  });
  if ((role === 'serve' || role === 'worker') && config.database.migrateOnStart) await database.migrate();
  return { config, logger: opts.logger, metrics, database, audit: audit(database), ownsDatabase: true, tracing };
}

/** A query's client span: named by its statement kind; the SQL is drizzle's parameterised text (values are never in it). */
const traceQuery: QueryTracer = (sqlText, operation) =>
  startChildSpan(operation.toUpperCase(), 'client', { 'db.system.name': 'postgresql', 'db.operation.name': operation.toUpperCase(), 'db.query.text': sqlText.slice(0, 2000) });

export interface DomainServices {
  /** Undefined when bank sync is off (BANK_SYNC_PROVIDER=none). */
  bankSync?: SyncService;
  budgetAlerts: BudgetAlertService;
  audit: AuditTrail;
}

export interface Parts extends Core {
  role: 'serve' | 'worker';
  redis: RedisConnections;
  health: HealthRegistry;
  services: DomainServices;
  jobs: JobSystem;
  /** The JWT signing secret (JWT_SECRET, or the persisted development secret). */
  jwtSecret: string;
  /** Stops the job runner (letting running jobs finish), closes Redis, then the database when opened here. */
  close(): Promise<void>;
}

export interface AssembleOptions {
  /** A Redis client for commands (tests, the bench); closed with the process. */
  redis?: Redis;
  /** The JWT secret (tests); resolved from the configuration otherwise. */
  jwtSecret?: string;
  /** Replaces the configured bank provider (tests). */
  provider?: BankProvider;
  /** Replaces the configured schedules (tests). */
  schedules?: Schedule[];
}

export function assemble(core: Core, role: 'serve' | 'worker', opts: AssembleOptions = {}): Parts {
  const { config, logger, metrics, database } = core;
  const redis = new RedisConnections(config.redisUrl, logger, { commands: opts.redis });

  const health = new HealthRegistry();
  health.register({ name: 'database', required: true, check: () => database.ping() });
  health.onResult((name, up) => metrics.setDependencyUp(name, up));
  if (config.metrics.enabled) metrics.watchPool(() => database.pool());

  const services: DomainServices = {
    bankSync: createBankSync(config, { db: database.db, metrics, logger: getLogger(logger, 'sync'), provider: opts.provider }),
    budgetAlerts: new BudgetAlertService(database.db, {
      onAlert: (priority) => metrics.recordBudgetAlert(priority),
      logger: getLogger(logger, 'budgets'),
    }),
    audit: core.audit,
  };

  const jobRole: JobRole = role === 'worker' ? 'worker' : 'api';
  if (jobRole === 'worker' && !config.redisUrl) throw new Error('nest-egg worker needs REDIS_URL (without it, the API runs jobs in-process)');
  const jobs = createJobSystem(config, {
    db: database.db,
    logger,
    metrics,
    tracing: core.tracing,
    role: jobRole,
    services,
    connection: redis.get(jobRole === 'worker' ? 'worker' : 'queue'),
    schedules: opts.schedules ?? schedulesOf(config),
  });

  if (role === 'worker') {
    // The worker cannot take a job without Redis: it is required there.
    health.register({ name: 'redis', required: true, check: () => jobs.runner.ping() });
  } else if (redis.configured) {
    // Not required: without Redis the API still serves every request (rate limits fall back to
    // per-process ones); only queueing a bank sync fails. Taking every replica out of the load
    // balancer for a Redis outage would turn a degraded service into a full outage.
    const commands = redis.get('commands')!;
    health.register({ name: 'redis', required: false, check: async () => void (await commands.ping()) });
  }

  let closed: Promise<void> | undefined;
  return {
    ...core,
    role,
    redis,
    health,
    services,
    jobs,
    jwtSecret: opts.jwtSecret ?? (role === 'serve' ? resolveJwtSecret(config) : ''),
    close: () =>
      (closed ??= (async () => {
        await jobs.close();
        await redis.close();
        if (core.ownsDatabase) await database.close();
        await core.tracing.close();
      })()),
  };
}

export interface SignalStop {
  /** The process's logger (already named for its role). */
  log: Logger;
  /** Root logger, flushed before exit. */
  logger: Logger;
  /** How long stopping may take (after `delayMs`, e.g. the drain delay) before the process exits 1. */
  timeoutMs: number;
  delayMs?: number;
  /** The event logged when stopping takes longer than timeoutMs. */
  timeoutEvent: string;
  stop: (signal: string) => Promise<void>;
  /** Called before exiting on timeout, e.g. to drop the remaining connections. */
  onTimeout?: () => void;
}

/** Runs `stop` once on SIGTERM or SIGINT, then exits 0; exits 1 when it takes longer than `delayMs + timeoutMs`. */
export function stopOnSignal(opts: SignalStop): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => {
      opts.log.error({ timeout_ms: opts.timeoutMs }, opts.timeoutEvent);
      opts.onTimeout?.();
      opts.logger.flush();
      process.exit(1);
    }, (opts.delayMs ?? 0) + opts.timeoutMs);
    force.unref();
    await opts.stop(signal);
    opts.logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
