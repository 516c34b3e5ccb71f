/**
 * The edge where every attempt of every task is observed, for both runners: the guide's Celery
 * metrics, one log line per attempt, the per-task timeout, and Sentry on a task's final failure.
 * Task code knows none of this.
 *
 * Status of an attempt: `success`; `retry` when it failed and another attempt will follow;
 * `failure` when it failed for the last time (attempts used up, or a PermanentTaskError).
 */
import type { Logger } from '../observability/logging.ts';
import { exemplarOf, type Metrics, type TaskStatus } from '../observability/metrics.ts';
import { jobTrace, runInTrace, TRACE_DATA_KEY, traceForJob } from '../observability/trace-context.ts';
import { endSpan, type Tracing } from '../observability/tracing.ts';
import { captureTaskFailure, withSentryScope } from '../observability/sentry.ts';
import { PermanentTaskError, TaskTimeoutError, type TaskDefinition } from './types.ts';

export interface AttemptInfo {
  jobId: string;
  attempt: number;
  maxAttempts: number;
  /** The runner's own cancellation (shutdown), combined with the timeout. */
  signal?: AbortSignal;
}

export interface InstrumentDeps {
  metrics?: Metrics;
  logger: Logger;
  /** The sampling policy for scheduled jobs' new traces, and the span export. */
  tracing?: Tracing;
}

/** A job's data as queued: with the queuer's trace when there is one (a request, or another job). */
export function withQueuerTrace(data: Record<string, unknown>): Record<string, unknown> {
  const carried = traceForJob();
  return carried === undefined ? data : { ...data, [TRACE_DATA_KEY]: carried };
}

/** A job's data as the task sees it: without the carried trace. */
function taskData<D>(data: D): D {
  if (typeof data !== 'object' || data === null || !(TRACE_DATA_KEY in data)) return data;
  const { [TRACE_DATA_KEY]: _trace, ...rest } = data as Record<string, unknown>;
  return rest as D;
}

const NEVER_SAMPLED = { rate: 0 };

/** Whether a failed attempt will be followed by another. */
export function willRetry(error: unknown, attempt: number, maxAttempts: number): boolean {
  return !(error instanceof PermanentTaskError) && attempt < maxAttempts;
}

function errorSummary(error: unknown): { name: string; message: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) };
}

/** Runs one attempt of a task under its timeout, recording metrics and logs; rethrows its error. */
export async function runAttempt<D>(task: TaskDefinition<D>, data: D, info: AttemptInfo, deps: InstrumentDeps): Promise<unknown> {
  const { metrics, logger } = deps;
  const task_name = task.name;
  const context = { task_name, job_id: info.jobId, attempt: info.attempt, max_attempts: info.maxAttempts };
  // The attempt runs in the queuer's trace (a child of the queuing span), or a new one (a schedule).
  const trace = jobTrace((data as Record<string, unknown> | undefined)?.[TRACE_DATA_KEY], deps.tracing?.policy ?? NEVER_SAMPLED);
  const span =
    trace.sampled && deps.tracing?.export
      ? deps.tracing.export.start(trace, `task ${task_name}`, 'consumer', { 'messaging.operation.type': 'process', 'nest_egg.task_name': task_name, 'nest_egg.job_id': info.jobId, 'nest_egg.attempt': info.attempt })
      : undefined;
  return runInTrace(trace, () => withSentryScope(async () => {
    metrics?.celeryTasksInProgress.inc({ task_name });
    const started = performance.now();
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(info.signal?.reason);
    info.signal?.addEventListener('abort', onOuterAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new TaskTimeoutError(`${task_name} did not finish within ${task.timeoutMs} ms`);
        // Rejected first: a task that settles as soon as it sees the abort must not win the race.
        reject(error);
        controller.abort(error);
      }, task.timeoutMs);
    });
    const finish = (status: TaskStatus) => {
      const seconds = (performance.now() - started) / 1000;
      metrics?.celeryTasks.inc({ task_name, status });
      metrics?.celeryTaskDuration.observe({ labels: { task_name, status }, value: seconds, exemplarLabels: exemplarOf(trace) });
      return Math.round(seconds * 1000);
    };
    logger.debug(context, 'task_started');
    try {
      const result = await Promise.race([task.run(taskData(data), { ...info, signal: controller.signal }), timedOut]);
      logger.info({ ...context, duration_ms: finish('success') }, 'task_succeeded');
      if (span) endSpan(span);
      return result;
    } catch (error) {
      if (span) endSpan(span, error);
      const retry = willRetry(error, info.attempt, info.maxAttempts);
      const duration_ms = finish(retry ? 'retry' : 'failure');
      if (retry) {
        logger.warn({ ...context, duration_ms, error: errorSummary(error) }, 'task_retry');
      } else {
        const sentry_event_id = captureTaskFailure(error, { task_name, job_id: info.jobId, attempts: info.attempt });
        logger.error({ ...context, duration_ms, error, sentry_event_id }, 'task_failed');
      }
      throw error;
    } finally {
      clearTimeout(timer);
      info.signal?.removeEventListener('abort', onOuterAbort);
      metrics?.celeryTasksInProgress.dec({ task_name });
    }
  }));
}
