/**
 * Rate limiting on a real Redis:
 *  - three real API processes (`nest-egg serve`) on one Redis and one Postgres: 300 concurrent
 *    requests from one client, spread over the three, against a route limited at 100 per minute;
 *  - a private redis-server killed in the middle of a load and started again.
 * Keys on the shared Redis use a unique prefix and are deleted afterwards.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type Database } from '../../src/db/client.ts';
import { createOrPromoteAdmin } from '../../src/modules/auth/admin.ts';
import { createLogger } from '../../src/observability/logging.ts';
import type { FallbackStore } from '../../src/ratelimit/fallback-store.ts';
import { RedisStore } from '../../src/ratelimit/redis-store.ts';
import type { RateLimitDashboard } from '../../src/ratelimit/store.ts';
import { TEST_JWT_SECRET, bearer } from '../helpers/app.ts';
import { createPostgresDatabase, createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { freePort } from '../helpers/prometheus.ts';
import { request, sleep, startServer, type HttpResult, type ServerProcess } from '../helpers/server.ts';
import { deletePrefix, keysWithPrefix } from '../helpers/redis.ts';
import { REDIS_TEST_URL, REQUIRE_SERVICES, servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('rate limiting on Redis', 'redis', 'postgres');

function redisServerBinary(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (REQUIRE_SERVICES) throw new Error('rate limiting on Redis: redis-server binary not available (REQUIRE_SERVICES=1)');
    console.warn('SKIPPED integration tests — Redis outage: the redis-server binary is not available');
    return false;
  }
}
const canRunPrivateRedis = ok && redisServerBinary();

/**
 * A free port in this suite's range (18500-18599), tried in random order so that two runs of the
 * suite on one machine do not reach for the same ports.
 */
const taken = new Set<number>();
async function portInRange(): Promise<number> {
  for (let i = 0; i < 300; i++) {
    const port = 18500 + Math.floor(Math.random() * 100);
    if (taken.has(port)) continue;
    taken.add(port);
    if (await freePort(port, port).then(() => true, () => false)) return port;
  }
  throw new Error('no free port in 18500-18599');
}

const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), timeoutMs: 30_000 });

const parse = <T>(r: HttpResult) => JSON.parse(r.body) as T;

