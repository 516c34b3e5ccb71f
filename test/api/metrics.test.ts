/**
 * GET /metrics and the HTTP, database and business metrics behind it, through app.inject().
 * Each app here is built with its own registry fed by the db client's query observer, as main.ts does.
 */
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import type { DbOperation } from '../../src/db/client.ts';
import { loadConfig } from '../../src/config.ts';
import { BusinessMetricsRefresher, countBusinessTotals } from '../../src/observability/business-metrics.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { createMetrics, type Metrics } from '../../src/observability/metrics.ts';
import { TEST_JWT_SECRET, bearer, json, registerAndLogin } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

interface MetricsApp {
  app: FastifyInstance;
  metrics: Metrics;
  db: TestDatabase;
  /** Queries the db client ran since the last reset, by operation. */
  queries: Record<DbOperation, number>;
  resetQueries(): void;
  close(): Promise<void>;
}

const zero = (): Record<DbOperation, number> => ({ select: 0, insert: 0, update: 0, delete: 0, other: 0 });

async function metricsApp(env: Record<string, string> = {}, extend?: (app: FastifyInstance) => void): Promise<MetricsApp> {
  const config = loadConfig({ ENVIRONMENT: 'test', LOG_LEVEL: 'silent', DATA_DIR: 'memory://', JWT_SECRET: TEST_JWT_SECRET, ...env });
  const metrics = createMetrics({ version: config.version, environment: config.environment, processMetrics: config.metrics.enabled });
  const state = { queries: zero() };
  const db = await createTestDatabase({
    onQuery: (operation, seconds, failed) => {
      state.queries[operation]++;
      if (config.metrics.enabled) metrics.observeQuery(operation, seconds, failed);
    },
  });
  const logger = createLogger({ ...config.log, destination: new PassThrough().resume() });
  const app = await buildApp(config, { logger, database: db.database, jwtSecret: TEST_JWT_SECRET, metrics });
  extend?.(app);
  await app.ready();
  return {
    app,
    metrics,
    db,
    get queries() {
      return state.queries;
    },
    resetQueries: () => {
      state.queries = zero();
    },
    close: async () => {
      await app.close();
      await db.close();
    },
  };
}

async function scrape(app: FastifyInstance, headers: Record<string, string> = {}): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers });
  expect(res.statusCode).toBe(200);
  return res.body;
}

/** The value of one sample line, e.g. sample(body, 'http_requests_total{method="GET",endpoint="/health",status="200"}'). */
function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Series of the app (process_* and nodejs_* follow the runtime, not requests). */
function appSeries(body: string): string[] {
  return body.split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith('process_') && !l.startsWith('nodejs_'));
}

