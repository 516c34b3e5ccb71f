/**
 * The job runner's small interface (after BullMQ's Queue/Worker split): tasks are plain async
 * functions in one registry, and two runners execute them with the same semantics — BullMQ over
 * Redis (server mode, any number of worker processes) and an in-process runner (embedded mode).
 */
import type { DailyTime } from '../config.ts';

export const TASK_NAMES = ['sync_transactions', 'check_budget_alerts', 'cleanup_expired_refresh_tokens', 'purge_audit_events'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

/** What one run of a task knows about itself. */
export interface TaskRun {
  jobId: string;
  /** 1 for the first run, 2 for the first retry, … */
  attempt: number;
  /** Attempts allowed in all (the runner's JOB_ATTEMPTS). */
  maxAttempts: number;
  /** Aborted when the task's timeout passes (or the runner cancels it): long tasks check it. */
  signal: AbortSignal;
}

export interface TaskDefinition<D = unknown> {
  name: TaskName | string;
  /** Per-task timeout: an attempt still running after this fails (and is retried). */
  timeoutMs: number;
  run(data: D, run: TaskRun): Promise<unknown>;
}

export type TaskRegistry = ReadonlyMap<string, TaskDefinition<never>>;

import type { EnqueueOptions, EnqueuedJob } from '../lib/queue.ts';

// The enqueue contract lives in src/lib/queue.ts (the domain queues work through it).
export type { EnqueueOptions, EnqueuedJob };
export { QueueUnavailableError } from '../lib/queue.ts';

/** A repeating job: `dailyAt` (UTC) in production, `everyMs` where a test needs a short period. */
export interface Schedule {
  id: string;
  task: TaskName | string;
  data?: Record<string, unknown>;
  dailyAt?: DailyTime;
  everyMs?: number;
}

export const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];
export type JobCounts = Record<JobState, number>;

export interface ScheduleInfo {
  id: string;
  task: string;
  /** `daily HH:MM UTC` or `every N ms`. */
  every: string;
  next_run_at: string | null;
}

export interface FailedJobInfo {
  id: string;
  task_name: string;
  failed_reason: string;
  attempts_made: number;
  failed_at: string | null;
  data: unknown;
}

/** What became of an operator's retry or discard of a failed job. */
export type FailedJobAction = 'done' | 'not_found' | 'not_failed';

export interface QueueSnapshot {
  backend: 'bullmq' | 'inline';
  queue: string;
  counts: JobCounts;
  /** Worker processes connected to the queue (BullMQ), or 1 for the in-process runner. */
  workers: number;
}

export interface JobRunner {
  readonly backend: 'bullmq' | 'inline';
  enqueue(task: TaskName, data: Record<string, unknown>, opts?: EnqueueOptions): Promise<EnqueuedJob>;
  /** Starts processing jobs and schedules (a worker, or the embedded runner); producers never call it. */
  start(): Promise<void>;
  snapshot(): Promise<QueueSnapshot>;
  schedules(): Promise<ScheduleInfo[]>;
  recentFailures(limit: number): Promise<FailedJobInfo[]>;
  /**
   * An operator's second chance for a failed job: it waits again with its attempts counted from
   * zero (`not_found` when no job has the id, `not_failed` when it is not in the failed list).
   */
  retry(id: string): Promise<FailedJobAction>;
  /** Removes a failed job from the failed list for good. */
  discard(id: string): Promise<FailedJobAction>;
  /** Round trip to the queue's store; throws when it does not answer. */
  ping(): Promise<void>;
  /** Stops taking jobs, lets the running ones finish, and closes connections. */
  close(): Promise<void>;
}

/** Thrown by a task for an error that a retry cannot fix (ITEM_LOGIN_REQUIRED, bad input): no more attempts. */
export class PermanentTaskError extends Error {
  override name = 'PermanentTaskError';
}

export class TaskTimeoutError extends Error {
  override name = 'TaskTimeoutError';
}

/** The queue's store did not take the job in time (Redis down): the caller may answer 503. */
export class UnknownTaskError extends PermanentTaskError {
  override name = 'UnknownTaskError';
}

/** Human form of a schedule's period. */
export function describeSchedule(s: Schedule): string {
  if (s.dailyAt) return `daily ${String(s.dailyAt.hour).padStart(2, '0')}:${String(s.dailyAt.minute).padStart(2, '0')} UTC`;
  return `every ${s.everyMs} ms`;
}

/** The next run of a schedule strictly after `after`. */
export function nextRun(s: Schedule, after: number): number {
  if (s.dailyAt) {
    const d = new Date(after);
    let next = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), s.dailyAt.hour, s.dailyAt.minute);
    if (next <= after) next += 86_400_000;
    return next;
  }
  const every = s.everyMs ?? 86_400_000;
  return (Math.floor(after / every) + 1) * every;
}

/** BullMQ's exponential backoff with jitter, shared so the in-process runner waits the same way. */
export function backoffDelayMs(baseMs: number, attemptsMade: number, jitter = BACKOFF_JITTER): number {
  const max = Math.round(2 ** (attemptsMade - 1) * baseMs);
  return Math.floor(Math.random() * max * jitter + max * (1 - jitter));
}

/** Fraction of each backoff delay that is random, so retries of many jobs do not arrive in step. */
export const BACKOFF_JITTER = 0.5;
