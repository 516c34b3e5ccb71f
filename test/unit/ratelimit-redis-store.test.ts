/**
 * The Redis stores on the real Redis (127.0.0.1:6379, or TEST_REDIS_URL): the rate limiter's
 * (src/ratelimit/redis-store.ts: its decisions, the keys and TTLs it writes, the dashboard it reads
 * back) and the sign-in throttle's (RedisAccountStore), driven by an injected clock. Part of the unit tier because it is the stores' only unit test (and
 * what mutation testing runs); without a Redis it is skipped with a message, and with
 * REQUIRE_SERVICES=1 (CI) it fails. Keys use a prefix of this file's own and are deleted afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FallbackAccountStore, MemoryAccountStore, RedisAccountStore, type LoginThrottleOptions } from '../../src/ratelimit/account-throttle.ts';
import { StoreBreaker } from '../../src/ratelimit/breaker.ts';
import { MemoryStore } from '../../src/ratelimit/memory-store.ts';
import { RedisStore } from '../../src/ratelimit/redis-store.ts';
import { minuteOf, type Decision, type Hit, type RateLimitStore } from '../../src/ratelimit/store.ts';
import { deletePrefix, keysWithPrefix } from '../helpers/redis.ts';
import { REDIS_TEST_URL, servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('the Redis store (unit)', 'redis');

const MINUTE = 60_000;

function hit(client: string, over: Partial<Hit> = {}): Hit {
  return {
    windowId: `default:${client}`,
    policy: 'default',
    clientId: client,
    limit: 3,
    windowSeconds: 60,
    windowEndpoint: '/api/v1',
    endpoint: '/api/v1/accounts',
    ...over,
  };
}

describe.skipIf(!ok)('RedisStore', () => {
  const base = `nest-egg-test:${randomBytes(6).toString('hex')}:`;
  let redis: Redis;
  let prefix: string;
  let n = 0;
  // Whole seconds, a few minutes ahead of the machine's clock: windows written with it live (in
  // real time) as long as their TTL, and a store on Redis's own clock would pick other minutes.
  const clock = { t: Math.ceil((Date.now() + 5 * MINUTE) / MINUTE) * MINUTE + 10_000 };
  const store = (withClock = true) => new RedisStore(redis, prefix, withClock ? () => clock.t : undefined);

  beforeAll(async () => {
    redis = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  beforeEach(() => {
    // A fresh key space for each test: nothing one test wrote shows in another's dashboard.
    prefix = `${base}${n++}:`;
    clock.t = Math.ceil((Date.now() + 5 * MINUTE) / MINUTE) * MINUTE + 10_000;
  });
  afterAll(async () => {
    if (!redis) return;
    await deletePrefix(redis, base);
    expect(await keysWithPrefix(redis, base)).toEqual([]);
    await redis.quit();
  });

  it('fixed window: counts every attempt, blocks past the limit, and writes the window, the active sets and the minute', async () => {
    const s = store();
    const decisions: Decision[] = [];
    for (let i = 0; i < 5; i++) decisions.push(await s.hit(hit('a')));
    expect(decisions.map((d) => [d.count, d.limit, d.remaining, d.blocked])).toEqual([
      [1, 3, 2, false], [2, 3, 1, false], [3, 3, 0, false], [4, 3, 0, true], [5, 3, 0, true],
    ]);
    for (const d of decisions) {
      expect(d.resetMs).toBeGreaterThan(55_000);
      expect(d.resetMs).toBeLessThanOrEqual(60_000);
    }

    const window = `${prefix}w:default:a`;
    expect(await redis.hgetall(window)).toEqual({ n: '5', l: '3', w: '60', e: '/api/v1', c: 'a' });
    const ttl = await redis.pttl(window);
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    // The active sets: the window's expiry on the store's clock, and its count.
    expect(Number(await redis.zscore(`${prefix}active:n`, 'default:a'))).toBe(5);
    const expiry = Number(await redis.zscore(`${prefix}active:exp`, 'default:a'));
    expect(expiry).toBeGreaterThan(clock.t + 55_000);
    expect(expiry).toBeLessThanOrEqual(clock.t + 60_000);

    // The minute of the store's clock: totals, and the client and endpoint counts, kept 62 minutes.
    const minute = `${prefix}m:${minuteOf(clock.t)}`;
    expect(await redis.hgetall(minute)).toEqual({ total: '5', blocked: '2' });
    expect(await redis.zrange(`${minute}:c`, '0', '-1', 'WITHSCORES')).toEqual(['a', '5']);
    expect(await redis.zrange(`${minute}:e`, '0', '-1', 'WITHSCORES')).toEqual(['/api/v1/accounts', '5']);
    for (const key of [minute, `${minute}:c`, `${minute}:e`]) {
      const seconds = await redis.ttl(key);
      expect(seconds, key).toBeGreaterThan(62 * 60 - 10);
      expect(seconds, key).toBeLessThanOrEqual(62 * 60);
    }
    // Nothing else, and every key expires on its own.
    const keys = await keysWithPrefix(redis, prefix);
    expect(keys.sort()).toEqual([`${prefix}active:exp`, `${prefix}active:n`, minute, `${minute}:c`, `${minute}:e`, window].sort());
    for (const key of keys) expect(await redis.pttl(key), key).toBeGreaterThan(0);
  });

  it('sliding window: the same decisions as the memory store, on the injected clock', async () => {
    const s = store();
    const memory = new MemoryStore({ now: () => clock.t });
    const h = hit('c', { algorithm: 'sliding', windowId: 'auth-login:c', policy: 'auth-login' });
    const t0 = clock.t;
    // Three admitted a second apart, two refused, then the first leaves the window at t0 + 60 s.
    const steps = [0, 1_000, 2_000, 3_000, 30_000, 60_000, 60_500, 61_000, 125_000];
    const decide = async (st: RateLimitStore) => {
      const out: Decision[] = [];
      for (const at of steps) {
        clock.t = t0 + at;
        out.push(await st.hit(h));
      }
      return out;
    };
    const fromRedis = await decide(s);
    const fromMemory = await decide(memory);
    expect(fromRedis).toEqual(fromMemory);
    expect(fromRedis.map((d) => [d.count, d.remaining, d.blocked, d.resetMs])).toEqual([
      [1, 2, false, 60_000],
      [2, 1, false, 59_000],
      [3, 0, false, 58_000],
      [4, 0, true, 57_000], // refused: counted, not logged; a slot frees when the first leaves
      [5, 0, true, 30_000],
      [3, 0, false, 1_000], // the first left at 60 s: admitted, the log is full again
      [4, 0, true, 500],
      [3, 0, false, 1_000], // the second left at 61 s; the third (2 s) frees the next slot
      [1, 2, false, 60_000], // the whole log expired
    ]);
    // The log holds at most the limit, and has the window's TTL from its newest member.
    expect(await redis.zcard(`${prefix}log:auth-login:c`)).toBe(1);
    expect(await redis.hget(`${prefix}w:auth-login:c`, 'n')).toBe('1');
  });

  it('sliding window: a lowered limit refuses with nothing remaining, never a negative', async () => {
    const s = store();
    const h = hit('d', { algorithm: 'sliding', windowId: 'auth-login:d' });
    for (let i = 0; i < 3; i++) {
      clock.t += 1;
      await s.hit(h);
    }
    clock.t += 1;
    const d = await s.hit({ ...h, limit: 1 });
    expect(d).toMatchObject({ count: 4, limit: 1, remaining: 0, blocked: true });
    expect(d.resetMs).toBe(60_000 - 3);
  });

  it("without a clock of its own, windows run on Redis's clock", async () => {
    const s = store(false);
    clock.t = 0; // not used: a store on this clock would write minute 0
    const before = Date.now();
    const d = await s.hit(hit('e'));
    expect(d).toMatchObject({ count: 1, remaining: 2, blocked: false });
    expect(d.resetMs).toBe(60_000);
    expect(await redis.exists(`${prefix}m:0`)).toBe(0);
    const minutes = [minuteOf(before), minuteOf(Date.now())].map((m) => `${prefix}m:${m}`);
    expect(await Promise.all(minutes.map((k) => redis.exists(k)))).toContain(1);
    const expiry = Number(await redis.zscore(`${prefix}active:exp`, 'default:e'));
    expect(expiry).toBeGreaterThanOrEqual(before + 60_000 - 1_000);
    expect(expiry).toBeLessThanOrEqual(Date.now() + 60_000 + 1_000);
    const board = await s.dashboard();
    expect(board.current_active_limits.map((l) => l.client_id)).toEqual(['e']);
    expect(board.total_requests_last_hour).toBe(1);
  });

  it("dashboard: live windows busiest first, in the guide's shape, and the rolling hour's figures", async () => {
    const s = store();
    const t0 = clock.t;
    // 60 minutes before: outside the hour. 59 minutes before: inside it.
    clock.t = t0 - 60 * MINUTE;
    await s.hit(hit('old', { endpoint: '/old' }));
    clock.t = t0 - 59 * MINUTE;
    await s.hit(hit('edge', { endpoint: '/edge' }));
    clock.t = t0;
    for (let i = 0; i < 5; i++) await s.hit(hit('busy'));
    for (let i = 0; i < 2; i++) await s.hit(hit('calm', { endpoint: '/api/v1/budgets', windowId: 'transactions:calm', policy: 'transactions', windowEndpoint: '/api/v1/transactions', limit: 100 }));
    const board = await s.dashboard();
    const resetsAt = (ms: number) => new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    expect(board.current_active_limits).toEqual([
      { endpoint: '/api/v1', client_id: 'busy', requests: 5, limit: 3, window_seconds: 60, resets_at: expect.any(String), blocked: true },
      { endpoint: '/api/v1/transactions', client_id: 'calm', requests: 2, limit: 100, window_seconds: 60, resets_at: expect.any(String), blocked: false },
    ]);
    for (const l of board.current_active_limits) {
      const at = Date.parse(l.resets_at);
      expect(at).toBeGreaterThan(Date.parse(resetsAt(t0 + 55_000)));
      expect(at).toBeLessThanOrEqual(Date.parse(resetsAt(t0 + 60_000)));
      expect(l.resets_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    expect(board.total_requests_last_hour).toBe(1 + 5 + 2);
    expect(board.blocked_requests_last_hour).toBe(2);
    expect(board.top_clients).toEqual([
      { client_id: 'busy', requests: 5 },
      { client_id: 'calm', requests: 2 },
      { client_id: 'edge', requests: 1 },
    ]);
    expect(board.top_endpoints).toEqual([
      { endpoint: '/api/v1/accounts', requests: 5 },
      { endpoint: '/api/v1/budgets', requests: 2 },
      { endpoint: '/edge', requests: 1 },
    ]);
    // The dashboard's scratch keys do not outlive it.
    expect((await keysWithPrefix(redis, `${prefix}scratch`)).length).toBe(0);
  });

  it('dashboard: a window at its limit is not blocked, one past it is', async () => {
    const s = store();
    for (let i = 0; i < 3; i++) await s.hit(hit('at'));
    for (let i = 0; i < 4; i++) await s.hit(hit('past'));
    expect((await s.dashboard()).current_active_limits.map((l) => [l.client_id, l.requests, l.blocked])).toEqual([['past', 4, true], ['at', 3, false]]);
  });

  it('dashboard: an empty store has nothing, not an error', async () => {
    expect(await store().dashboard()).toEqual({
      current_active_limits: [], total_requests_last_hour: 0, blocked_requests_last_hour: 0, top_clients: [], top_endpoints: [],
    });
  });

  it('dashboard: at most 100 windows and ten of each top list', async () => {
    const s = store();
    for (let i = 0; i < 104; i += 8) await Promise.all(Array.from({ length: 8 }, (_, j) => s.hit(hit(`c${i + j}`, { endpoint: `/e${(i + j) % 12}` }))));
    await s.hit(hit('c3', { endpoint: '/e3' }));
    const board = await s.dashboard();
    expect(board.current_active_limits).toHaveLength(100);
    expect(board.current_active_limits[0]).toMatchObject({ client_id: 'c3', requests: 2 });
    expect(board.total_requests_last_hour).toBe(105);
    expect(board.top_clients).toHaveLength(10);
    expect(board.top_clients[0]).toEqual({ client_id: 'c3', requests: 2 });
    expect(board.top_endpoints).toHaveLength(10);
    expect(board.top_endpoints[0]).toEqual({ endpoint: '/e3', requests: 10 });
  });

  it('reset: forgets the named windows (hash, log, both active sets) and counts the ones that were there', async () => {
    const s = store();
    for (let i = 0; i < 4; i++) await s.hit(hit('a'));
    await s.hit(hit('a', { windowId: 'auth-login:a', policy: 'auth-login', algorithm: 'sliding', windowEndpoint: '/api/v1/auth/login' }));
    await s.hit(hit('b'));
    expect(await s.reset(['default:a', 'auth-login:a', 'default:nobody'])).toBe(2);
    expect(await redis.exists(`${prefix}w:default:a`, `${prefix}w:auth-login:a`, `${prefix}log:auth-login:a`)).toBe(0);
    expect(await redis.zrange(`${prefix}active:exp`, '0', '-1')).toEqual(['default:b']);
    expect(await redis.zrange(`${prefix}active:n`, '0', '-1')).toEqual(['default:b']);
    expect((await s.dashboard()).current_active_limits.map((w) => w.client_id)).toEqual(['b']);
    // Its next request starts a new window.
    expect((await s.hit(hit('a'))).count).toBe(1);
    expect(await s.reset([])).toBe(0);
  });

  it('is available while its client is connected, and not once it is closed', async () => {
    const own = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    const s = new RedisStore(own, prefix);
    expect(s.available()).toBe(false); // not connected yet
    await own.connect();
    expect(s.available()).toBe(true);
    expect(s.kind).toBe('redis');
    const ended = new Promise((r) => own.once('end', r));
    await own.quit();
    await ended;
    expect(s.available()).toBe(false);
  });
});

describe.skipIf(!ok)('RedisAccountStore', () => {
  const prefix = `nest-egg-test-acct:${randomBytes(6).toString('hex')}:`;
  const OPTS: LoginThrottleOptions = { enabled: true, failures: 3, baseMs: 10_000, maxMs: 40_000, memoryMs: 600_000 };
  let redis: Redis;
  beforeAll(async () => {
    redis = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  afterAll(async () => {
    if (!redis) return;
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  it('counts failures in one hash per account, locks at the threshold, refuses while locked; reset deletes it', async () => {
    const clock = { t: Date.parse('2026-03-01T10:00:00.000Z') };
    const store = new RedisAccountStore(redis, prefix, () => clock.t);
    const verdicts = [];
    for (let i = 0; i < 3; i++) verdicts.push(await store.begin('k1', OPTS));
    expect(verdicts).toEqual([
      { admitted: true, failures: 1, lockMs: 0 },
      { admitted: true, failures: 2, lockMs: 0 },
      { admitted: true, failures: 3, lockMs: 10_000 },
    ]);
    const key = `${prefix}acct:k1`;
    expect(await redis.hgetall(key)).toEqual({ f: '3', u: String(clock.t + 10_000) });
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(10_000 + 600_000 - 5_000);
    expect(ttl).toBeLessThanOrEqual(10_000 + 600_000);
    clock.t += 4_000;
    expect(await store.begin('k1', OPTS)).toEqual({ admitted: false, retryAfterMs: 6_000 });
    clock.t += 6_000;
    expect(await store.begin('k1', OPTS)).toEqual({ admitted: true, failures: 4, lockMs: 20_000 });
    await store.reset('k1');
    expect(await redis.exists(key)).toBe(0);
    expect(await store.begin('k1', OPTS)).toEqual({ admitted: true, failures: 1, lockMs: 0 });
  });

  it("without a clock of its own it runs on Redis's clock", async () => {
    const store = new RedisAccountStore(redis, prefix);
    const before = Date.now();
    for (let i = 0; i < 2; i++) await store.begin('k2', OPTS);
    expect(await store.begin('k2', OPTS)).toEqual({ admitted: true, failures: 3, lockMs: 10_000 });
    const until = Number(await redis.hget(`${prefix}acct:k2`, 'u'));
    expect(until).toBeGreaterThanOrEqual(before + 10_000 - 1_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 10_000 + 1_000);
    const refused = await store.begin('k2', OPTS);
    expect(refused.admitted).toBe(false);
    expect(!refused.admitted && refused.retryAfterMs).toBeGreaterThan(8_000);
  });

  it('through the fallback store: Redis while it answers, for counting and for the reset', async () => {
    const memory = new MemoryAccountStore();
    const store = new FallbackAccountStore(new RedisAccountStore(redis, prefix), memory, new StoreBreaker({ timeoutMs: 1_000 }));
    expect(await store.begin('k3', OPTS)).toEqual({ admitted: true, failures: 1, lockMs: 0 });
    expect(await store.begin('k3', OPTS)).toEqual({ admitted: true, failures: 2, lockMs: 0 });
    expect(await redis.hget(`${prefix}acct:k3`, 'f')).toBe('2');
    expect(memory.size).toBe(0);
    await store.reset('k3');
    expect(await redis.exists(`${prefix}acct:k3`)).toBe(0);
  });

  it('is available while its client is connected', async () => {
    const own = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    const store = new RedisAccountStore(own, prefix);
    expect(store.available()).toBe(false);
    await own.connect();
    expect(store.available()).toBe(true);
    const ended = new Promise((r) => own.once('end', r));
    await own.quit();
    await ended;
    expect(store.available()).toBe(false);
  });
});
