/**
 * The job system of one process: the task registry over the services, and the runner that fits
 * the mode and role —
 * - the API with REDIS_URL: a BullMQ producer (enqueues; worker processes run the jobs);
 * - the API without REDIS_URL (embedded): the in-process runner, started here;
 * - `nest-egg worker`: a BullMQ worker (REDIS_URL required).
 */
import { hostname } from 'node:os';
import type { Config } from '../config.ts';
import type { Database } from '../db/client.ts';
import { BudgetAlertService } from '../modules/budgets/alerts.ts';
import { createBankSync } from '../modules/sync/index.ts';
import type { BankProvider } from '../modules/sync/provider.ts';
import type { SyncService } from '../modules/sync/service.ts';
import { getLogger, type Logger } from '../observability/logging.ts';
import type { Metrics } from '../observability/metrics.ts';
import { closeRedisClient, createRedisClient, type Redis } from '../redis.ts';
import { BullmqRunner } from './bullmq-runner.ts';
import { InlineRunner } from './inline-runner.ts';
import { createTasks, schedulesOf } from './tasks.ts';
import { TASK_NAMES, type JobRunner, type Schedule } from './types.ts';

export type JobRole = 'api' | 'worker';

export interface JobSystemDeps {
  database: Database;
  logger: Logger;
  metrics?: Metrics;
  role: JobRole;
  /** Replaces the configured bank provider (tests). */
  provider?: BankProvider;
  /** Replaces the configured schedules (tests). */
  schedules?: Schedule[];
}

export interface JobSystem {
  runner: JobRunner;
  sync?: SyncService;
  /** Stops the runner (letting running jobs finish) and closes its connections. */
  close(): Promise<void>;
}

const QUEUE_SNAPSHOT_TIMEOUT_MS = 1_000;

export function createJobSystem(config: Config, deps: JobSystemDeps): JobSystem {
  const logger = getLogger(deps.logger, 'jobs');
  const db = deps.database.db;
  const sync = createBankSync(config, { db, metrics: deps.metrics, logger: getLogger(deps.logger, 'sync'), provider: deps.provider });
  const alerts = new BudgetAlertService(db, {
    onAlert: deps.metrics ? (priority) => deps.metrics!.recordBudgetAlert(priority) : undefined,
    logger: getLogger(deps.logger, 'budgets'),
  });
  let runner: JobRunner | undefined;
  const tasks = createTasks({
    db,
    sync,
    alerts,
    logger,
    enqueue: (task, data, opts) => runner!.enqueue(task, data, opts),
  });
  const schedules = deps.schedules ?? schedulesOf(config);
  const common = {
    queueName: config.jobs.queueName,
    attempts: config.jobs.attempts,
    backoffMs: config.jobs.backoffMs,
    keepCompleted: config.jobs.keepCompleted,
    keepFailed: config.jobs.keepFailed,
    schedules,
    metrics: deps.metrics,
    logger,
  };
  const connections: Redis[] = [];
  if (config.redisUrl) {
    const worker = deps.role === 'worker';
    const connection = createRedisClient(config.redisUrl, deps.logger, {
      connectionName: worker ? 'nest-egg-worker' : 'nest-egg-api-queue',
      blocking: worker,
    });
    connections.push(connection);
    runner = new BullmqRunner(tasks, {
      ...common,
      prefix: config.jobs.prefix,
      connection,
      worker: worker
        ? {
            connection,
            concurrency: config.jobs.concurrency,
            lockDurationMs: config.jobs.lockDurationMs,
            stalledIntervalMs: config.jobs.stalledIntervalMs,
            name: `${hostname()}:${process.pid}`,
          }
        : undefined,
    });
  } else {
    if (deps.role === 'worker') throw new Error('nest-egg worker needs REDIS_URL (without it, the API runs jobs in-process)');
    runner = new InlineRunner(tasks, { ...common, concurrency: config.jobs.concurrency });
  }
  // The task series start at zero where tasks run (a worker, the embedded API), not on a producer.
  if (deps.role === 'worker' || runner.backend === 'inline') deps.metrics?.registerTaskNames(TASK_NAMES);
  const current = runner;
  deps.metrics?.watchQueue(async () => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const snapshot = await Promise.race([
        current.snapshot(),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), QUEUE_SNAPSHOT_TIMEOUT_MS);
        }),
      ]);
      return snapshot?.counts;
    } finally {
      clearTimeout(timer);
    }
  });
  return {
    runner: current,
    sync,
    async close() {
      await current.close();
      for (const c of connections) await closeRedisClient(c);
    },
  };
}
