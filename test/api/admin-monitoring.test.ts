import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createOrPromoteAdmin } from '../../src/modules/auth/admin.ts';
import { TEST_DB } from '../helpers/db.ts';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

const ENDPOINTS = ['/api/v1/monitoring/rate-limits', '/api/v1/monitoring/system-stats'];

async function adminToken(app: FastifyInstance, t: TestApp): Promise<string> {
  const email = `admin-${Math.random().toString(36).slice(2)}@example.com`;
  const password = 'admin password for tests';
  await createOrPromoteAdmin(t.db.database.db, email, password);
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
  expect(res.statusCode).toBe(200);
  return json<{ access_token: string }>(res).access_token;
}

/** Sum of a counter's series in this app's exposition. */
async function counterSum(app: FastifyInstance, name: string): Promise<number> {
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  return body
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('admin monitoring endpoints', () => {
  let t: TestApp;
  let admin: string;
  let user: { token: string; userId: string };

  beforeAll(async () => {
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_POLICIES: 'anonymous=5/60' });
    user = await registerAndLogin(t.app);
    admin = await adminToken(t.app, t);
  });
  afterAll(async () => t?.close());

  it.each(ENDPOINTS)('%s answers 401 without a valid token', async (url) => {
    for (const headers of [{}, bearer('not-a-token')]) {
      const res = await t.app.inject({ method: 'GET', url, headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
  });

  it.each(ENDPOINTS)('%s answers 403 for a user who is not a platform admin', async (url) => {
    const res = await t.app.inject({ method: 'GET', url, headers: bearer(user.token) });
    expect(res.statusCode).toBe(403);
    expect(json(res)).toMatchObject({ status: 403 });
  });

  it("shows live windows and the rolling hour in exactly the guide's shape", async () => {
    const ip = '192.168.1.100';
    for (let i = 0; i < 7; i++) await t.app.inject({ method: 'GET', url: '/api/v1/accounts', remoteAddress: ip });
    const before = Date.now();
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/rate-limits', headers: bearer(admin) });
    expect(res.statusCode).toBe(200);
    const body = json<{
      current_active_limits: Record<string, unknown>[];
      total_requests_last_hour: number;
      blocked_requests_last_hour: number;
      top_clients: { client_id: string; requests: number }[];
      top_endpoints: { endpoint: string; requests: number }[];
    }>(res);
    expect(Object.keys(body).sort()).toEqual(['blocked_requests_last_hour', 'current_active_limits', 'top_clients', 'top_endpoints', 'total_requests_last_hour']);

    const mine = body.current_active_limits.find((l) => l.client_id === ip)!;
    expect(mine).toEqual({ endpoint: '/api/v1', client_id: ip, requests: 7, limit: 5, window_seconds: 60, resets_at: expect.any(String), blocked: true });
    const resetsAt = Date.parse(mine.resets_at as string);
    expect(mine.resets_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(resetsAt).toBeGreaterThan(before);
    expect(resetsAt).toBeLessThanOrEqual(before + 61_000);
    // The admin's own window is there too, not blocked.
    const adminWindow = body.current_active_limits.find((l) => String(l.client_id).startsWith('user:'));
    expect(adminWindow).toMatchObject({ endpoint: '/api/v1', blocked: false });

    // The hour's totals are every decision this process made, as the counters saw them.
    expect(body.total_requests_last_hour).toBe(await counterSum(t.app, 'rate_limit_requests_total'));
    expect(body.blocked_requests_last_hour).toBe(await counterSum(t.app, 'rate_limit_hits_total'));
    expect(body.blocked_requests_last_hour).toBe(2);
    expect(body.top_clients).toContainEqual({ client_id: ip, requests: 7 });
    expect(body.top_clients.map((c) => c.requests)).toEqual([...body.top_clients.map((c) => c.requests)].sort((a, b) => b - a));
    expect(body.top_clients.length).toBeLessThanOrEqual(10);
    expect(body.top_endpoints).toContainEqual({ endpoint: '/api/v1/accounts', requests: 7 });
  });

  it('reports totals, the last 24 hours, the process, the database, Redis and the queue', async () => {
    const other = await registerAndLogin(t.app);
    const acct = await t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts',
      headers: bearer(other.token),
      payload: { name: 'Checking', type: 'checking', current_balance: '100.00' },
    });
    expect(acct.statusCode).toBe(201);
    for (const amount of ['-12.50', '40.00']) {
      const tx = await t.app.inject({
        method: 'POST',
        url: '/api/v1/transactions',
        headers: bearer(other.token),
        payload: { account_id: json<{ id: string }>(acct).id, date: '2024-02-17', amount },
      });
      expect(tx.statusCode).toBe(201);
    }
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/system-stats', headers: bearer(admin) });
    expect(res.statusCode).toBe(200);
    const s = json<Record<string, Record<string, unknown>>>(res);
    // Three users (user, admin, other), one account, two transactions: all created just now.
    expect(s.totals).toEqual({ users: 3, accounts: 1, transactions: 2 });
    expect(s.last_24_hours).toEqual({ new_users: 3, new_transactions: 2 });
    expect(Date.parse(String(s.timestamp))).toBeGreaterThan(Date.now() - 60_000);
    const p = s.process as Record<string, Record<string, number>>;
    expect(p.memory!.rss_bytes).toBeGreaterThan(0);
    expect(p.memory!.heap_used_bytes).toBeGreaterThan(0);
    expect(p.cpu!.user_seconds).toBeGreaterThan(0);
    expect(Number(p.uptime_seconds)).toBeGreaterThan(0);
    expect(p.event_loop_delay_ms).toEqual({ p50: expect.any(Number), p99: expect.any(Number), max: expect.any(Number), window_seconds: 60 });
    expect(p.event_loop_delay_ms!.p99).toBeGreaterThanOrEqual(p.event_loop_delay_ms!.p50!);
    expect(s.database).toMatchObject({ mode: TEST_DB, pool_size: expect.any(Number), pool_available: expect.any(Number) });
    expect(String(s.database!.server_version)).toMatch(/\d+\.\d+/);
    expect(s.redis).toEqual({ configured: false });
    // The job runner's snapshot when the app has one (the worker issue), null otherwise.
    if (t.app.hasDecorator('jobs')) expect(s.queue).toMatchObject({ backend: expect.any(String) });
    else expect(s.queue).toBeNull();
  });
});
