/**
 * Server mode's job runner: a BullMQ Queue over Redis, and (in `nest-egg worker`) a Worker.
 *
 * - Attempts, exponential backoff with jitter and bounded lists of finished jobs are the queue's
 *   default job options, so every producer enqueues alike.
 * - A worker holds a lock on each job it runs and renews it; when a worker dies (SIGKILL, OOM,
 *   lost host) its lock expires and another worker's stalled check puts the job back in the
 *   queue (WORKER_LOCK_DURATION_MS, WORKER_STALLED_INTERVAL_MS). Tasks are idempotent, so a job
 *   that runs again after a crash does no harm.
 * - Schedules are BullMQ job schedulers: one record in Redis per schedule, upserted by every
 *   worker at start, so each period produces one job however many workers run.
 */
import { Job, Queue, UnrecoverableError, Worker, type JobSchedulerJson } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logging.ts';
import { runAttempt, withQueuerTrace, type InstrumentDeps } from './instrument.ts';
import {
  BACKOFF_JITTER,
  JOB_STATES,
  PermanentTaskError,
  QueueUnavailableError,
  UnknownTaskError,
  describeSchedule,
  type EnqueueOptions,
  type EnqueuedJob,
  type FailedJobAction,
  type FailedJobInfo,
  type JobCounts,
  type JobRunner,
  type QueueSnapshot,
  type Schedule,
  type ScheduleInfo,
  type TaskRegistry,
} from './types.ts';
import { withTimeout } from '../lib/timeout.ts';

export interface BullmqRunnerOptions {
  queueName: string;
  prefix: string;
  attempts: number;
  backoffMs: number;
  keepCompleted: number;
  keepFailed: number;
  /** The Queue's connection (fail-fast client for a producer; a blocking one in a worker). */
  connection: Redis;
  /** Worker settings, used by start(). */
  worker?: {
    /** A client made with `blocking: true` (BullMQ duplicates it for its blocking reads). */
    connection: Redis;
    concurrency: number;
    lockDurationMs: number;
    stalledIntervalMs: number;
    /** Shown by Queue.getWorkers(), e.g. `host:pid`. */
    name?: string;
  };
  schedules?: Schedule[];
  metrics?: InstrumentDeps['metrics'];
  /** Job attempts' traces and spans (trace-context.ts, tracing.ts). */
  tracing?: InstrumentDeps['tracing'];
  logger: Logger;
}

const ENQUEUE_TIMEOUT_MS = 2_000;
/** Queue errors repeat while Redis is down (the client logs the outage itself): one line a minute. */
const ERROR_LOG_INTERVAL_MS = 60_000;

function cronOf(s: Schedule): { pattern: string; tz: string } | { every: number } {
  if (s.dailyAt) return { pattern: `${s.dailyAt.minute} ${s.dailyAt.hour} * * *`, tz: 'UTC' };
  return { every: s.everyMs ?? 86_400_000 };
}

function scheduleOf(j: JobSchedulerJson): ScheduleInfo {
  const m = j.pattern ? /^(\d+) (\d+) \* \* \*$/.exec(j.pattern) : null;
  const every = m
    ? describeSchedule({ id: j.key, task: j.name, dailyAt: { hour: Number(m[2]), minute: Number(m[1]) } })
    : j.every
      ? describeSchedule({ id: j.key, task: j.name, everyMs: j.every })
      : `cron ${j.pattern ?? '?'}${j.tz ? ` ${j.tz}` : ''}`;
  return { id: j.key, task: j.name, every, next_run_at: j.next ? new Date(j.next).toISOString() : null };
}

export class BullmqRunner implements JobRunner {
  readonly backend = 'bullmq' as const;
  readonly queue: Queue;
  private worker: Worker | undefined;

