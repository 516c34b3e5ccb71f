import { createHmac } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { StoreBreaker } from '../../src/ratelimit/breaker.ts';
import {
  AccountThrottle, FallbackAccountStore, MemoryAccountStore, createAccountThrottle, lockDurationMs,
  type LoginThrottleOptions, type RedisAccountStore,
} from '../../src/ratelimit/account-throttle.ts';

const OPTS: LoginThrottleOptions = { enabled: true, failures: 5, baseMs: 30_000, maxMs: 900_000, memoryMs: 3_600_000 };

function setup(opts = OPTS) {
  const clock = { t: 1_700_000_000_000 };
  const store = new MemoryAccountStore(() => clock.t);
  return { clock, store, throttle: new AccountThrottle(opts, store, 'a shared secret of the replicas, 32+ chars') };
}

describe('lockDurationMs', () => {
  it('is 0 below the threshold, the base at it, doubling after, capped', () => {
    expect([1, 4, 5, 6, 7, 8, 9, 10, 11, 100, 10_000].map((f) => lockDurationMs(f, OPTS))).toEqual([
      0, 0, 30_000, 60_000, 120_000, 240_000, 480_000, 900_000, 900_000, 900_000, 900_000,
    ]);
  });
});

describe('AccountThrottle (memory store)', () => {
  it('keys on a keyed hash of the normalized email: stable, not the email, different under another secret', () => {
    const { throttle } = setup();
    const key = throttle.accountKey('jane@example.com');
    expect(key).toMatch(/^[0-9a-f]{32}$/);
    expect(throttle.accountKey('jane@example.com')).toBe(key);
    expect(throttle.accountKey('john@example.com')).not.toBe(key);
    expect(new AccountThrottle(OPTS, new MemoryAccountStore(), 'another secret').accountKey('jane@example.com')).not.toBe(key);
  });

  it('admits N attempts, the Nth locking; refuses during the lock without counting; doubles after each lock; a success resets', async () => {
    const { clock, throttle } = setup();
    const email = 'jane@example.com';
    const verdicts = [];
    for (let i = 0; i < 5; i++) verdicts.push(await throttle.begin(email));
    expect(verdicts.map((v) => v.admitted && v.lockMs)).toEqual([0, 0, 0, 0, 30_000]);
    const refused = await throttle.begin(email);
    expect(refused).toMatchObject({ admitted: false, retryAfterMs: 30_000 });
    clock.t += 29_999;
    expect(await throttle.begin(email)).toMatchObject({ admitted: false, retryAfterMs: 1 });
    clock.t += 1;
    // Refused attempts did not extend the lock or grow the streak: the next failure is the 6th.
    expect(await throttle.begin(email)).toMatchObject({ admitted: true, failures: 6, lockMs: 60_000 });
    clock.t += 60_000;
    const seventh = await throttle.begin(email);
    expect(seventh).toMatchObject({ admitted: true, failures: 7, lockMs: 120_000 });
    // This attempt had the right password: the lock it started and the streak are gone.
    await throttle.succeeded(seventh);
    expect(await throttle.begin(email)).toMatchObject({ admitted: true, failures: 1, lockMs: 0 });
  });

  it('throttles unknown emails exactly like known ones, and each account on its own', async () => {
    const { throttle } = setup();
    for (let i = 0; i < 5; i++) await throttle.begin('nobody@example.com');
    expect((await throttle.begin('nobody@example.com')).admitted).toBe(false);
    expect((await throttle.begin('jane@example.com')).admitted).toBe(true);
  });

  it('forgets a streak `memoryMs` after its last failure (beyond the lock)', async () => {
    const { clock, throttle } = setup();
    for (let i = 0; i < 4; i++) await throttle.begin('jane@example.com');
    clock.t += OPTS.memoryMs;
    expect(await throttle.begin('jane@example.com')).toMatchObject({ admitted: true, failures: 1 });
  });

  it('is bounded: the least recently failed streak is forgotten when full', async () => {
    const clock = { t: 0 };
    const store = new MemoryAccountStore(() => clock.t, 100);
    for (let i = 0; i < 250; i++) await store.begin(`k${i}`, OPTS);
    expect(store.size).toBeLessThanOrEqual(100);
  });

  it('when disabled, admits everything and keeps nothing', async () => {
    const { throttle, store } = setup({ ...OPTS, enabled: false });
    for (let i = 0; i < 20; i++) expect((await throttle.begin('jane@example.com')).admitted).toBe(true);
    expect(store.size).toBe(0);
  });
});

