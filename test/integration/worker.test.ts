/**
 * Background jobs on real Redis and Postgres: the API (in-process, a BullMQ producer) and worker
 * processes (`node bin/nest-egg.js worker`), with the Plaid SDK talking to the local fake Plaid.
 *  - 200 sync jobs over 10 items: every job done once, no duplicate transaction, the database
 *    mirrors Plaid, and celery_tasks_total summed over the workers equals the jobs run;
 *  - schedules exist once however many workers start;
 *  - a task that always fails ends failed after three attempts: retry, retry, failure;
 *  - SIGTERM lets the running job finish; a worker killed with SIGKILL mid-job loses nothing:
 *    the job completes on the other worker.
 * Queue keys live under a unique prefix and are deleted afterwards; the database is dropped.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type Database } from '../../src/db/client.ts';
import { accounts, transactions } from '../../src/db/schema.ts';
import type { BullmqRunner } from '../../src/jobs/bullmq-runner.ts';
import { createOrPromoteAdmin } from '../../src/modules/auth/admin.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { TEST_JWT_SECRET, bearer } from '../helpers/app.ts';
import { createPostgresDatabase, createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { FAKE_PLAID_CLIENT_ID, FAKE_PLAID_SECRET, FakePlaid } from '../helpers/fake-plaid.ts';
import { request, sleep, spawnCli, type CliProcess } from '../helpers/server.ts';
import { deletePrefix } from '../helpers/redis.ts';
import { REDIS_TEST_URL, servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('background worker', 'redis', 'postgres');

const WORKER_PORTS = [18610, 18611, 18612];
const ITEMS = 10;
const JOBS = 200;

/** Sum of one series' samples in a Prometheus exposition. */
function sampleOf(exposition: string, series: string): number {
  const line = exposition.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.skipIf(!ok)('background worker on Redis and Postgres', () => {
  const prefix = `nest-egg-test-${randomBytes(4).toString('hex')}`;
  const queueName = `jobs-${randomBytes(3).toString('hex')}`;
  const encryptionKey = randomBytes(32).toString('base64');
  let fake: FakePlaid;
  let dbUrl: string;
  let dropDb: () => Promise<void>;
  let database: Database;
  let app: FastifyInstance;
  let redis: Redis;
  let token: string;
  let adminToken: string;
  const workers = new Map<number, CliProcess>();
  const items: { id: string; itemId: string }[] = [];

  const env = () => ({
    ENVIRONMENT: 'test',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    DATABASE_URL: dbUrl,
    REDIS_URL: REDIS_TEST_URL,
    JWT_SECRET: TEST_JWT_SECRET,
    RATE_LIMIT_ENABLED: 'false',
    JOB_QUEUE_PREFIX: prefix,
    JOB_QUEUE_NAME: queueName,
    JOB_BACKOFF_MS: '50',
    WORKER_CONCURRENCY: '4',
    WORKER_LOCK_DURATION_MS: '2000',
    WORKER_STALLED_INTERVAL_MS: '1000',
    PLAID_CLIENT_ID: FAKE_PLAID_CLIENT_ID,
    PLAID_SECRET: FAKE_PLAID_SECRET,
    PLAID_BASE_URL: fake.url,
    PLAID_SYNC_PAGE_SIZE: '25',
    TOKEN_ENCRYPTION_KEY: encryptionKey,
    SHUTDOWN_TIMEOUT_MS: '20000',
  });
  const queue = () => (app.jobs as BullmqRunner).queue;
  const api = (method: 'GET' | 'POST', url: string, opts: { token?: string; payload?: unknown } = {}) =>
    app.inject({ method, url, headers: opts.token ? bearer(opts.token) : {}, payload: opts.payload as never });

  async function startWorker(port: number): Promise<CliProcess> {
    const w = spawnCli(['worker'], { ...env(), WORKER_PORT: String(port) });
    workers.set(port, w);
    await w.waitForLog('worker_started', 30_000);
    return w;
  }
  const metricsOf = async (port: number) => (await request(`http://127.0.0.1:${port}/metrics`)).body;
  /** A series summed over the given workers' /metrics. */
  const total = async (ports: number[], series: string) => {
    let sum = 0;
    for (const p of ports) sum += sampleOf(await metricsOf(p), series);
    return sum;
  };
  const idle = () =>
    until('the queue to drain', async () => {
      const c = await queue().getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      const busy = (c.waiting ?? 0) + (c.active ?? 0) + (c.prioritized ?? 0);
      return busy === 0 && (await queue().getDelayedCount()) <= 3; // the 3 schedules' next runs
    });
  const rowsOf = (itemId: string) =>
    database.db
      .select({ externalId: transactions.externalId, amount: transactions.amount })
      .from(transactions)
      .innerJoin(accounts, eq(accounts.id, transactions.accountId))
      .where(eq(accounts.plaidItemId, itemId));

  beforeAll(async () => {
    fake = await FakePlaid.start();
    ({ url: dbUrl, drop: dropDb } = await createPostgresDatabase());
    database = await openDatabase({ url: dbUrl, dataDir: 'memory://', poolSize: 5 });
    await database.migrate();
    redis = new Redis(REDIS_TEST_URL, { maxRetriesPerRequest: 1 });
    const logger = createLogger({ level: 'warn', format: 'json', destination: new PassThrough() });
    app = await buildApp(loadConfig(env()), { logger, database, jwtSecret: TEST_JWT_SECRET });
    await app.ready();
    const email = `worker-${Date.now()}@example.com`;
    expect((await api('POST', '/api/v1/auth/register', { payload: { email, password: 'correct horse battery', full_name: 'W' } })).statusCode).toBe(201);
    token = (await api('POST', '/api/v1/auth/login', { payload: { email, password: 'correct horse battery' } })).json<{ access_token: string }>().access_token;
    await createOrPromoteAdmin(database.db, `admin-${email}`, 'admin password for tests');
    adminToken = (await api('POST', '/api/v1/auth/login', { payload: { email: `admin-${email}`, password: 'admin password for tests' } })).json<{ access_token: string }>().access_token;
    for (let i = 0; i < ITEMS; i++) {
      const res = await api('POST', '/api/v1/plaid/exchange-token', { token, payload: { public_token: fake.createPublicToken() } });
      expect(res.statusCode).toBe(201);
      const item = res.json<{ item: { id: string; item_id: string } }>().item;
      items.push({ id: item.id, itemId: item.item_id });
      const [chk, cc] = fake.accountsOf(item.item_id);
      fake.addTransactions(
        item.item_id,
        Array.from({ length: 60 }, (_, n) => ({
          account_id: (n % 2 ? chk : cc)!.account_id,
          amount: Math.round((5 + n * 1.37) * 100) / 100,
          date: `2025-0${1 + (n % 6)}-1${n % 10}`,
          name: `MERCHANT ${n}`,
        })),
      );
    }
    await startWorker(WORKER_PORTS[0]!);
    await startWorker(WORKER_PORTS[1]!);
  }, 120_000);

  afterAll(async () => {
    for (const w of workers.values()) await w.stop(5_000).catch(() => undefined);
    await app?.close();
    if (redis) {
      await deletePrefix(redis, `${prefix}:`);
      redis.disconnect();
    }
    await database?.close();
    await dropDb?.();
    await fake?.close();
  }, 60_000);

  it('workers answer /health (database and Redis) and the API is ready with the queue Redis', async () => {
    for (const port of WORKER_PORTS.slice(0, 2)) {
      const res = await request(`http://127.0.0.1:${port}/health`);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ status: 'healthy', role: 'worker', database: 'ok', redis: 'ok' });
      const exposition = await metricsOf(port);
      expect(sampleOf(exposition, 'nest_egg_dependency_up{dependency="redis"}')).toBe(1);
      expect(sampleOf(exposition, 'nest_egg_dependency_up{dependency="database"}')).toBe(1);
    }
    const ready = await api('GET', '/api/v1/monitoring/health');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ redis: 'ok', database: 'ok' });
  });

  it('runs 200 sync jobs once each over two workers: no duplicate, Plaid mirrored, celery_tasks_total = jobs run', async () => {
    // On a loaded machine: a CPU hog takes one of the cores for the whole test, so the workers' 2 s
    // locks must be renewed while they compete for CPU (bounded: it ends itself after 3 minutes).
    const hog = spawn(process.execPath, ['-e', 'const end = Date.now() + 180000; while (Date.now() < end);'], { stdio: 'ignore' });
    onTestFinished(() => {
      hog.kill('SIGKILL');
    });
    await idle(); // the first syncs queued by exchange-token
    const initial = await total(WORKER_PORTS.slice(0, 2), 'celery_tasks_total{task_name="sync_transactions",status="success"}');
    expect(initial).toBe(ITEMS);
    // Changes waiting in Plaid: modified, removed and added transactions.
    for (const { itemId } of items) {
      const live = fake.liveTransactions(itemId);
      fake.modifyTransaction(itemId, live[0]!.transaction_id, { amount: 99.99 });
      fake.removeTransaction(itemId, live[1]!.transaction_id);
      fake.addTransactions(itemId, [{ account_id: live[2]!.account_id, amount: 12.5, date: '2025-07-01', name: 'NEW' }]);
    }
    const jobs = await Promise.all(
      Array.from({ length: JOBS }, (_, n) => app.jobs.enqueue('sync_transactions', { item_id: items[n % ITEMS]!.id })),
    );
    expect(new Set(jobs.map((j) => j.id)).size).toBe(JOBS);
    await idle();

    for (const j of jobs) {
      const job = await queue().getJob(j.id);
      expect(await job!.getState()).toBe('completed');
      expect(job!.attemptsStarted).toBe(1); // taken once, never re-run
    }
    const byWorker = await Promise.all(
      WORKER_PORTS.slice(0, 2).map(async (p) => sampleOf(await metricsOf(p), 'celery_tasks_total{task_name="sync_transactions",status="success"}')),
    );
    expect(byWorker[0]! + byWorker[1]!).toBe(ITEMS + JOBS);
    expect(byWorker[0]).toBeGreaterThan(0);
    expect(byWorker[1]).toBeGreaterThan(0);
    for (const status of ['retry', 'failure']) {
      expect(await total(WORKER_PORTS.slice(0, 2), `celery_tasks_total{task_name="sync_transactions",status="${status}"}`)).toBe(0);
    }
    expect(await total(WORKER_PORTS.slice(0, 2), 'plaid_syncs_total{status="success"}')).toBe(ITEMS + JOBS);
    expect(await total(WORKER_PORTS.slice(0, 2), 'celery_tasks_inprogress{task_name="sync_transactions"}')).toBe(0);

    for (const { id, itemId } of items) {
      const rows = await rowsOf(id);
      const live = fake.liveTransactions(itemId);
      expect(live.length).toBeGreaterThan(0);
      expect(rows).toHaveLength(live.length);
      const expected = new Map(live.map((t) => [t.transaction_id, (-t.amount).toFixed(2)]));
      for (const r of rows) expect(r.amount).toBe(expected.get(r.externalId!));
    }
    const [dupes] = await database.db.execute<{ n: number }>(
      sql`select count(*)::int as n from (select account_id, external_id from transactions group by 1, 2 having count(*) > 1) d`,
    ).then((r) => (Array.isArray(r) ? r : (r as { rows: { n: number }[] }).rows));
    expect(dupes!.n).toBe(0);
  });

  it('keeps one record per schedule however many workers started, and shows the queue to admins', async () => {
    const schedulers = await queue().getJobSchedulers();
    expect(schedulers.map((s) => s.key).sort()).toEqual(['daily-audit-retention', 'daily-budget-alerts', 'daily-refresh-token-cleanup']);
    const res = await api('GET', '/api/v1/monitoring/jobs', { token: adminToken });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ backend: string; workers: number; counts: Record<string, number>; schedules: { id: string; every: string }[] }>();
    expect(body).toMatchObject({ backend: 'bullmq', queue: queueName, workers: 2 });
    expect(body.counts.completed).toBeGreaterThanOrEqual(ITEMS + JOBS);
    expect(body.schedules.map((s) => s.every).sort()).toEqual(['daily 03:30 UTC', 'daily 04:00 UTC', 'daily 06:00 UTC']);
  });

  it('a task that always fails ends failed after three attempts, counted retry, retry, failure', async () => {
    const { id, itemId } = items[0]!;
    fake.failNext(itemId, 'INTERNAL_SERVER_ERROR', 10);
    const ports = WORKER_PORTS.slice(0, 2);
    const series = (s: string) => `celery_tasks_total{task_name="sync_transactions",status="${s}"}`;
    const before = { retry: await total(ports, series('retry')), failure: await total(ports, series('failure')), syncFail: await total(ports, 'plaid_syncs_total{status="failure"}') };
    const job = await app.jobs.enqueue('sync_transactions', { item_id: id });
    const failed = await until('the job to fail', async () => {
      const j = await queue().getJob(job.id);
      return (await j?.getState()) === 'failed' ? j : undefined;
    });
    expect(failed!.attemptsMade).toBe(3);
    expect(failed!.failedReason).toContain('an unexpected error occurred');
    expect((await total(ports, series('retry'))) - before.retry).toBe(2);
    expect((await total(ports, series('failure'))) - before.failure).toBe(1);
    expect((await total(ports, 'plaid_syncs_total{status="failure"}')) - before.syncFail).toBe(3);
    const dash = (await api('GET', '/api/v1/monitoring/jobs', { token: adminToken })).json<{ recent_failures: { id: string; task_name: string; attempts_made: number }[]; counts: { failed: number } }>();
    expect(dash.counts.failed).toBe(1);
    expect(dash.recent_failures[0]).toMatchObject({ id: job.id, task_name: 'sync_transactions', attempts_made: 3 });
    const items_ = (await api('GET', '/api/v1/plaid/items', { token })).json<{ items: { id: string; status: string; last_error: string }[] }>().items;
    expect(items_.find((i) => i.id === id)).toMatchObject({ status: 'error', last_error: expect.stringMatching(/^INTERNAL_SERVER_ERROR: /) });
    fake.clearFailures(itemId);
  });

  it('SIGTERM lets the running job finish before the worker exits', async () => {
    const { id, itemId } = items[1]!;
    fake.delaySync(itemId, 1_500);
    const job = await app.jobs.enqueue('sync_transactions', { item_id: id });
    const running = await until('the job to start', async () => {
      const j = await queue().getJob(job.id);
      return j?.processedBy ? j : undefined;
    });
    const pid = Number(running.processedBy!.split(':').pop());
    const [port, worker] = [...workers.entries()].find(([, w]) => w.pid === pid)!;
    worker.signal('SIGTERM');
    const exit = await worker.exited;
    fake.delaySync(itemId, 0);
    expect(exit.code).toBe(0);
    const done = await queue().getJob(job.id);
    expect(await done!.getState()).toBe('completed');
    expect(done!.attemptsStarted).toBe(1);
    expect(worker.logs().some((l) => l.event === 'task_succeeded' && l.job_id === job.id)).toBe(true);
    workers.delete(port);
    // Back to two workers for the next test.
    await startWorker(WORKER_PORTS[2]!);
  });

  it('a worker killed with SIGKILL mid-job: the job completes on the other worker', async () => {
    const { id, itemId } = items[2]!;
    fake.delaySync(itemId, 5_000);
    const job = await app.jobs.enqueue('sync_transactions', { item_id: id });
    const running = await until('the job to start', async () => {
      const j = await queue().getJob(job.id);
      return j?.processedBy ? j : undefined;
    });
    const pid = Number(running.processedBy!.split(':').pop());
    const victim = [...workers.values()].find((w) => w.pid === pid)!;
    const survivor = [...workers.values()].find((w) => w.pid !== pid && w.running())!;
    victim.signal('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    fake.delaySync(itemId, 0);
    const done = await until('the job to complete elsewhere', async () => {
      const j = await queue().getJob(job.id);
      return (await j?.getState()) === 'completed' ? j : undefined;
    }, 30_000);
    expect(done!.processedBy).toBe(`${done!.processedBy!.split(':')[0]}:${survivor.pid}`);
    expect(done!.attemptsStarted).toBe(2);
    expect(done!.attemptsMade).toBeLessThanOrEqual(1);
    // The job's state is in Redis before the survivor's buffered log line reaches the pipe: wait for it.
    await until('the survivor to log the job', async () => survivor.logs().some((l) => l.event === 'task_succeeded' && l.job_id === job.id), 10_000);
    expect(survivor.logs().some((l) => l.event === 'task_succeeded' && l.job_id === job.id)).toBe(true);
    const rows = await rowsOf(id);
    expect(rows).toHaveLength(fake.liveTransactions(itemId).length);
  });
});

