/**
 * The rate-limit plugin and the limiter behind it, on a bare Fastify instance with the memory
 * store: headers, the 429, metrics, the one warning per window, exempt routes, and what happens
 * when the store itself fails.
 */
import { PassThrough } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { afterEach, describe, expect, it } from 'vitest';
import { registerErrorHandlers } from '../../src/http/errors.ts';
import { createRateLimiter, RateLimiter } from '../../src/ratelimit/limiter.ts';
import { MemoryStore } from '../../src/ratelimit/memory-store.ts';
import rateLimitPlugin, { type RateLimitMetrics } from '../../src/ratelimit/plugin.ts';
import type { Policy, RateLimitOptions } from '../../src/ratelimit/policies.ts';
import type { RateLimitStore } from '../../src/ratelimit/store.ts';

const POLICIES: Policy[] = [
  { name: 'auth-login', endpoint: '/login', methods: ['POST'], routes: ['/login'], callers: 'any', key: 'ip', limit: 2, windowSeconds: 60, algorithm: 'fixed' },
  { name: 'transactions', endpoint: '/tx', routes: ['/tx/*'], callers: 'any', key: 'client', limit: 3, windowSeconds: 30, algorithm: 'fixed' },
  { name: 'default', endpoint: '/api', routes: ['/api/*'], callers: 'user', key: 'client', limit: 100, windowSeconds: 60, algorithm: 'fixed' },
];

const options = (over: Partial<RateLimitOptions> = {}): RateLimitOptions => ({
  enabled: true, policies: POLICIES, keyPrefix: 'test:', storeTimeoutMs: 100, storeCooldownMs: 1000, ...over,
});

function counters() {
  const calls = { requests: [] as string[], hits: [] as string[], limited: [] as string[] };
  const metrics: RateLimitMetrics = {
    requests: { inc: ({ endpoint }) => calls.requests.push(endpoint) },
    hits: { inc: ({ endpoint }) => calls.hits.push(endpoint) },
    limitedRoute: (endpoint) => calls.limited.push(endpoint),
  };
  return { calls, metrics };
}

/** Stands in for the auth plugin: `x-user` is the caller's user id. */
const fakeAuth = fp(
  async (app) => {
    app.decorateRequest('userId', null);
    app.addHook('onRequest', async (request) => {
      const user = request.headers['x-user'];
      (request as { userId: string | null }).userId = typeof user === 'string' ? user : null;
    });
  },
  { name: 'auth' },
);

let app: FastifyInstance | undefined;
afterEach(async () => app?.close());

async function build(config: RateLimitOptions, metrics?: RateLimitMetrics, decorate?: (app: FastifyInstance) => void) {
  const logs: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logs.push(...chunk.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)));
  app = Fastify({ logger: { level: 'debug', stream } });
  registerErrorHandlers(app);
  await app.register(fakeAuth);
  await app.register(rateLimitPlugin, {
    config,
    metrics,
    // The per-account sign-in throttle is not what these tests are about.
    loginThrottle: { enabled: false, failures: 5, baseMs: 30_000, maxMs: 900_000, memoryMs: 3_600_000 },
    accountKeySecret: 'ratelimit-plugin-test-secret-at-least-32-chars',
  });
  decorate?.(app);
  app.post('/login', async () => ({ ok: true }));
  app.get('/tx/:id', async () => ({ ok: true }));
  app.route({ method: ['GET', 'HEAD'], url: '/api/things', handler: async () => ({ ok: true }) });
  app.get('/health', async () => ({ ok: true }));
  app.get('/free', async () => ({ ok: true }));
  await app.ready();
  return { app, logs };
}

