/**
 * The job system of one process: the task registry over the domain services (made by the
 * composition root), and the runner that fits the mode and role —
 * - the API with a Redis connection: a BullMQ producer (enqueues; worker processes run the jobs);
 * - the API without one (embedded): the in-process runner;
 * - `nest-egg worker`: a BullMQ worker.
 */
import { hostname } from 'node:os';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { withTimeout } from '../lib/timeout.ts';
import type { AuditTrail } from '../modules/audit/trail.ts';
import type { BudgetAlertService } from '../modules/budgets/alerts.ts';
import type { SyncService } from '../modules/sync/service.ts';
import { getLogger, type Logger } from '../observability/logging.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Redis } from '../redis.ts';
import { BullmqRunner } from './bullmq-runner.ts';
import { InlineRunner } from './inline-runner.ts';
import { createTasks } from './tasks.ts';
import { TASK_NAMES, type JobRunner, type Schedule } from './types.ts';

export type JobRole = 'api' | 'worker';

export interface JobSystemDeps {
  db: Db;
  logger: Logger;
  metrics?: Metrics;
  tracing?: Tracing;
  role: JobRole;
  services: { bankSync?: SyncService; budgetAlerts: BudgetAlertService; audit: AuditTrail };
  /** BullMQ's connection (REDIS_URL): a producer's for the API, a blocking one for the worker; none in embedded mode. */
  connection?: Redis;
  schedules: Schedule[];
}

export interface JobSystem {
  runner: JobRunner;
  /** Stops the runner, letting running jobs finish (the connection is closed by its owner). */
  close(): Promise<void>;
}

const QUEUE_SNAPSHOT_TIMEOUT_MS = 1_000;

export function createJobSystem(config: Config, deps: JobSystemDeps): JobSystem {
  const logger = getLogger(deps.logger, 'jobs');
  let runner: JobRunner | undefined;
  const tasks = createTasks({
    db: deps.db,
    sync: deps.services.bankSync,
    alerts: deps.services.budgetAlerts,
    audit: deps.services.audit,
    auditRetentionDays: config.audit.retentionDays,
    logger,
    enqueue: (task, data, opts) => runner!.enqueue(task, data, opts),
  });
  const common = {
    queueName: config.jobs.queueName,
    attempts: config.jobs.attempts,
    backoffMs: config.jobs.backoffMs,
    keepCompleted: config.jobs.keepCompleted,
    keepFailed: config.jobs.keepFailed,
    schedules: deps.schedules,
    metrics: deps.metrics,
    tracing: deps.tracing,
    logger,
  };
  const worker = deps.role === 'worker';
  if (deps.connection) {
    runner = new BullmqRunner(tasks, {
      ...common,
      prefix: config.jobs.prefix,
      connection: deps.connection,
      worker: worker
        ? {
            connection: deps.connection,
            concurrency: config.jobs.concurrency,
            lockDurationMs: config.jobs.lockDurationMs,
            stalledIntervalMs: config.jobs.stalledIntervalMs,
            name: `${hostname()}:${process.pid}`,
          }
        : undefined,
    });
  } else {
    if (worker) throw new Error('nest-egg worker needs REDIS_URL (without it, the API runs jobs in-process)');
    runner = new InlineRunner(tasks, { ...common, concurrency: config.jobs.concurrency });
  }
  // The task series start at zero where tasks run (a worker, the embedded API), not on a producer.
  if (worker || runner.backend === 'inline') deps.metrics?.registerTaskNames(TASK_NAMES);
  const current = runner;
  // A scrape never waits on a slow queue: its depth is left out of that scrape instead.
  deps.metrics?.watchQueue(() => withTimeout(current.snapshot(), QUEUE_SNAPSHOT_TIMEOUT_MS).then((s) => s.counts, () => undefined));
  return { runner: current, close: () => current.close() };
}
