/**
 * The operator console in server mode: two API replicas and a BullMQ worker (the composition
 * root's own worker, in this process) on one Postgres and one Redis.
 *  - a console session made on one replica is known to the other (sessions live in Redis, only as
 *    hashes of their tokens); signing out on one ends it on both;
 *  - a client blocked by the shared Redis limiter through one replica is unblocked from the
 *    console of the other;
 *  - a failed BullMQ job is retried (it runs again) and discarded (gone from Redis) from the
 *    console, and both are on the audit trail;
 *  - each replica names itself, and says it is in server mode.
 * Keys use a prefix of this run's own, deleted afterwards with the database.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { assemble, openCore, type Parts } from '../../src/composition.ts';
import { loadConfig } from '../../src/config.ts';
import type { BullmqRunner } from '../../src/jobs/bullmq-runner.ts';
import { createOrPromoteAdmin } from '../../src/modules/auth/admin.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { TEST_JWT_SECRET } from '../helpers/app.ts';
import { keysWithPrefix } from '../helpers/redis.ts';
import { startReplicaBackends, type ReplicaBackends } from '../helpers/replicas.ts';
import { CHILD_TOKEN_KEY } from '../helpers/server.ts';
import { servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('operator console in server mode', 'postgres', 'redis');

const ADMIN = { email: 'ops-server@example.com', password: 'console admin password' };

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(!ok)('the operator console in server mode', () => {
  let backends: ReplicaBackends;
  let replicas: FastifyInstance[] = [];
  let worker: Parts;
  let session: { cookie: string; csrf: string };

  const env = () => ({
    ENVIRONMENT: 'test',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    DATA_DIR: 'memory://',
    JWT_SECRET: TEST_JWT_SECRET,
    TOKEN_ENCRYPTION_KEY: CHILD_TOKEN_KEY,
    RATE_LIMIT_ENABLED: 'true',
    RATE_LIMIT_POLICIES: 'anonymous=2/60',
    JOB_ATTEMPTS: '1',
    OPS_SESSION_KEY_PREFIX: `${backends.prefix}:ops:`,
    ...backends.env(),
  });
  const logger = () => createLogger({ level: 'warn', format: 'json', destination: new PassThrough().resume() });

  const get = (app: FastifyInstance, url: string) => app.inject({ method: 'GET', url, headers: { cookie: session.cookie } });
  const post = (app: FastifyInstance, url: string, payload: unknown = {}): Promise<LightMyRequestResponse> =>
    app.inject({ method: 'POST', url, headers: { cookie: session.cookie, 'x-csrf-token': session.csrf, 'content-type': 'application/json' }, payload: JSON.stringify(payload) });

  beforeAll(async () => {
    backends = await startReplicaBackends('ops');
    for (let i = 0; i < 2; i++) {
      const app = await buildApp(loadConfig(env()), { logger: logger(), database: backends.database, jwtSecret: TEST_JWT_SECRET });
      await app.ready();
      replicas.push(app);
    }
    const config = loadConfig(env());
    worker = assemble(await openCore(config, 'worker', { logger: logger(), database: backends.database }), 'worker');
    await worker.jobs.runner.start();
    await createOrPromoteAdmin(backends.database.db, ADMIN.email, ADMIN.password);
  });

  afterAll(async () => {
    for (const app of replicas) await app.close();
    replicas = [];
    await worker?.close();
    await backends?.close();
  });

  it('a session made on one replica works on the other; Redis holds only its hash', async () => {
    const [a, b] = replicas as [FastifyInstance, FastifyInstance];
    const res = await a.inject({ method: 'POST', url: '/ops/api/session', headers: { 'content-type': 'application/json' }, payload: ADMIN });
    expect(res.statusCode).toBe(200);
    const setCookie = String(res.headers['set-cookie']);
    const token = /^__Secure-nest_egg_ops=([^;]+)/.exec(setCookie)![1]!;
    session = { cookie: setCookie.split(';')[0]!, csrf: res.json<{ csrf_token: string }>().csrf_token };
    const onB = await get(b, '/ops/api/session');
    expect(onB.json()).toMatchObject({ signed_in: true, user: { email: ADMIN.email }, mode: 'server', csrf_token: session.csrf });
    const keys = await keysWithPrefix(backends.redis, `${backends.prefix}:ops:`);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/:ops:session:[0-9a-f]{64}$/);
    expect(keys[0]).not.toContain(token);
    expect(await backends.redis.get(keys[0]!)).not.toContain(token);
    const ttl = await backends.redis.pttl(keys[0]!);
    expect(ttl).toBeGreaterThan(890_000);
    expect(ttl).toBeLessThanOrEqual(900_000);
    // Each replica says which process it is: the charts and recent lists are its own.
    for (const r of replicas) {
      const overview = (await get(r, '/ops/api/overview')).json<{ replica: { pid: number }; mode: string; redis: { connected: boolean }; queue: { backend: string } }>();
      expect(overview).toMatchObject({ replica: { pid: process.pid }, mode: 'server', redis: { connected: true }, queue: { backend: 'bullmq' } });
    }
  });

  it('unblocks, from one replica, a client blocked through the other (the shared Redis limiter)', async () => {
    const [a, b] = replicas as [FastifyInstance, FastifyInstance];
    const probe = (app: FastifyInstance) => app.inject({ method: 'GET', url: '/api/v1/categories', remoteAddress: '198.51.100.42' });
    expect((await probe(a)).statusCode).toBe(401);
    expect((await probe(a)).statusCode).toBe(401);
    expect((await probe(b)).statusCode).toBe(429);
    const limits = (await get(b, '/ops/api/rate-limits')).json<{ store: string; current_active_limits: { client_id: string; blocked: boolean }[] }>();
    expect(limits.store).toBe('redis');
    expect(limits.current_active_limits).toContainEqual(expect.objectContaining({ client_id: '198.51.100.42', blocked: true }));
    expect((await post(b, '/ops/api/rate-limits/reset', { client_id: '198.51.100.42' })).json()).toEqual({ reset: 1 });
    expect((await probe(a)).statusCode).toBe(401);
  });

  it('retries a failed BullMQ job (it runs again) and discards one (gone from Redis), audited', async () => {
    const [a, b] = replicas as [FastifyInstance, FastifyInstance];
    const queue = (a.jobs as BullmqRunner).queue;
    // Invalid job data: the task fails at once, and for good (a permanent error).
    const first = await a.jobs.enqueue('sync_transactions', { item_id: 'not-a-uuid' });
    const second = await a.jobs.enqueue('sync_transactions', { item_id: 'not-a-uuid' });
    await until('both jobs to fail', async () => (await queue.getFailedCount()) === 2);
    const view = (await get(b, '/ops/api/jobs')).json<{ backend: string; recent_failures: { id: string; failed_reason: string }[] }>();
    expect(view.backend).toBe('bullmq');
    expect(view.recent_failures.map((f) => f.id).sort()).toEqual([first.id, second.id].sort());
    expect(view.recent_failures[0]!.failed_reason).toMatch(/invalid job data/);

    const finishedBefore = (await Job.fromId(queue, first.id))!.finishedOn!;
    expect((await post(b, `/ops/api/jobs/${first.id}/retry`)).json()).toEqual({ id: first.id, state: 'waiting' });
    await until('the retried job to run and fail again', async () => {
      const job = await Job.fromId(queue, first.id);
      return (await job?.getState()) === 'failed' && job!.finishedOn! > finishedBefore;
    });
    expect((await Job.fromId(queue, first.id))!.attemptsMade).toBe(1);

    // Two operators on two replicas retry the same failed job at once: one retries it, the other is told it is no longer failed.
    await until('the retried job to be failed again, and idle', async () => (await (await Job.fromId(queue, first.id))?.getState()) === 'failed');
    // The queue paused, so the retried job waits instead of failing again at once.
    await queue.pause();
    const both = await Promise.all([post(a, `/ops/api/jobs/${first.id}/retry`), post(b, `/ops/api/jobs/${first.id}/retry`)]);
    expect(both.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    expect(await (await Job.fromId(queue, first.id))!.getState()).toBe('waiting');
    await queue.resume();

    expect((await post(a, `/ops/api/jobs/${second.id}/discard`)).json()).toEqual({ id: second.id, discarded: true });
    expect(await Job.fromId(queue, second.id)).toBeUndefined();
    expect((await post(a, `/ops/api/jobs/${second.id}/retry`)).statusCode).toBe(404);

    const audit = (await get(a, '/ops/api/audit?action=ops.job_retry')).json<{ items: { outcome: string; target_id: string }[] }>();
    expect(audit.items.map((i) => [i.outcome, i.target_id]).sort()).toEqual(
      [['failure', second.id], ['failure', first.id], ['success', first.id], ['success', first.id]].sort(),
    );
  });

  it('signing out on one replica ends the session on both', async () => {
    const [a, b] = replicas as [FastifyInstance, FastifyInstance];
    const out = await a.inject({ method: 'DELETE', url: '/ops/api/session', headers: { cookie: session.cookie, 'x-csrf-token': session.csrf } });
    expect(out.statusCode).toBe(204);
    expect((await get(b, '/ops/api/overview')).statusCode).toBe(401);
    expect(await keysWithPrefix(backends.redis, `${backends.prefix}:ops:`)).toEqual([]);
  });
});
