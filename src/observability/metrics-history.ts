/**
 * The last hour of this process's own metrics, for the operator console's charts: every interval
 * the sampler reads the registry's cumulative counters and histogram buckets (as a scrape would)
 * and keeps the change since the previous read — requests per second, the 5xx ratio, rate-limit
 * refusals, jobs finished and failed, CPU, and each route's p95 latency estimated from its bucket
 * counts the way `histogram_quantile` does. It works with no Prometheus (embedded mode) and costs
 * requests nothing: it reads what the request hooks already record.
 */
import type { Metrics } from './metrics.ts';

export interface HistoryPoint {
  /** End of the interval, epoch ms. */
  t: number;
  requests_per_second: number;
  /** Answers with a 5xx status over all answers in the interval; null when there were none. */
  error_ratio: number | null;
  rate_limited_per_second: number;
  jobs_completed: number;
  jobs_failed: number;
  /** This process's CPU time over the interval's wall time (100 = one core busy). */
  cpu_percent: number;
}

export interface HistoryView {
  interval_seconds: number;
  window_seconds: number;
  points: HistoryPoint[];
  /** The busiest routes' p95 latency, one value per point (null: no request of that route then). */
  latency_p95_seconds: { route: string; values: (number | null)[] }[];
}

export interface MetricsHistoryOptions {
  intervalMs: number;
  windowMs: number;
  /** How many routes the latency chart shows (the busiest over the window). */
  topRoutes?: number;
  /** Routes left out of the latency chart (the console's own polling). */
  excludeRoute?: (route: string) => boolean;
}

interface Sample extends HistoryPoint {
  /** Per route ("GET /api/v1/x"): requests and p95 in the interval. */
  routes: Map<string, { requests: number; p95: number | null }>;
}

type Cumulative = Map<string, number>;

export class MetricsHistory {
  private readonly samples: Sample[] = [];
  private readonly capacity: number;
  private previous: { at: number; cpu: NodeJS.CpuUsage; counters: Cumulative; buckets: Map<string, Cumulative> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly metrics: Metrics,
    private readonly opts: MetricsHistoryOptions,
  ) {
    this.capacity = Math.max(1, Math.ceil(opts.windowMs / opts.intervalMs));
  }

  start(): void {
    if (this.timer) return;
    this.running = this.sample();
    this.timer = setInterval(() => {
      this.running = this.sample();
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** The latest CPU figure (null before the second read). */
  latestCpuPercent(): number | null {
    return this.samples.at(-1)?.cpu_percent ?? null;
  }

  view(): HistoryView {
    const totals = new Map<string, number>();
    for (const s of this.samples) {
      for (const [route, r] of s.routes) if (!this.opts.excludeRoute?.(route)) totals.set(route, (totals.get(route) ?? 0) + r.requests);
    }
    const top = [...totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, this.opts.topRoutes ?? 5).map(([route]) => route);
    return {
      interval_seconds: this.opts.intervalMs / 1000,
      window_seconds: this.opts.windowMs / 1000,
      points: this.samples.map(({ routes: _routes, ...point }) => point),
      latency_p95_seconds: top.map((route) => ({ route, values: this.samples.map((s) => s.routes.get(route)?.p95 ?? null) })),
    };
  }

  /** One read of the registry; the first only sets the baseline. */
  async sample(now = Date.now()): Promise<void> {
    const m = this.metrics;
    const [requests, durations, limited, tasks] = await Promise.all([m.httpRequests.get(), m.httpRequestDuration.get(), m.rateLimitHits.get(), m.celeryTasks.get()]);
    const counters: Cumulative = new Map();
    const add = (key: string, v: number) => counters.set(key, (counters.get(key) ?? 0) + v);
    for (const v of requests.values) {
      add('requests', v.value);
      if (String(v.labels.status).startsWith('5')) add('errors', v.value);
    }
    for (const v of limited.values) add('limited', v.value);
    for (const v of tasks.values) add(`task:${String(v.labels.status)}`, v.value);
    // Per route, the cumulative count of each bucket (statuses summed).
    const buckets = new Map<string, Cumulative>();
    for (const v of durations.values) {
      if (!v.metricName?.endsWith('_bucket')) continue;
      const route = `${String(v.labels.method)} ${String(v.labels.endpoint)}`;
      const le = String((v.labels as Record<string, string | number>).le);
      const b = buckets.get(route) ?? new Map<string, number>();
      b.set(le, (b.get(le) ?? 0) + v.value);
      buckets.set(route, b);
    }
    const cpu = process.cpuUsage();
    const prev = this.previous;
    this.previous = { at: now, cpu, counters, buckets };
    if (!prev) return;

    const seconds = Math.max(0.001, (now - prev.at) / 1000);
    const delta = (key: string) => Math.max(0, (counters.get(key) ?? 0) - (prev.counters.get(key) ?? 0));
    const answered = delta('requests');
    const routes = new Map<string, { requests: number; p95: number | null }>();
    for (const [route, b] of buckets) {
      const before = prev.buckets.get(route);
      const changes = [...b].map(([le, n]) => [le === '+Inf' ? Infinity : Number(le), n - (before?.get(le) ?? 0)] as const).sort((x, y) => x[0] - y[0]);
      const count = changes.at(-1)?.[1] ?? 0;
      if (count > 0) routes.set(route, { requests: count, p95: quantile(0.95, changes) });
    }
    const cpuMicros = cpu.user - prev.cpu.user + (cpu.system - prev.cpu.system);
    this.samples.push({
      t: now,
      requests_per_second: round(answered / seconds),
      error_ratio: answered > 0 ? round(delta('errors') / answered) : null,
      rate_limited_per_second: round(delta('limited') / seconds),
      jobs_completed: delta('task:success'),
      jobs_failed: delta('task:failure'),
      cpu_percent: round((cpuMicros / 1e6 / seconds) * 100),
      routes,
    });
    if (this.samples.length > this.capacity) this.samples.shift();
  }
}

const round = (n: number) => Math.round(n * 10_000) / 10_000;

/**
 * The q-quantile of one interval's observations from cumulative bucket counts (upper bounds
 * ascending, +Inf last), interpolating linearly inside the bucket as Prometheus'
 * histogram_quantile does; in the +Inf bucket, the largest finite bound.
 */
export function quantile(q: number, buckets: readonly (readonly [number, number])[]): number | null {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of buckets) {
    if (count >= rank) {
      if (bound === Infinity) return lowerBound;
      return count === lowerCount ? bound : lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}
