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

describe('MemoryStore, the edges', () => {
  it('a fixed window lasts from its first attempt; a sliding one counts the last windowSeconds', async () => {
    const c = clock();
    const store = new MemoryStore({ now: c.now });
    const fixed = hit('f');
    const sliding = hit('s', { windowId: 'auth-login:s', algorithm: 'sliding' });
    await store.hit(fixed);
    await store.hit(sliding);
    c.t += 30_000;
    await store.hit(fixed);
    await store.hit(sliding);
    c.t += 30_000;
    // 60 s after the first: the fixed window starts again, the sliding one still holds the second.
    expect(await store.hit(fixed)).toMatchObject({ count: 1, remaining: 2, resetMs: 60_000 });
    expect(await store.hit(sliding)).toMatchObject({ count: 2, remaining: 1, resetMs: 30_000 });
  });

  it('sweeps expired windows on every 10,000th decision', async () => {
    const c = clock();
    const store = new MemoryStore({ now: c.now });
    for (let i = 0; i < 5; i++) await store.hit(hit(`gone-${i}`, { windowSeconds: 1 }));
    c.t += 2_000;
    for (let i = 5; i < 9_999; i++) store.hitSync(hit('live'));
    expect(store.size).toBe(6);
    store.hitSync(hit('live'));
    expect(store.size).toBe(1);
    // And the count starts again: the next sweep is 10,000 decisions later.
    for (let i = 0; i < 5; i++) store.hitSync(hit(`gone-b${i}`, { windowSeconds: 1 }));
    c.t += 2_000;
    for (let i = 0; i < 9_994; i++) store.hitSync(hit('live'));
    expect(store.size).toBe(6);
    store.hitSync(hit('live'));
    expect(store.size).toBe(1);
  });

  it('when full, forgets the least recently started window; a restarted window counts as new', async () => {
    const c = clock();
    const store = new MemoryStore({ now: c.now, maxWindows: 2 });
    await store.hit(hit('a', { windowSeconds: 1 }));
    await store.hit(hit('b'));
    c.t += 2_000;
    await store.hit(hit('a', { windowSeconds: 1 })); // a's window ended: a new one, the newest
    expect(store.size).toBe(2);
    await store.hit(hit('c')); // full of live windows: b (the oldest) goes
    expect(store.size).toBe(2);
    expect((await store.hit(hit('a', { windowSeconds: 1 }))).count).toBe(2);
    expect((await store.hit(hit('b'))).count).toBe(1);
  });

  it('when full, first drops the windows that have ended (at most one sweep a second)', async () => {
    const c = clock();
    const store = new MemoryStore({ now: c.now, maxWindows: 3 });
    await store.hit(hit('keep'));
    await store.hit(hit('x', { windowSeconds: 1 }));
    await store.hit(hit('y', { windowSeconds: 1 }));
    c.t += 1_000; // x and y end exactly now
    await store.hit(hit('z'));
    // The sweep made room: the live window that was oldest is still there.
    expect(store.size).toBe(2);
    expect((await store.hit(hit('keep'))).count).toBe(2);
    // Within a second of the last sweep there is no other (a flood of new clients costs O(1) each):
    // the oldest window goes, even though another has ended meanwhile.
    const s2 = new MemoryStore({ now: c.now, maxWindows: 2 });
    await s2.hit(hit('p'));
    await s2.hit(hit('q', { windowSeconds: 2 }));
    c.t += 1_500;
    await s2.dashboard(); // a sweep (nothing has ended yet)
    c.t += 500; // q ends now
    await s2.hit(hit('r'));
    expect((await s2.hit(hit('p'))).count).toBe(1);
  });

  it('a sliding window that was a fixed one starts a log of its own; at the cap it makes room', async () => {
    const c = clock();
    const store = new MemoryStore({ now: c.now, maxWindows: 1 });
    await store.hit(hit('a'));
    const d = await store.hit(hit('a', { algorithm: 'sliding' }));
    expect(d).toMatchObject({ count: 1, remaining: 2, blocked: false });
    expect(store.size).toBe(1);
    await store.hit(hit('b', { windowId: 'x:b', algorithm: 'sliding' }));
    expect(store.size).toBe(1);
    expect((await store.dashboard()).current_active_limits.map((l) => l.client_id)).toEqual(['b']);
  });

  it('sliding decisions are counted in the hour, refusals as blocked', async () => {
    const store = new MemoryStore({ now: clock().now });
    for (let i = 0; i < 5; i++) await store.hit(hit('s', { algorithm: 'sliding' }));
    const d = await store.dashboard();
    expect(d.total_requests_last_hour).toBe(5);
    expect(d.blocked_requests_last_hour).toBe(2);
    expect(d.top_clients).toEqual([{ client_id: 's', requests: 5 }]);
  });

  it('dashboard: busiest first, then the one ending first; blocked past the limit only', async () => {
    const c = clock();
    const store = new MemoryStore({ now: c.now });
    await store.hit(hit('late', { windowSeconds: 120 }));
    await store.hit(hit('early', { windowSeconds: 30 }));
    for (let i = 0; i < 3; i++) await store.hit(hit('full')); // exactly at the limit: not blocked
    for (let i = 0; i < 2; i++) await store.hit(hit('two'));
    const d = await store.dashboard();
    expect(d.current_active_limits.map((l) => [l.client_id, l.requests, l.blocked])).toEqual([
      ['full', 3, false], ['two', 2, false], ['early', 1, false], ['late', 1, false],
    ]);
    // A window ends exactly at its reset time: gone from the list then.
    c.t += 30_000;
    expect((await store.dashboard()).current_active_limits.map((l) => l.client_id)).toEqual(['full', 'two', 'late']);
  });

  it('dashboard of sliding windows: the live part of the log, refusals only while full, reset when a slot frees', async () => {
    const c = clock();
    const store = new MemoryStore({ now: c.now });
    const s = hit('s', { windowId: 'auth-login:s', algorithm: 'sliding' });
    for (let i = 0; i < 5; i++) {
      await store.hit(s);
      c.t += 10_000;
    }
    // Log at 0, 10, 20 s; refused at 30 and 40 s; now 50 s.
    let d = await store.dashboard();
    expect(d.current_active_limits).toEqual([
      { endpoint: '/api/v1/transactions', client_id: 's', requests: 5, limit: 3, window_seconds: 60, resets_at: '2024-02-17T10:35:00Z', blocked: true },
    ]);
    c.t += 10_000; // 60 s: the first admitted leaves the window, a slot is free, the refusals are no longer shown
    d = await store.dashboard();
    expect(d.current_active_limits).toEqual([
      { endpoint: '/api/v1/transactions', client_id: 's', requests: 2, limit: 3, window_seconds: 60, resets_at: '2024-02-17T10:35:10Z', blocked: false },
    ]);
    c.t += 19_999;
    expect((await store.dashboard()).current_active_limits.map((l) => l.requests)).toEqual([1]);
    c.t += 1;
    expect((await store.dashboard()).current_active_limits).toEqual([]);
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

describe('HourStats, the edges', () => {
  it('ties in the top lists are ordered by name', () => {
    const s = new HourStats();
    for (const c of ['m', 'b', 'z', 'a']) s.record(T0, c, `/${c}`, false);
    s.record(T0, 'z', '/z', false);
    expect(s.summary(T0).top_clients.map((c) => c.client_id)).toEqual(['z', 'a', 'b', 'm']);
    expect(s.summary(T0).top_endpoints.map((e) => e.endpoint)).toEqual(['/z', '/a', '/b', '/m']);
  });

  it('a minute from the future (a clock that went back) is not counted yet', () => {
    const s = new HourStats();
    s.record(T0 + 5 * 60_000, 'future', '/f', true);
    s.record(T0, 'now', '/n', false);
    expect(s.summary(T0)).toMatchObject({ total_requests_last_hour: 1, blocked_requests_last_hour: 0, top_clients: [{ client_id: 'now', requests: 1 }] });
  });
});

describe('MemoryStore.reset', () => {
  it('forgets the named windows only, and counts the ones that were there', async () => {
    const store = new MemoryStore();
    const h = (client: string, policy = 'default') => ({ windowId: `${policy}:${client}`, policy, clientId: client, limit: 1, windowSeconds: 60, windowEndpoint: '/api/v1', endpoint: '/api/v1/x' });
    await store.hit(h('a'));
    expect((await store.hit(h('a'))).blocked).toBe(true);
    await store.hit(h('a', 'transactions'));
    await store.hit(h('b'));
    expect(await store.reset(['default:a', 'default:nobody'])).toBe(1);
    expect(store.size).toBe(2);
    expect((await store.hit(h('a'))).blocked).toBe(false);
    expect((await store.hit(h('b'))).blocked).toBe(true);
  });
});

describe('BoundedCounter (Space-Saving)', () => {
  it('replaces the first of the smallest counts', () => {
    const c = new BoundedCounter(3);
    c.add('a');
    c.add('b');
    c.add('c');
    c.add('a');
    c.add('new');
    expect([...c.counts.entries()].sort()).toEqual([['a', 2], ['c', 1], ['new', 2]]);
  });

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