describe('GET /metrics', () => {
  let t: MetricsApp;
  let release: () => void = () => {};
  let entered: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const reached = new Promise<void>((r) => (entered = r));
  beforeAll(async () => {
    t = await metricsApp({}, (app) => {
      // A route that waits until the test lets it finish, to see a request in progress.
      app.get('/test/slow', async () => {
        entered();
        await gate;
        return { ok: true };
      });
    });
  });
  afterAll(async () => t.close());

  it('answers in the Prometheus text format with every metric of the catalog, each with HELP and TYPE', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const types = Object.fromEntries([...res.body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    expect(types).toMatchObject({
      http_requests_total: 'counter',
      http_request_duration_seconds: 'histogram',
      http_requests_inprogress: 'gauge',
      http_request_size_bytes: 'histogram',
      http_response_size_bytes: 'histogram',
      db_query_duration_seconds: 'histogram',
      db_connection_pool_size: 'gauge',
      db_connection_pool_available: 'gauge',
      celery_tasks_total: 'counter',
      celery_task_duration_seconds: 'histogram',
      celery_tasks_inprogress: 'gauge',
      rate_limit_hits_total: 'counter',
      rate_limit_requests_total: 'counter',
      users_total: 'gauge',
      transactions_total: 'gauge',
      accounts_total: 'gauge',
      plaid_syncs_total: 'counter',
      budget_alerts_total: 'counter',
      app_info: 'gauge',
      nest_egg_dependency_up: 'gauge',
      process_cpu_seconds_total: 'counter',
      nodejs_eventloop_lag_seconds: 'gauge',
    });
    const helps = new Set([...res.body.matchAll(/^# HELP (\S+) \S/gm)].map((m) => m[1]));
    expect(Object.keys(types).filter((name) => !helps.has(name))).toEqual([]);
    expect(sample(res.body, `app_info{version="${t.app.config.version}",environment="test"}`)).toBe(1);
  });

  it('labels requests by route template, one fixed endpoint for unmatched paths and _OTHER for odd methods', async () => {
    const { token } = await registerAndLogin(t.app);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/budgets/${randomUUID()}`, headers: bearer(token) })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/budgets/${randomUUID()}`, headers: bearer(token) })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: '/no/such/thing' })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'PROPFIND', url: '/health' })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/dev/test-sentry', payload: {} })).statusCode).toBe(500);
    const body = await scrape(t.app);
    expect(sample(body, 'http_requests_total{method="GET",endpoint="/api/v1/budgets/:id",status="404"}')).toBe(2);
    expect(sample(body, 'http_requests_total{method="GET",endpoint="unmatched",status="404"}')).toBe(1);
    expect(sample(body, 'http_requests_total{method="_OTHER",endpoint="unmatched",status="404"}')).toBe(1);
    expect(sample(body, 'http_requests_total{method="POST",endpoint="/api/v1/dev/test-sentry",status="500"}')).toBe(1);
    expect(sample(body, 'http_request_duration_seconds_count{method="GET",endpoint="/api/v1/budgets/:id",status="404"}')).toBe(2);
    expect(body).not.toMatch(/endpoint="\/no\/such/);
    expect(body).not.toMatch(/endpoint="\/api\/v1\/budgets\/[0-9a-f]{8}-/);
  });

  it('does not count its own scrapes', async () => {
    for (let i = 0; i < 3; i++) await scrape(t.app);
    await t.app.inject({ method: 'GET', url: '/health' });
    const body = await scrape(t.app);
    expect(body).not.toContain('endpoint="/metrics"');
    // The scrape does count requests: the one before it is there.
    expect(sample(body, 'http_requests_total{method="GET",endpoint="/health",status="200"}')).toBeGreaterThanOrEqual(1);
  });

  it('records request and response body sizes', async () => {
    const series = (name: string, le?: string) =>
      `${name}{${le ? `le="${le}",` : ''}method="POST",endpoint="/api/v1/auth/login"}`;
    const read = async () => {
      const body = await scrape(t.app);
      return (name: string, le?: string) => sample(body, series(name, le)) ?? 0;
    };
    const before = await read();
    const payload = JSON.stringify({ email: 'nobody@example.com', password: 'not the right password' });
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload, headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(401);
    const after = await read();
    const delta = (name: string, le?: string) => after(name, le) - before(name, le);
    expect(delta('http_request_size_bytes_sum')).toBe(Buffer.byteLength(payload));
    expect(delta('http_response_size_bytes_sum')).toBe(Buffer.byteLength(res.body));
    expect(delta('http_request_size_bytes_count')).toBe(1);
    expect(delta('http_request_size_bytes_bucket', '64')).toBe(0);
    expect(delta('http_request_size_bytes_bucket', '256')).toBe(1);
  });

  it('shows a request in progress while it runs, and 0 once it has finished', async () => {
    const pending = t.app.inject({ method: 'GET', url: '/test/slow' });
    await reached;
    expect(sample(await scrape(t.app), 'http_requests_inprogress{method="GET",endpoint="/test/slow"}')).toBe(1);
    release();
    expect((await pending).statusCode).toBe(200);
    const body = await scrape(t.app);
    expect(sample(body, 'http_requests_inprogress{method="GET",endpoint="/test/slow"}')).toBe(0);
    expect(sample(body, 'http_requests_total{method="GET",endpoint="/test/slow",status="200"}')).toBe(1);
  });

  it('times database queries by operation and reads the pool at scrape time', async () => {
    await registerAndLogin(t.app);
    const body = await scrape(t.app);
    expect(sample(body, 'db_query_duration_seconds_count{operation="insert"}')).toBeGreaterThanOrEqual(1);
    expect(sample(body, 'db_query_duration_seconds_count{operation="select"}')).toBeGreaterThanOrEqual(1);
    expect(sample(body, 'db_query_duration_seconds_count{operation="delete"}')).toBe(0); // a closed label set, zero-initialised
    const pool = t.db.database.pool();
    expect(sample(body, 'db_connection_pool_size')).toBe(pool.size);
    expect(sample(body, 'db_connection_pool_available')).toBe(pool.available);
    expect(pool.size).toBeGreaterThanOrEqual(1);
  });

  it('starts the closed label sets at zero, so the guide’s queries answer before the first event', async () => {
    const body = await scrape(t.app);
    for (const priority of ['low', 'medium', 'high']) expect(sample(body, `budget_alerts_total{priority="${priority}"}`)).toBe(0);
    for (const status of ['success', 'failure']) expect(sample(body, `plaid_syncs_total{status="${status}"}`)).toBe(0);
  });

  it('counts a budget alert by priority where it is created', async () => {
    const { token } = await registerAndLogin(t.app);
    const account = await t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts',
      headers: bearer(token),
      payload: { name: 'Checking', type: 'checking', current_balance: '500.00' },
    });
    expect(account.statusCode).toBe(201);
    const spend = await t.app.inject({
      method: 'POST',
      url: '/api/v1/transactions',
      headers: bearer(token),
      payload: { account_id: json<{ id: string }>(account).id, date: new Date().toISOString().slice(0, 10), amount: '-90.00' },
    });
    expect(spend.statusCode).toBe(201);
    const budget = await t.app.inject({ method: 'POST', url: '/api/v1/budgets', headers: bearer(token), payload: { name: 'All', amount: '100.00' } });
    expect(budget.statusCode).toBe(201);
    const check = await t.app.inject({ method: 'POST', url: '/api/v1/budgets/check-alerts', headers: bearer(token) });
    expect(check.statusCode).toBe(200);
    expect(json<{ alerts: Array<{ priority: string }> }>(check).alerts.map((a) => a.priority)).toEqual(['medium']);
    // A second check finds the same alert already recorded: nothing new to count.
    await t.app.inject({ method: 'POST', url: '/api/v1/budgets/check-alerts', headers: bearer(token) });
    const body = await scrape(t.app);
    expect(sample(body, 'budget_alerts_total{priority="medium"}')).toBe(1);
    expect(sample(body, 'budget_alerts_total{priority="high"}')).toBe(0);
  });

  it('feeds the dependency-up gauge from the readiness checks', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/health' })).statusCode).toBe(200);
    expect(sample(await scrape(t.app), 'nest_egg_dependency_up{dependency="database"}')).toBe(1);
  });

  it('answers OpenMetrics when the scraper asks for it, without renaming the counters for later scrapes', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' },
    });
    expect(res.headers['content-type']).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(res.body).toContain('# TYPE http_requests counter\n');
    expect(res.body).toMatch(/^http_requests_total\{method="GET",endpoint="\/health"|^http_requests_total\{/m);
    expect(res.body.endsWith('# EOF\n')).toBe(true);
    const text = await scrape(t.app, { accept: 'text/plain;version=0.0.4' });
    expect(text).toContain('# TYPE http_requests_total counter\n');
    expect(text).toContain('# TYPE process_cpu_seconds_total counter\n');
    expect(text).not.toContain('# EOF');
  });
});

