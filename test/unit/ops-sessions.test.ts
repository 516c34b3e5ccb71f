/**
 * The console's sessions (src/routes/ops/sessions.ts) on the memory store, with a clock the test
 * drives: the absolute and idle timeouts, reads that do not restart the idle clock, sign-out, the
 * token's shape and what the store keeps (a hash of the token, never the token). The Redis store
 * is exercised across two replicas in test/integration/ops-console-server.test.ts.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ConsoleSessions, MemorySessionStore, RedisSessionStore, csrfMatches, type ConsoleSession, type SessionStore } from '../../src/routes/ops/sessions.ts';

function setup() {
  const clock = { t: 1_000_000 };
  const puts: { key: string; ttlMs: number }[] = [];
  const memory = new MemorySessionStore(() => clock.t);
  const store: SessionStore = {
    put: (key, session, ttlMs) => {
      puts.push({ key, ttlMs });
      return memory.put(key, session, ttlMs);
    },
    touch: (key, session, ttlMs) => {
      puts.push({ key, ttlMs });
      return memory.touch(key, session, ttlMs);
    },
    get: (key) => memory.get(key),
    delete: (key) => memory.delete(key),
  };
  const sessions = new ConsoleSessions(store, { ttlSeconds: 3600, idleSeconds: 600 }, () => clock.t);
  return { clock, puts, sessions };
}

const admin = { id: '7d1c9d84-7f0a-4f35-9c1f-52d8b1f5f0a1', email: 'ops@example.com' };

describe('console sessions', () => {
  it('issues a 256-bit token and keeps only its SHA-256, with a CSRF token of its own', async () => {
    const { sessions, puts } = setup();
    const { token, session } = await sessions.create(admin);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(puts[0]!.key).toMatch(/^[0-9a-f]{64}$/);
    expect(puts[0]!.key).not.toContain(token);
    expect(puts[0]!.ttlMs).toBe(600_000);
    expect(session).toMatchObject({ userId: admin.id, email: admin.email, expiresAt: 1_000_000 + 3_600_000 });
    expect(session.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(session.csrfToken).not.toBe(token);
    const other = await sessions.create(admin);
    expect(other.token).not.toBe(token);
  });

  it('ends after the idle time without a request, and each request restarts that clock', async () => {
    const { sessions, clock } = setup();
    const { token } = await sessions.create(admin);
    clock.t += 599_000;
    expect(await sessions.resume(token)).not.toBeNull();
    clock.t += 599_000;
    expect(await sessions.resume(token)).not.toBeNull();
    clock.t += 600_000;
    expect(await sessions.resume(token)).toBeNull();
  });

  it('reads that say they are the auto-refresh do not restart the idle clock', async () => {
    const { sessions, clock } = setup();
    const { token } = await sessions.create(admin);
    clock.t += 500_000;
    expect(await sessions.resume(token, { touch: false })).not.toBeNull();
    clock.t += 100_000;
    expect(await sessions.resume(token, { touch: false })).toBeNull();
  });

  it('ends at its absolute lifetime however busy it is, and the store forgets it no later', async () => {
    const { sessions, clock, puts } = setup();
    const { token } = await sessions.create(admin);
    for (let i = 0; i < 6; i++) {
      clock.t += 590_000;
      expect(await sessions.resume(token), `request ${i}`).not.toBeNull();
    }
    // 3,540 s in: the store keeps it only for the 60 s left of its hour.
    expect(puts.at(-1)!.ttlMs).toBe(60_000);
    clock.t += 60_000;
    expect(await sessions.resume(token)).toBeNull();
  });

  it('sign-out ends it; unknown, malformed and missing tokens are no session', async () => {
    const { sessions } = setup();
    const { token } = await sessions.create(admin);
    await sessions.end(token);
    expect(await sessions.resume(token)).toBeNull();
    for (const t of [undefined, '', 'x', 'A'.repeat(43), `${'A'.repeat(42)}!`, 'A'.repeat(44)]) expect(await sessions.resume(t)).toBeNull();
    await expect(sessions.end('not a token')).resolves.toBeUndefined();
  });

  it('a request racing a sign-out does not bring the session back', async () => {
    const { sessions } = setup();
    const { token } = await sessions.create(admin);
    // The request has read the session; the sign-out deletes it before the request writes it back.
    const store = (sessions as unknown as { store: SessionStore }).store;
    const realGet = store.get;
    store.get = async (key) => {
      const s = await realGet(key);
      await sessions.end(token);
      return s;
    };
    expect(await sessions.resume(token)).toBeNull();
    store.get = realGet;
    expect(await sessions.resume(token)).toBeNull();
  });

  it('compares the CSRF header with the session token in full', () => {
    const s = { csrfToken: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG' } as ConsoleSession;
    expect(csrfMatches(s, 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG')).toBe(true);
    expect(csrfMatches(s, 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFH')).toBe(false);
    expect(csrfMatches(s, 'abcdef')).toBe(false);
    expect(csrfMatches(s, undefined)).toBe(false);
    expect(csrfMatches(s, ['abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG'])).toBe(false);
  });

  it('the memory store keeps at most 10,000 sessions, forgetting the oldest', async () => {
    const clock = { t: 0 };
    const store = new MemorySessionStore(() => clock.t);
    const s = { userId: 'u', email: 'e', csrfToken: 'c', createdAt: 0, expiresAt: 1e9, lastSeenAt: 0 };
    for (let i = 0; i <= 10_000; i++) await store.put(`k${i}`, s, 1_000);
    expect(await store.get('k0')).toBeNull();
    expect(await store.get('k1')).not.toBeNull();
    expect(await store.get('k10000')).not.toBeNull();
    clock.t = 1_000;
    expect(await store.get('k1')).toBeNull();
  });

  it('the Redis store answers 503 (an AppError), not a 500, when Redis does not answer', async () => {
    // Nothing listens on port 1; without an offline queue every command fails at once.
    const redis = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const store = new RedisSessionStore(redis, 'nest-egg-test:ops:');
    const sessions = new ConsoleSessions(store, { ttlSeconds: 3600, idleSeconds: 600 });
    for (const call of [() => sessions.create(admin), () => sessions.resume('A'.repeat(43)), () => sessions.end('A'.repeat(43))]) {
      await expect(call()).rejects.toMatchObject({ name: 'AppError', status: 503 });
    }
    redis.disconnect();
  });
});