function counterSum(exposition: string, name: string): number {
  return exposition
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.skipIf(!ok)('rate limits shared by three API processes on one Redis', () => {
  const prefix = `nest-egg-test:${randomBytes(6).toString('hex')}:`;
  const servers: ServerProcess[] = [];
  let pg: { url: string; drop: () => Promise<void> };
  let database: Database;
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    pg = await createPostgresDatabase();
    database = await openDatabase({ url: pg.url, dataDir: 'memory://', poolSize: 2 });
    await database.migrate();
    const env = {
      DATABASE_URL: pg.url,
      REDIS_URL: REDIS_TEST_URL,
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_KEY_PREFIX: prefix,
      // The route under test, limited at 100 per minute through configuration.
      RATE_LIMIT_POLICIES: 'transactions=100/60',
      // This test is about the shared count, so no decision may fall back to per-process memory:
      // a 300-request burst on a busy shared CI host can take a healthy Redis past the 50 ms default
      // (the fallback then works as designed, but the count is no longer the shared one). The
      // outage test below runs with the default budget.
      RATE_LIMIT_STORE_TIMEOUT_MS: '1000',
      METRICS_ENABLED: 'true',
      LOG_LEVEL: 'info',
      MIGRATE_ON_START: 'false',
    };
    const ports = [await portInRange(), await portInRange(), await portInRange()];
    servers.push(...(await Promise.all(ports.map((port) => startServer({ port, env })))));
    for (const s of servers) {
      await waitFor(`${s.url} ready`, async () => (await request(`${s.url}/api/v1/monitoring/health`)).status === 200);
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
  });

  it('lets exactly 100 of 300 concurrent requests through, and every replica’s dashboard shows it', async () => {
    const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const email = `rl-${randomBytes(4).toString('hex')}@example.com`;
    const password = 'correct horse battery staple';
    const reg = await postJson(`${a.url}/api/v1/auth/register`, { email, password, full_name: 'Rate Limited' });
    expect(reg.status).toBe(201);
    const userId = parse<{ id: string }>(reg).id;
    const login = await postJson(`${b.url}/api/v1/auth/login`, { email, password });
    expect(login.status).toBe(200);
    const token = parse<{ access_token: string }>(login).access_token;

    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) => request(`${servers[i % 3]!.url}/api/v1/transactions`, { headers: bearer(token), timeoutMs: 30_000 })),
    );
    const byStatus = answers.reduce<Record<number, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});
    expect(byStatus).toEqual({ 200: 100, 429: 200 });
    for (const r of answers.filter((x) => x.status === 429)) {
      const retryAfter = Number(r.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(r.headers['ratelimit-policy']).toBe('"transactions";q=100;w=60');
      expect(r.headers['ratelimit']).toMatch(/^"transactions";r=0;t=\d+$/);
    }

    const adminEmail = `admin-${randomBytes(4).toString('hex')}@example.com`;
    await createOrPromoteAdmin(database.db, adminEmail, 'admin password for tests');
    const adminLogin = await postJson(`${c.url}/api/v1/auth/login`, { email: adminEmail, password: 'admin password for tests' });
    const admin = parse<{ access_token: string }>(adminLogin).access_token;
    const dashboard = async (s: ServerProcess) => {
      const r = await request(`${s.url}/api/v1/monitoring/rate-limits`, { headers: bearer(admin) });
      expect(r.status).toBe(200);
      return parse<RateLimitDashboard>(r);
    };

    const first = await dashboard(a);
    // The hour's totals are the decisions of all three processes, as their own counters saw them.
    const expositions = await Promise.all(servers.map(async (s) => (await request(`${s.url}/metrics`)).body));
    expect(first.total_requests_last_hour).toBe(expositions.reduce((n, e) => n + counterSum(e, 'rate_limit_requests_total'), 0));
    expect(first.blocked_requests_last_hour).toBe(expositions.reduce((n, e) => n + counterSum(e, 'rate_limit_hits_total'), 0));
    expect(first.blocked_requests_last_hour).toBe(200);
    // Every decision was Redis's: no store errors, so nothing was decided per process.
    expect(expositions.reduce((n, e) => n + counterSum(e, 'rate_limit_store_errors_total'), 0)).toBe(0);

    const views = [first, await dashboard(b), await dashboard(c)];
    views.forEach((view, i) => {
      const window = view.current_active_limits.find((l) => l.client_id === `user:${userId}`);
      expect(window).toEqual({
        endpoint: '/api/v1/transactions',
        client_id: `user:${userId}`,
        requests: 300,
        limit: 100,
        window_seconds: 60,
        resets_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        blocked: true,
      });
      // Each dashboard request is itself a decision, counted before it reads.
      expect(view.total_requests_last_hour).toBe(first.total_requests_last_hour + i);
      expect(view.blocked_requests_last_hour).toBe(200);
      expect(view.top_clients[0]).toEqual({ client_id: `user:${userId}`, requests: 300 });
      expect(view.top_endpoints.filter((e) => e.endpoint.startsWith('/api/v1/transactions'))).toEqual([
        { endpoint: expect.stringMatching(/^\/api\/v1\/transactions\/?$/), requests: 300 },
      ]);
    });
    const resetsAt = Date.parse(views[0]!.current_active_limits.find((l) => l.client_id === `user:${userId}`)!.resets_at);
    expect(resetsAt).toBeGreaterThan(Date.now());
    expect(resetsAt).toBeLessThanOrEqual(Date.now() + 61_000);

    // Every key the limiter wrote expires on its own.
    const keys = await keysWithPrefix(redis, prefix);
    expect(keys.length).toBeGreaterThan(0);
    const ttls = await Promise.all(keys.map((k) => redis.pttl(k)));
    expect(keys.filter((_, i) => ttls[i]! <= 0)).toEqual([]);
  });
});

