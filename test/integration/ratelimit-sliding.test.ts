/**
 * The credential endpoints' per-IP limit is a sliding window log (issue 16): a burst of 30
 * sign-in attempts from one address straddling a window boundary admits no more than the policy's
 * limit within any 60 s — on the memory store and on Redis, driven by an injected clock through
 * the real policy table and limiter; and through the app (app.inject) with a short window in real
 * time. The same burst on a fixed window admits twice the limit, which is what the issue found.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { RateLimiter } from '../../src/ratelimit/limiter.ts';
import { MemoryStore } from '../../src/ratelimit/memory-store.ts';
import { resolvePolicies, type Policy } from '../../src/ratelimit/policies.ts';
import { RedisStore } from '../../src/ratelimit/redis-store.ts';
import type { RateLimitStore } from '../../src/ratelimit/store.ts';
import { TEST_JWT_SECRET } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { deletePrefix } from '../helpers/redis.ts';
import { REDIS_TEST_URL, servicesAvailable } from '../helpers/services.ts';

const redisOk = await servicesAvailable('sliding window on Redis', 'redis');

const LOGIN = { method: 'POST', route: '/api/v1/auth/login', userId: null };
const loginPolicy = (policies: Policy[]) => policies.find((p) => p.name === 'auth-login')!;

/** The most admissions within any span of `windowMs` (sorted times). */
function maxInAnyWindow(times: number[], windowMs: number): number {
  let best = 0;
  for (let i = 0, j = 0; j < times.length; j++) {
    while (times[j]! - times[i]! >= windowMs) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

/**
 * 30 attempts from one address: one at T0 (which starts a fixed window), 14 in the last second
 * before T0 + 60 s, 15 in the first second after it. Returns the admission times and the refusals.
 */
async function burst(store: RateLimitStore, clock: { t: number }, policies: Policy[], ip: string) {
  const limiter = new RateLimiter(policies, store);
  const T0 = clock.t;
  const times = [T0, ...Array.from({ length: 14 }, (_, i) => T0 + 59_000 + i * 60), ...Array.from({ length: 15 }, (_, i) => T0 + 60_050 + i * 60)];
  const admitted: number[] = [];
  const refused: { at: number; resetMs: number }[] = [];
  for (const at of times) {
    clock.t = at;
    const outcome = (await limiter.check({ ...LOGIN, ip }))!;
    expect(outcome.policy.name).toBe('auth-login');
    if (outcome.decision.blocked) refused.push({ at, resetMs: outcome.decision.resetMs });
    else admitted.push(at);
  }
  return { admitted, refused, limiter };
}

function storesUnderTest(): { name: string; skip: boolean; make: (clock: { t: number }) => Promise<RateLimitStore>; cleanup?: () => Promise<void> }[] {
  const prefix = `nest-egg-test-sliding:${randomBytes(6).toString('hex')}:`;
  let redis: Redis | undefined;
  return [
    { name: 'memory store', skip: false, make: async (clock) => new MemoryStore({ now: () => clock.t }) },
    {
      name: 'Redis store',
      skip: !redisOk,
      make: async (clock) => {
        redis ??= new Redis(REDIS_TEST_URL, { maxRetriesPerRequest: 1 });
        return new RedisStore(redis, `${prefix}${randomBytes(3).toString('hex')}:`, () => clock.t);
      },
      cleanup: async () => {
        if (!redis) return;
        await deletePrefix(redis, prefix);
        await redis.quit();
      },
    },
  ];
}

for (const s of storesUnderTest()) {
  describe.skipIf(s.skip)(`sliding window log for the credential endpoints: ${s.name}`, () => {
    afterAll(async () => s.cleanup?.());

    it('a burst of 30 sign-in attempts straddling a window boundary admits at most the limit within any 60 s', async () => {
      const policies = resolvePolicies();
      const { limit, windowSeconds, algorithm } = loginPolicy(policies);
      expect({ limit, windowSeconds, algorithm }).toEqual({ limit: 10, windowSeconds: 60, algorithm: 'sliding' });
      const clock = { t: Date.parse('2026-03-01T10:00:00.000Z') };
      const { admitted, refused } = await burst(await s.make(clock), clock, policies, '203.0.113.7');
      expect(admitted.length + refused.length).toBe(30);
      expect(maxInAnyWindow(admitted, 60_000)).toBe(10);
      // The attempt at T0 leaves the log at T0 + 60 s, freeing exactly one slot after the boundary.
      expect(admitted).toHaveLength(11);
      // Retry-After of a refusal is when the oldest admitted attempt leaves the window.
      const last = refused[refused.length - 1]!;
      expect(last.resetMs).toBe(admitted[1]! + 60_000 - last.at);
    });

    it('a refused client is admitted again exactly when its oldest admission leaves the window, never sooner', async () => {
      const policies = resolvePolicies({ 'auth-login': { limit: 3, windowSeconds: 60 } });
      const clock = { t: Date.parse('2026-03-01T11:00:00.000Z') };
      const limiter = new RateLimiter(policies, await s.make(clock));
      const ip = '203.0.113.8';
      const T0 = clock.t;
      const decide = async (at: number) => {
        clock.t = at;
        return (await limiter.check({ ...LOGIN, ip }))!.decision;
      };
      expect((await decide(T0)).blocked).toBe(false);
      expect((await decide(T0 + 10_000)).blocked).toBe(false);
      expect((await decide(T0 + 20_000)).blocked).toBe(false);
      const refused = await decide(T0 + 30_000);
      expect(refused).toMatchObject({ blocked: true, count: 4, remaining: 0, resetMs: 30_000 });
      expect((await decide(T0 + 59_999)).blocked).toBe(true);
      expect((await decide(T0 + 60_000)).blocked).toBe(false);
      expect((await decide(T0 + 60_001)).blocked).toBe(true);
      expect((await decide(T0 + 70_000)).blocked).toBe(false);
      // Another address has its own log.
      clock.t = T0 + 70_000;
      expect((await limiter.check({ ...LOGIN, ip: '203.0.113.9' }))!.decision.blocked).toBe(false);
    });

    // Redis's fixed windows end with their key's TTL (Redis's clock), which an injected clock cannot move.
    it.skipIf(s.name !== 'memory store')('the same burst on a fixed window admits nearly twice the limit within 60 s (the gap the sliding log closes)', async () => {
      const policies = resolvePolicies().map((p) => (p.name === 'auth-login' ? { ...p, algorithm: 'fixed' as const } : p));
      const clock = { t: Date.parse('2026-03-01T12:00:00.000Z') };
      const { admitted } = await burst(await s.make(clock), clock, policies, '203.0.113.10');
      // The finding: 19 attempts within a few seconds (9 before the boundary, 10 after).
      expect(maxInAnyWindow(admitted, 60_000)).toBe(19);
    });
  });
}

describe('sliding window through the app: 30 sign-ins from one address in real time', () => {
  let db: TestDatabase;
  let app: Awaited<ReturnType<typeof buildApp>>;
  beforeAll(async () => {
    // A 2 s window, so the burst straddles several boundaries in a few seconds of real time.
    const config = loadConfig({
      ENVIRONMENT: 'test', DATA_DIR: 'memory://', JWT_SECRET: TEST_JWT_SECRET, RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_POLICIES: 'auth-login=10/2', LOGIN_THROTTLE_ENABLED: 'false',
    });
    db = await createTestDatabase();
    app = await buildApp(config, { logger: createLogger({ ...config.log, destination: new PassThrough().resume() }), database: db.database, jwtSecret: TEST_JWT_SECRET });
  });
  afterAll(async () => {
    await app?.close();
    await db?.close();
  });

  it('admits no more than 10 within any 2 s, and every refusal is a 429 with Retry-After', async () => {
    const admitted: number[] = [];
    const start = performance.now();
    for (let i = 0; i < 30; i++) {
      // 15 at once, then 15 spread over the next ~2.5 s.
      if (i >= 15) await new Promise((r) => setTimeout(r, 170));
      const sent = performance.now() - start;
      const r = await app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: '198.51.100.77', payload: { email: 'burst@example.com', password: 'wrong password' } });
      expect([401, 429]).toContain(r.statusCode);
      if (r.statusCode === 401) admitted.push(sent);
      else {
        expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(String(r.headers['ratelimit-policy'])).toBe('"auth-login";q=10;w=2');
      }
    }
    // Admission times as seen here are at most a request's duration after the limiter's: allow that much.
    expect(maxInAnyWindow(admitted, 2_000 - 100)).toBeLessThanOrEqual(10);
    expect(admitted.length).toBeGreaterThan(10);
  }, 60_000);
});
