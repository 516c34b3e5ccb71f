import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

/** Small quotas so the tests reach them quickly (through the same configuration an operator uses). */
const LIMITED = {
  RATE_LIMIT_ENABLED: 'true',
  RATE_LIMIT_POLICIES: 'anonymous=3/60,transactions=3/60,default=20/60',
};

const get = (app: FastifyInstance, url: string, headers: Record<string, string> = {}, remoteAddress?: string) =>
  app.inject({ method: 'GET', url, headers, ...(remoteAddress ? { remoteAddress } : {}) });

function rateLimitFields(res: LightMyRequestResponse) {
  const m = /^"([a-z-]+)";r=(\d+);t=(\d+)$/.exec(String(res.headers['ratelimit'] ?? ''));
  return m ? { policy: m[1], remaining: Number(m[2]), reset: Number(m[3]) } : null;
}

async function metricValue(app: FastifyInstance, name: string, endpoint: string): Promise<number> {
  const body = (await get(app, '/metrics')).body;
  const line = body.split('\n').find((l) => l.startsWith(`${name}{endpoint="${endpoint}"}`));
  return line ? Number(line.split(' ').pop()) : NaN;
}

describe('rate limiting', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(LIMITED);
  });
  afterAll(async () => t?.close());

  it('answers 429 problem+json with Retry-After once the quota is spent, with the draft headers on every limited response', async () => {
    const ip = '198.51.100.1';
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await get(t.app, '/api/v1/monitoring/rate-limits', {}, ip));
    // The anonymous policy counts the attempt before the route's own 401.
    expect(answers.map((r) => r.statusCode)).toEqual([401, 401, 401, 429, 429]);
    for (const r of answers) expect(r.headers['ratelimit-policy']).toBe('"anonymous";q=3;w=60');
    const fields = answers.map(rateLimitFields);
    expect(fields.map((f) => f?.remaining)).toEqual([2, 1, 0, 0, 0]);
    for (const f of fields) {
      expect(f?.policy).toBe('anonymous');
      expect(f!.reset).toBeGreaterThan(0);
      expect(f!.reset).toBeLessThanOrEqual(60);
    }
    const blocked = answers[3]!;
    expect(blocked.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(blocked.headers['retry-after'])).toBe(fields[3]!.reset);
    expect(json(blocked)).toMatchObject({ status: 429, title: 'Too Many Requests', request_id: blocked.headers['x-request-id'] });
    expect(answers[0]!.headers['retry-after']).toBeUndefined();
    // The guide's warning, once per window and client however many attempts are refused.
    const warnings = t
      .logs()
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.event === 'rate_limit_exceeded' && l.client_id === ip);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', logger: 'ratelimit', policy: 'anonymous', ip, endpoint: '/api/v1/monitoring/rate-limits', limit: 3 });
  });

  it('never limits liveness, readiness, metrics or the docs', async () => {
    const ip = '198.51.100.2';
    for (const url of ['/health', '/api/v1/monitoring/health', '/metrics', '/docs/json']) {
      for (let i = 0; i < 5; i++) {
        const res = await get(t.app, url, {}, ip);
        expect(res.statusCode).toBe(200);
        expect(res.headers['ratelimit']).toBeUndefined();
      }
    }
    // And they spent none of that client's quota.
    expect(rateLimitFields(await get(t.app, '/api/v1/nope', {}, ip))?.remaining).toBe(2);
  });

  it('limits unknown paths too, under the caller’s default policy', async () => {
    const ip = '198.51.100.3';
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await get(t.app, `/api/v1/random-${i}`, {}, ip)).statusCode);
    expect(codes).toEqual([404, 404, 404, 429]);
  });

  it('gives each signed-in user a quota of their own, per policy', async () => {
    const alice = await registerAndLogin(t.app);
    const bob = await registerAndLogin(t.app);
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await get(t.app, '/api/v1/transactions', bearer(alice.token))).statusCode);
    expect(codes).toEqual([200, 200, 200, 429]);
    const blocked = await get(t.app, '/api/v1/transactions', bearer(alice.token));
    expect(blocked.headers['ratelimit-policy']).toBe('"transactions";q=3;w=60');
    // Alice's other routes use the default policy; Bob's transactions are his own; same address for all.
    const other = await get(t.app, '/api/v1/accounts', bearer(alice.token));
    expect(other.statusCode).toBe(200);
    expect(other.headers['ratelimit-policy']).toBe('"default";q=20;w=60');
    expect((await get(t.app, '/api/v1/transactions', bearer(bob.token))).statusCode).toBe(200);
  });

  it('counts every decision and every block in the rate-limit metrics', async () => {
    const before = { requests: await metricValue(t.app, 'rate_limit_requests_total', '/api/v1/auth/me'), hits: await metricValue(t.app, 'rate_limit_hits_total', '/api/v1/auth/me') };
    // The series start at zero for every limited route, so these are numbers before any traffic.
    expect(Number.isFinite(before.requests) && Number.isFinite(before.hits)).toBe(true);
    const ip = '198.51.100.4';
    for (let i = 0; i < 5; i++) await get(t.app, '/api/v1/auth/me', {}, ip);
    expect(await metricValue(t.app, 'rate_limit_requests_total', '/api/v1/auth/me')).toBe(before.requests + 5);
    expect(await metricValue(t.app, 'rate_limit_hits_total', '/api/v1/auth/me')).toBe(before.hits + 2);
  });

  it('labels a trailing-slash request with the route template of the HTTP metrics, so no series is left unused', async () => {
    const body = (await get(t.app, '/metrics')).body;
    expect(body).not.toMatch(/^rate_limit_requests_total\{endpoint="[^"]+\/"\}/m);
    const before = await metricValue(t.app, 'rate_limit_requests_total', '/api/v1/accounts');
    expect(Number.isFinite(before)).toBe(true);
    await get(t.app, '/api/v1/accounts/', {}, '198.51.100.9');
    expect(await metricValue(t.app, 'rate_limit_requests_total', '/api/v1/accounts')).toBe(before + 1);
  });

  it('ignores an invented X-Forwarded-For without TRUST_PROXY: rotating it does not escape the limit', async () => {
    const codes = [];
    for (let i = 0; i < 6; i++) {
      codes.push((await get(t.app, '/api/v1/auth/me', { 'x-forwarded-for': `203.0.113.${i}` }, '198.51.100.5')).statusCode);
    }
    expect(codes).toEqual([401, 401, 401, 429, 429, 429]);
  });
});