describe.skipIf(!ok)('the Redis store: one script per decision, bounded structures with TTLs', () => {
  const prefix = `nest-egg-test:${randomBytes(6).toString('hex')}:`;
  let redis: Redis;
  let store: RedisStore;
  const hit = (client: string, windowSeconds = 60) => ({
    windowId: `default:${client}`,
    policy: 'default',
    clientId: client,
    limit: 3,
    windowSeconds,
    windowEndpoint: '/api/v1',
    endpoint: '/api/v1/accounts',
  });

  beforeAll(async () => {
    redis = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    store = new RedisStore(redis, prefix);
  });
  afterAll(async () => {
    if (!redis) return;
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  it('counts every attempt and ends the window with its TTL', async () => {
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await store.hit(hit('short', 1)));
    expect(decisions.map((d) => [d.count, d.remaining, d.blocked])).toEqual([
      [1, 2, false], [2, 1, false], [3, 0, false], [4, 0, true], [5, 0, true],
    ]);
    expect(decisions[0]!.resetMs).toBeLessThanOrEqual(1_000);
    expect((await store.dashboard()).current_active_limits.map((l) => [l.client_id, l.requests, l.blocked])).toEqual([['short', 5, true]]);
    await sleep(1_100);
    expect(await redis.exists(`${prefix}w:default:short`)).toBe(0);
    expect((await store.dashboard()).current_active_limits).toEqual([]);
    expect((await store.hit(hit('short', 1))).count).toBe(1);
  });

  it('keeps the heavy hitters of a flood of one-off clients in a bounded per-minute set', async () => {
    const flood = Array.from({ length: 1_500 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
    for (let i = 0; i < flood.length; i += 100) await Promise.all(flood.slice(i, i + 100).map((c) => store.hit(hit(c))));
    for (let i = 0; i < 40; i++) await store.hit(hit('heavy'));
    const d = await store.dashboard();
    expect(d.top_clients[0]!.client_id).toBe('heavy');
    // Space-Saving over-estimates by at most the smallest count, never under-counts.
    expect(d.top_clients[0]!.requests).toBeGreaterThanOrEqual(40);
    expect(d.top_clients).toHaveLength(10);
    const minute = Math.floor(Date.now() / 60_000);
    const sizes = await Promise.all([minute - 1, minute].map((m) => redis.zcard(`${prefix}m:${m}:c`)));
    for (const size of sizes) expect(size).toBeLessThanOrEqual(1_000);
    // ... and the flood is in them: full to the cap, not empty.
    expect(Math.max(...sizes)).toBe(1_000);
    expect(d.current_active_limits.length).toBeLessThanOrEqual(100);
    expect(d.current_active_limits[0]).toMatchObject({ client_id: 'heavy', requests: 40, blocked: true });
  });
});

describe.skipIf(!canRunPrivateRedis)('a Redis outage in the middle of a load', () => {
  let redisServer: ChildProcess | undefined;
  let probe: Redis;
  let db: TestDatabase;
  const apps: FastifyInstance[] = [];
  const appPorts: number[] = [];
  let redisPort: number;
  let privateUrl: string;

  async function startRedis(): Promise<void> {
    redisServer = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
      stdio: 'ignore',
    });
    await waitFor('private redis-server', async () => (await probe.ping()) === 'PONG');
  }

  async function killRedis(): Promise<void> {
    const child = redisServer!;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    redisServer = undefined;
  }

  beforeAll(async () => {
    redisPort = await portInRange();
    privateUrl = `redis://127.0.0.1:${redisPort}`;
    probe = new Redis(privateUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    probe.on('error', () => {});
    await startRedis();
    db = await createTestDatabase();
    for (let i = 0; i < 2; i++) {
      const port = await portInRange();
      appPorts.push(port);
      const config = loadConfig({
        ENVIRONMENT: 'test',
        LOG_LEVEL: 'warn',
        LOG_FORMAT: 'json',
        DATA_DIR: 'memory://',
        JWT_SECRET: TEST_JWT_SECRET,
        REDIS_URL: privateUrl,
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_POLICIES: 'default=1000000/60,anonymous=5/60',
      });
      const logger = createLogger({ ...config.log, destination: new PassThrough().resume() });
      const app = await buildApp(config, { logger, database: db.database, jwtSecret: TEST_JWT_SECRET });
      await app.listen({ host: '127.0.0.1', port });
      apps.push(app);
    }
    for (const app of apps) await waitFor('app ready', async () => (await app.inject({ url: '/api/v1/monitoring/health' })).statusCode === 200);
  }, 60_000);

  afterAll(async () => {
    for (const app of apps) await app.close();
    await db?.close();
    if (redisServer) await killRedis();
    probe?.disconnect();
  });

  it('answers every request while Redis is down, counts store errors, reports redis down (degraded, still ready), and shares limits again once Redis is back', async () => {
    const [a, b] = apps as [FastifyInstance, FastifyInstance];
    const urls = appPorts.map((p) => `http://127.0.0.1:${p}`);
    const token = await a.tokens.issueAccess(crypto.randomUUID());
    const storeErrors = async (app: FastifyInstance) => counterSum((await app.inject({ url: '/metrics' })).body, 'rate_limit_store_errors_total');
    const errorsBefore = (await storeErrors(a)) + (await storeErrors(b));

    type Sample = { phase: string; status: number; ms: number; error?: string };
    const samples: Sample[] = [];
    let phase = 'up';
    let running = true;
    // How long each rate-limit decision took inside the apps (what the limiter adds to a request).
    const decisions: { phase: string; ms: number }[] = [];
    for (const app of apps) {
      const limiter = app.rateLimiter;
      const check = limiter.check.bind(limiter);
      limiter.check = async (req) => {
        const at = phase;
        const start = performance.now();
        try {
          return await check(req);
        } finally {
          decisions.push({ phase: at, ms: performance.now() - start });
        }
      };
    }
    const worker = async (w: number) => {
      for (let i = 0; running; i++) {
        const start = performance.now();
        const at = phase;
        try {
          const r = await request(`${urls[(w + i) % 2]}/api/v1/accounts`, { headers: bearer(token), timeoutMs: 10_000 });
          samples.push({ phase: at, status: r.status, ms: performance.now() - start });
        } catch (error) {
          samples.push({ phase: at, status: 0, ms: performance.now() - start, error: (error as Error).message });
        }
      }
    };
    const load = Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));

    await sleep(700);
    phase = 'down';
    await killRedis();
    await sleep(300);
    const readiness = await a.inject({ url: '/api/v1/monitoring/health' });
    // Degraded, still ready: the replicas keep serving on per-process limits instead of all leaving the load balancer.
    expect(readiness.statusCode).toBe(200);
    expect(JSON.parse(readiness.body)).toMatchObject({ status: 'degraded', redis: 'error', database: 'ok' });
    await sleep(1_200);

    phase = 'recovering';
    await startRedis();
    for (const app of apps) {
      await waitFor('readiness after Redis returns', async () => JSON.parse((await app.inject({ url: '/api/v1/monitoring/health' })).body).status === 'healthy');
      await waitFor('decisions back on Redis', async () => (app.rateLimiter.store as FallbackStore).currentMode() === 'shared');
    }
    phase = 'back';
    await sleep(500);
    running = false;
    await load;

    // Every request was answered, none by a 5xx.
    expect(samples.filter((s) => s.error)).toEqual([]);
    expect(samples.filter((s) => s.status >= 500)).toEqual([]);
    expect(new Set(samples.map((s) => s.status))).toEqual(new Set([200]));
    for (const p of ['up', 'down', 'back']) expect(samples.filter((s) => s.phase === p).length).toBeGreaterThan(0);
    const summary = (rows: { phase: string; ms: number }[]) =>
      Object.fromEntries(
        ['up', 'down', 'recovering', 'back'].map((p) => {
          const ms = rows.filter((s) => s.phase === p).map((s) => s.ms).sort((x, y) => x - y);
          const q = (f: number) => Math.round((ms[Math.min(ms.length - 1, Math.floor(f * ms.length))] ?? 0) * 100) / 100;
          return [p, { n: ms.length, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: Math.round((ms.at(-1) ?? 0) * 100) / 100 }];
        }),
      );
    console.log('rate-limit decision time by phase:', JSON.stringify(summary(decisions)));
    console.log('end-to-end request time by phase (16 clients, a new connection each):', JSON.stringify(summary(samples)));
    expect(decisions.filter((d) => d.phase === 'down').length).toBeGreaterThan(0);
    // Not a benchmark but the failure it guards against: a decision that waited on ioredis's
    // command timeout (1 s) or connect timeout (2 s) instead of falling back at once.
    expect(Math.max(...decisions.map((d) => d.ms))).toBeLessThan(1_000);

    // The store-error counter rose.
    expect((await storeErrors(a)) + (await storeErrors(b))).toBeGreaterThan(errorsBefore);
    for (const app of apps) {
      const lines = (await app.inject({ url: '/metrics' })).body.split('\n').filter((l) => l.startsWith('rate_limit_store_errors_total{'));
      console.log('store errors:', lines.join(', '));
    }

    // Shared limits again: the anonymous quota (5 per minute) holds across both apps, counted in Redis.
    const anonymous = [];
    for (let i = 0; i < 8; i++) anonymous.push((await request(`${urls[i % 2]}/api/v1/auth/me`)).status);
    expect(anonymous).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    expect(await probe.hget('nest-egg:rl:w:anonymous:127.0.0.1', 'n')).toBe('8');
  });
});
