/**
 * The console's sampled hour (src/observability/metrics-history.ts) over a real metrics registry:
 * rates from counter changes, the 5xx ratio, each route's p95 from its bucket changes (checked
 * against a value computed by hand), the capacity of the window, and the quantile estimate itself
 * against Prometheus' histogram_quantile rules.
 */
import { describe, expect, it } from 'vitest';
import { MetricsHistory, quantile } from '../../src/observability/metrics-history.ts';
import { createMetrics } from '../../src/observability/metrics.ts';

const labels = (status: number, endpoint = '/api/v1/accounts', method = 'GET') => ({ method, endpoint, status: String(status) });

describe('MetricsHistory', () => {
  it('turns counter and bucket changes between two reads into rates, a 5xx ratio and per-route p95', async () => {
    const metrics = createMetrics({ version: 'test', environment: 'test', processMetrics: false });
    const history = new MetricsHistory(metrics, { intervalMs: 10_000, windowMs: 60_000, excludeRoute: (r) => r.includes(' /ops') });
    await history.sample(0);
    expect(history.view().points).toEqual([]);
    for (let i = 0; i < 95; i++) {
      metrics.httpRequests.inc(labels(200));
      metrics.httpRequestDuration.observe({ labels: labels(200), value: 0.004 });
    }
    for (let i = 0; i < 5; i++) {
      metrics.httpRequests.inc(labels(500));
      metrics.httpRequestDuration.observe({ labels: labels(500), value: 2 });
    }
    metrics.httpRequests.inc(labels(200, '/ops/api/overview'));
    metrics.httpRequestDuration.observe({ labels: labels(200, '/ops/api/overview'), value: 0.001 });
    metrics.rateLimitHits.inc({ endpoint: '/api/v1/accounts' }, 20);
    metrics.celeryTasks.inc({ task_name: 'sync_transactions', status: 'success' }, 3);
    metrics.celeryTasks.inc({ task_name: 'sync_transactions', status: 'failure' });
    await history.sample(10_000);
    const view = history.view();
    expect(view).toMatchObject({ interval_seconds: 10, window_seconds: 60 });
    expect(view.points).toEqual([
      { t: 10_000, requests_per_second: 10.1, error_ratio: 0.0495, rate_limited_per_second: 2, jobs_completed: 3, jobs_failed: 1, cpu_percent: expect.any(Number) },
    ]);
    // 100 requests of the route: rank 95 falls at the top of the bucket holding the 4 ms ones.
    const [route] = view.latency_p95_seconds;
    expect(route!.route).toBe('GET /api/v1/accounts');
    const bounds = metrics.httpRequestDuration as unknown as { upperBounds: number[] };
    expect(route!.values[0]).toBe(bounds.upperBounds.find((b) => b >= 0.004));
    // The console's own polling is left out of the latency chart.
    expect(view.latency_p95_seconds.map((r) => r.route)).toEqual(['GET /api/v1/accounts']);
  });

  it('a quiet interval has no error ratio and no latency; the window keeps its last samples only', async () => {
    const metrics = createMetrics({ version: 'test', environment: 'test', processMetrics: false });
    const history = new MetricsHistory(metrics, { intervalMs: 10_000, windowMs: 30_000 });
    for (let i = 0; i <= 5; i++) await history.sample(i * 10_000);
    const view = history.view();
    expect(view.points.map((p) => p.t)).toEqual([30_000, 40_000, 50_000]);
    expect(view.points.every((p) => p.error_ratio === null && p.requests_per_second === 0)).toBe(true);
    expect(view.latency_p95_seconds).toEqual([]);
    expect(history.latestCpuPercent()).toEqual(expect.any(Number));
  });

  it('start() samples at once and every interval; stop() ends it', async () => {
    const metrics = createMetrics({ version: 'test', environment: 'test', processMetrics: false });
    const history = new MetricsHistory(metrics, { intervalMs: 20, windowMs: 60_000 });
    history.start();
    await new Promise((r) => setTimeout(r, 110));
    await history.stop();
    const n = history.view().points.length;
    expect(n).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 60));
    expect(history.view().points.length).toBe(n);
  });
});

describe('quantile', () => {
  it('interpolates inside the bucket that holds the rank, as histogram_quantile does', () => {
    // 10 observations ≤ 0.1, 10 more ≤ 0.2 (cumulative 20), none above.
    const buckets = [[0.1, 10], [0.2, 20], [Infinity, 20]] as const;
    expect(quantile(0.5, buckets)).toBeCloseTo(0.1);
    expect(quantile(0.75, buckets)).toBeCloseTo(0.15);
    expect(quantile(0.95, buckets)).toBeCloseTo(0.19);
    expect(quantile(0.25, buckets)).toBeCloseTo(0.05);
  });

  it('answers the largest finite bound when the rank is in +Inf, and null without observations', () => {
    expect(quantile(0.95, [[0.1, 1], [1, 2], [Infinity, 10]])).toBe(1);
    expect(quantile(0.95, [[0.1, 0], [Infinity, 0]])).toBeNull();
    expect(quantile(0.95, [])).toBeNull();
  });
});
