import { afterEach, describe, expect, it, vi } from 'vitest';
import { BusinessMetricsRefresher, type BusinessCounts } from '../../src/observability/business-metrics.ts';
import { createMetrics } from '../../src/observability/metrics.ts';

const gauge = async (m: ReturnType<typeof createMetrics>, name: string) => {
  const line = (await m.render()).split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
};

describe('BusinessMetricsRefresher', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sets the three gauges and the refresh timestamp from one count', async () => {
    const metrics = createMetrics({ version: '1', environment: 'test', processMetrics: false });
    const refresher = new BusinessMetricsRefresher({
      metrics,
      count: async () => ({ users: 3, transactions: 42, accounts: 5 }),
      intervalMs: 60_000,
    });
    expect(await refresher.refresh()).toBe(true);
    expect(await gauge(metrics, 'users_total')).toBe(3);
    expect(await gauge(metrics, 'transactions_total')).toBe(42);
    expect(await gauge(metrics, 'accounts_total')).toBe(5);
    const ts = (await gauge(metrics, 'nest_egg_business_metrics_last_refresh_timestamp_seconds'))!;
    expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(60);
    expect(await gauge(metrics, 'nest_egg_business_metrics_refresh_failures_total')).toBe(0);
  });

  it('keeps the last values and counts the failure when a count fails', async () => {
    const metrics = createMetrics({ version: '1', environment: 'test', processMetrics: false });
    const warnings: string[] = [];
    let fail = false;
    const refresher = new BusinessMetricsRefresher({
      metrics,
      count: async () => {
        if (fail) throw new Error('database is down');
        return { users: 7, transactions: 8, accounts: 9 };
      },
      intervalMs: 60_000,
      logger: { warn: (_o, event) => warnings.push(event) },
    });
    await refresher.refresh();
    const ts = await gauge(metrics, 'nest_egg_business_metrics_last_refresh_timestamp_seconds');
    fail = true;
    expect(await refresher.refresh()).toBe(false);
    expect(await gauge(metrics, 'users_total')).toBe(7);
    expect(await gauge(metrics, 'nest_egg_business_metrics_refresh_failures_total')).toBe(1);
    expect(await gauge(metrics, 'nest_egg_business_metrics_last_refresh_timestamp_seconds')).toBe(ts);
    expect(warnings).toEqual(['business_metrics_refresh_failed']);
  });

  it('refreshes at start, then on the interval, and not after stop', async () => {
    vi.useFakeTimers();
    const metrics = createMetrics({ version: '1', environment: 'test', processMetrics: false });
    let calls = 0;
    let probes = 0;
    const refresher = new BusinessMetricsRefresher({
      metrics,
      count: async (): Promise<BusinessCounts> => ({ users: ++calls, transactions: 0, accounts: 0 }),
      probe: async () => void probes++,
      intervalMs: 30_000,
    });
    await refresher.start();
    expect(calls).toBe(1);
    expect(probes).toBe(1);
    expect(await gauge(metrics, 'users_total')).toBe(1);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(4);
    await refresher.stop();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls).toBe(4);
    expect(probes).toBe(4);
  });

  it('joins a refresh already running instead of counting twice', async () => {
    const metrics = createMetrics({ version: '1', environment: 'test', processMetrics: false });
    let calls = 0;
    let finish: () => void = () => {};
    const refresher = new BusinessMetricsRefresher({
      metrics,
      count: async () => {
        calls++;
        await new Promise<void>((r) => (finish = r));
        return { users: 1, transactions: 1, accounts: 1 };
      },
      intervalMs: 60_000,
    });
    const a = refresher.refresh();
    const b = refresher.refresh();
    finish();
    expect(await Promise.all([a, b])).toEqual([true, true]);
    expect(calls).toBe(1);
  });

  it('a failing probe neither fails the refresh nor escapes', async () => {
    const metrics = createMetrics({ version: '1', environment: 'test', processMetrics: false });
    const warnings: string[] = [];
    const refresher = new BusinessMetricsRefresher({
      metrics,
      count: async () => ({ users: 1, transactions: 1, accounts: 1 }),
      probe: async () => {
        throw new Error('probe broke');
      },
      intervalMs: 60_000,
      logger: { warn: (_o, event) => warnings.push(event) },
    });
    expect(await refresher.refresh()).toBe(true);
    expect(warnings).toEqual(['dependency_probe_failed']);
  });
});