describe('rate limiting behind a trusted proxy (TRUST_PROXY=true)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ ...LIMITED, TRUST_PROXY: 'true' });
  });
  afterAll(async () => t?.close());

  it('treats different X-Forwarded-For addresses as different clients', async () => {
    const proxy = '10.0.0.1';
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await get(t.app, '/api/v1/auth/me', { 'x-forwarded-for': `203.0.113.${i}` }, proxy)).statusCode);
    expect(codes).toEqual([401, 401, 401, 401, 401, 401]);
    // One forwarded address is still one client.
    const same = [];
    for (let i = 0; i < 4; i++) same.push((await get(t.app, '/api/v1/auth/me', { 'x-forwarded-for': '203.0.113.200' }, proxy)).statusCode);
    expect(same).toEqual([401, 401, 401, 429]);
  });
});

describe('RATE_LIMIT_ENABLED=false', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ ...LIMITED, RATE_LIMIT_ENABLED: 'false' });
  });
  afterAll(async () => t?.close());

  it('switches limiting off: no headers and no 429', async () => {
    for (let i = 0; i < 10; i++) {
      const res = await get(t.app, '/api/v1/auth/me', {}, '198.51.100.9');
      expect(res.statusCode).toBe(401);
      expect(res.headers['ratelimit']).toBeUndefined();
      expect(res.headers['ratelimit-policy']).toBeUndefined();
    }
  });
});
