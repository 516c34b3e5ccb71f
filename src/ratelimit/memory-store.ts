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
  /** Attempts in the window (fixed); admitted requests in the log plus refused attempts since the last admitted one (sliding). */
  count: number;
  /** When the window ends (fixed) or its newest admitted request leaves it (sliding). */
  resetAt: number;
  limit: number;
  windowSeconds: number;
  endpoint: string;
  clientId: string;
  /** Sliding windows: the admitted requests' times, oldest first (at most `limit`). */
  log?: number[];
  /** Sliding windows: attempts refused since the last admitted one. */
  refused?: number;
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
    if (h.algorithm === 'sliding') return this.hitSliding(h, now);
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

  /** A sliding window log: admitted only while fewer than `limit` were admitted in the last `windowSeconds`. */
  private hitSliding(h: Hit, now: number): Decision {
    const windowMs = h.windowSeconds * 1000;
    let w = this.windows.get(h.windowId);
    if (!w?.log) {
      if (w) this.windows.delete(h.windowId);
      if (this.windows.size >= this.maxWindows) this.makeRoom(now);
      w = { count: 0, resetAt: now, limit: h.limit, windowSeconds: h.windowSeconds, endpoint: h.windowEndpoint, clientId: h.clientId, log: [], refused: 0 };
      this.windows.set(h.windowId, w);
    }
    const log = w.log!;
    // At most `limit` entries, so dropping the expired ones from the front stays cheap.
    while (log.length > 0 && log[0]! <= now - windowMs) log.shift();
    const blocked = log.length >= h.limit;
    if (blocked) w.refused = (w.refused ?? 0) + 1;
    else {
      log.push(now);
      w.refused = 0;
    }
    w.count = log.length + w.refused;
    w.limit = h.limit;
    w.windowSeconds = h.windowSeconds;
    w.resetAt = log[log.length - 1]! + windowMs;
    this.stats.record(now, h.clientId, h.endpoint, blocked);
    return { count: w.count, limit: h.limit, remaining: Math.max(0, h.limit - log.length), blocked, resetMs: Math.max(0, log[0]! + windowMs - now) };
  }

  async dashboard(): Promise<RateLimitDashboard> {
    const now = this.now();
    this.sweep(now);
    const active: ActiveLimit[] = [...this.windows.values()]
      .map((w) => (w.log ? slidingView(w, now) : w))
      .sort((a, b) => b.count - a.count || a.resetAt - b.resetAt)
      .slice(0, DASHBOARD_ACTIVE_LIMIT)
      .map((w) => ({
        endpoint: w.endpoint,
        client_id: w.clientId,
        requests: w.count,
        limit: w.limit,
        window_seconds: w.windowSeconds,
        resets_at: isoSeconds(w.resetAt),
        blocked: w.count > w.limit || (w.log !== undefined && w.log.length >= w.limit),
      }));
    return { current_active_limits: active, ...this.stats.summary(now) };
  }

  async reset(windowIds: readonly string[]): Promise<number> {
    let removed = 0;
    for (const id of windowIds) if (this.windows.delete(id)) removed++;
    return removed;
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

/** A sliding window as the dashboard shows it now: the live part of its log, and when its oldest entry frees a slot. */
function slidingView(w: Window, now: number): Window {
  const windowMs = w.windowSeconds * 1000;
  const log = w.log!.filter((t) => t > now - windowMs);
  const full = log.length >= w.limit;
  return { ...w, log, count: log.length + (full ? (w.refused ?? 0) : 0), resetAt: (log[0] ?? now) + windowMs };
}