describe('scraping runs no database query', () => {
  let t: MetricsApp;
  beforeAll(async () => {
    t = await metricsApp();
  });
  afterAll(async () => t.close());

  it('runs no query (so no COUNT) during 20 scrapes, while a background refresh runs its counts', async () => {
    const { token } = await registerAndLogin(t.app);
    const refresher = new BusinessMetricsRefresher({ metrics: t.metrics, count: () => countBusinessTotals(t.db.database.db), intervalMs: 3_600_000 });
    t.resetQueries();
    await refresher.refresh();
    expect(t.queries.select).toBe(3);
    t.resetQueries();
    for (let i = 0; i < 20; i++) await scrape(t.app);
    expect(t.queries).toEqual(zero());
    // The gauges come from that background refresh.
    const body = await scrape(t.app);
    expect(sample(body, 'users_total')).toBe(1);
    expect(sample(body, 'accounts_total')).toBe(0);
    expect(sample(body, 'nest_egg_business_metrics_last_refresh_timestamp_seconds')).toBeGreaterThan(0);
    // Control: a request that does read the database is seen by the same counter.
    await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(token) });
    expect(t.queries.select).toBeGreaterThan(0);
  });
});

describe('cardinality', () => {
  let t: MetricsApp;
  beforeAll(async () => {
    // Rate limiting would turn some of these into 429s partway through; its own series are by policy.
    t = await metricsApp({ RATE_LIMIT_ENABLED: 'false' });
  });
  afterAll(async () => t.close());

  it('10,000 requests to random unknown paths and random ids add no series', { timeout: 180_000 }, async () => {
    const { token } = await registerAndLogin(t.app);
    const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'PROPFIND', 'MKCOL', 'PURGE'];
    const random = () => Math.random().toString(36).slice(2);
    const kinds = [
      (method: string) => ({ method, url: `/${random()}/${random()}?q=${random()}` }),
      (method: string) => ({ method, url: `/api/v1/${random()}` }),
      () => ({ method: 'GET', url: `/api/v1/budgets/${randomUUID()}`, headers: bearer(token) }),
      () => ({ method: 'GET', url: `/api/v1/transactions/${randomUUID()}`, headers: bearer(token) }),
      () => ({ method: 'GET', url: `/api/v1/accounts/${random()}`, headers: bearer(token) }),
      () => ({ method: 'DELETE', url: `/api/v1/budgets/${randomUUID()}` }),
    ] as const;
    const send = (i: number) => t.app.inject(kinds[i % kinds.length]!(methods[Math.floor(i / kinds.length) % methods.length]!) as never);
    // Every kind with every method once, so each series that can exist exists before counting.
    for (let i = 0; i < kinds.length * methods.length; i++) await send(i);
    const before = appSeries(await scrape(t.app));
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 100; batch++) {
      const responses = await Promise.all(Array.from({ length: 100 }, () => send(Math.floor(Math.random() * kinds.length * methods.length))));
      for (const res of responses) statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(10_000);
    const after = appSeries(await scrape(t.app));
    expect([...statuses.keys()].sort()).toEqual([401, 404, 422]);
    expect(after.length).toBe(before.length);
    expect(after.map((l) => l.slice(0, l.lastIndexOf(' ')))).toEqual(before.map((l) => l.slice(0, l.lastIndexOf(' '))));
    const unmatched = (body: string[]) => body.filter((l) => l.startsWith('http_requests_total{') && l.includes('endpoint="unmatched"'));
    expect(unmatched(after).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)).toBeGreaterThan(3_000);
  });
});

