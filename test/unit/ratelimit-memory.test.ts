import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/ratelimit/memory-store.ts';
import { BoundedCounter, HourStats } from '../../src/ratelimit/stats.ts';
import type { Hit } from '../../src/ratelimit/store.ts';

const T0 = Date.parse('2024-02-17T10:34:00.000Z');

function clock(start = T0) {
  const c = { t: start, now: () => c.t };
  return c;
}

function hit(client: string, over: Partial<Hit> = {}): Hit {
  return {
    windowId: `transactions:${client}`,
    policy: 'transactions',
    clientId: client,
    limit: 3,
    windowSeconds: 60,
    windowEndpoint: '/api/v1/transactions',
    endpoint: '/api/v1/transactions/',
    ...over,
  };
}

describe('MemoryStore', () => {
  it('allows up to the limit, then blocks and keeps counting every attempt', async () => {
    const c = clock();
    const store = new MemoryStore({ now: c.now });
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await store.hit(hit('1.1.1.1')));
    expect(decisions.map((d) => d.blocked)).toEqual([false, false, false, true, true]);
    expect(decisions.map((d) => d.remaining)).toEqual([2, 1, 0, 0, 0]);
    expect(decisions.map((d) => d.count)).toEqual([1, 2, 3, 4, 5]);
    expect(decisions[4]!.resetMs).toBe(60_000);
  });

  it('starts the window at the first attempt and resets it when it ends', async () => {
    const c = clock();
    const store = new MemoryStore({ now: c.now });
    for (let i = 0; i < 4; i++) await store.hit(hit('a'));
    c.t += 45_000;
    const late = await store.hit(hit('a'));
    expect(late).toMatchObject({ blocked: true, count: 5, resetMs: 15_000 });
    c.t += 15_000;
    const fresh = await store.hit(hit('a'));
    expect(fresh).toMatchObject({ blocked: false, count: 1, remaining: 2, resetMs: 60_000 });
  });

  it('keeps one window per policy and client', async () => {
    const store = new MemoryStore({ now: clock().now });
    for (let i = 0; i < 4; i++) await store.hit(hit('a'));
    expect((await store.hit(hit('b'))).blocked).toBe(false);
    expect((await store.hit(hit('a', { windowId: 'default:a', policy: 'default' }))).blocked).toBe(false);
  });

  it("shows live windows in the guide's dashboard shape", async () => {
    const c = clock();
    const store = new MemoryStore({ now: c.now });
    for (let i = 0; i < 5; i++) await store.hit(hit('192.168.1.100'));
    await store.hit(hit('192.168.1.101', { endpoint: '/api/v1/transactions/:id' }));
    c.t += 1_000;
    const d = await store.dashboard();
    expect(d.current_active_limits).toEqual([
      { endpoint: '/api/v1/transactions', client_id: '192.168.1.100', requests: 5, limit: 3, window_seconds: 60, resets_at: '2024-02-17T10:35:00Z', blocked: true },
      { endpoint: '/api/v1/transactions', client_id: '192.168.1.101', requests: 1, limit: 3, window_seconds: 60, resets_at: '2024-02-17T10:35:00Z', blocked: false },
    ]);
    expect(d.total_requests_last_hour).toBe(6);
    expect(d.blocked_requests_last_hour).toBe(2);
    expect(d.top_clients).toEqual([
      { client_id: '192.168.1.100', requests: 5 },
      { client_id: '192.168.1.101', requests: 1 },
    ]);
    expect(d.top_endpoints).toEqual([
      { endpoint: '/api/v1/transactions/', requests: 5 },
      { endpoint: '/api/v1/transactions/:id', requests: 1 },
    ]);
    // Expired windows leave the list; the hour's figures stay.
    c.t += 60_000;
    const later = await store.dashboard();
    expect(later.current_active_limits).toEqual([]);
    expect(later.total_requests_last_hour).toBe(6);
  });

  it('stays within its window cap', async () => {
    const store = new MemoryStore({ now: clock().now, maxWindows: 100 });
    for (let i = 0; i < 1_000; i++) await store.hit(hit(`10.0.${i >> 8}.${i & 255}`));
    expect(store.size).toBeLessThanOrEqual(100);
    expect((await store.dashboard()).total_requests_last_hour).toBe(1_000);
  });
});

describe('HourStats (the rolling hour)', () => {
  it('counts the current minute and the 59 before it, no more', () => {
    const s = new HourStats();
    const minute = 60_000;
    s.record(T0, 'old', '/a', true); // 10:34
    s.record(T0 + 30 * minute, 'mid', '/b', false); // 11:04
    s.record(T0 + 59 * minute + 59_000, 'new', '/b', false); // 11:33:59
    expect(s.summary(T0 + 59 * minute + 59_999)).toMatchObject({ total_requests_last_hour: 3, blocked_requests_last_hour: 1 });
    // At 11:34 the 10:34 bucket has left the hour.
    const next = s.summary(T0 + 60 * minute);
    expect(next).toMatchObject({ total_requests_last_hour: 2, blocked_requests_last_hour: 0 });
    expect(next.top_clients.map((c) => c.client_id).sort()).toEqual(['mid', 'new']);
    expect(next.top_endpoints).toEqual([{ endpoint: '/b', requests: 2 }]);
    // A ring slot reused 60 minutes later holds only the new minute.
    s.record(T0 + 60 * minute, 'x', '/c', false);
    expect(s.summary(T0 + 60 * minute).total_requests_last_hour).toBe(3);
  });

  it('lists ten clients at most, the busiest first', () => {
    const s = new HourStats();
    for (let i = 0; i < 15; i++) for (let j = 0; j <= i; j++) s.record(T0, `c${i}`, '/a', false);
    const top = s.summary(T0).top_clients;
    expect(top).toHaveLength(10);
    expect(top[0]).toEqual({ client_id: 'c14', requests: 15 });
    expect(top[9]).toEqual({ client_id: 'c5', requests: 6 });
  });
});

describe('BoundedCounter (Space-Saving)', () => {
  it('keeps a heavy hitter that arrives after the table is full of one-off keys', () => {
    const c = new BoundedCounter(10);
    for (let i = 0; i < 1_000; i++) c.add(`noise-${i}`);
    for (let i = 0; i < 50; i++) c.add('heavy');
    expect(c.counts.size).toBe(10);
    const heavy = c.counts.get('heavy')!;
    // Over-estimated by at most the smallest count, never under-counted.
    expect(heavy).toBeGreaterThanOrEqual(50);
    expect(Math.max(...c.counts.values())).toBe(heavy);
  });
});
