/**
 * The per-account sign-in throttle across replicas (issue 16): three real API processes
 * (`nest-egg serve`) on one Postgres and one Redis, behind a "proxy" (TRUST_PROXY=true, so each
 * request's X-Forwarded-For is its client address). 40 failed sign-ins for one account from 40
 * addresses, spread over the replicas, get the account throttled on every replica; the right
 * password from a 41st address is refused while the lock lasts and admitted after it; another
 * account is unaffected; an unknown email is throttled the same way; Redis holds no email.
 * Short throttle settings come from the environment.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.ts';
import { createPostgresDatabase } from '../helpers/db.ts';
import { deletePrefix, keysWithPrefix } from '../helpers/redis.ts';
import { request, sleep, startServer, type HttpResult, type ServerProcess } from '../helpers/server.ts';
import { REDIS_TEST_URL, servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('login throttle across replicas', 'postgres', 'redis');

const FAILURES = 5;
const BASE_SECONDS = 3;
const MAX_SECONDS = 6;

const login = (server: ServerProcess, ip: string, email: string, password: string) =>
  request(`${server.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify({ email, password }),
    timeoutMs: 30_000,
  });

const problem = (r: HttpResult) => JSON.parse(r.body) as { status: number; title: string; detail: string; type: string };

function counter(exposition: string, name: string, labels: string): number {
  return exposition
    .split('\n')
    .filter((l) => l.startsWith(`${name}{${labels}}`))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe.skipIf(!ok)('per-account sign-in throttle on three replicas sharing Postgres and Redis', () => {
  const prefix = `nest-egg-test-throttle:${randomBytes(6).toString('hex')}:`;
  const servers: ServerProcess[] = [];
  let pg: { url: string; drop: () => Promise<void> };
  let database: Database;
  let redis: Redis;
  const victim = `victim-${randomBytes(4).toString('hex')}@example.com`;
  const bystander = `bystander-${randomBytes(4).toString('hex')}@example.com`;
  const password = 'correct horse battery staple';

  beforeAll(async () => {
    redis = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    pg = await createPostgresDatabase();
    database = await openDatabase({ url: pg.url, dataDir: 'memory://', poolSize: 2 });
    await database.migrate();
    const env = {
      DATABASE_URL: pg.url,
      REDIS_URL: REDIS_TEST_URL,
      TRUST_PROXY: 'true',
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_KEY_PREFIX: prefix,
      // A loaded 2-core CI host must not push decisions to per-process memory: this test is about the shared state.
      RATE_LIMIT_STORE_TIMEOUT_MS: '1000',
      LOGIN_THROTTLE_FAILURES: String(FAILURES),
      LOGIN_THROTTLE_BASE_SECONDS: String(BASE_SECONDS),
      LOGIN_THROTTLE_MAX_SECONDS: String(MAX_SECONDS),
      METRICS_ENABLED: 'true',
      MIGRATE_ON_START: 'false',
    };
    servers.push(...(await Promise.all([0, 1, 2].map(() => startServer({ env })))));
    for (const email of [victim, bystander]) {
      const reg = await request(`${servers[0]!.url}/api/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
      });
      expect(reg.status, reg.body).toBe(201);
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.cleanup()));
    await database?.close();
    await pg?.drop();
    if (redis) {
      await deletePrefix(redis, prefix);
      await redis.quit();
    }
  }, 60_000);

  it('40 failures from 40 addresses throttle the account on every replica; the owner gets in after the lock; others are unaffected', async () => {
    const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => login(servers[i % 3]!, `198.51.100.${i + 1}`, victim, `wrong password ${i}`)),
    );
    const statuses = results.map((r) => r.status);
    const refused = results.filter((r) => r.status === 429);
    const rejected = results.filter((r) => r.status === 401);
    expect(rejected.length + refused.length, statuses.join(',')).toBe(40);
    // Counted before the password check, atomically in Redis: exactly FAILURES get a password check
    // before the lock (a few more only if the burst outlasted a lock on a very slow host).
    expect(rejected.length, statuses.join(',')).toBeGreaterThanOrEqual(FAILURES);
    expect(rejected.length, statuses.join(',')).toBeLessThanOrEqual(FAILURES + 2);
    for (const r of refused) {
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(MAX_SECONDS);
      expect(problem(r)).toMatchObject({ status: 429 });
    }
    // Each replica refused some of them: the lock is shared.
    for (const [i, s] of servers.entries()) {
      expect(results.filter((r, j) => j % 3 === i && r.status === 429).length, s.url).toBeGreaterThan(0);
    }

    // While the lock lasts: every replica refuses the account, the right password from a 41st
    // address included, and lets another account in; an unknown email answers exactly as the victim.
    const [onA, onB, owner, other] = await Promise.all([
      login(a, '203.0.113.1', victim, 'still wrong'),
      login(b, '203.0.113.2', victim, 'still wrong'),
      login(c, '203.0.113.41', victim, password),
      login(a, '203.0.113.3', bystander, password),
    ]);
    for (const r of [onA, onB, owner]) expect(r.status, r.body).toBe(429);
    expect(other.status, other.body).toBe(200);
    for (const r of [onA, onB, owner]) expect(problem(r).detail).toMatch(/^Too many failed sign-in attempts for this account; retry after \d+ s$/);

    // After the lock: the owner's right password is admitted, and the streak is wiped.
    await sleep(Number(owner.headers['retry-after']) * 1000 + 250);
    const later = await login(b, '203.0.113.41', victim, password);
    expect(later.status, later.body).toBe(200);
    expect(JSON.parse(later.body)).toHaveProperty('access_token');
    const afterReset = await login(c, '203.0.113.42', victim, 'one wrong password');
    expect(afterReset.status, afterReset.body).toBe(401);

    // The signals: throttled attempts counted across the replicas, one security_event line per refusal.
    let throttled = 0;
    let locked = 0;
    for (const s of servers) {
      const metrics = (await request(`${s.url}/metrics`)).body;
      throttled += counter(metrics, 'auth_login_attempts_total', 'outcome="throttled"');
      locked += counter(metrics, 'auth_login_attempts_total', 'outcome="locked"');
    }
    expect(throttled).toBe(refused.length + 3);
    expect(locked).toBeGreaterThanOrEqual(1);
    const events = servers.flatMap((s) => s.logs().filter((l) => l.event === 'security_event'));
    expect(events.filter((l) => l.type === 'login_throttled')).toHaveLength(refused.length + 3);
    expect(events.filter((l) => l.type === 'account_locked').length).toBeGreaterThanOrEqual(1);
    for (const l of events) expect(JSON.stringify(l), 'no email in a security_event line').not.toMatch(/@|victim|bystander/);
  }, 120_000);

  it('an unknown email is throttled exactly like a known one', async () => {
    const ghost = `nobody-${randomBytes(4).toString('hex')}@example.com`;
    const statuses: number[] = [];
    for (let i = 0; i < FAILURES + 2; i++) statuses.push((await login(servers[i % 3]!, `192.0.2.${i + 1}`, ghost, 'guess')).status);
    expect(statuses).toEqual([...Array<number>(FAILURES).fill(401), 429, 429]);
    const r = await login(servers[0]!, '192.0.2.99', ghost, 'guess');
    expect(r.status).toBe(429);
    expect(problem(r).detail).toMatch(/^Too many failed sign-in attempts for this account; retry after \d+ s$/);
  }, 60_000);

  it('Redis holds keyed hashes of the accounts, never an email', async () => {
    const keys = await keysWithPrefix(redis, `${prefix}acct:`);
    expect(keys.length).toBeGreaterThanOrEqual(1);
    for (const key of keys) {
      expect(key).toMatch(new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}acct:[0-9a-f]{32}$`));
      expect(Object.keys(await redis.hgetall(key)).sort()).toEqual(['f', 'u']);
    }
    const everything = await keysWithPrefix(redis, prefix);
    for (const key of everything) expect(key).not.toMatch(/@|victim|bystander|nobody/);
  });
});
