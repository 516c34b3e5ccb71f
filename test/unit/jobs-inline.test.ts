/**
 * The in-process runner keeps BullMQ's semantics: attempts with exponential backoff and jitter,
 * the per-task timeout, permanent errors, deduplication keys, concurrency, repeatable schedules,
 * a graceful close — and every attempt is recorded in the guide's Celery metrics.
 */
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { InlineRunner, type InlineRunnerOptions } from '../../src/jobs/inline-runner.ts';
import {
  PermanentTaskError,
  TaskTimeoutError,
  UnknownTaskError,
  backoffDelayMs,
  nextRun,
  type TaskDefinition,
  type TaskRun,
} from '../../src/jobs/types.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { createMetrics, type Metrics } from '../../src/observability/metrics.ts';

interface Harness {
  runner: InlineRunner;
  metrics: Metrics;
  logs: () => Record<string, unknown>[];
}

const runners: InlineRunner[] = [];
afterEach(async () => {
  for (const r of runners.splice(0)) await r.close();
});

function harness(tasks: TaskDefinition<never>[], opts: Partial<InlineRunnerOptions> = {}): Harness {
  const lines: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => lines.push(...c.toString('utf8').split('\n').filter(Boolean)));
  const logger = createLogger({ level: 'debug', format: 'json', destination: sink });
  const metrics = createMetrics({ version: 'test', environment: 'test', processMetrics: false });
  metrics.registerTaskNames(tasks.map((t) => t.name));
  const runner = new InlineRunner(new Map(tasks.map((t) => [t.name, t])), {
    queueName: 'test',
    concurrency: 4,
    attempts: 3,
    backoffMs: 10,
    keepCompleted: 100,
    keepFailed: 100,
    metrics,
    logger,
    ...opts,
  });
  runners.push(runner);
  return { runner, metrics, logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function counter(metrics: Metrics, task_name: string, status: string): Promise<number> {
  const m = await metrics.celeryTasks.get();
  return m.values.find((v) => v.labels.task_name === task_name && v.labels.status === status)?.value ?? 0;
}

async function durationCount(metrics: Metrics, task_name: string, status: string): Promise<number> {
  const m = await metrics.celeryTaskDuration.get();
  return m.values.find((v) => v.metricName === 'celery_task_duration_seconds_count' && v.labels.task_name === task_name && v.labels.status === status)?.value ?? 0;
}

async function inProgress(metrics: Metrics, task_name: string): Promise<number> {
  const m = await metrics.celeryTasksInProgress.get();
  return m.values.find((v) => v.labels.task_name === task_name)?.value ?? -1;
}

const task = (name: string, run: (data: never, r: TaskRun) => Promise<unknown>, timeoutMs = 5_000): TaskDefinition<never> => ({ name, timeoutMs, run });

describe('InlineRunner', () => {
  it('runs a job once and records success, its duration and in-progress', async () => {
    let seenInProgress = -1;
    const h: Harness = harness([
      task('ok', async (_d, r) => {
        seenInProgress = await inProgress(h.metrics, 'ok');
        return { attempt: r.attempt };
      }),
    ]);
    await h.runner.start();
    const job = await h.runner.enqueue('ok' as never, { a: 1 });
    await h.runner.drain();
    expect(h.runner.getJob(job.id)).toMatchObject({ state: 'completed', attemptsMade: 1, returnValue: { attempt: 1 } });
    expect(seenInProgress).toBe(1);
    expect(await inProgress(h.metrics, 'ok')).toBe(0);
    expect(await counter(h.metrics, 'ok', 'success')).toBe(1);
    expect(await counter(h.metrics, 'ok', 'retry')).toBe(0);
    expect(await durationCount(h.metrics, 'ok', 'success')).toBe(1);
    expect(h.logs().filter((l) => l.event === 'task_succeeded')).toHaveLength(1);
  });

  it('a task that always fails ends failed after three attempts: retry, retry, failure', async () => {
    const attempts: number[] = [];
    const startedAt: number[] = [];
    const h = harness([
      task('boom', async (_d, r) => {
        attempts.push(r.attempt);
        startedAt.push(performance.now());
        throw new Error(`boom ${r.attempt}`);
      }),
    ], { backoffMs: 40 });
    await h.runner.start();
    const job = await h.runner.enqueue('boom' as never, {});
    await h.runner.drain();
    expect(attempts).toEqual([1, 2, 3]);
    expect(h.runner.getJob(job.id)).toMatchObject({ state: 'failed', attemptsMade: 3, failedReason: 'boom 3' });
    expect(await counter(h.metrics, 'boom', 'retry')).toBe(2);
    expect(await counter(h.metrics, 'boom', 'failure')).toBe(1);
    expect(await counter(h.metrics, 'boom', 'success')).toBe(0);
    expect(await durationCount(h.metrics, 'boom', 'retry')).toBe(2);
    // Exponential backoff with 50 % jitter: at least 20 ms, then at least 40 ms, between attempts.
    expect(startedAt[1]! - startedAt[0]!).toBeGreaterThanOrEqual(19);
    expect(startedAt[2]! - startedAt[1]!).toBeGreaterThanOrEqual(39);
    const events = h.logs().map((l) => l.event);
    expect(events.filter((e) => e === 'task_retry')).toHaveLength(2);
    expect(events.filter((e) => e === 'task_failed')).toHaveLength(1);
    const failures = await h.runner.recentFailures(10);
    expect(failures).toEqual([expect.objectContaining({ id: job.id, task_name: 'boom', failed_reason: 'boom 3', attempts_made: 3 })]);
    expect((await h.runner.snapshot()).counts).toMatchObject({ failed: 1, completed: 0, waiting: 0, active: 0, delayed: 0 });
  });

  it('succeeds on a later attempt after retries', async () => {
    let calls = 0;
    const h = harness([task('flaky', async () => {
      if (++calls < 3) throw new Error('not yet');
      return 'done';
    })]);
    await h.runner.start();
    const job = await h.runner.enqueue('flaky' as never, {});
    await h.runner.drain();
    expect(h.runner.getJob(job.id)).toMatchObject({ state: 'completed', attemptsMade: 3, returnValue: 'done' });
    expect(await counter(h.metrics, 'flaky', 'retry')).toBe(2);
    expect(await counter(h.metrics, 'flaky', 'success')).toBe(1);
    expect(await counter(h.metrics, 'flaky', 'failure')).toBe(0);
  });

  it('a permanent error is not retried', async () => {
    let calls = 0;
    const h = harness([task('login', async () => {
      calls++;
      throw new PermanentTaskError('ITEM_LOGIN_REQUIRED');
    })]);
    await h.runner.start();
    const job = await h.runner.enqueue('login' as never, {});
    await h.runner.drain();
    expect(calls).toBe(1);
    expect(h.runner.getJob(job.id)).toMatchObject({ state: 'failed', attemptsMade: 1 });
    expect(await counter(h.metrics, 'login', 'failure')).toBe(1);
    expect(await counter(h.metrics, 'login', 'retry')).toBe(0);
  });

  it('an attempt past its timeout fails with TaskTimeoutError and its signal is aborted', async () => {
    const aborted: unknown[] = [];
    const h = harness([
      task('slow', (_d, r) => new Promise((resolve) => {
        r.signal.addEventListener('abort', () => {
          aborted.push(r.signal.reason);
          resolve('too late');
        });
      }), 30),
    ], { attempts: 2 });
    await h.runner.start();
    const job = await h.runner.enqueue('slow' as never, {});
    await h.runner.drain();
    expect(h.runner.getJob(job.id)).toMatchObject({ state: 'failed', attemptsMade: 2 });
    expect(aborted).toHaveLength(2);
    expect(aborted[0]).toBeInstanceOf(TaskTimeoutError);
    expect(await counter(h.metrics, 'slow', 'retry')).toBe(1);
    expect(await counter(h.metrics, 'slow', 'failure')).toBe(1);
  });

  it('never runs more than `concurrency` jobs at once', async () => {
    let running = 0;
    let peak = 0;
    const h = harness([task('work', async () => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, 10));
      running--;
    })], { concurrency: 2 });
    await h.runner.start();
    for (let i = 0; i < 8; i++) await h.runner.enqueue('work' as never, { i });
    await h.runner.drain();
    expect(peak).toBe(2);
    expect(await counter(h.metrics, 'work', 'success')).toBe(8);
  });

  it('a dedupe key keeps one job waiting, queues one more while it runs, and never runs two at once', async () => {
    let running = 0;
    let peak = 0;
    const seen: unknown[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const h = harness([task('sync', async (data: never) => {
      peak = Math.max(peak, ++running);
      seen.push((data as { n: number }).n);
      if ((data as { n: number }).n === 1) await gate;
      running--;
    })]);
    const a = await h.runner.enqueue('sync' as never, { n: 1 }, { dedupeKey: 'item-1' });
    const b = await h.runner.enqueue('sync' as never, { n: 2 }, { dedupeKey: 'item-1' });
    expect(b.id).toBe(a.id); // still waiting: the same job
    await h.runner.start();
    await new Promise((r) => setTimeout(r, 5)); // job 1 is running now
    const c = await h.runner.enqueue('sync' as never, { n: 3 }, { dedupeKey: 'item-1' });
    const d = await h.runner.enqueue('sync' as never, { n: 4 }, { dedupeKey: 'item-1' });
    expect(c.id).not.toBe(a.id);
    expect(d.id).toBe(c.id); // one more, with the latest data
    release();
    await h.runner.drain();
    expect(seen).toEqual([1, 4]);
    expect(peak).toBe(1);
    const e = await h.runner.enqueue('sync' as never, { n: 5 }, { dedupeKey: 'item-1' });
    expect(e.id).not.toBe(c.id); // finished jobs no longer deduplicate
    await h.runner.drain();
    expect(seen).toEqual([1, 4, 5]);
  });

  it('fires repeatable schedules, lists them with their next run, and stops on close', async () => {
    let runs = 0;
    const h = harness([task('tick', async () => {
      runs++;
    })], { schedules: [{ id: 'every-40ms', task: 'tick', everyMs: 40 }] });
    await h.runner.start();
    const [s] = await h.runner.schedules();
    expect(s).toMatchObject({ id: 'every-40ms', task: 'tick', every: 'every 40 ms' });
    expect(Date.parse(s!.next_run_at!)).toBeGreaterThan(Date.now() - 1);
    await new Promise((r) => setTimeout(r, 220));
    await h.runner.close();
    const after = runs;
    expect(after).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 100));
    expect(runs).toBe(after);
  });

  it('close lets the running job finish and takes no new job', async () => {
    let finished = false;
    const h = harness([task('long', async () => {
      await new Promise((r) => setTimeout(r, 60));
      finished = true;
    })]);
    await h.runner.start();
    await h.runner.enqueue('long' as never, {});
    await new Promise((r) => setTimeout(r, 5));
    await h.runner.close();
    expect(finished).toBe(true);
    await expect(h.runner.enqueue('long' as never, {})).rejects.toThrow(/closed/);
  });

  it('refuses an unknown task', async () => {
    const h = harness([]);
    await expect(h.runner.enqueue('nope' as never, {})).rejects.toBeInstanceOf(UnknownTaskError);
  });
});

describe('backoff and schedules', () => {
  it('backoff doubles per attempt and the jitter keeps it within [half, full]', () => {
    for (let i = 0; i < 200; i++) {
      const first = backoffDelayMs(1_000, 1);
      const second = backoffDelayMs(1_000, 2);
      expect(first).toBeGreaterThanOrEqual(500);
      expect(first).toBeLessThanOrEqual(1_000);
      expect(second).toBeGreaterThanOrEqual(1_000);
      expect(second).toBeLessThanOrEqual(2_000);
    }
  });

  it('a daily schedule runs next at its UTC time, today or tomorrow', () => {
    const s = { id: 'd', task: 't', dailyAt: { hour: 6, minute: 30 } };
    expect(new Date(nextRun(s, Date.parse('2025-03-10T05:00:00Z'))).toISOString()).toBe('2025-03-10T06:30:00.000Z');
    expect(new Date(nextRun(s, Date.parse('2025-03-10T06:30:00Z'))).toISOString()).toBe('2025-03-11T06:30:00.000Z');
    expect(new Date(nextRun(s, Date.parse('2025-12-31T23:59:00Z'))).toISOString()).toBe('2026-01-01T06:30:00.000Z');
  });
});
