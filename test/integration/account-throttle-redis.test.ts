/**
 * The per-account throttle's Redis store on a real Redis: the lock script's arithmetic on Redis's
 * own clock and on an injected one, the TTL of a streak, atomic counting under concurrency (more
 * concurrent attempts than the threshold: exactly the threshold is admitted), and no email in Redis.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountThrottle, RedisAccountStore, type LoginThrottleOptions } from '../../src/ratelimit/account-throttle.ts';
import { deletePrefix, keysWithPrefix } from '../helpers/redis.ts';
import { REDIS_TEST_URL, servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('login throttle on Redis', 'redis');

const OPTS: LoginThrottleOptions = { enabled: true, failures: 5, baseMs: 30_000, maxMs: 900_000, memoryMs: 3_600_000 };

describe.skipIf(!ok)('RedisAccountStore', () => {
  const prefix = `nest-egg-test-acct:${randomBytes(6).toString('hex')}:`;
  let redis: Redis;
  beforeAll(async () => {
    redis = new Redis(REDIS_TEST_URL, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  it('locks after N failures with a doubling, capped lock, on an injected clock; a success resets', async () => {
    const clock = { t: Date.parse('2026-03-01T10:00:00.000Z') };
    const throttle = new AccountThrottle(OPTS, new RedisAccountStore(redis, prefix, () => clock.t), 'secret of the replicas');
    const email = 'jane@example.com';
    const admitted = [];
    for (let i = 0; i < 5; i++) admitted.push(await throttle.begin(email));
    expect(admitted.map((v) => v.admitted && v.lockMs)).toEqual([0, 0, 0, 0, 30_000]);
    expect(await throttle.begin(email)).toMatchObject({ admitted: false, retryAfterMs: 30_000 });
    clock.t += 30_000;
    expect(await throttle.begin(email)).toMatchObject({ admitted: true, failures: 6, lockMs: 60_000 });
    for (let i = 0; i < 6; i++) {
      clock.t += 900_000;
      await throttle.begin(email);
    }
    clock.t += 900_000;
    const capped = await throttle.begin(email);
    expect(capped).toMatchObject({ admitted: true, lockMs: 900_000 });
    const key = `${prefix}acct:${throttle.accountKey(email)}`;
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(900_000 + 3_600_000 - 5_000);
    expect(ttl).toBeLessThanOrEqual(900_000 + 3_600_000);
    await throttle.succeeded(capped);
    expect(await redis.exists(key)).toBe(0);
  });

  it('counts concurrent attempts atomically on Redis time: of 30 at once, exactly N are admitted', async () => {
    const throttle = new AccountThrottle({ ...OPTS, baseMs: 2_000 }, new RedisAccountStore(redis, prefix), 'secret of the replicas');
    const verdicts = await Promise.all(Array.from({ length: 30 }, () => throttle.begin('stuffed@example.com')));
    expect(verdicts.filter((v) => v.admitted)).toHaveLength(5);
    const refused = verdicts.filter((v) => !v.admitted);
    for (const v of refused) expect(v.admitted === false && v.retryAfterMs).toBeLessThanOrEqual(2_000);
    // The lock ends on Redis's clock.
    await new Promise((r) => setTimeout(r, 2_050));
    expect((await throttle.begin('stuffed@example.com')).admitted).toBe(true);
  });

  it('holds no email: keys are keyed hashes, values two numbers', async () => {
    const keys = await keysWithPrefix(redis, prefix);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key.slice(prefix.length)).toMatch(/^acct:[0-9a-f]{32}$/);
      expect(Object.keys(await redis.hgetall(key)).sort()).toEqual(['f', 'u']);
    }
  });
});