describe('switches', () => {
  let t: MetricsApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('METRICS_ENABLED=false removes /metrics and every hook', async () => {
    t = await metricsApp({ METRICS_ENABLED: 'false' });
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    await t.app.inject({ method: 'GET', url: '/health' });
    await registerAndLogin(t.app);
    const exposition = await t.metrics.render();
    expect(exposition).not.toMatch(/^http_requests_total/m);
    expect(exposition).not.toMatch(/^http_requests_inprogress/m);
    expect(exposition).not.toMatch(/^process_/m);
    expect(t.app.printRoutes()).not.toContain('metrics');
  });

  it('METRICS_TOKEN: 401 without a token or with a wrong one, 200 with the right one', async () => {
    const token = 'scrape-secret-0123456789';
    t = await metricsApp({ METRICS_TOKEN: token });
    const none = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(json(none)).toMatchObject({ status: 401, title: 'Unauthorized' });
    expect((await t.app.inject({ method: 'GET', url: '/metrics', headers: bearer('scrape-secret-0123456788') })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/metrics', headers: bearer(`${token}x`) })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Basic ${token}` } })).statusCode).toBe(401);
    const ok = await t.app.inject({ method: 'GET', url: '/metrics', headers: bearer(token) });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('# TYPE http_requests_total counter');
    // Refused scrapes are not counted as traffic either.
    expect(ok.body).not.toContain('endpoint="/metrics"');
  });
});