describe('MemoryAccountStore, the edges', () => {
  it('the key is an HMAC of the email under a key derived from the secret (stable across replicas and restarts)', () => {
    const secret = 'a shared secret of the replicas, 32+ chars';
    const derived = createHmac('sha256', secret).update('nest-egg login throttle account key v1').digest();
    const { throttle } = setup();
    expect(throttle.accountKey('josé@example.com')).toBe(createHmac('sha256', derived).update('josé@example.com', 'utf8').digest('hex').slice(0, 32));
  });

  it('an attempt carries the key and a shorter account id, its first 16 characters', async () => {
    const { throttle } = setup();
    const a = await throttle.begin('jane@example.com');
    expect(a.key).toBe(throttle.accountKey('jane@example.com'));
    expect(a.account).toBe(a.key.slice(0, 16));
    expect(a.account).toHaveLength(16);
  });

  it('a streak is remembered memoryMs after its lock ends, not after it starts', async () => {
    const { clock, throttle } = setup();
    for (let i = 0; i < 5; i++) await throttle.begin('jane@example.com'); // locked 30 s
    clock.t += 30_000 + OPTS.memoryMs - 1;
    expect(await throttle.begin('jane@example.com')).toMatchObject({ admitted: true, failures: 6 });
  });

  it('when full, forgets the least recently failed streak; a streak that failed again is the newest', async () => {
    const clock = { t: 0 };
    const store = new MemoryAccountStore(() => clock.t, 2);
    await store.begin('a', OPTS);
    await store.begin('b', OPTS);
    await store.begin('a', OPTS); // a failed again: b is now the least recent
    expect(store.size).toBe(2);
    await store.begin('c', OPTS);
    expect(store.size).toBe(2);
    expect(await store.begin('a', OPTS)).toMatchObject({ failures: 3 });
    expect(await store.begin('b', OPTS)).toMatchObject({ failures: 1 });
  });

  it('an expired streak that comes back is the newest too', async () => {
    const clock = { t: 0 };
    const store = new MemoryAccountStore(() => clock.t, 2);
    await store.begin('a', OPTS);
    clock.t += OPTS.memoryMs - 1;
    await store.begin('b', OPTS);
    clock.t += 1; // a's streak has expired
    expect(await store.begin('a', OPTS)).toMatchObject({ failures: 1 });
    clock.t += 1;
    await store.begin('c', OPTS); // full: b is the oldest of the live ones
    expect(await store.begin('a', OPTS)).toMatchObject({ failures: 2 });
  });

  it('when full, first drops the expired streaks (at most one sweep a second)', async () => {
    const clock = { t: 5_000 };
    const store = new MemoryAccountStore(() => clock.t, 3);
    await store.begin('old1', OPTS);
    await store.begin('old2', OPTS);
    clock.t += OPTS.memoryMs;
    await store.begin('live', OPTS);
    await store.begin('new', OPTS); // full: the sweep drops old1 and old2
    expect(store.size).toBe(2);
    expect(await store.begin('live', OPTS)).toMatchObject({ failures: 2 });
  });
});

describe('createAccountThrottle', () => {
  it('uses Redis (through the breaker) only when it has both, memory otherwise', () => {
    const redis = new Redis({ lazyConnect: true });
    const deps = { keyPrefix: 'p:', secret: 'a shared secret of the replicas, 32+ chars' };
    expect(createAccountThrottle(OPTS, { ...deps, redis, breaker: new StoreBreaker() }).store).toBeInstanceOf(FallbackAccountStore);
    expect(createAccountThrottle(OPTS, { ...deps, redis }).store).toBeInstanceOf(MemoryAccountStore);
    expect(createAccountThrottle(OPTS, { ...deps, breaker: new StoreBreaker() }).store).toBeInstanceOf(MemoryAccountStore);
    expect(createAccountThrottle(OPTS, deps).options).toBe(OPTS);
    redis.disconnect();
  });
});

describe('FallbackAccountStore', () => {
  it('falls back to memory through the shared breaker when Redis fails, and reports it once', async () => {
    const modes: string[] = [];
    const errors: string[] = [];
    const breaker = new StoreBreaker({ timeoutMs: 20, cooldownMs: 60_000, onModeChange: (m) => modes.push(m), onStoreError: (r) => errors.push(r) });
    const failing = {
      available: () => true,
      begin: async () => {
        throw new Error('ECONNRESET');
      },
      reset: async () => {
        throw new Error('ECONNRESET');
      },
    } as unknown as RedisAccountStore;
    const memory = new MemoryAccountStore();
    const store = new FallbackAccountStore(failing, memory, breaker);
    for (let i = 0; i < 5; i++) expect((await store.begin('k', OPTS)).admitted).toBe(true);
    expect((await store.begin('k', OPTS)).admitted).toBe(false);
    await store.reset('k');
    expect((await store.begin('k', OPTS)).admitted).toBe(true);
    expect(modes).toEqual(['local']);
    // Only the first call tried Redis: the breaker stays open for its cool-down.
    expect(errors).toEqual(['error']);
  });
});
