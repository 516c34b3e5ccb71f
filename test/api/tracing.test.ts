/**
 * W3C Trace Context through the real app (issue 14): an incoming traceparent is continued in the
 * log lines, the problem body, the audit row and the jobs the request queued; a malformed one
 * starts a new trace; sampled requests leave a trace_id exemplar in the OpenMetrics exposition.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import type { InlineRunner } from '../../src/jobs/inline-runner.ts';
import { OPENMETRICS_CONTENT_TYPE } from '../../src/observability/metrics.ts';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

type Line = Record<string, unknown>;
const parsed = (t: TestApp): Line[] => t.logs().map((l) => JSON.parse(l) as Line);
const completed = (t: TestApp, requestId: string) => parsed(t).find((l) => l.event === 'request_completed' && l.request_id === requestId);
const drain = (app: FastifyInstance) => (app.jobs as InlineRunner).drain();

describe('trace context (sampler always_on)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ OTEL_TRACES_SAMPLER: 'always_on' });
  });
  afterAll(async () => t?.close());

  it('continues an incoming traceparent: same trace id in the problem body and every line of the request', async () => {
    const requestId = 'trace-continued-1';
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { traceparent: `00-${TRACE}-${PARENT}-01`, 'x-request-id': requestId },
      payload: { email: 'nobody-here@example.com', password: 'wrong password entirely' },
    });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(json(res)).toMatchObject({ status: 401, request_id: requestId, trace_id: TRACE });

    const done = completed(t, requestId);
    expect(done).toMatchObject({ trace_id: TRACE, status: 401 });
    expect(done!.span_id).toMatch(HEX16);
    expect(done!.span_id).not.toBe(PARENT);
    // The warning logged while handling it carries the same ids.
    const failed = parsed(t).filter((l) => l.event === 'user_login_failed' && l.request_id === requestId);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ trace_id: TRACE, span_id: done!.span_id });
  });

  it('a malformed traceparent starts a new trace without an error', async () => {
    for (const traceparent of ['00-not-a-trace-01', `00-${'0'.repeat(32)}-${PARENT}-01`, `zz-${TRACE}-${PARENT}-01`]) {
      const requestId = `trace-malformed-${Math.random().toString(36).slice(2)}`;
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/no-such-route', headers: { traceparent, 'x-request-id': requestId } });
      expect(res.statusCode).toBe(404);
      const body = json<{ trace_id: string }>(res);
      expect(body.trace_id).toMatch(HEX32);
      expect(body.trace_id).not.toBe(TRACE);
      expect(completed(t, requestId)).toMatchObject({ trace_id: body.trace_id, status: 404 });
    }
    const ok = await t.app.inject({ method: 'GET', url: '/health', headers: { traceparent: 'garbage' } });
    expect(ok.statusCode).toBe(200);
  });

  it('two requests without a traceparent are in two different traces', async () => {
    const a = json<{ trace_id: string }>(await t.app.inject({ method: 'GET', url: '/api/v1/nope-a' }));
    const b = json<{ trace_id: string }>(await t.app.inject({ method: 'GET', url: '/api/v1/nope-b' }));
    expect(a.trace_id).toMatch(HEX32);
    expect(b.trace_id).toMatch(HEX32);
    expect(a.trace_id).not.toBe(b.trace_id);
  });

  it('the jobs a request queues run in its trace: the sync and the alert check after it, with their audit rows', async () => {
    const user = await registerAndLogin(t.app);
    const requestId = 'trace-exchange-1';
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/plaid/exchange-token',
      headers: { ...bearer(user.token), traceparent: `00-${TRACE}-${PARENT}-01`, 'x-request-id': requestId },
      payload: { public_token: 'public-demo-trace' },
    });
    expect(res.statusCode).toBe(201);
    await drain(t.app);
    const spanOfRequest = completed(t, requestId)!.span_id;
    const lines = parsed(t);
    const sync = lines.filter((l) => l.event === 'task_succeeded' && l.task_name === 'sync_transactions' && l.trace_id === TRACE);
    const alerts = lines.filter((l) => l.event === 'task_succeeded' && l.task_name === 'check_budget_alerts' && l.trace_id === TRACE);
    expect(sync).toHaveLength(1);
    expect(alerts).toHaveLength(1);
    // Each attempt is a span of its own.
    expect(sync[0]!.span_id).toMatch(HEX16);
    expect(sync[0]!.span_id).not.toBe(spanOfRequest);
    expect(alerts[0]!.span_id).not.toBe(sync[0]!.span_id);
    // The audit row of the link names the trace.
    const rows = await t.db.database.db.execute<{ trace_id: string | null }>(sql`select trace_id from audit_events where request_id = ${requestId}`);
    const traceIds = ((rows as unknown as { rows?: { trace_id: string | null }[] }).rows ?? (rows as unknown as { trace_id: string | null }[])).map((r) => r.trace_id);
    expect(traceIds.length).toBeGreaterThan(0);
    expect(new Set(traceIds)).toEqual(new Set([TRACE]));
  });

  it('a sampled request leaves a trace_id exemplar in the OpenMetrics exposition only', async () => {
    const requestId = 'trace-exemplar-1';
    await t.app.inject({ method: 'GET', url: '/api/v1/exemplar-probe', headers: { traceparent: `00-${TRACE}-${PARENT}-01`, 'x-request-id': requestId } });
    const om = await t.app.inject({ method: 'GET', url: '/metrics', headers: { accept: OPENMETRICS_CONTENT_TYPE } });
    expect(om.headers['content-type']).toContain('application/openmetrics-text');
    const withExemplar = om.body.split('\n').filter((l) => l.startsWith('http_request_duration_seconds_bucket{') && l.includes(`# {trace_id="${TRACE}"}`));
    expect(withExemplar.length).toBeGreaterThan(0);
    const text = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(text.body).toContain('http_request_duration_seconds_bucket{');
    expect(text.body.split('\n').filter((l) => l.startsWith('http_request_duration_seconds_bucket{') && l.includes(' # {'))).toEqual([]);
  });
});

describe('trace context (nothing sampled)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ OTEL_TRACES_SAMPLER: 'always_off', LOG_FORMAT: 'text' });
  });
  afterAll(async () => t?.close());

  it('unsampled requests still carry trace ids in their lines (text format too) but leave no exemplar', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/unsampled', headers: { 'x-request-id': 'trace-text-1' } });
    const traceId = json<{ trace_id: string }>(res).trace_id;
    expect(traceId).toMatch(HEX32);
    const line = t.logs().find((l) => l.includes('request_completed') && l.includes('request_id=trace-text-1'));
    expect(line).toBeDefined();
    expect(line).toContain(` trace_id=${traceId} `);
    expect(line).toMatch(/ span_id=[0-9a-f]{16} /);
    const om = await t.app.inject({ method: 'GET', url: '/metrics', headers: { accept: OPENMETRICS_CONTENT_TYPE } });
    expect(om.body).toContain('http_request_duration_seconds_bucket{');
    expect(om.body).not.toContain('# {trace_id=');
  });

  it('a line logged outside any request has no trace ids', async () => {
    t.app.log.info({ probe: 'outside' }, 'outside_any_trace');
    await new Promise((r) => setImmediate(r));
    const line = t.logs().find((l) => l.includes('outside_any_trace'));
    expect(line).toBeDefined();
    expect(line).not.toContain('trace_id=');
  });
});
