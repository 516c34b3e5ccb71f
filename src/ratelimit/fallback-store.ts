/**
 * Redis first, memory when Redis fails. Each Redis decision gets `timeoutMs` (50 ms); a failure
 * or timeout opens a circuit breaker, and for `cooldownMs` every decision goes straight to the
 * per-process memory store without touching Redis. After the cool-down the next decision tries
 * Redis again; when it answers, shared limits resume with no restart. While the client is
 * disconnected a call fails at once (no offline queue), so a dead Redis costs no waiting at all.
 *
 * A slow process is not a slow Redis. Under a burst, replies can sit unread in the socket while
 * the event loop works through other requests; timing those out would hand the burst to
 * per-process limits exactly when shared limits matter. So when the timeout fires, pending I/O is
 * given one turn of the event loop first, and a call keeps waiting (up to `maxWaitMs`) as long as
 * Redis answered some other call within the last `timeoutMs`: it is alive, we are just behind.
 * A Redis that answers nothing fails every call within one or two `timeoutMs`. And if a call that
 * timed out is answered after all, Redis was alive: the breaker closes at once instead of keeping
 * decisions local for the whole cool-down.
 */
import type { MemoryStore } from './memory-store.ts';
import type { Decision, Hit, RateLimitDashboard, RateLimitStore } from './store.ts';
import { withTimeout } from '../lib/timeout.ts';

export type StoreErrorReason = 'timeout' | 'error' | 'unavailable';

export interface PrimaryStore extends RateLimitStore {
  /** False when a call would certainly fail (e.g. the client is disconnected). */
  available(): boolean;
}

export interface FallbackOptions {
  timeoutMs?: number;
  cooldownMs?: number;
  /** The longest a decision waits on a Redis that keeps answering other calls. */
  maxWaitMs?: number;
  /** The dashboard is an admin read: it may wait longer than a request decision. */
  dashboardTimeoutMs?: number;
  /** Every failed call (the store-error counter). */
  onStoreError?: (reason: StoreErrorReason, error: unknown) => void;
  /** Called when decisions switch between shared (Redis) and local (memory) limits, with the failure that switched them. */
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

function reasonOf(error: unknown): StoreErrorReason {
  return error instanceof StoreTimeoutError ? 'timeout' : error instanceof StoreUnavailableError ? 'unavailable' : 'error';
}

export class FallbackStore implements RateLimitStore {
  readonly kind = 'redis' as const;
  private openUntil = 0;
  /** Why the breaker is open (a late answer closes a breaker opened by a timeout). */
  private openReason: StoreErrorReason | undefined;
  private mode: 'shared' | 'local' = 'shared';
  private readonly timeoutMs: number;
  private readonly cooldownMs: number;
  private readonly maxWaitMs: number;
  private readonly dashboardTimeoutMs: number;
  /** When Redis last answered a decision (performance.now()). */
  private lastReplyAt = -Infinity;
  private readonly now: () => number;

  constructor(
    readonly primary: PrimaryStore,
    readonly fallback: MemoryStore,
    private readonly opts: FallbackOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 50;
    this.cooldownMs = opts.cooldownMs ?? 1_000;
    this.maxWaitMs = opts.maxWaitMs ?? 1_000;
    this.dashboardTimeoutMs = opts.dashboardTimeoutMs ?? 1_000;
    this.now = opts.now ?? Date.now;
  }

  /** 'shared' while decisions come from Redis, 'local' while the breaker sends them to memory. */
  currentMode(): 'shared' | 'local' {
    return this.mode;
  }

  async hit(h: Hit): Promise<Decision> {
    if (this.now() >= this.openUntil) {
      try {
        if (!this.primary.available()) throw new StoreUnavailableError('redis is not connected');
        const decision = await this.awaitDecision(this.primary.hit(h));
        this.setMode('shared');
        return decision;
      } catch (error) {
        this.trip(error);
      }
    }
    return this.fallback.hit(h);
  }

  async dashboard(): Promise<RateLimitDashboard> {
    if (this.primary.available()) {
      try {
        return await withTimeout(this.primary.dashboard(), this.dashboardTimeoutMs, () => new StoreTimeoutError(`no answer within ${this.dashboardTimeoutMs} ms`));
      } catch (error) {
        // Counted, but a slow admin read does not switch request decisions to local limits.
        this.opts.onStoreError?.(reasonOf(error), error);
      }
    }
    // Redis is away: this replica's own view is the best there is.
    return this.fallback.dashboard();
  }

  private awaitDecision(call: Promise<Decision>): Promise<Decision> {
    return new Promise((resolve, reject) => {
      const started = clock();
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
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
