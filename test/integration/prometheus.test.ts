/**
 * The guide's metrics, end to end: the API on a real listening port, the real Prometheus binary
 * scraping it every second, real traffic, then every "Example PromQL Query" of the guide whose
 * metrics exist so far, run through Prometheus's HTTP API, must return data. Also promtool's lint
 * of a real scrape.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { BusinessMetricsRefresher, countBusinessTotals } from '../../src/observability/business-metrics.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { TEST_JWT_SECRET } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { freePort, promtoolCheckMetrics, startPrometheus, waitUntil, type RunningPrometheus, type Sample } from '../helpers/prometheus.ts';
import { deletePrefix } from '../helpers/redis.ts';
import { REDIS_TEST_URL, servicesAvailable } from '../helpers/services.ts';
import { startWorker, type WorkerProcess } from '../../src/worker.ts';

// Redis too: the worker (a scrape target here) runs its jobs from a BullMQ queue.
const ok = await servicesAvailable('prometheus integration', 'prometheus', 'redis');

const JOB = 'nestegg-api';
const WORKER_JOB = 'nestegg-worker';
const METRICS_TOKEN = 'metrics-scrape-token-for-tests';

/**
 * The guide's "Example PromQL Queries", verbatim, plus the corrected forms docs/MONITORING.md
 * recommends. Each must return a non-empty result. Later issues append theirs here (the worker
 * issue: the celery success-rate query; rate limiting: the blocked-ratio alert expression).
 */
export const GUIDE_QUERIES: Array<{ name: string; expr: string }> = [
  { name: 'Request rate (requests/second)', expr: 'rate(http_requests_total[5m])' },
  { name: '95th percentile latency', expr: 'histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))' },
  { name: 'Error rate', expr: 'rate(http_requests_total{status=~"5.."}[5m]) / rate(http_requests_total[5m])' },
  { name: 'Active users (last hour)', expr: 'increase(users_total[1h])' },
  {
    name: 'Database connection pool utilization',
    expr: '(db_connection_pool_size - db_connection_pool_available) / db_connection_pool_size',
  },
  // The guide's rate-limit alert ratio (without its `> 0.1` threshold).
  { name: 'Rate limit blocked ratio', expr: 'rate(rate_limit_hits_total[5m]) / rate(rate_limit_requests_total[5m])' },
  { name: 'Celery task success rate', expr: 'rate(celery_tasks_total{status="success"}[5m]) / rate(celery_tasks_total[5m])' },
  // The metric of the guide's CeleryTaskBacklog alert (`celery_tasks_inprogress > 100`).
  { name: 'Celery tasks in progress', expr: 'celery_tasks_inprogress' },

  // The forms docs/MONITORING.md recommends for dashboards (aggregated across endpoints and replicas).
  { name: 'p95 latency by endpoint', expr: 'histogram_quantile(0.95, sum by (le, endpoint) (rate(http_request_duration_seconds_bucket[5m])))' },
  { name: 'Error ratio (all endpoints)', expr: 'sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))' },
  { name: 'Users (across replicas)', expr: 'max(users_total)' },
  { name: 'New users in the last hour', expr: 'max(delta(users_total[1h]))' },
  { name: 'Budget alerts by priority', expr: 'sum by (priority) (increase(budget_alerts_total[5m]))' },
  { name: 'Database p95 query time', expr: 'histogram_quantile(0.95, sum by (le, operation) (rate(db_query_duration_seconds_bucket[5m])))' },
  { name: 'Task success ratio (all tasks)', expr: 'sum(rate(celery_tasks_total{status="success"}[5m])) / sum(rate(celery_tasks_total[5m]))' },
  { name: 'Task p95 duration by task', expr: 'histogram_quantile(0.95, sum by (le, task_name) (rate(celery_task_duration_seconds_bucket[5m])))' },
  { name: 'Queue backlog (waiting jobs)', expr: 'max(nest_egg_job_queue_jobs{state="waiting"})' },
];

