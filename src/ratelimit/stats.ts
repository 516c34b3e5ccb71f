/**
 * The rolling hour of the in-memory store: one bucket per minute for the last 60 minutes, each
 * with total and blocked counts and bounded heavy-hitter counters for clients and endpoints.
 * The Redis store keeps the same buckets as keys (see redis-store.ts); both aggregate here.
 */
import { DASHBOARD_TOP, HOUR_MINUTES, minuteOf } from './store.ts';

/**
 * A counter over at most `capacity` keys (the Space-Saving algorithm): when full, a new key takes
 * the place of the smallest and inherits its count plus one. Heavy hitters are never lost, and a
 * count is over-estimated by at most the smallest count, so top-10 lists stay right under floods
 * of one-off clients while memory stays bounded.
 */
export class BoundedCounter {
  readonly counts = new Map<string, number>();

  constructor(private readonly capacity: number) {}

  add(key: string, by = 1): void {
    const current = this.counts.get(key);
    if (current !== undefined) {
      this.counts.set(key, current + by);
      return;
    }
    if (this.counts.size < this.capacity) {
      this.counts.set(key, by);
      return;
    }
    let minKey: string | undefined;
    let min = Infinity;
    for (const [k, v] of this.counts) {
      if (v < min) {
        min = v;
        minKey = k;
      }
    }
    this.counts.delete(minKey!);
    this.counts.set(key, min + by);
  }
}

interface MinuteBucket {
  minute: number;
  total: number;
  blocked: number;
  clients: BoundedCounter;
  endpoints: BoundedCounter;
}

export function topN<K extends string>(counts: Map<string, number>, n: number, field: K): ({ [P in K]: string } & { requests: number })[] {
  return [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, n)
    .map(([k, v]) => ({ [field]: k, requests: v }) as { [P in K]: string } & { requests: number });
}

export class HourStats {
  /** Ring of buckets indexed by minute modulo 60; a slot from an older minute is reused. */
  // Stryker disable next-line ArrayDeclaration: equivalent, a JavaScript array grows to the 60 slots as they are written, and empty slots are skipped either way
  private readonly buckets: (MinuteBucket | undefined)[] = new Array(HOUR_MINUTES);

  constructor(private readonly perMinuteCapacity = 1_000) {}

  record(nowMs: number, clientId: string, endpoint: string, blocked: boolean): void {
    const minute = minuteOf(nowMs);
    const slot = minute % HOUR_MINUTES;
    let b = this.buckets[slot];
    if (!b || b.minute !== minute) {
      b = {
        minute,
        total: 0,
        blocked: 0,
        clients: new BoundedCounter(this.perMinuteCapacity),
        endpoints: new BoundedCounter(this.perMinuteCapacity),
      };
      this.buckets[slot] = b;
    }
    b.total++;
    if (blocked) b.blocked++;
    b.clients.add(clientId);
    b.endpoints.add(endpoint);
  }

  summary(nowMs: number): {
    total_requests_last_hour: number;
    blocked_requests_last_hour: number;
    top_clients: { client_id: string; requests: number }[];
    top_endpoints: { endpoint: string; requests: number }[];
  } {
    const oldest = minuteOf(nowMs) - HOUR_MINUTES + 1;
    let total = 0;
    let blocked = 0;
    const clients = new Map<string, number>();
    const endpoints = new Map<string, number>();
    for (const b of this.buckets) {
      if (!b || b.minute < oldest || b.minute > minuteOf(nowMs)) continue;
      total += b.total;
      blocked += b.blocked;
      for (const [k, v] of b.clients.counts) clients.set(k, (clients.get(k) ?? 0) + v);
      for (const [k, v] of b.endpoints.counts) endpoints.set(k, (endpoints.get(k) ?? 0) + v);
    }
    return {
      total_requests_last_hour: total,
      blocked_requests_last_hour: blocked,
      top_clients: topN(clients, DASHBOARD_TOP, 'client_id'),
      top_endpoints: topN(endpoints, DASHBOARD_TOP, 'endpoint'),
    };
  }
}
