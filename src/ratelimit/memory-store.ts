/**
 * The in-process store: embedded mode, and the fallback while Redis is unreachable.
 * Bounded: at most `maxWindows` live windows (expired ones are swept as it goes; when still
 * full, the oldest window is forgotten) and a fixed-size rolling hour of statistics.
 */
import { HourStats } from './stats.ts';
import {
  DASHBOARD_ACTIVE_LIMIT, decisionFor, isoSeconds,
  type ActiveLimit, type Decision, type Hit, type RateLimitDashboard, type RateLimitStore,
} from './store.ts';

interface Window {
  count: number;
  resetAt: number;
  limit: number;
  windowSeconds: number;
  endpoint: string;
  clientId: string;
}

export interface MemoryStoreOptions {
  maxWindows?: number;
  perMinuteCapacity?: number;
  now?: () => number;
}

export class MemoryStore implements RateLimitStore {
  readonly kind = 'memory' as const;
  private readonly windows = new Map<string, Window>();
  private readonly stats: HourStats;
  private readonly maxWindows: number;
  private readonly now: () => number;
  private hitsSinceSweep = 0;
  private lastSweepAt = 0;

  constructor(opts: MemoryStoreOptions = {}) {
    this.maxWindows = opts.maxWindows ?? 100_000;
    this.stats = new HourStats(opts.perMinuteCapacity);
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.windows.size;
  }

  async hit(h: Hit): Promise<Decision> {
    return this.hitSync(h);
  }

  hitSync(h: Hit): Decision {
    const now = this.now();
    if (++this.hitsSinceSweep >= 10_000) this.sweep(now);
    let w = this.windows.get(h.windowId);
    if (!w || w.resetAt <= now) {
      if (w) this.windows.delete(h.windowId);
      if (this.windows.size >= this.maxWindows) this.makeRoom(now);
      w = { count: 0, resetAt: now + h.windowSeconds * 1000, limit: h.limit, windowSeconds: h.windowSeconds, endpoint: h.windowEndpoint, clientId: h.clientId };
      this.windows.set(h.windowId, w);
    }
    w.count++;
    w.limit = h.limit;
    const decision = decisionFor(w.count, h.limit, w.resetAt - now);
    this.stats.record(now, h.clientId, h.endpoint, decision.blocked);
    return decision;
  }

  async dashboard(): Promise<RateLimitDashboard> {
    const now = this.now();
    this.sweep(now);
    const active: ActiveLimit[] = [...this.windows.values()]
      .sort((a, b) => b.count - a.count || a.resetAt - b.resetAt)
      .slice(0, DASHBOARD_ACTIVE_LIMIT)
      .map((w) => ({
        endpoint: w.endpoint,
        client_id: w.clientId,
        requests: w.count,
        limit: w.limit,
        window_seconds: w.windowSeconds,
        resets_at: isoSeconds(w.resetAt),
        blocked: w.count > w.limit,
      }));
    return { current_active_limits: active, ...this.stats.summary(now) };
  }

  private sweep(now: number): void {
    this.hitsSinceSweep = 0;
    this.lastSweepAt = now;
    for (const [id, w] of this.windows) if (w.resetAt <= now) this.windows.delete(id);
  }

  private makeRoom(now: number): void {
    // A full sweep at most once a second, so a flood of new clients costs O(1) per request.
    if (now - this.lastSweepAt >= 1_000) this.sweep(now);
    // Still full of live windows: forget the oldest (Map keeps insertion order).
    while (this.windows.size >= this.maxWindows) {
      const oldest = this.windows.keys().next().value as string;
      this.windows.delete(oldest);
    }
  }
}
