import { describe, expect, it } from 'vitest';
import { endpointLabel, HttpLabelCache, normalizeMethod, OTHER_METHOD, UNMATCHED_ENDPOINT } from '../../src/http/metrics.ts';
import { createMetrics, negotiateFormat } from '../../src/observability/metrics.ts';

const opts = { version: '9.9.9', environment: 'test' };

function families(exposition: string): Record<string, { type: string; help: string }> {
  const out: Record<string, { type: string; help: string }> = {};
  for (const m of exposition.matchAll(/^# (HELP|TYPE) (\S+) (.*)$/gm)) {
    const f = (out[m[2]!] ??= { type: '', help: '' });
    if (m[1] === 'TYPE') f.type = m[3]!;
    else f.help = m[3]!;
  }
  return out;
}

describe('the metrics catalog', () => {
  it('has the names, types and labels of ARCHITECTURE §6, each with HELP text', async () => {
    const m = createMetrics({ ...opts, processMetrics: false });
    m.registerTaskNames(['sync_accounts']);
    m.registerRateLimitedEndpoints(['/api/v1/transactions']);
    m.httpRequests.inc({ method: 'GET', endpoint: '/x', status: '200' });
    m.httpRequestDuration.observe({ labels: { method: 'GET', endpoint: '/x', status: '200' }, value: 0.1 });
    m.httpRequestsInProgress.set({ method: 'GET', endpoint: '/x' }, 0);
    m.httpRequestSize.observe({ method: 'GET', endpoint: '/x' }, 0);
    m.httpResponseSize.observe({ method: 'GET', endpoint: '/x' }, 10);
    const json = await m.registry.getMetricsAsJSON();
    const labelsOf = (name: string) => {
      const metric = json.find((x) => x.name === name);
      if (!metric) return undefined;
      const names = new Set<string>();
      for (const v of metric.values) for (const k of Object.keys(v.labels)) if (k !== 'le') names.add(k);
      return { type: metric.type, labels: [...names].sort() };
    };
    const expected: Record<string, { type: string; labels: string[] }> = {
      http_requests_total: { type: 'counter', labels: ['endpoint', 'method', 'status'] },
      http_request_duration_seconds: { type: 'histogram', labels: ['endpoint', 'method', 'status'] },
      http_requests_inprogress: { type: 'gauge', labels: ['endpoint', 'method'] },
      http_request_size_bytes: { type: 'histogram', labels: ['endpoint', 'method'] },
      http_response_size_bytes: { type: 'histogram', labels: ['endpoint', 'method'] },
      db_query_duration_seconds: { type: 'histogram', labels: ['operation'] },
      db_connection_pool_size: { type: 'gauge', labels: [] },
      db_connection_pool_available: { type: 'gauge', labels: [] },
      celery_tasks_total: { type: 'counter', labels: ['status', 'task_name'] },
      celery_task_duration_seconds: { type: 'histogram', labels: ['status', 'task_name'] },
      celery_tasks_inprogress: { type: 'gauge', labels: ['task_name'] },
      rate_limit_hits_total: { type: 'counter', labels: ['endpoint'] },
      rate_limit_requests_total: { type: 'counter', labels: ['endpoint'] },
      users_total: { type: 'gauge', labels: [] },
      transactions_total: { type: 'gauge', labels: [] },
      accounts_total: { type: 'gauge', labels: [] },
      plaid_syncs_total: { type: 'counter', labels: ['status'] },
      budget_alerts_total: { type: 'counter', labels: ['priority'] },
      app_info: { type: 'gauge', labels: ['environment', 'version'] },
    };
    for (const [name, want] of Object.entries(expected)) expect({ name, ...labelsOf(name) }).toEqual({ name, ...want });
    const f = families(await m.render());
    expect(Object.entries(f).filter(([, v]) => v.help.length < 10)).toEqual([]);
    // Base units in the names of everything that has one.
    expect(Object.keys(f).filter((n) => /duration|latency|time/.test(n) && !/_seconds$/.test(n))).toEqual([]);
    expect(Object.keys(f).filter((n) => /size/.test(n) && n.startsWith('http_') && !/_bytes$/.test(n))).toEqual([]);
  });

  it('gives each instance its own registry: series never leak between apps', async () => {
    const a = createMetrics(opts);
    const b = createMetrics(opts);
    a.recordBudgetAlert('high');
    expect(await a.render()).toMatch(/^budget_alerts_total\{priority="high"\} 1$/m);
    expect(await b.render()).toMatch(/^budget_alerts_total\{priority="high"\} 0$/m);
    expect(a.registry).not.toBe(b.registry);
  });

  it('starts the closed label sets at zero', async () => {
    const body = await createMetrics({ ...opts, processMetrics: false }).render();
    for (const p of ['low', 'medium', 'high']) expect(body).toMatch(new RegExp(`^budget_alerts_total\\{priority="${p}"\\} 0$`, 'm'));
    for (const s of ['success', 'failure']) expect(body).toMatch(new RegExp(`^plaid_syncs_total\\{status="${s}"\\} 0$`, 'm'));
    for (const o of ['select', 'insert', 'update', 'delete', 'other']) {
      expect(body).toMatch(new RegExp(`^db_query_duration_seconds_count\\{operation="${o}"\\} 0$`, 'm'));
    }
    expect(body).toMatch(/^app_info\{version="9.9.9",environment="test"\} 1$/m);
  });

  it('zero-initialises the task and rate-limit series it is told about', async () => {
    const m = createMetrics({ ...opts, processMetrics: false });
    m.registerTaskNames(['sync_accounts']);
    m.registerRateLimitedEndpoints(['/api/v1/auth/login']);
    const body = await m.render();
    for (const s of ['success', 'failure', 'retry']) {
      expect(body).toMatch(new RegExp(`^celery_tasks_total\\{task_name="sync_accounts",status="${s}"\\} 0$`, 'm'));
    }
    expect(body).toMatch(/^celery_tasks_inprogress\{task_name="sync_accounts"\} 0$/m);
    expect(body).toMatch(/^rate_limit_hits_total\{endpoint="\/api\/v1\/auth\/login"\} 0$/m);
    expect(body).toMatch(/^rate_limit_requests_total\{endpoint="\/api\/v1\/auth\/login"\} 0$/m);
  });

  it('times queries into db_query_duration_seconds and counts failures', async () => {
    const m = createMetrics({ ...opts, processMetrics: false });
    m.observeQuery('select', 0.003, false);
    m.observeQuery('update', 0.2, true);
    const body = await m.render();
    expect(body).toMatch(/^db_query_duration_seconds_bucket\{le="0.0025",operation="select"\} 0$/m);
    expect(body).toMatch(/^db_query_duration_seconds_bucket\{le="0.005",operation="select"\} 1$/m);
    expect(body).toMatch(/^db_query_errors_total\{operation="update"\} 1$/m);
    expect(body).toMatch(/^db_query_errors_total\{operation="select"\} 0$/m);
  });

  it('reads the pool gauges from their source at scrape time', async () => {
    const m = createMetrics({ ...opts, processMetrics: false });
    let stats = { size: 10, available: 10 };
    m.watchPool(() => stats);
    expect(await m.render()).toMatch(/^db_connection_pool_available 10$/m);
    stats = { size: 10, available: 3 };
    const body = await m.render();
    expect(body).toMatch(/^db_connection_pool_size 10$/m);
    expect(body).toMatch(/^db_connection_pool_available 3$/m);
  });

  it('sets the dependency-up gauge', async () => {
    const m = createMetrics({ ...opts, processMetrics: false });
    m.setDependencyUp('redis', false);
    m.setDependencyUp('database', true);
    const body = await m.render();
    expect(body).toMatch(/^nest_egg_dependency_up\{dependency="redis"\} 0$/m);
    expect(body).toMatch(/^nest_egg_dependency_up\{dependency="database"\} 1$/m);
  });

  it('includes the process and event-loop metrics only when asked', async () => {
    expect(await createMetrics(opts).render()).toMatch(/^# TYPE nodejs_eventloop_lag_p99_seconds gauge$/m);
    expect(await createMetrics(opts).render()).toMatch(/^# TYPE process_resident_memory_bytes gauge$/m);
    expect(await createMetrics({ ...opts, processMetrics: false }).render()).not.toMatch(/^# TYPE (process|nodejs)_/m);
  });

  it('leaves the business gauges out of the worker, which does not refresh them', async () => {
    const names = /^# TYPE (users_total|transactions_total|accounts_total|nest_egg_business_metrics_\w+) /gm;
    expect((await createMetrics({ ...opts, processMetrics: false }).render()).match(names)).toHaveLength(5);
    expect((await createMetrics({ ...opts, processMetrics: false, businessGauges: false }).render()).match(names)).toBeNull();
  });

  it('renders OpenMetrics without renaming counters for later Prometheus scrapes, also for shared process counters', async () => {
    const a = createMetrics(opts);
    const b = createMetrics(opts);
    a.httpRequests.inc({ method: 'GET', endpoint: '/x', status: '200' });
    const om = await a.render('openmetrics');
    expect(om).toMatch(/^# TYPE http_requests counter$/m);
    expect(om).toMatch(/^http_requests_total\{method="GET",endpoint="\/x",status="200"\} 1$/m);
    expect(om).toMatch(/^# TYPE process_cpu_seconds counter$/m);
    expect(om.endsWith('# EOF\n')).toBe(true);
    for (const text of [await a.render(), await b.render()]) {
      expect(text).toMatch(/^# TYPE http_requests_total counter$/m);
      expect(text).toMatch(/^# TYPE process_cpu_seconds_total counter$/m);
      expect(text).not.toMatch(/^# TYPE http_requests counter$/m);
    }
  });
});

describe('negotiateFormat', () => {
  it.each([
    [undefined, 'prometheus'],
    ['*/*', 'prometheus'],
    ['text/plain;version=0.0.4', 'prometheus'],
    // Prometheus 2.x's scrape Accept header
    ['application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', 'openmetrics'],
    ['application/openmetrics-text', 'openmetrics'],
    ['Application/OpenMetrics-Text; version=1.0.0', 'openmetrics'],
    ['text/plain;version=0.0.4,application/openmetrics-text;q=0.5', 'prometheus'],
    ['application/openmetrics-text;q=0', 'prometheus'],
  ] as const)('%s → %s', (accept, format) => {
    expect(negotiateFormat(accept)).toBe(format);
  });
});

describe('HTTP labels', () => {
  it('keeps the standard methods and folds every other one into _OTHER', () => {
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE']) expect(normalizeMethod(m)).toBe(m);
    for (const m of ['PROPFIND', 'MKCOL', 'PURGE', 'get']) expect(normalizeMethod(m)).toBe(OTHER_METHOD);
  });

  it('uses the route template, one value for unmatched requests, and no trailing slash', () => {
    expect(endpointLabel(undefined)).toBe(UNMATCHED_ENDPOINT);
    expect(endpointLabel('/api/v1/budgets/:id')).toBe('/api/v1/budgets/:id');
    expect(endpointLabel('/api/v1/budgets/')).toBe('/api/v1/budgets');
    expect(endpointLabel('/')).toBe('/');
  });

  it('makes the label objects once per route, method and status', () => {
    const cache = new HttpLabelCache();
    const a = cache.get('/api/v1/budgets/:id', 'GET');
    expect(cache.get('/api/v1/budgets/:id', 'GET')).toBe(a);
    expect(a.withStatus(404)).toBe(a.withStatus(404));
    expect(a.withStatus(404)).toEqual({ method: 'GET', endpoint: '/api/v1/budgets/:id', status: '404' });
    expect(cache.get(undefined, 'PROPFIND').base).toEqual({ method: '_OTHER', endpoint: 'unmatched' });
  });
});