describe('the API when the queue’s Redis is down', () => {
  let fake: FakePlaid;
  let app: FastifyInstance;
  let db: TestDatabase;
  let token: string;

  beforeAll(async () => {
    fake = await FakePlaid.start();
    db = await createTestDatabase();
    const logger = createLogger({ level: 'silent', format: 'json', destination: new PassThrough() });
    const config = loadConfig({
      ENVIRONMENT: 'test',
      DATA_DIR: 'memory://',
      JWT_SECRET: TEST_JWT_SECRET,
      RATE_LIMIT_ENABLED: 'false',
      // Nothing listens here.
      REDIS_URL: 'redis://127.0.0.1:18699',
      PLAID_CLIENT_ID: FAKE_PLAID_CLIENT_ID,
      PLAID_SECRET: FAKE_PLAID_SECRET,
      PLAID_BASE_URL: fake.url,
    });
    app = await buildApp(config, { logger, database: db.database, jwtSecret: TEST_JWT_SECRET });
    await app.ready();
    const email = `down-${Date.now()}@example.com`;
    await app.inject({ method: 'POST', url: '/api/v1/auth/register', payload: { email, password: 'correct horse battery', full_name: 'D' } });
    token = (await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'correct horse battery' } })).json<{ access_token: string }>().access_token;
  });
  afterAll(async () => {
    await app?.close();
    await db?.close();
    await fake?.close();
  });

  it('links the bank anyway (the first sync is not queued), answers 503 for a sync, never hangs or 500s', async () => {
    const started = Date.now();
    const res = await app.inject({ method: 'POST', url: '/api/v1/plaid/exchange-token', headers: bearer(token), payload: { public_token: fake.createPublicToken() } });
    expect(res.statusCode).toBe(201);
    const { item, sync_job_id } = res.json<{ item: { id: string }; sync_job_id: string | null }>();
    expect(sync_job_id).toBeNull();
    const sync = await app.inject({ method: 'POST', url: `/api/v1/plaid/sync/${item.id}`, headers: bearer(token) });
    expect(sync.statusCode).toBe(503);
    expect(sync.headers['content-type']).toContain('application/problem+json');
    expect(Date.now() - started).toBeLessThan(15_000);
    const ready = await app.inject({ method: 'GET', url: '/api/v1/monitoring/health' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'degraded', redis: 'error', database: 'ok' });
  });
});