  constructor(
    private readonly tasks: TaskRegistry,
    private readonly opts: BullmqRunnerOptions,
  ) {
    this.queue = new Queue(opts.queueName, {
      connection: opts.connection,
      prefix: opts.prefix,
      // The queue's metadata is the workers' to write: an API that never enqueues leaves no key behind.
      skipMetasUpdate: !opts.worker,
      defaultJobOptions: {
        attempts: opts.attempts,
        backoff: { type: 'exponential', delay: opts.backoffMs, jitter: BACKOFF_JITTER },
        removeOnComplete: { count: opts.keepCompleted },
        removeOnFail: { count: opts.keepFailed },
      },
    });
    let lastErrorLog = 0;
    this.queue.on('error', (error) => {
      if (Date.now() - lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
      lastErrorLog = Date.now();
      opts.logger.warn({ error: { message: error.message } }, 'queue_error');
    });
  }

  async enqueue(task: string, data: Record<string, unknown>, opts: EnqueueOptions = {}): Promise<EnqueuedJob> {
    if (!this.tasks.has(task)) throw new UnknownTaskError(`unknown task ${task}`);
    // While Redis is unreachable BullMQ waits for it; a request must not wait with it.
    try {
      const job = await withTimeout(
        this.queue.add(task, withQueuerTrace(data), {
          ...(opts.dedupeKey && { deduplication: { id: opts.dedupeKey, keepLastIfActive: true } }),
          ...(opts.delayMs && { delay: opts.delayMs }),
        }),
        ENQUEUE_TIMEOUT_MS,
        () => new QueueUnavailableError(`the queue did not take the job within ${ENQUEUE_TIMEOUT_MS} ms`),
      );
      return { id: String(job.id), name: task };
    } catch (error) {
      if (error instanceof QueueUnavailableError) throw error;
      throw new QueueUnavailableError(`the queue refused the job: ${(error as Error).message}`, { cause: error });
    }
  }

  async start(): Promise<void> {
    const w = this.opts.worker;
    if (!w) throw new Error('this runner has no worker settings (a producer only enqueues)');
    if (this.worker) return;
    await this.upsertSchedules();
    const log = this.opts.logger;
    this.worker = new Worker(this.opts.queueName, (job, _token, signal) => this.process(job, signal), {
      connection: w.connection,
      prefix: this.opts.prefix,
      concurrency: w.concurrency,
      lockDuration: w.lockDurationMs,
      stalledInterval: w.stalledIntervalMs,
      maxStalledCount: 1,
      name: w.name,
      removeOnComplete: { count: this.opts.keepCompleted },
      removeOnFail: { count: this.opts.keepFailed },
    });
    let lastErrorLog = 0;
    this.worker.on('error', (error) => {
      if (Date.now() - lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
      lastErrorLog = Date.now();
      log.warn({ error: { message: error.message } }, 'worker_error');
    });
    // Another worker died holding this job; it runs again here or elsewhere.
    this.worker.on('stalled', (jobId) => log.warn({ job_id: jobId }, 'job_stalled'));
    await this.worker.waitUntilReady();
  }

  private async process(job: Job, signal?: AbortSignal): Promise<unknown> {
    const task = this.tasks.get(job.name);
    if (!task) throw new UnrecoverableError(`unknown task ${job.name}`);
    try {
      return await runAttempt(
        task,
        job.data as never,
        { jobId: String(job.id), attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1, signal },
        { metrics: this.opts.metrics, logger: this.opts.logger, tracing: this.opts.tracing },
      );
    } catch (error) {
      // BullMQ's way to say "do not retry".
      if (error instanceof PermanentTaskError) throw new UnrecoverableError(error.message);
      throw error;
    }
  }

  /** Makes Redis hold exactly the configured schedules (one record each, shared by every worker). */
  private async upsertSchedules(): Promise<void> {
    const wanted = new Map((this.opts.schedules ?? []).map((s) => [s.id, s]));
    for (const existing of await this.queue.getJobSchedulers()) {
      if (!wanted.has(existing.key)) await this.queue.removeJobScheduler(existing.key);
    }
    for (const s of wanted.values()) {
      await this.queue.upsertJobScheduler(s.id, cronOf(s), { name: s.task, data: s.data ?? {} });
    }
  }

  async snapshot(): Promise<QueueSnapshot> {
    const [raw, workers] = await Promise.all([this.queue.getJobCounts(...JOB_STATES), this.queue.getWorkersCount().catch(() => 0)]);
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, raw[s] ?? 0])) as JobCounts;
    return { backend: 'bullmq', queue: this.opts.queueName, counts, workers };
  }

  async schedules(): Promise<ScheduleInfo[]> {
    return (await this.queue.getJobSchedulers()).map(scheduleOf);
  }

  async recentFailures(limit: number): Promise<FailedJobInfo[]> {
    const jobs = await this.queue.getFailed(0, Math.max(0, limit - 1));
    return jobs.map((j) => ({
      id: String(j.id),
      task_name: j.name,
      failed_reason: j.failedReason ?? '',
      attempts_made: j.attemptsMade,
      failed_at: j.finishedOn ? new Date(j.finishedOn).toISOString() : null,
      data: j.data,
    }));
  }

  async retry(id: string): Promise<FailedJobAction> {
    return this.onFailedJob(id, (job) => job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }));
  }

  async discard(id: string): Promise<FailedJobAction> {
    return this.onFailedJob(id, (job) => job.remove());
  }

  /**
   * Runs `action` on a job in the failed list. BullMQ refuses (throws) when the job left that list
   * in the meantime — another replica's operator retried it, or removeOnFail trimmed it — which is
   * told apart from a real error by reading the job again.
   */
  private async onFailedJob(id: string, action: (job: Job) => Promise<unknown>): Promise<FailedJobAction> {
    const state = async () => {
      const job = await Job.fromId(this.queue, id);
      return { job, failed: job ? (await job.getState()) === 'failed' : false };
    };
    const before = await state();
    if (!before.job) return 'not_found';
    if (!before.failed) return 'not_failed';
    try {
      await action(before.job);
      return 'done';
    } catch (error) {
      const after = await state();
      if (!after.job) return 'not_found';
      if (!after.failed) return 'not_failed';
      throw error;
    }
  }

  async ping(): Promise<void> {
    await this.opts.connection.ping();
  }

  /** A worker first lets its running jobs finish (BullMQ's graceful close), then the queue closes. */
  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }
}
