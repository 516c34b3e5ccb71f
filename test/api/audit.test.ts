/**
 * The audit trail through the real app (PGlite, and Postgres in the api-postgres project): what the
 * sign-ins, the refresh-token reuse detection, logouts, deletions, bank requests and admin reads
 * record; GET /api/v1/monitoring/audit with its filters, cursor and errors; the hash chain as
 * Postgres writes it (concurrent appends included), verified, broken by an edit, and purged; and a
 * failed write that leaves the request answering as before.
 */
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrPromoteAdmin } from '../../src/modules/auth/admin.ts';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

interface AuditEventView {
  id: number;
  occurred_at: string;
  actor: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  trace_id: string | null;
  details: Record<string, unknown> | null;
  prev_hash: string;
  hash: string;
}
type Page = { items: AuditEventView[]; next_cursor: string | null };

const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0';
const rid = (label: string) => `${label}-${Math.random().toString(36).slice(2)}`;

async function counter(app: FastifyInstance, name: string): Promise<number> {
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : NaN;
}

describe('audit trail', () => {
  let t: TestApp;
  let adminToken: string;
  let adminId: string;

  const audit = async (query: Record<string, string> = {}, token = adminToken) => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/audit', query, headers: bearer(token) });
    return res;
  };
  const byRequest = async (requestId: string): Promise<AuditEventView[]> => {
    const res = await audit({ request_id: requestId });
    expect(res.statusCode, res.body).toBe(200);
    return json<Page>(res).items;
  };

  beforeAll(async () => {
    t = await createTestApp();
    const email = `admin-${Math.random().toString(36).slice(2)}@example.com`;
    const password = 'admin password for tests';
    adminId = (await createOrPromoteAdmin(t.db.database.db, email, password)).id;
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
    adminToken = json<{ access_token: string }>(res).access_token;
  });
  afterAll(async () => t?.close());

  it('records a sign-in with its actor, outcome, request id, masked address and agent family', async () => {
    const user = await registerAndLogin(t.app);
    const requestId = rid('login-ok');
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: user.email, password: user.password },
      headers: { 'x-request-id': requestId, 'user-agent': UA, traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-00` },
      remoteAddress: '198.51.100.23',
    });
    expect(res.statusCode).toBe(200);
    const [event, ...rest] = await byRequest(requestId);
    expect(rest).toEqual([]);
    // The trace is the caller's (traceparent), sampled or not: the same id as the request's log lines.
    expect(event).toMatchObject({
      actor: user.userId, action: 'auth.login', outcome: 'success', target_type: 'user', target_id: user.userId,
      request_id: requestId, ip: '198.51.100.0/24', user_agent: 'firefox', trace_id: 'ab'.repeat(16),
    });
    expect(Date.now() - Date.parse(event!.occurred_at)).toBeLessThan(60_000);
  });

  it('records failed sign-ins: a wrong password under the account, an unknown email as anonymous; emails masked', async () => {
    const user = await registerAndLogin(t.app);
    const wrong = rid('login-wrong');
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: user.email, password: 'not the password' }, headers: { 'x-request-id': wrong } });
    expect(res.statusCode).toBe(401);
    expect(await byRequest(wrong)).toEqual([
      expect.objectContaining({ actor: user.userId, action: 'auth.login', outcome: 'failure', target_id: user.userId, request_id: wrong, details: expect.objectContaining({ reason: 'wrong_password' }) }),
    ]);

    const unknown = rid('login-unknown');
    const email = 'nobody.here@example.com';
    const res2 = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'whatever password' }, headers: { 'x-request-id': unknown } });
    expect(res2.statusCode).toBe(401);
    const [event] = await byRequest(unknown);
    expect(event).toMatchObject({ actor: 'anonymous', outcome: 'failure', target_id: null, details: { reason: 'unknown_email', email: 'n***@example.com' } });
    expect((await audit()).body).not.toContain(email);
  });

  it('records refresh-token reuse with the family it revoked, and logout', async () => {
    const user = await registerAndLogin(t.app);
    const first = await t.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: user.refreshToken } });
    expect(first.statusCode).toBe(200);
    const reuse = rid('reuse');
    const again = await t.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: user.refreshToken }, headers: { 'x-request-id': reuse } });
    expect(again.statusCode).toBe(401);
    const [event] = await byRequest(reuse);
    expect(event).toMatchObject({
      actor: user.userId, action: 'auth.refresh_token_reuse', outcome: 'failure', target_type: 'refresh_token_family', request_id: reuse,
      details: { reason: 'reused', family_revoked: true },
    });
    const [family] = await t.db.database.db.execute<{ family_id: string }>(
      sql`select distinct family_id::text from refresh_tokens where user_id = ${user.userId}`,
    ).then((r) => (Array.isArray(r) ? r : (r as { rows: { family_id: string }[] }).rows));
    expect(event!.target_id).toBe(family!.family_id);

    const fresh = await registerAndLogin(t.app);
    const out = rid('logout');
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: { refresh_token: fresh.refreshToken }, headers: { 'x-request-id': out } })).statusCode).toBe(204);
    expect(await byRequest(out)).toEqual([expect.objectContaining({ actor: fresh.userId, action: 'auth.logout', outcome: 'success', target_type: 'refresh_token_family' })]);
  });

  it('records admin reads of the monitoring endpoints under the admin, and a non-admin’s attempt as denied', async () => {
    for (const url of ['/api/v1/monitoring/system-stats', '/api/v1/monitoring/rate-limits', '/api/v1/monitoring/jobs']) {
      const requestId = rid('admin-read');
      const res = await t.app.inject({ method: 'GET', url, headers: { ...bearer(adminToken), 'x-request-id': requestId } });
      expect(res.statusCode).toBe(200);
      expect(await byRequest(requestId)).toEqual([
        expect.objectContaining({ actor: adminId, action: 'monitoring.read', outcome: 'success', target_type: 'endpoint', target_id: url, request_id: requestId }),
      ]);
    }
    const user = await registerAndLogin(t.app);
    const denied = rid('denied');
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/system-stats', headers: { ...bearer(user.token), 'x-request-id': denied } })).statusCode).toBe(403);
    expect(await byRequest(denied)).toEqual([expect.objectContaining({ actor: user.userId, action: 'monitoring.read', outcome: 'denied', details: { method: 'GET', status: 403 } })]);
    // Anonymous calls identify nobody and are not recorded.
    const anonymous = rid('anon');
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/system-stats', headers: { 'x-request-id': anonymous } })).statusCode).toBe(401);
    expect(await byRequest(anonymous)).toEqual([]);
    // Reading the trail is on the trail.
    const read = rid('audit-read');
    await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/audit', headers: { ...bearer(adminToken), 'x-request-id': read } });
    expect(await byRequest(read)).toEqual([expect.objectContaining({ actor: adminId, target_id: '/api/v1/monitoring/audit', outcome: 'success' })]);
  });

  it('records deletions of accounts, transactions and budgets, and bank link and sync requests', async () => {
    const user = await registerAndLogin(t.app);
    const h = bearer(user.token);
    const account = json<{ id: string }>(await t.app.inject({ method: 'POST', url: '/api/v1/accounts', headers: h, payload: { name: 'Checking', type: 'checking' } }));
    const tx = json<{ id: string }>(
      await t.app.inject({ method: 'POST', url: '/api/v1/transactions', headers: h, payload: { account_id: account.id, date: '2026-01-02', amount: '-5.00' } }),
    );
    const budget = json<{ id: string }>(await t.app.inject({ method: 'POST', url: '/api/v1/budgets', headers: h, payload: { name: 'Food', amount: '100.00' } }));
    for (const [url, action, target, id] of [
      [`/api/v1/transactions/${tx.id}`, 'transaction.delete', 'transaction', tx.id],
      [`/api/v1/accounts/${account.id}`, 'account.delete', 'account', account.id],
      [`/api/v1/budgets/${budget.id}`, 'budget.delete', 'budget', budget.id],
    ] as const) {
      const requestId = rid('delete');
      expect((await t.app.inject({ method: 'DELETE', url, headers: { ...h, 'x-request-id': requestId } })).statusCode).toBe(204);
      expect(await byRequest(requestId)).toEqual([expect.objectContaining({ actor: user.userId, action, outcome: 'success', target_type: target, target_id: id })]);
    }
    // A delete that finds nothing (404) changes nothing and records nothing.
    const missing = rid('delete-missing');
    expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/budgets/${budget.id}`, headers: { ...h, 'x-request-id': missing } })).statusCode).toBe(404);
    expect(await byRequest(missing)).toEqual([]);

    const link = rid('link');
    const linked = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/exchange-token', headers: { ...h, 'x-request-id': link }, payload: { public_token: 'public-demo-audit' } });
    expect(linked.statusCode, linked.body).toBe(201);
    const itemId = json<{ item: { id: string } }>(linked).item.id;
    expect(await byRequest(link)).toEqual([expect.objectContaining({ actor: user.userId, action: 'bank.link', outcome: 'success', target_type: 'bank_item', target_id: itemId })]);
    const sync = rid('sync');
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/plaid/sync/${itemId}`, headers: { ...h, 'x-request-id': sync } })).statusCode).toBe(202);
    expect(await byRequest(sync)).toEqual([expect.objectContaining({ actor: user.userId, action: 'bank.sync_request', outcome: 'success', target_id: itemId })]);
  });

  it('filters by actor, action, outcome and time range, newest first, and pages with a cursor', async () => {
    const user = await registerAndLogin(t.app);
    for (let i = 0; i < 5; i++) {
      await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: user.email, password: i % 2 ? user.password : 'wrong password!' } });
    }
    const all = json<Page>(await audit({ actor: user.userId, action: 'auth.login' })).items;
    // registerAndLogin's own sign-in, then the five above.
    expect(all).toHaveLength(6);
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => b - a));
    expect(json<Page>(await audit({ actor: user.userId, outcome: 'failure' })).items).toHaveLength(3);

    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = json<Page>(await audit({ actor: user.userId, action: 'auth.login', limit: '4', ...(cursor ? { cursor } : {}) }));
      seen.push(...page.items.map((e) => e.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all.map((e) => e.id));

    const middle = all[2]!.occurred_at;
    const from = json<Page>(await audit({ actor: user.userId, from: middle })).items;
    expect(from.length).toBeGreaterThanOrEqual(3);
    expect(from.every((e) => e.occurred_at >= middle)).toBe(true);
    const to = json<Page>(await audit({ actor: user.userId, to: middle })).items;
    expect(to.length).toBeGreaterThanOrEqual(3);
    expect(to.every((e) => e.occurred_at <= middle)).toBe(true);
    expect(json<Page>(await audit({ actor: user.userId, from: '2000-01-01T00:00:00Z', to: '2000-01-02T00:00:00Z' })).items).toEqual([]);
  });

  it('answers bad filters with a 400 problem, a foreign cursor with 422, and non-admins with 401/403', async () => {
    const queries: Record<string, string>[] = [{ from: 'yesterday' }, { outcome: 'maybe' }, { limit: '0' }, { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }];
    for (const query of queries) {
      const res = await audit(query);
      expect(res.statusCode, JSON.stringify(query)).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(json<{ errors: { field: string }[] }>(res).errors[0]!.field).toMatch(/^query\./);
    }
    const bad = await audit({ cursor: 'bm90LWEtY3Vyc29y' });
    expect(bad.statusCode).toBe(422);
    expect(json<{ errors: { field: string }[] }>(bad).errors[0]!.field).toBe('query.cursor');
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/audit' })).statusCode).toBe(401);
    const user = await registerAndLogin(t.app);
    expect((await audit({}, user.token)).statusCode).toBe(403);
  });

  it('is described in the OpenAPI document with its filters', async () => {
    const doc = json<{ paths: Record<string, { get?: { parameters?: { name: string }[]; security?: unknown[] } }> }>(await t.app.inject({ method: 'GET', url: '/docs/json' }));
    const op = doc.paths['/api/v1/monitoring/audit']?.get;
    expect(op?.security).toEqual([{ bearer: [] }]);
    expect(op?.parameters?.map((p) => p.name).sort()).toEqual(['action', 'actor', 'cursor', 'from', 'limit', 'outcome', 'request_id', 'to']);
  });

  it('keeps one unbroken chain under concurrent appends; an edited row breaks it at that row', async () => {
    const before = await t.app.audit.verify();
    expect(before).toMatchObject({ ok: true });
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => t.app.audit.record({ actor: 'system', action: 'test.concurrent', outcome: 'success', details: { i } })),
    );
    expect(results.every(Boolean)).toBe(true);
    const after = await t.app.audit.verify();
    expect(after).toMatchObject({ ok: true });
    expect(after.checked).toBe(before.checked + 40);

    const ids = json<Page>(await audit({ action: 'test.concurrent', limit: '100' })).items.map((e) => e.id).sort((a, b) => a - b);
    expect(ids).toHaveLength(40);
    const victim = ids[17]!;
    await t.db.database.db.execute(sql`update audit_events set outcome = 'failure' where id = ${victim}`);
    expect(await t.app.audit.verify()).toEqual({ ok: false, checked: victim - 1, broken: { id: victim, reason: 'hash_mismatch' } });
    await t.db.database.db.execute(sql`update audit_events set outcome = 'success' where id = ${victim}`);
    expect(await t.app.audit.verify()).toMatchObject({ ok: true });
  });

  it('retention purges the oldest rows by the daily job; verify then starts from the anchor', async () => {
    const old = new Date(Date.now() - 401 * 86_400_000);
    // Rows that look 401 days old would sit at the end of the chain; purge them through the task on
    // a fresh app whose whole trail is old, so the purge takes a prefix as it does in production.
    const fresh = await createTestApp({ AUDIT_RETENTION_DAYS: '400' });
    try {
      for (let i = 0; i < 5; i++) await fresh.app.audit.record({ actor: 'system', action: 'test.old', outcome: 'success', occurredAt: old });
      await fresh.app.audit.record({ actor: 'system', action: 'test.recent', outcome: 'success' });
      const job = await fresh.app.jobs.enqueue('purge_audit_events', {});
      expect(job.id).toBeTruthy();
      const deadline = Date.now() + 10_000;
      let purge: AuditEventView | undefined;
      while (!purge && Date.now() < deadline) {
        const [row] = await fresh.db.database.db.execute<{ id: number }>(sql`select id from audit_events where action = 'audit.retention_purge'`).then((r) =>
          Array.isArray(r) ? r : (r as { rows: { id: number }[] }).rows,
        );
        if (row) purge = row as unknown as AuditEventView;
        else await new Promise((r) => setTimeout(r, 50));
      }
      expect(purge).toBeTruthy();
      const left = await fresh.db.database.db.execute<{ action: string }>(sql`select action from audit_events order by id`).then((r) =>
        (Array.isArray(r) ? r : (r as { rows: { action: string }[] }).rows).map((x) => x.action),
      );
      expect(left).toEqual(['test.recent', 'audit.retention_purge']);
      const verified = await fresh.app.audit.verify();
      expect(verified).toMatchObject({ ok: true, checked: 2, anchor: { id: 6 } });
    } finally {
      await fresh.close();
    }
  });

  it('a failed write is counted and logged, and the request answers as before', async () => {
    const user = await registerAndLogin(t.app);
    const failuresBefore = await counter(t.app, 'audit_write_failures_total');
    await t.db.database.db.execute(sql`alter table audit_events rename to audit_events_away`);
    try {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: user.email, password: user.password } });
      expect(res.statusCode).toBe(200);
      expect(json(res)).toMatchObject({ token_type: 'bearer' });
      const wrong = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: user.email, password: 'wrong password!' } });
      expect(wrong.statusCode).toBe(401);
    } finally {
      await t.db.database.db.execute(sql`alter table audit_events_away rename to audit_events`);
    }
    expect(await counter(t.app, 'audit_write_failures_total')).toBe(failuresBefore + 2);
    expect(t.logs().some((l) => l.includes('"event":"audit_write_failed"'))).toBe(true);
    // The failed appends rolled back with their statement: the chain is still whole.
    expect(await t.app.audit.verify()).toMatchObject({ ok: true });
  });
});
