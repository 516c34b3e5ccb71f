/**
 * The circuit breaker in front of the shared store (Redis), used by every caller of that store:
 * the rate limiter's decisions (fallback-store.ts) and the per-account sign-in throttle
 * (account-throttle.ts) share one breaker per process, so one Redis outage is seen, logged and
 * counted once, and both fall back to their per-process memory together.
 *
 * Each call gets `timeoutMs` (50 ms); a failure or timeout opens the breaker, and for `cooldownMs`
 * every call goes straight to its fallback without touching Redis. After the cool-down the next call
 * tries Redis again; when it answers, shared state resumes with no restart. While the client is
 * disconnected a call fails at once (no offline queue), so a dead Redis costs no waiting at all.
 *
 * A slow process is not a slow Redis. Under a burst, replies can sit unread in the socket while
 * the event loop works through other requests; timing those out would hand the burst to
 * per-process limits exactly when shared limits matter. So when the timeout fires, pending I/O is
 * given one turn of the event loop first, and a call keeps waiting (up to `maxWaitMs`) as long as
 * Redis answered some other call within the last `timeoutMs`: it is alive, we are just behind.
 * A Redis that answers nothing fails every call within one or two `timeoutMs`. And if a call that
 * timed out is answered after all, Redis was alive: the breaker closes at once instead of keeping
 * calls local for the whole cool-down.
 */
export type StoreErrorReason = 'timeout' | 'error' | 'unavailable';

export interface BreakerOptions {
  timeoutMs?: number;
  cooldownMs?: number;
  /** The longest a call waits on a Redis that keeps answering other calls. */
  maxWaitMs?: number;
  /** Every failed call (the store-error counter). */
  onStoreError?: (reason: StoreErrorReason, error: unknown) => void;
  /** Called when calls switch between shared (Redis) and local (memory) state, with the failure that switched them. */
  onModeChange?: (mode: 'shared' | 'local', reason?: StoreErrorReason, error?: unknown) => void;
  now?: () => number;
}

export class StoreTimeoutError extends Error {
  override name = 'StoreTimeoutError';
}

export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

const clock = () => performance.now();

export function reasonOf(error: unknown): StoreErrorReason {
  return error instanceof StoreTimeoutError ? 'timeout' : error instanceof StoreUnavailableError ? 'unavailable' : 'error';
}

export class StoreBreaker {
  private openUntil = 0;
  /** Why the breaker is open (a late answer closes a breaker opened by a timeout). */
  private openReason: StoreErrorReason | undefined;
  private mode: 'shared' | 'local' = 'shared';
  private readonly timeoutMs: number;
  private readonly cooldownMs: number;
  private readonly maxWaitMs: number;
  /** When Redis last answered a call (performance.now()). */
  private lastReplyAt = -Infinity;
  private readonly now: () => number;

  constructor(readonly opts: BreakerOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 50;
    this.cooldownMs = opts.cooldownMs ?? 1_000;
    this.maxWaitMs = opts.maxWaitMs ?? 1_000;
    this.now = opts.now ?? Date.now;
  }

  /** 'shared' while calls go to Redis, 'local' while the breaker sends them to memory. */
  currentMode(): 'shared' | 'local' {
    return this.mode;
  }

  /** Runs `primary` unless the breaker is open or the store is unavailable; `fallback` otherwise or when it fails. */
  async run<T>(available: () => boolean, primary: () => Promise<T>, fallback: () => T | Promise<T>): Promise<T> {
    if (this.now() >= this.openUntil) {
      try {
        if (!available()) throw new StoreUnavailableError('redis is not connected');
        const result = await this.await(primary());
        this.setMode('shared');
        return result;
      } catch (error) {
        this.trip(error);
      }
    }
    return fallback();
  }

  private await<T>(call: Promise<T>): Promise<T> {
    return new Promise((resolve, reject) => {
      const started = clock();
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        // Stryker disable next-line ConditionalExpression: equivalent, settling a settled promise again does nothing
        if (settled) return;
        settled = true;
        // Stryker disable next-line CallExpression: equivalent, a timer left running finds the call settled and returns
        clearTimeout(timer);
        fn();
      };
      call.then(
        (d) => {
          this.lastReplyAt = clock();
          if (settled && this.openReason === 'timeout') {
            this.openUntil = 0;
            this.openReason = undefined;
          }
          finish(() => resolve(d));
        },
        (e: unknown) => finish(() => reject(e)),
      );
      const check = () => {
        if (settled) return;
        const now = clock();
        if (now - this.lastReplyAt < this.timeoutMs && now - started < this.maxWaitMs) {
          timer = setTimeout(onTimer, this.timeoutMs);
          return;
        }
        finish(() => reject(new StoreTimeoutError(`no answer within ${Math.round(now - started)} ms`)));
      };
      // Timers run before the poll phase: let a reply already in the socket be read first.
      const onTimer = () => setImmediate(check);
      timer = setTimeout(onTimer, this.timeoutMs);
    });
  }

  private trip(error: unknown): void {
    const reason = reasonOf(error);
    this.openUntil = this.now() + this.cooldownMs;
    this.openReason = reason;
    this.opts.onStoreError?.(reason, error);
    this.setMode('local', reason, error);
  }

  private setMode(mode: 'shared' | 'local', reason?: StoreErrorReason, error?: unknown): void {
    if (mode === this.mode) return;
    this.mode = mode;
    this.opts.onModeChange?.(mode, reason, error);
  }
}