describe.skipIf(!ok)('metrics scraped by a real Prometheus', () => {
  let app: FastifyInstance;
  let tokenApp: FastifyInstance;
  let db: TestDatabase;
  let prom: RunningPrometheus;
  let refresher: BusinessMetricsRefresher;
  let apiPort: number;
  let worker: WorkerProcess;
  const queuePrefix = `nest-egg-prom-test-${randomBytes(4).toString('hex')}`;

  const api = (method: string, path: string, opts: { token?: string; body?: unknown } = {}) =>
    fetch(`http://127.0.0.1:${apiPort}${path}`, {
      method,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });

  /** The samples of the main app (the token app is scraped too). */
  const mine = (samples: Sample[]) => samples.filter((s) => s.metric.job === JOB);
  const value = (samples: Sample[]) => mine(samples).reduce((sum, s) => sum + s.value, 0);
  let releaseHang: () => void = () => {};
  let enteredHang: () => void = () => {};
  const hangGate = new Promise<void>((r) => (releaseHang = r));
  const hangEntered = new Promise<void>((r) => (enteredHang = r));

  beforeAll(async () => {
    const env = { ENVIRONMENT: 'test', LOG_LEVEL: 'warn', LOG_FORMAT: 'json', DATA_DIR: 'memory://', JWT_SECRET: TEST_JWT_SECRET };
    // Rate limiting on, with a quota of 2 on token refresh (which nothing else here calls) to feed the
    // guide's blocked-ratio query without limiting the rest of the test's traffic.
    const config = loadConfig({ ...env, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_POLICIES: 'auth-refresh=2/60' });
    const metrics = createMetrics({ version: config.version, environment: config.environment });
    db = await createTestDatabase({ onQuery: metrics.observeQuery });
    const logger = createLogger({ ...config.log, destination: new PassThrough().resume() });
    app = await buildApp(config, { logger, database: db.database, jwtSecret: TEST_JWT_SECRET, metrics });
    // A route whose client gives up before it answers.
    app.get('/test/hang', async () => {
      enteredHang();
      await hangGate;
      return { ok: true };
    });
    refresher = new BusinessMetricsRefresher({
      metrics,
      count: () => countBusinessTotals(db.database.db),
      probe: () => app.health.readiness(),
      intervalMs: 1_000,
    });
    await refresher.start();
    apiPort = await freePort(18100, 18199);
    await app.listen({ host: '127.0.0.1', port: apiPort });
    // A second app (same database) whose /metrics needs METRICS_TOKEN, scraped with and without it.
    tokenApp = await buildApp(loadConfig({ ...env, METRICS_TOKEN }), { logger, database: db.database, jwtSecret: TEST_JWT_SECRET });
    const tokenPort = await freePort(apiPort + 1, 18199);
    await tokenApp.listen({ host: '127.0.0.1', port: tokenPort });
    // A worker on its own port, running a job every 500 ms, so the Celery series move between scrapes.
    const workerPort = await freePort(18600, 18699);
    worker = await startWorker(loadConfig({ ...env, REDIS_URL: REDIS_TEST_URL, JOB_QUEUE_PREFIX: queuePrefix, WORKER_PORT: String(workerPort) }), {
      logger,
      database: db.database,
      schedules: [{ id: 'prometheus-test-tick', task: 'cleanup_expired_refresh_tokens', everyMs: 500 }],
    });
    prom = await startPrometheus({
      targets: [
        { job: JOB, address: `127.0.0.1:${apiPort}` },
        { job: WORKER_JOB, address: `127.0.0.1:${workerPort}` },
        { job: 'nestegg-api-token', address: `127.0.0.1:${tokenPort}`, bearerToken: METRICS_TOKEN },
        { job: 'nestegg-api-wrong-token', address: `127.0.0.1:${tokenPort}`, bearerToken: `${METRICS_TOKEN}-wrong` },
      ],
      port: await freePort(19100, 19199),
    });
  });

  afterAll(async () => {
    await prom?.stop();
    await worker?.stop();
    if (worker) {
      const redis = new Redis(REDIS_TEST_URL, { maxRetriesPerRequest: 1 });
      await deletePrefix(redis, `${queuePrefix}:`);
      redis.disconnect();
    }
    await refresher?.stop();
    await tokenApp?.close();
    await app?.close();
    await db?.close();
  });

  it('drives 2xx, 4xx, 5xx, database writes and a budget alert, and answers every guide query', async () => {
    /** One round of traffic: a new user with an account, a transaction, a budget and its alert. */
    const round = async (n: number) => {
      // 2xx with database writes and reads.
      const email = `prom-${n}-${Date.now()}@example.com`;
      const password = 'correct horse battery staple';
      expect((await api('POST', '/api/v1/auth/register', { body: { email, password, full_name: 'Prom Etheus' } })).status).toBe(201);
      const login = await api('POST', '/api/v1/auth/login', { body: { email, password } });
      expect(login.status).toBe(200);
      const { access_token: token } = (await login.json()) as { access_token: string };
      const account = await api('POST', '/api/v1/accounts', { token, body: { name: 'Checking', type: 'checking', current_balance: '1000.00' } });
      expect(account.status).toBe(201);
      const { id: accountId } = (await account.json()) as { id: string };
      const today = new Date().toISOString().slice(0, 10);
      const spend = await api('POST', '/api/v1/transactions', {
        token,
        body: { account_id: accountId, date: today, amount: '-250.00', merchant_name: 'Grocer' },
      });
      expect(spend.status).toBe(201);
      expect((await api('POST', '/api/v1/budgets', { token, body: { name: 'Everything', amount: '100.00' } })).status).toBe(201);
      expect((await api('GET', '/api/v1/transactions', { token })).status).toBe(200);
      // A budget alert: 250.00 spent of 100.00 is a high-priority alert.
      const check = await api('POST', '/api/v1/budgets/check-alerts', { token });
      expect(check.status).toBe(200);
      expect(((await check.json()) as { alerts: Array<{ priority: string }> }).alerts.map((a) => a.priority)).toContain('high');
      // 4xx: unknown path, unknown id, no token.
      expect((await api('GET', '/no/such/path')).status).toBe(404);
      expect((await api('GET', `/api/v1/budgets/${crypto.randomUUID()}`, { token })).status).toBe(404);
      expect((await api('GET', '/api/v1/transactions')).status).toBe(401);
      // 5xx: the development error route.
      expect((await api('POST', '/api/v1/dev/test-sentry', { body: {} })).status).toBe(500);
      await refresher.refresh();
    };

    // The first round creates the series; the second, after a scrape has seen them, moves them,
    // so rate() is above zero and the quantiles are numbers rather than NaN.
    await round(1);
    await prom.waitForScrapes(JOB, 1, { since: Date.now() });
    await round(2);
    // 429: five token refreshes against a quota of two.
    const refreshes = [];
    for (let i = 0; i < 5; i++) refreshes.push((await api('POST', '/api/v1/auth/refresh', { body: { refresh_token: 'not-a-refresh-token' } })).status);
    expect(refreshes.map((s) => s === 429)).toEqual([false, false, true, true, true]);

    // Two scrapes after the traffic, so every series has two samples for rate().
    await prom.waitForScrapes(JOB, 2, { since: Date.now() });
    const targets = await prom.targets();
    expect(targets.find((t) => t.job === JOB)).toMatchObject({ health: 'up', lastError: '' });

    const empty: string[] = [];
    const noNumber: string[] = [];
    for (const q of GUIDE_QUERIES) {
      const result = await prom.query(q.expr);
      if (result.length === 0) empty.push(`${q.name}: ${q.expr}`);
      else if (!result.some((s) => Number.isFinite(s.value))) noNumber.push(`${q.name}: ${q.expr}`);
    }
    expect(empty).toEqual([]);
    expect(noNumber).toEqual([]);
    // The traffic shows up as movement, not just as series.
    expect(value(await prom.query('sum by (job) (rate(http_requests_total[5m]))'))).toBeGreaterThan(0);
    expect(value(await prom.query('sum by (job) (increase(budget_alerts_total{priority="high"}[5m]))'))).toBeGreaterThan(0);
    const p95 = mine(await prom.query('histogram_quantile(0.95, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))'));
    expect(p95).toHaveLength(1);
    expect(p95[0]!.value).toBeGreaterThan(0);
    expect(p95[0]!.value).toBeLessThanOrEqual(10);

    // And the data behind them is what the traffic did.
    expect(value(await prom.query('http_requests_total{endpoint="/api/v1/dev/test-sentry",status="500"}'))).toBe(2);
    expect(value(await prom.query('http_requests_total{endpoint="unmatched",status="404"}'))).toBe(2);
    expect(value(await prom.query('http_requests_total{endpoint="/api/v1/budgets/:id",status="404"}'))).toBe(2);
    expect(value(await prom.query('http_requests_total{endpoint="/metrics"}'))).toBe(0);
    expect(value(await prom.query('rate_limit_requests_total{endpoint="/api/v1/auth/refresh"}'))).toBe(5);
    expect(value(await prom.query('rate_limit_hits_total{endpoint="/api/v1/auth/refresh"}'))).toBe(3);
    expect(value(await prom.query('sum by (job) (rate_limit_hits_total)'))).toBe(3);
    expect(value(await prom.query('budget_alerts_total{priority="high"}'))).toBe(2);
    expect(value(await prom.query('users_total'))).toBe(2);
    expect(value(await prom.query('transactions_total'))).toBe(2);
    expect(value(await prom.query('accounts_total'))).toBe(2);
    expect(value(await prom.query('db_query_duration_seconds_count{operation="insert"}'))).toBeGreaterThanOrEqual(8);
    expect(value(await prom.query('db_connection_pool_size'))).toBe(db.database.pool().size);
    expect(mine(await prom.query('nest_egg_dependency_up{dependency="database"}'))).toMatchObject([{ value: 1 }]);
    expect(mine(await prom.query('app_info'))).toMatchObject([{ metric: { environment: 'test' }, value: 1 }]);
    expect(value(await prom.query('nest_egg_business_metrics_last_refresh_timestamp_seconds'))).toBeGreaterThan(0);
    expect(value(await prom.query('process_resident_memory_bytes'))).toBeGreaterThan(0);
    expect(mine(await prom.query('nodejs_eventloop_lag_p99_seconds')).length).toBe(1);
  });

  it('scrapes the worker too: the Celery series move and the backlog alert expression evaluates', async () => {
    expect((await prom.targets()).find((t) => t.job === WORKER_JOB)).toMatchObject({ health: 'up', lastError: '' });
    const ofWorker = (samples: Sample[]) => samples.filter((s) => s.metric.job === WORKER_JOB);
    // The guide's success rate: 1 for the task that ran (tasks that never ran divide 0 by 0).
    const success = ofWorker(await prom.query('rate(celery_tasks_total{status="success"}[5m]) / rate(celery_tasks_total[5m])'));
    expect(success.filter((s) => Number.isFinite(s.value))).toEqual([
      expect.objectContaining({ metric: expect.objectContaining({ task_name: 'cleanup_expired_refresh_tokens' }), value: 1 }),
    ]);
    expect(ofWorker(await prom.query('increase(celery_tasks_total{task_name="cleanup_expired_refresh_tokens",status="success"}[1m])'))[0]!.value).toBeGreaterThan(0);
    // Every task's series exists from the start (zero), so the alert's metric answers for each.
    expect(ofWorker(await prom.query('celery_tasks_inprogress')).map((s) => s.metric.task_name).sort()).toEqual([
      'check_budget_alerts',
      'cleanup_expired_refresh_tokens',
      'purge_audit_events',
      'sync_transactions',
    ]);
    // The guide's CeleryTaskBacklog expression evaluates (and, with no backlog, selects nothing).
    expect(await prom.query('celery_tasks_inprogress > 100')).toEqual([]);
    expect(ofWorker(await prom.query('nest_egg_job_queue_jobs{state="completed"}'))[0]!.value).toBeGreaterThan(0);
    // The worker's own Redis and database checks feed the RedisDown alert's gauge.
    expect(ofWorker(await prom.query('nest_egg_dependency_up{dependency="redis"}'))).toMatchObject([{ value: 1 }]);
  });

  it('scrapes with METRICS_TOKEN as a bearer token, and a wrong token is refused', async () => {
    const targets = await prom.targets();
    expect(targets.find((t) => t.job === 'nestegg-api-token')).toMatchObject({ health: 'up', lastError: '' });
    const wrong = targets.find((t) => t.job === 'nestegg-api-wrong-token');
    expect(wrong?.health).toBe('down');
    expect(wrong?.lastError).toContain('401');
    expect(await prom.query('up{job="nestegg-api-token"}')).toMatchObject([{ value: 1 }]);
    expect(await prom.query('up{job="nestegg-api-wrong-token"}')).toMatchObject([{ value: 0 }]);
  });

  it('a request whose client disconnects is recorded once as 499 and leaves http_requests_inprogress at 0', async () => {
    const read = async (series: string) => {
      const text = await app.metrics.render();
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.split(' ')[1]);
    };
    const inprogress = () => read('http_requests_inprogress{method="GET",endpoint="/test/hang"}');
    const controller = new AbortController();
    const request = fetch(`http://127.0.0.1:${apiPort}/test/hang`, { signal: controller.signal }).catch(() => 'aborted');
    await hangEntered;
    expect(await inprogress()).toBe(1);
    controller.abort();
    expect(await request).toBe('aborted');
    await waitUntil(async () => ((await inprogress()) === 0 ? true : undefined), 10_000, 'the in-progress gauge to drop');
    releaseHang();
    // The handler finishing into the closed socket must not decrement a second time.
    await new Promise((r) => setTimeout(r, 200));
    expect(await inprogress()).toBe(0);
    expect(await read('http_requests_total{method="GET",endpoint="/test/hang",status="499"}')).toBe(1);
    expect(await read('http_requests_total{method="GET",endpoint="/test/hang",status="200"}')).toBeUndefined();
  });

  it('promtool check metrics finds nothing on a real scrape but the guide’s three _total gauges and prom-client’s', async () => {
    const res = await fetch(`http://127.0.0.1:${apiPort}/metrics`);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const body = await res.text();
    expect(body).toContain('http_request_duration_seconds_bucket{le="0.005",method="POST"');
    expect(promtoolCheckMetrics(body).sort()).toEqual(
      [
        'accounts_total non-counter metrics should not have "_total" suffix',
        'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
        'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
        'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
        'transactions_total non-counter metrics should not have "_total" suffix',
        'users_total non-counter metrics should not have "_total" suffix',
      ].sort(),
    );
  });

  it('Prometheus negotiates OpenMetrics and the counters keep their names in both formats', async () => {
    const om = await fetch(`http://127.0.0.1:${apiPort}/metrics`, {
      headers: { accept: 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' },
    });
    expect(om.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const omBody = await om.text();
    expect(omBody).toContain('# TYPE http_requests counter\n');
    expect(omBody.endsWith('# EOF\n')).toBe(true);
    const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
    expect(text).toContain('# TYPE http_requests_total counter\n');
    // Prometheus stored the counter under its _total name from the OpenMetrics scrapes.
    expect((await prom.series('http_requests_total')).length).toBeGreaterThan(0);
    expect(await prom.series('http_requests')).toEqual([]);
  });
});
