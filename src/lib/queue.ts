/**
 * The enqueue contract between the domain and the job system: what a module needs to queue
 * background work, and nothing of how it runs (src/jobs/ implements it, in-process or on BullMQ).
 */
export interface EnqueueOptions {
  /**
   * At most one job with this key waits at a time, and jobs with the same key never run in
   * parallel: an enqueue while one waits returns the waiting job; while one runs, one more is
   * queued to run after it (BullMQ's deduplication with keepLastIfActive).
   */
  dedupeKey?: string;
  delayMs?: number;
}

export interface EnqueuedJob {
  id: string;
  name: string;
}

/** Queues one job of a task by name. */
export type Enqueue = (task: string, data: Record<string, unknown>, opts?: EnqueueOptions) => Promise<EnqueuedJob>;

/** The queue did not take the job (Redis down or too slow): nothing was queued. */
export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError';
}
