/**
 * B3: the cost of a scrape. The app is built in this process exactly as `serve` builds it (the
 * catalog's registry, process metrics, the database and, in server mode, Redis with the queue
 * gauge read at scrape time), its registry is filled to BENCH_SERIES samples with many route
 * templates × methods × statuses (the label combinations a large API produces), and GET /metrics
 * is timed through app.inject, once with the Accept header Prometheus sends (OpenMetrics) and once
 * as plain text; every duration series carries a trace_id exemplar (the OpenMetrics form shows them). Meanwhile perf_hooks' event-loop-delay monitor records how long the loop stalls:
 * what any request arriving during a scrape would wait.
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/client.ts';
import { createMetrics, exemplarOf, type Metrics } from '../../src/observability/metrics.ts';
import { MetricsHistory } from '../../src/observability/metrics-history.ts';
import { closeRedisClient, createRedisClient } from '../../src/redis.ts';
import { BENCH_JWT_SECRET } from '../fixtures.ts';
import { quietLogger } from '../quiet-logger.ts';
import type { BenchSettings } from '../settings.ts';
import { Samples, fmt } from '../stats.ts';
import type { Row } from '../table.ts';
import type { Progress } from './overhead.ts';

const P50_TARGET_MS = 25;
/** What Prometheus 2.x/3.x sends when scraping. */
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const METHODS = ['GET', 'POST'];
const STATUSES = [200, 404, 500];

const sampleLines = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;

/** Adds route templates until the exposition holds at least `target` samples; returns the count. */
async function fill(metrics: Metrics, target: number): Promise<number> {
  // Per (method, endpoint): in-progress 1 + request and response size histograms 12 each;
  // per status: the counter 1 + the duration histogram 14.
  const perRoute = METHODS.length * (25 + STATUSES.length * 15);
  const base = sampleLines(await metrics.render());
  const routes = Math.ceil(Math.max(0, target - base) / perRoute);
  for (let i = 0; i < routes; i++) {
    const endpoint = `/api/v1/resource-${i}/:id`;
    for (const method of METHODS) {
      metrics.httpRequestsInProgress.set({ method, endpoint }, 0);
      metrics.httpRequestSize.observe({ method, endpoint }, 0);
      metrics.httpResponseSize.observe({ method, endpoint }, 512 + i);
      for (const status of STATUSES) {
        metrics.httpRequests.inc({ method, endpoint, status: String(status) }, i + 1);
        // Every series as if its last request was traced: each carries a trace_id exemplar (the worst case).
        metrics.httpRequestDuration.observe({ labels: { method, endpoint, status: String(status) }, value: 0.001 * (i % 500), exemplarLabels: exemplarOf({ traceId: randomBytes(16).toString('hex'), sampled: true }) });
      }
    }
  }
  return sampleLines(await metrics.render());
}

export interface ScrapeContext {
  mode: 'embedded' | 'server';
  /** DATA_DIR or DATABASE_URL of the mode's data. */
  databaseEnv: Record<string, string>;
  redisEnv: Record<string, string>;
}

export async function scrapeCase(ctx: ScrapeContext, settings: BenchSettings, progress: Progress): Promise<Row[]> {
  const config = loadConfig({
    ENVIRONMENT: 'production',
    JWT_SECRET: BENCH_JWT_SECRET,
    BANK_SYNC_PROVIDER: 'none',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    ...ctx.databaseEnv,
    ...ctx.redisEnv,
  });
  const logger = quietLogger();
  const metrics = createMetrics({ version: config.version, environment: config.environment, processMetrics: true });
  const database = await openDatabase({ url: config.database.url, dataDir: config.database.dataDir, poolSize: config.database.poolSize, onQuery: metrics.observeQuery });
  const redis = config.redisUrl ? createRedisClient(config.redisUrl, logger) : undefined;
  const app = await buildApp(config, { logger, database, jwtSecret: BENCH_JWT_SECRET, metrics, redis });
  try {
    await app.ready();
    const samples = await fill(metrics, settings.series);
    const rows: Row[] = [];
    for (const [format, accept] of [['OpenMetrics (Prometheus Accept)', PROMETHEUS_ACCEPT], ['text 0.0.4', 'text/plain']] as const) {
      const times = new Samples();
      let bytes = 0;
      const scrape = async () => {
        const started = performance.now();
        const res = await app.inject({ method: 'GET', url: '/metrics', headers: { accept } });
        if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`);
        bytes = res.rawPayload.length;
        return performance.now() - started;
      };
      for (let i = 0; i < 3; i++) await scrape();
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      for (let i = 0; i < settings.scrapes; i++) {
        times.add(await scrape());
        // A gap between scrapes, so the monitor also sees the loop run free.
        await sleep(20);
      }
      delay.disable();
      const [p50, p99] = times.percentiles(50, 99);
      progress(`B3 ${ctx.mode} ${format}: p50 ${fmt(p50!)} ms, p99 ${fmt(p99!)} ms, loop delay max ${fmt(delay.max / 1e6)} ms`);
      rows.push(
        {
          case: 'B3 scrape',
          mode: ctx.mode,
          measure: `/metrics p50 ms, ${fmt(samples, 0)} series, ${format}`,
          result: fmt(p50!),
          target: `≤ ${P50_TARGET_MS}`,
          ok: p50! <= P50_TARGET_MS,
          note: `p99 ${fmt(p99!)} ms; ${fmt(bytes / 1024, 0)} KiB; ${settings.scrapes} scrapes`,
        },
        {
          case: 'B3 scrape',
          mode: ctx.mode,
          measure: `event-loop delay during scrapes, ${format}`,
          result: `max ${fmt(delay.max / 1e6)} ms`,
          note: `p50 ${fmt(delay.percentile(50) / 1e6)} ms, p99 ${fmt(delay.percentile(99) / 1e6)} ms (1 ms resolution)`,
        },
      );
    }
    rows.push(await consoleSampleRow(metrics, samples, ctx.mode, settings, progress));
    return rows;
  } finally {
    await app.close();
    await database.close();
    if (redis && redis.status !== 'end') await closeRedisClient(redis);
  }
}

/**
 * The operator console's sampler on the same registry: one read of the counters and duration
 * buckets (what /ops's charts are made of), taken every OPS_SAMPLE_INTERVAL_SECONDS (10 s) by every
 * API process. No request pays for it; the process pays this much once per interval.
 */
async function consoleSampleRow(metrics: Metrics, series: number, mode: string, settings: BenchSettings, progress: Progress): Promise<Row> {
  const history = new MetricsHistory(metrics, { intervalMs: 10_000, windowMs: 3_600_000 });
  const times = new Samples();
  for (let i = 0; i < settings.scrapes + 1; i++) {
    const started = performance.now();
    await history.sample(Date.now() + i * 10_000);
    if (i > 0) times.add(performance.now() - started);
    await sleep(20);
  }
  const [p50, p99] = times.percentiles(50, 99);
  const perMille = (p50! / 10_000) * 1000;
  progress(`console sample ${mode}: p50 ${fmt(p50!)} ms, p99 ${fmt(p99!)} ms`);
  return {
    case: 'B3 scrape',
    mode,
    measure: `console sampler (/ops charts) ms per sample, ${fmt(series, 0)} series`,
    result: fmt(p50!),
    note: `p99 ${fmt(p99!)} ms; once every 10 s: ${fmt(perMille)} ‰ of one core, nothing per request`,
  };
}
