/**
 * One trace across logs, metrics, errors and jobs, exported over OTLP (issue 14), end to end with
 * the real CLI: an API replica and a BullMQ worker on Postgres and Redis export to a local OTLP/HTTP
 * receiver (protobuf from the API, JSON from the worker, both decoded from the real protocol); the
 * request's span, its queries, the sync job it queued and the alert check that job queued share
 * the caller's trace id; the worker's log lines carry it. A real Prometheus with exemplar storage
 * finds the same trace id on the latency histogram. A collector on a closed port costs dropped
 * spans (counted), not failed requests.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.ts';
import { startPrometheus, type RunningPrometheus } from '../helpers/prometheus.ts';
import { startReplicaBackends, type ReplicaBackends } from '../helpers/replicas.ts';
import { CHILD_JWT_SECRET, CHILD_TOKEN_KEY, freePort, request, sleep, spawnCli, startServer, type CliProcess, type ServerProcess } from '../helpers/server.ts';
import { servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('OTLP export', 'postgres', 'redis');
const withPrometheus = await servicesAvailable('exemplars in Prometheus', 'prometheus');

const TRACE = randomBytes(16).toString('hex');
const PARENT = randomBytes(8).toString('hex');
const JSON_HEADERS = { 'content-type': 'application/json' };

async function signUp(url: string): Promise<{ auth: Record<string, string>; email: string }> {
  const email = `otlp-${randomBytes(4).toString('hex')}@example.com`;
  const password = 'correct horse battery staple';
  expect((await request(`${url}/api/v1/auth/register`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ email, password }) })).status).toBe(201);
  const login = await request(`${url}/api/v1/auth/login`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ email, password }) });
  return { auth: { authorization: `Bearer ${(JSON.parse(login.body) as { access_token: string }).access_token}` }, email };
}

const byName = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);

describe.skipIf(!ok)('OTLP export from an API replica and a BullMQ worker', () => {
  let backends: ReplicaBackends;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let api: ServerProcess | undefined;
  let worker: CliProcess | undefined;
  let prometheus: RunningPrometheus | undefined;

  const serverMode = () => ({
    ...backends.env(),
    ENVIRONMENT: 'development',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    BANK_SYNC_PROVIDER: 'demo',
    JWT_SECRET: CHILD_JWT_SECRET,
    TOKEN_ENCRYPTION_KEY: CHILD_TOKEN_KEY,
    METRICS_ENABLED: 'true',
    // Nothing is sampled by rate: only a caller's sampled traceparent is (parent based).
    SENTRY_TRACES_SAMPLE_RATE: '0',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=otlp%20secret%20value',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.region=test-1,team=finance',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    backends = await startReplicaBackends('otlp');
    api = await startServer({ env: { ...serverMode(), OTEL_SERVICE_NAME: 'nest-egg-api-test', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' } });
    worker = spawnCli(['worker'], { ...serverMode(), WORKER_PORT: String(await freePort()), OTEL_SERVICE_NAME: 'nest-egg-worker-test', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    await worker.waitForLog('worker_started', 60_000);
  }, 120_000);

  afterAll(async () => {
    await prometheus?.stop();
    await worker?.stop(10_000).catch(() => undefined);
    await api?.cleanup().catch(() => undefined);
    await receiver?.close();
    await backends?.close();
  }, 60_000);

  it('the request, its queries, the job it queued and the job that job queued are one trace; the worker logs it', async () => {
    const { auth, email } = await signUp(api!.url);
    const requestId = `otlp-link-${randomBytes(3).toString('hex')}`;
    const linked = await request(`${api!.url}/api/v1/plaid/exchange-token`, {
      method: 'POST',
      headers: { ...JSON_HEADERS, ...auth, traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=1', 'x-request-id': requestId },
      body: JSON.stringify({ public_token: 'public-demo-otlp' }),
    });
    expect(linked.status, linked.body).toBe(201);

    const spans = await receiver.waitForSpans(
      (all) => byName(all, 'task check_budget_alerts').some((s) => s.traceId === TRACE),
      60_000,
    );
    const trace = spans.filter((s) => s.traceId === TRACE);
    // The request's server span continues the caller's span.
    const [server] = byName(trace, 'POST /api/v1/plaid/exchange-token');
    expect(server).toBeDefined();
    expect(server!.parentSpanId).toBe(PARENT);
    expect(server!.kind).toBe(2); // SERVER
    expect(server!.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/api/v1/plaid/exchange-token', 'http.response.status_code': 201, 'nest_egg.request_id': requestId });
    expect(server!.resource).toMatchObject({ 'service.name': 'nest-egg-api-test', 'deployment.region': 'test-1', team: 'finance' });
    expect(server!.contentType).toBe('protobuf');
    // Its database queries and Redis commands (the enqueue) are its children.
    const queries = trace.filter((s) => s.parentSpanId === server!.spanId && s.attributes['db.system.name'] === 'postgresql');
    expect(queries.length).toBeGreaterThan(0);
    for (const q of queries) expect(String(q.attributes['db.query.text'])).not.toContain('public-demo-otlp');
    expect(trace.filter((s) => s.parentSpanId === server!.spanId && s.attributes['db.system.name'] === 'redis').length).toBeGreaterThan(0);
    // The sync ran on the worker as a child of the request; the alert check it queued, as the sync's child.
    const [sync] = byName(trace, 'task sync_transactions');
    expect(sync).toBeDefined();
    expect(sync!.parentSpanId).toBe(server!.spanId);
    expect(sync!.resource['service.name']).toBe('nest-egg-worker-test');
    expect(sync!.contentType).toBe('json');
    const [alerts] = byName(trace, 'task check_budget_alerts');
    expect(alerts!.parentSpanId).toBe(sync!.spanId);
    expect(trace.filter((s) => s.parentSpanId === sync!.spanId && s.attributes['db.system.name'] === 'postgresql').length).toBeGreaterThan(0);

    // The logs name the same trace and spans: the API's completion line, the worker's task lines.
    const done = await api!.waitForLog('request_completed', 10_000, (l) => l.request_id === requestId);
    expect(done).toMatchObject({ trace_id: TRACE, span_id: server!.spanId });
    const succeeded = await worker!.waitForLog('task_succeeded', 10_000, (l) => l.task_name === 'sync_transactions' && l.trace_id === TRACE);
    expect(succeeded.span_id).toBe(sync!.spanId);
    const workerLines = worker!.logs().filter((l) => l.trace_id === TRACE);
    expect(workerLines.map((l) => l.event)).toEqual(expect.arrayContaining(['task_succeeded', 'bank_sync_succeeded']));

    // Nothing personal or secret left in a span: no email, no collector key, no raw ids in names.
    const everything = JSON.stringify(spans);
    expect(everything).not.toContain(email);
    expect(everything).not.toContain('otlp secret value');
    // The exporter sent the configured header; the key never reached a log line.
    expect(receiver.requests.some((r) => r.headers['x-collector-key'] === 'otlp secret value')).toBe(true);
    expect(api!.stdout() + worker!.stdout()).not.toContain('otlp secret value');
  }, 120_000);

  it('a request the caller did not sample is not exported, yet its lines and problem body carry its trace id', async () => {
    const requestId = `otlp-unsampled-${randomBytes(3).toString('hex')}`;
    const unsampledTrace = randomBytes(16).toString('hex');
    const res = await request(`${api!.url}/api/v1/accounts/${randomUUID()}`, {
      headers: { traceparent: `00-${unsampledTrace}-${PARENT}-00`, 'x-request-id': requestId },
    });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ trace_id: unsampledTrace, request_id: requestId });
    expect(await api!.waitForLog('request_completed', 10_000, (l) => l.request_id === requestId)).toMatchObject({ trace_id: unsampledTrace });
    // A sampled request after it is exported, with the same trace id in its error body, its line and its span; the unsampled one never is.
    const marker = randomBytes(16).toString('hex');
    const markerId = `otlp-marker-${randomBytes(3).toString('hex')}`;
    const missing = await request(`${api!.url}/api/v1/no-such-route`, { headers: { traceparent: `00-${marker}-${PARENT}-01`, 'x-request-id': markerId } });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ trace_id: marker });
    await receiver.waitForSpans((all) => all.some((s) => s.traceId === marker), 30_000);
    expect(receiver.spans.filter((s) => s.traceId === unsampledTrace)).toEqual([]);
    const [notFound] = receiver.spans.filter((s) => s.traceId === marker && s.kind === 2);
    expect(notFound!.parentSpanId).toBe(PARENT);
    expect(await api!.waitForLog('request_completed', 10_000, (l) => l.request_id === markerId)).toMatchObject({ trace_id: marker, span_id: notFound!.spanId });
    // An unmatched request's span is named by its method only (a raw path could hold anything).
    expect(notFound!.name).toBe('GET');
    expect(JSON.stringify(notFound)).not.toContain('no-such-route');
  }, 60_000);

  it('a malformed traceparent starts a new trace without an error (unsampled at rate 0: nothing exported for it)', async () => {
    const requestId = `otlp-malformed-${randomBytes(3).toString('hex')}`;
    const res = await request(`${api!.url}/api/v1/no-such-route`, { headers: { traceparent: `00-${TRACE.toUpperCase()}-${PARENT}-01`, 'x-request-id': requestId } });
    expect(res.status).toBe(404);
    const fresh = (JSON.parse(res.body) as { trace_id: string }).trace_id;
    expect(fresh).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh).not.toBe(TRACE);
    expect(await api!.waitForLog('request_completed', 10_000, (l) => l.request_id === requestId)).toMatchObject({ trace_id: fresh });
    // Not sampled by the caller (its header did not count) and rate 0 here: nothing exported for it.
    await sleep(500);
    expect(receiver.spans.filter((s) => s.traceId === fresh)).toEqual([]);
  }, 60_000);

  it.skipIf(!withPrometheus)('Prometheus with exemplar storage returns the trace id of the request, its log line and its spans', async () => {
    prometheus = await startPrometheus({
      targets: [{ job: 'nestegg-otlp', address: `127.0.0.1:${api!.port}` }],
      scrapeIntervalSeconds: 1,
      extraArgs: ['--enable-feature=exemplar-storage'],
    });
    const requestId = `otlp-exemplar-${randomBytes(3).toString('hex')}`;
    const traceId = randomBytes(16).toString('hex');
    const start = new Date(Date.now() - 60_000);
    const res = await request(`${api!.url}/api/v1/monitoring/health`, { headers: { 'x-request-id': requestId } });
    expect(res.status).toBe(200);
    // Readiness probes are never traced: the exemplar comes from a traced API request.
    const traced = await request(`${api!.url}/api/v1/categories`, { headers: { traceparent: `00-${traceId}-${PARENT}-01`, 'x-request-id': requestId } });
    expect(traced.status).toBe(401);
    const line = await api!.waitForLog('request_completed', 10_000, (l) => l.request_id === requestId && l.route === '/api/v1/categories');
    expect(line.trace_id).toBe(traceId);

    let found: string | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && !found; await sleep(500)) {
      const series = await prometheus.queryExemplars('http_request_duration_seconds_bucket{endpoint="/api/v1/categories"}', start, new Date(Date.now() + 60_000));
      found = series.flatMap((s) => s.exemplars).find((e) => e.labels.trace_id === traceId)?.labels.trace_id;
    }
    expect(found).toBe(traceId);
    const spans = await receiver.waitForSpans((all) => all.some((s) => s.traceId === traceId && s.kind === 2), 30_000);
    expect(spans.filter((s) => s.traceId === traceId && s.name === 'GET /api/v1/categories')).toHaveLength(1);
  }, 90_000);
});

describe('a collector that is down', () => {
  let api: ServerProcess | undefined;
  afterAll(async () => api?.cleanup());

  it('drops spans (counted), never a request', async () => {
    const closed = await freePort();
    api = await startServer({
      env: {
        METRICS_ENABLED: 'true',
        OTEL_TRACES_SAMPLER: 'always_on',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${closed}`,
        OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
        OTEL_BSP_SCHEDULE_DELAY: '100',
      },
    });
    for (let i = 0; i < 30; i++) {
      const res = await request(`${api.url}/api/v1/no-such-route-${i}`, { timeoutMs: 2_000 });
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body).trace_id).toMatch(/^[0-9a-f]{32}$/);
    }
    let dropped = 0;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline && dropped === 0; await sleep(250)) {
      const metrics = (await request(`${api.url}/metrics`)).body;
      dropped = Number(/^otlp_spans_dropped_total\{reason="export_failed"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
    }
    expect(dropped).toBeGreaterThan(0);
    const metrics = (await request(`${api.url}/metrics`)).body;
    expect(metrics).toMatch(/^otlp_spans_exported_total 0$/m);
    // The service kept answering throughout, and a graceful stop is not held by the dead collector.
    expect((await request(`${api.url}/health`)).status).toBe(200);
    for (let i = 0; i < 5; i++) await request(`${api.url}/api/v1/still-traced-${i}`);
    const stopping = Date.now();
    expect(await api.stop()).toEqual({ code: 0, signal: null });
    expect(Date.now() - stopping).toBeLessThan(8_000);
  }, 120_000);
});