describe('rate-limit plugin', () => {
  it('sends the policy and remaining quota, then a 429 with Retry-After; counts every decision', async () => {
    const { calls, metrics } = counters();
    const { app, logs } = await build(options(), metrics);
    const statuses: number[] = [];
    const headers: (string | undefined)[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({ method: 'GET', url: '/tx/1' });
      statuses.push(res.statusCode);
      headers.push(res.headers['ratelimit'] as string | undefined);
      expect(res.headers['ratelimit-policy']).toBe('"transactions";q=3;w=30');
      if (i < 3) expect(res.headers['retry-after']).toBeUndefined();
      else {
        expect(res.headers['retry-after']).toBe('30');
        expect(res.json()).toMatchObject({
          status: 429,
          detail: 'Rate limit exceeded: 3 requests per 30 s (policy transactions); retry after 30 s',
        });
      }
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(headers).toEqual(['"transactions";r=2;t=30', '"transactions";r=1;t=30', '"transactions";r=0;t=30', '"transactions";r=0;t=30', '"transactions";r=0;t=30']);
    expect(calls.requests).toEqual(Array(5).fill('/tx/:id'));
    expect(calls.hits).toEqual(['/tx/:id', '/tx/:id']);
    // One warning for the window, then debug lines only.
    const exceeded = logs.filter((l) => l.msg === 'rate_limit_exceeded');
    expect(exceeded.map((l) => l.level)).toEqual([40, 20]);
    expect(exceeded[0]).toMatchObject({ logger: 'ratelimit', policy: 'transactions', client_id: '127.0.0.1', ip: '127.0.0.1', endpoint: '/tx/:id', limit: 3, window_seconds: 30 });
  });

  it('keys a user by id on client policies and by address on ip policies', async () => {
    const { app } = await build(options());
    for (let i = 0; i < 3; i++) expect((await app.inject({ method: 'GET', url: '/tx/1', headers: { 'x-user': 'u1' } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/tx/1', headers: { 'x-user': 'u1' } })).statusCode).toBe(429);
    expect((await app.inject({ method: 'GET', url: '/tx/1', headers: { 'x-user': 'u2' } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/tx/1' })).statusCode).toBe(200);
    // login counts the address, whoever holds the token
    await app.inject({ method: 'POST', url: '/login', headers: { 'x-user': 'a' } });
    await app.inject({ method: 'POST', url: '/login', headers: { 'x-user': 'b' } });
    const third = await app.inject({ method: 'POST', url: '/login', headers: { 'x-user': 'c' } });
    expect(third.statusCode).toBe(429);
    expect(third.headers['retry-after']).toBe('60');
    const dash = await app.rateLimiter.dashboard();
    expect(dash.current_active_limits.map((w) => w.client_id).sort()).toEqual(['127.0.0.1', '127.0.0.1', 'user:u1', 'user:u2']);
  });

  it('leaves exempt and unlimited routes alone, without headers', async () => {
    const { calls, metrics } = counters();
    const { app } = await build(options(), metrics);
    for (const url of ['/health', '/free']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(200);
      expect(res.headers['ratelimit']).toBeUndefined();
      expect(res.headers['ratelimit-policy']).toBeUndefined();
    }
    // /api/* is for users only: anonymous requests there match no policy
    expect((await app.inject({ method: 'GET', url: '/api/things' })).headers['ratelimit']).toBeUndefined();
    expect((await app.inject({ method: 'GET', url: '/api/things', headers: { 'x-user': 'u' } })).headers['ratelimit']).toBe('"default";r=99;t=60');
    expect(calls.requests).toEqual(['/api/things']);
  });

  it('announces each limited route to the metrics (Fastify adds a HEAD route of its own for a GET)', async () => {
    const { calls, metrics } = counters();
    await build(options(), metrics);
    expect(calls.limited).toEqual(['/login', '/tx/:id', '/tx/:id', '/api/things']);
  });

  it('when disabled: no hook, no headers, but the limiter is still decorated', async () => {
    const { calls, metrics } = counters();
    const { app } = await build(options({ enabled: false }), metrics);
    for (let i = 0; i < 5; i++) expect((await app.inject({ method: 'GET', url: '/tx/1' })).headers['ratelimit']).toBeUndefined();
    expect(app.rateLimiter).toBeInstanceOf(RateLimiter);
    expect(calls).toEqual({ requests: [], hits: [], limited: [] });
  });

  it('lets the request through, logging an error, when the store itself throws', async () => {
    const { app, logs } = await build(options(), undefined, (a) => {
      (a.rateLimiter as unknown as { store: RateLimitStore }).store.hit = async () => {
        throw new Error('store broken');
      };
    });
    const res = await app.inject({ method: 'GET', url: '/tx/1' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['ratelimit']).toBeUndefined();
    expect(logs.filter((l) => l.msg === 'rate_limit_check_failed')).toHaveLength(1);
    expect(logs.find((l) => l.msg === 'rate_limit_check_failed')).toMatchObject({ level: 50, error: expect.any(Object) });
  });

  it('Retry-After is at least one second when the window is about to end', async () => {
    const { app } = await build(options(), undefined, (a) => {
      const store = (a.rateLimiter as unknown as { store: RateLimitStore }).store;
      store.hit = async (h) => ({ count: h.limit + 1, limit: h.limit, remaining: 0, blocked: true, resetMs: 0 });
    });
    const res = await app.inject({ method: 'GET', url: '/tx/1' });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.headers['ratelimit']).toBe('"transactions";r=0;t=0');
    expect(res.json()).toMatchObject({ detail: 'Rate limit exceeded: 3 requests per 30 s (policy transactions); retry after 1 s' });
  });
});

describe('RateLimiter', () => {
  it('checks a request against its policy and reports each decision', async () => {
    const events: [string, boolean][] = [];
    const limiter = new RateLimiter(POLICIES, new MemoryStore(), { onDecision: (e, b) => events.push([e, b]) });
    const first = await limiter.check({ method: 'GET', route: '/tx/:id/', userId: 'u9', ip: '10.0.0.1' });
    expect(first).toMatchObject({ policy: { name: 'transactions' }, clientId: 'user:u9', endpoint: '/tx/:id', decision: { count: 1, limit: 3, remaining: 2, blocked: false } });
    expect(await limiter.check({ method: 'GET', route: '/free', userId: null, ip: '10.0.0.1' })).toBeNull();
    for (let i = 0; i < 3; i++) await limiter.check({ method: 'GET', route: '/tx/:id/', userId: 'u9', ip: '10.0.0.1' });
    expect(events).toEqual([['/tx/:id', false], ['/tx/:id', false], ['/tx/:id', false], ['/tx/:id', true]]);
    const dash = await limiter.dashboard();
    expect(dash.current_active_limits).toEqual([expect.objectContaining({ endpoint: '/tx', client_id: 'user:u9', requests: 4, limit: 3, window_seconds: 30, blocked: true })]);
  });

  it("reset: forgets a client's windows under every policy, or under those of one endpoint label", async () => {
    const limiter = new RateLimiter(POLICIES, new MemoryStore());
    const spend = async () => {
      for (let i = 0; i < 4; i++) await limiter.check({ method: 'GET', route: '/tx/:id', userId: null, ip: '10.0.0.2' });
      for (let i = 0; i < 3; i++) await limiter.check({ method: 'POST', route: '/login', userId: null, ip: '10.0.0.2' });
    };
    const blocked = async () => (await limiter.dashboard()).current_active_limits.filter((w) => w.blocked).map((w) => w.endpoint).sort();
    await spend();
    expect(await blocked()).toEqual(['/login', '/tx']);
    expect(await limiter.reset('10.0.0.2', '/tx')).toBe(1);
    expect(await blocked()).toEqual(['/login']);
    expect((await limiter.check({ method: 'GET', route: '/tx/:id', userId: null, ip: '10.0.0.2' }))!.decision.blocked).toBe(false);
    expect(await limiter.reset('10.0.0.2')).toBe(2);
    expect(await blocked()).toEqual([]);
    expect(await limiter.reset('10.0.0.2', '/nowhere')).toBe(0);
  });

  it('createRateLimiter uses the memory store without Redis', () => {
    const limiter = createRateLimiter(options(), undefined);
    expect(limiter.store).toBeInstanceOf(MemoryStore);
    expect(limiter.resolver.policies).toBe(POLICIES);
  });
});
