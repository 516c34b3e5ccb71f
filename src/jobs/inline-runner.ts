/**
 * The embedded mode's job runner: jobs run inside the API process, with BullMQ's semantics —
 * attempts with exponential backoff and jitter, the per-task timeout, deduplication keys,
 * repeatable schedules, bounded lists of finished jobs — but nothing survives a restart (jobs
 * waiting when the process stops are dropped and logged; schedules simply fire again).
 */
import type { Logger } from '../observability/logging.ts';
import { runAttempt, willRetry, withQueuerTrace, type InstrumentDeps } from './instrument.ts';
import {
  JOB_STATES,
  UnknownTaskError,
  backoffDelayMs,
  describeSchedule,
  nextRun,
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

export interface InlineRunnerOptions {
  queueName: string;
  concurrency: number;
  attempts: number;
  backoffMs: number;
  keepCompleted: number;
  keepFailed: number;
  schedules?: Schedule[];
  metrics?: InstrumentDeps['metrics'];
  /** Job attempts' traces and spans (trace-context.ts, tracing.ts). */
  tracing?: InstrumentDeps['tracing'];
  logger: Logger;
}

type InlineState = 'waiting' | 'active' | 'delayed' | 'held' | 'completed' | 'failed';

export interface InlineJob {
  id: string;
  name: string;
  data: Record<string, unknown>;
  state: InlineState;
  attemptsMade: number;
  dedupeKey?: string;
  failedReason?: string;
  returnValue?: unknown;
  finishedOn?: number;
}

interface DedupeEntry {
  /** The job that has not finished yet (waiting, running, or between attempts). */
  current?: InlineJob;
  /** One more job, queued while `current` runs; released when it finishes. */
  next?: InlineJob;
}

export class InlineRunner implements JobRunner {
  readonly backend = 'inline' as const;
  private seq = 0;
  private started = false;
  private closing = false;
  private readonly jobs = new Map<string, InlineJob>();
  private readonly waiting: InlineJob[] = [];
  private readonly active = new Set<InlineJob>();
  private readonly timers = new Map<InlineJob, NodeJS.Timeout>();
  private readonly finished: { completed: InlineJob[]; failed: InlineJob[] } = { completed: [], failed: [] };
  private readonly dedupe = new Map<string, DedupeEntry>();
  private readonly scheduleTimers = new Map<string, { timer: NodeJS.Timeout; at: number }>();
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly tasks: TaskRegistry,
    private readonly opts: InlineRunnerOptions,
  ) {}

  async enqueue(task: string, queued: Record<string, unknown>, opts: EnqueueOptions = {}): Promise<EnqueuedJob> {
    if (!this.tasks.has(task)) throw new UnknownTaskError(`unknown task ${task}`);
    if (this.closing) throw new Error('the job runner is closed');
    const data = withQueuerTrace(queued);
    const key = opts.dedupeKey;
    const entry = key ? (this.dedupe.get(key) ?? {}) : undefined;
    if (key && entry) {
      if (entry.current && entry.current.state !== 'active') return { id: entry.current.id, name: task };
      if (entry.next) {
        entry.next.data = data;
        return { id: entry.next.id, name: task };
      }
    }
    const job: InlineJob = { id: String(++this.seq), name: task, data, state: 'waiting', attemptsMade: 0, dedupeKey: key };
    this.jobs.set(job.id, job);
    if (key && entry) {
      if (entry.current) {
        job.state = 'held';
        entry.next = job;
      } else {
        entry.current = job;
      }
      this.dedupe.set(key, entry);
    }
    if (job.state === 'waiting') {
      if (opts.delayMs) this.delay(job, opts.delayMs);
      else this.ready(job);
    }
    return { id: job.id, name: task };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const s of this.opts.schedules ?? []) this.arm(s);
    this.pump();
  }

  getJob(id: string): Readonly<InlineJob> | undefined {
    return this.jobs.get(id);
  }

  /** Resolves once no job waits, runs or waits for a retry (tests and shutdown). */
  drain(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async snapshot(): Promise<QueueSnapshot> {
    return { backend: 'inline', queue: this.opts.queueName, counts: this.counts(), workers: this.started && !this.closing ? 1 : 0 };
  }

  async schedules(): Promise<ScheduleInfo[]> {
    return (this.opts.schedules ?? []).map((s) => {
      const armed = this.scheduleTimers.get(s.id);
      return { id: s.id, task: s.task, every: describeSchedule(s), next_run_at: armed ? new Date(armed.at).toISOString() : null };
    });
  }

  async recentFailures(limit: number): Promise<FailedJobInfo[]> {
    return this.finished.failed
      .slice(-limit)
      .reverse()
      .map((j) => ({
        id: j.id,
        task_name: j.name,
        failed_reason: j.failedReason ?? '',
        attempts_made: j.attemptsMade,
        failed_at: j.finishedOn ? new Date(j.finishedOn).toISOString() : null,
        data: j.data,
      }));
  }

  async retry(id: string): Promise<FailedJobAction> {
    if (this.closing) throw new Error('the job runner is closed');
    const job = this.takeFailed(id);
    if (typeof job === 'string') return job;
    job.attemptsMade = 0;
    job.failedReason = undefined;
    job.finishedOn = undefined;
    this.ready(job);
    return 'done';
  }

  async discard(id: string): Promise<FailedJobAction> {
    const job = this.takeFailed(id);
    if (typeof job === 'string') return job;
    this.jobs.delete(id);
    return 'done';
  }

  /** Removes a job from the failed list and hands it over. */
  private takeFailed(id: string): InlineJob | Exclude<FailedJobAction, 'done'> {
    const job = this.jobs.get(id);
    if (!job) return 'not_found';
    const at = this.finished.failed.indexOf(job);
    if (job.state !== 'failed' || at < 0) return 'not_failed';
    this.finished.failed.splice(at, 1);
    return job;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const { timer } of this.scheduleTimers.values()) clearTimeout(timer);
    this.scheduleTimers.clear();
    const dropped = this.waiting.length + this.timers.size + [...this.dedupe.values()].filter((e) => e.next).length;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.waiting.length = 0;
    if (dropped > 0) this.opts.logger.warn({ dropped }, 'jobs_dropped_on_close');
    // The running jobs finish; nothing new starts.
    if (this.active.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private counts(): JobCounts {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as JobCounts;
    counts.waiting = this.waiting.length;
    counts.active = this.active.size;
    counts.delayed = this.timers.size;
    counts.completed = this.finished.completed.length;
    counts.failed = this.finished.failed.length;
    return counts;
  }

  private isIdle(): boolean {
    return this.waiting.length === 0 && this.active.size === 0 && this.timers.size === 0;
  }

  private ready(job: InlineJob): void {
    job.state = 'waiting';
    this.waiting.push(job);
    this.pump();
  }

  private delay(job: InlineJob, ms: number): void {
    job.state = 'delayed';
    const timer = setTimeout(() => {
      this.timers.delete(job);
      this.ready(job);
    }, ms);
    timer.unref();
    this.timers.set(job, timer);
  }

  private pump(): void {
    while (this.started && !this.closing && this.active.size < this.opts.concurrency && this.waiting.length > 0) {
      void this.run(this.waiting.shift()!);
    }
    if (this.isIdle()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async run(job: InlineJob): Promise<void> {
    const task = this.tasks.get(job.name)!;
    job.state = 'active';
    this.active.add(job);
    const attempt = job.attemptsMade + 1;
    try {
      job.returnValue = await runAttempt(task, job.data as never, { jobId: job.id, attempt, maxAttempts: this.opts.attempts }, {
        metrics: this.opts.metrics,
        logger: this.opts.logger,
        tracing: this.opts.tracing,
      });
      job.attemptsMade = attempt;
      this.finish(job, 'completed');
    } catch (error) {
      job.attemptsMade = attempt;
      job.failedReason = error instanceof Error ? error.message : String(error);
      if (willRetry(error, attempt, this.opts.attempts) && !this.closing) {
        this.delay(job, backoffDelayMs(this.opts.backoffMs, attempt));
      } else {
        this.finish(job, 'failed');
      }
    } finally {
      this.active.delete(job);
      this.pump();
    }
  }

  private finish(job: InlineJob, state: 'completed' | 'failed'): void {
    job.state = state;
    job.finishedOn = Date.now();
    const list = this.finished[state];
    list.push(job);
    const keep = state === 'completed' ? this.opts.keepCompleted : this.opts.keepFailed;
    while (list.length > keep) this.jobs.delete(list.shift()!.id);
    if (!job.dedupeKey) return;
    const entry = this.dedupe.get(job.dedupeKey);
    if (entry?.current !== job) return;
    entry.current = entry.next;
    entry.next = undefined;
    if (entry.current) this.ready(entry.current);
    else this.dedupe.delete(job.dedupeKey);
  }

  /** Fires the schedule at its next time, then re-arms it; a run still pending is not doubled. */
  private arm(s: Schedule): void {
    const at = nextRun(s, Date.now());
    const timer = setTimeout(
      () => {
        if (this.closing) return;
        this.enqueue(s.task, s.data ?? {}, { dedupeKey: `schedule:${s.id}` }).catch((error: unknown) =>
          this.opts.logger.error({ schedule: s.id, error }, 'schedule_enqueue_failed'),
        );
        this.arm(s);
      },
      Math.max(0, at - Date.now()),
    );
    timer.unref();
    this.scheduleTimers.set(s.id, { timer, at });
  }
}
