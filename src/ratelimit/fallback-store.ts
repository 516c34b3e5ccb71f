/**
 * Redis first, memory when Redis fails: the rate limiter's store in server mode. The failure
 * handling (timeouts, the circuit breaker and its cool-down, the "slow process is not a slow
 * Redis" rule) is the StoreBreaker's (breaker.ts), shared with the per-account sign-in throttle.
 */
import type { MemoryStore } from './memory-store.ts';
import type { Decision, Hit, RateLimitDashboard, RateLimitStore } from './store.ts';
import { withTimeout } from '../lib/timeout.ts';
import { StoreBreaker, StoreTimeoutError, reasonOf, type BreakerOptions } from './breaker.ts';

export { StoreTimeoutError, StoreUnavailableError, type StoreErrorReason } from './breaker.ts';

export interface PrimaryStore extends RateLimitStore {
  /** False when a call would certainly fail (e.g. the client is disconnected). */
  available(): boolean;
}

export interface FallbackOptions extends BreakerOptions {
  /** The dashboard is an admin read: it may wait longer than a request decision. */
  dashboardTimeoutMs?: number;
  /** A breaker shared with other users of the same Redis; one of its own is made otherwise. */
  breaker?: StoreBreaker;
}

export class FallbackStore implements RateLimitStore {
  readonly kind = 'redis' as const;
  readonly breaker: StoreBreaker;
  private readonly dashboardTimeoutMs: number;

  constructor(
    readonly primary: PrimaryStore,
    readonly fallback: MemoryStore,
    private readonly opts: FallbackOptions = {},
  ) {
    this.breaker = opts.breaker ?? new StoreBreaker(opts);
    this.dashboardTimeoutMs = opts.dashboardTimeoutMs ?? 1_000;
  }

  /** 'shared' while decisions come from Redis, 'local' while the breaker sends them to memory. */
  currentMode(): 'shared' | 'local' {
    return this.breaker.currentMode();
  }

  hit(h: Hit): Promise<Decision> {
    return this.breaker.run(
      () => this.primary.available(),
      () => this.primary.hit(h),
      () => this.fallback.hit(h),
    );
  }

  async dashboard(): Promise<RateLimitDashboard> {
    if (this.primary.available()) {
      try {
        return await withTimeout(this.primary.dashboard(), this.dashboardTimeoutMs, () => new StoreTimeoutError(`no answer within ${this.dashboardTimeoutMs} ms`));
      } catch (error) {
        // Counted, but a slow admin read does not switch request decisions to local limits.
        (this.breaker.opts.onStoreError ?? this.opts.onStoreError)?.(reasonOf(error), error);
      }
    }
    // Redis is away: this replica's own view is the best there is.
    return this.fallback.dashboard();
  }

  /** Both stores: a window the breaker kept locally while Redis was away is unblocked too. */
  async reset(windowIds: readonly string[]): Promise<number> {
    const local = await this.fallback.reset(windowIds);
    if (!this.primary.available()) return local;
    const shared = await withTimeout(this.primary.reset(windowIds), this.dashboardTimeoutMs, () => new StoreTimeoutError(`no answer within ${this.dashboardTimeoutMs} ms`));
    return Math.max(local, shared);
  }
}
