/** The one timeout helper: a promise that settles as `promise` does, or rejects after `ms`. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * Rejects with `onTimeout()` (a TimeoutError by default) when `promise` has not settled within
 * `ms`; the timer is cleared either way, so nothing keeps the process alive.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error = () => new TimeoutError(`no answer within ${ms} ms`)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
