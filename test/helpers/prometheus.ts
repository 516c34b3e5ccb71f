/**
 * A real Prometheus (Debian's `prometheus` binary) for integration tests: a temporary config and
 * storage directory, 127.0.0.1 only, a 1 s scrape and rule-evaluation interval, a bounded
 * lifetime, and helpers over its HTTP API (queries, targets, rules, alerts).
 *
 *   const prom = await startPrometheus({ targets: [{ job: 'nestegg-api', address: '127.0.0.1:18100' }] });
 *   await prom.waitForScrapes('nestegg-api', 2);
 *   const samples = await prom.query('rate(http_requests_total[5m])');
 *   await prom.stop();
 *
 * Callers that need fixed ports pass `port` (or use `freePort(from, to)`); otherwise the OS picks.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface ScrapeTarget {
  /** The `job` label; targets sharing a job are scraped under one scrape config. */
  job: string;
  /** host:port, e.g. `127.0.0.1:18100`. */
  address: string;
  metricsPath?: string;
  /** Sent as `Authorization: Bearer <token>` (METRICS_TOKEN). */
  bearerToken?: string;
  /** Extra target labels, e.g. `{ instance_role: 'worker' }`. */
  labels?: Record<string, string>;
}

export interface PrometheusOptions {
  targets: ScrapeTarget[];
  /** Rule files (alerting or recording), as paths; they are loaded as given. */
  ruleFiles?: string[];
  port?: number;
  scrapeIntervalSeconds?: number;
  evaluationIntervalSeconds?: number;
  /** The process is killed after this long whatever happens (default 600 s). */
  maxLifetimeSeconds?: number;
  /**
   * How long to wait (default 30 s) for /-/ready and, unless `waitForFirstScrape` is false, for
   * the first scrape of every target (up or down): target discovery is throttled to 5 s.
   */
  startTimeoutMs?: number;
  waitForFirstScrape?: boolean;
  /**
   * A complete prometheus.yml (e.g. the committed deploy/prometheus/prometheus.yml with its targets
   * rewritten) used instead of the one built from `targets` and `ruleFiles`; `targets` then only
   * says how many targets the start waits for. Relative rule_files resolve against the temporary
   * directory, so pass absolute paths.
   */
  config?: string;
  /** More command-line flags, e.g. `--enable-feature=exemplar-storage`. */
  extraArgs?: string[];
}

export interface Sample {
  metric: Record<string, string>;
  value: number;
  /** Unix seconds. */
  timestamp: number;
}

export interface RangeSeries {
  metric: Record<string, string>;
  values: Array<{ timestamp: number; value: number }>;
}

export interface ExemplarSeries {
  seriesLabels: Record<string, string>;
  exemplars: Array<{ labels: Record<string, string>; value: string; timestamp: number }>;
}

export interface TargetHealth {
  job: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  lastScrape: string;
  labels: Record<string, string>;
}

export interface AlertState {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  activeAt?: string;
  value: string;
}

export interface RunningPrometheus {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  configFile: string;
  /** Instant query; a scalar result comes back as one sample without labels. */
  query(expr: string, time?: Date): Promise<Sample[]>;
  queryRange(expr: string, start: Date, end: Date, stepSeconds: number): Promise<RangeSeries[]>;
  /** Series names matching a selector (the /api/v1/series endpoint). */
  series(match: string): Promise<Array<Record<string, string>>>;
  targets(): Promise<TargetHealth[]>;
  /** The loaded rule groups (/api/v1/rules). */
  rules(): Promise<unknown[]>;
  /** Active alerts (/api/v1/alerts). */
  alerts(): Promise<AlertState[]>;
  /** Waits until `job` has been scraped at least `count` times since `since` (default: now). */
  waitForScrapes(job: string, count: number, opts?: { since?: number; timeoutMs?: number }): Promise<void>;
  /** Polls `expr` until `accept` returns true for its result; returns that result. */
  waitForQuery(expr: string, accept: (samples: Sample[]) => boolean, timeoutMs?: number): Promise<Sample[]>;
  /** Exemplars of the series matching `expr` in [start, end] (/api/v1/query_exemplars; needs exemplar storage). */
  queryExemplars(expr: string, start: Date, end: Date): Promise<ExemplarSeries[]>;
  /** What Prometheus wrote to stderr (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

/** Binds each port in [from, to] on 127.0.0.1 until one is free; without a range the OS picks one. */
export async function freePort(from?: number, to?: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number | null>((done) => {
      const server = net.createServer();
      server.once('error', () => done(null));
      server.listen(port, '127.0.0.1', () => {
        const chosen = (server.address() as net.AddressInfo).port;
        server.close(() => done(chosen));
      });
    });
  if (from === undefined) return (await tryPort(0))!;
  for (let port = from; port <= (to ?? from); port++) {
    const got = await tryPort(port);
    if (got !== null) return got;
  }
  throw new Error(`no free port in ${from}-${to ?? from}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value other than undefined. */
export async function waitUntil<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await sleep(200);
  }
}

function prometheusConfig(opts: PrometheusOptions): string {
  const interval = `${opts.scrapeIntervalSeconds ?? 1}s`;
  const jobs = new Map<string, ScrapeTarget[]>();
  for (const t of opts.targets) jobs.set(t.job, [...(jobs.get(t.job) ?? []), t]);
  const scrapeConfigs = [...jobs].flatMap(([job, targets]) => {
    // One scrape config per (job, path, token): Prometheus sets those per scrape config.
    const groups = new Map<string, ScrapeTarget[]>();
    for (const t of targets) {
      const key = `${t.metricsPath ?? '/metrics'}\n${t.bearerToken ?? ''}`;
      groups.set(key, [...(groups.get(key) ?? []), t]);
    }
    return [...groups.values()].map((group, i) => ({
      job_name: groups.size === 1 ? job : `${job}-${i}`,
      metrics_path: group[0]!.metricsPath ?? '/metrics',
      scrape_interval: interval,
      scrape_timeout: interval,
      ...(group[0]!.bearerToken ? { authorization: { type: 'Bearer', credentials: group[0]!.bearerToken } } : {}),
      // Keep the `job` label the caller asked for even when one job needs two scrape configs.
      relabel_configs: [{ target_label: 'job', replacement: job }],
      static_configs: group.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })),
    }));
  });
  // JSON is YAML: no YAML writer needed.
  return JSON.stringify(
    {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: `${opts.evaluationIntervalSeconds ?? 1}s` },
      rule_files: (opts.ruleFiles ?? []).map((f) => resolve(f)),
      scrape_configs: scrapeConfigs,
    },
    null,
    2,
  );
}

function toNumber(v: string): number {
  return v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
}

export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'nest-egg-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, opts.config ?? prometheusConfig(opts));
  // Fail with promtool's own words when the config or a rule file is wrong.
  const check = spawnSync('promtool', ['check', 'config', configFile], { encoding: 'utf8' });
  if (check.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`promtool check config failed:\n${check.stdout}${check.stderr}`);
  }

  const port = opts.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const args = [
    '--kill-after=5',
    String(opts.maxLifetimeSeconds ?? 600),
    'prometheus',
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
    ...(opts.extraArgs ?? []),
  ];
  // `timeout` bounds the lifetime even if this test process dies without calling stop().
  const child: ChildProcess = spawn('timeout', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-20_000);
  });
  let exited = false;
  const exitedPromise = new Promise<void>((done) => child.once('exit', () => ((exited = true), done())));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exitedPromise;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const api = async <T>(path: string, params: Record<string, string> = {}): Promise<T> => {
    const res = await fetch(`${url}${path}?${new URLSearchParams(params)}`);
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
    return body.data;
  };

  const query = async (expr: string, time?: Date): Promise<Sample[]> => {
    const data = await api<{ resultType: string; result: unknown }>('/api/v1/query', {
      query: expr,
      ...(time ? { time: String(time.getTime() / 1000) } : {}),
    });
    if (data.resultType === 'scalar' || data.resultType === 'string') {
      const [ts, v] = data.result as [number, string];
      return [{ metric: {}, timestamp: ts, value: toNumber(v) }];
    }
    if (data.resultType !== 'vector') throw new Error(`query ${expr} returned a ${data.resultType}; use queryRange for ranges`);
    return (data.result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((r) => ({
      metric: r.metric,
      timestamp: r.value[0],
      value: toNumber(r.value[1]),
    }));
  };

  const running: RunningPrometheus = {
    url,
    port,
    configFile,
    query,
    async queryRange(expr, start, end, stepSeconds) {
      const data = await api<{ result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> }>('/api/v1/query_range', {
        query: expr,
        start: String(start.getTime() / 1000),
        end: String(end.getTime() / 1000),
        step: String(stepSeconds),
      });
      return data.result.map((r) => ({ metric: r.metric, values: r.values.map(([timestamp, v]) => ({ timestamp, value: toNumber(v) })) }));
    },
    series: (match) => api<Array<Record<string, string>>>('/api/v1/series', { 'match[]': match }),
    queryExemplars: (expr, start, end) =>
      api<ExemplarSeries[]>('/api/v1/query_exemplars', { query: expr, start: String(start.getTime() / 1000), end: String(end.getTime() / 1000) }),
    async targets() {
      const data = await api<{ activeTargets: Array<TargetHealth & { labels: Record<string, string> }> }>('/api/v1/targets', { state: 'active' });
      return data.activeTargets.map((t) => ({ ...t, job: t.labels.job ?? '' }));
    },
    async rules() {
      return (await api<{ groups: unknown[] }>('/api/v1/rules')).groups;
    },
    async alerts() {
      return (await api<{ alerts: AlertState[] }>('/api/v1/alerts')).alerts;
    },
    async waitForScrapes(job, count, o = {}) {
      const since = o.since ?? Date.now();
      await waitUntil(
        async () => {
          // Only whole seconds after `since`, so a scrape before it is never counted.
          const seconds = Math.floor((Date.now() - since) / 1000);
          if (seconds < 1) return undefined;
          const [s] = await query(`count_over_time(up{job=${JSON.stringify(job)}}[${seconds}s])`);
          return s && s.value >= count ? true : undefined;
        },
        o.timeoutMs ?? 30_000,
        `${count} scrapes of job ${job}\n${stderr}`,
      );
    },
    async waitForQuery(expr, accept, timeoutMs = 30_000) {
      return waitUntil(
        async () => {
          const r = await query(expr);
          return accept(r) ? r : undefined;
        },
        timeoutMs,
        `a result of ${expr}`,
      );
    },
    logs: () => stderr,
    stop,
  };

  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const isReady = async () => {
    if (!(await fetch(`${url}/-/ready`).then((r) => r.ok, () => false))) return false;
    if (opts.waitForFirstScrape === false) return true;
    const targets = await running.targets();
    return targets.length === opts.targets.length && targets.every((t) => t.health !== 'unknown');
  };
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`prometheus exited before it was ready:\n${stderr}`);
    }
    if (await isReady().catch(() => false)) return running;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Prometheus on ${url} was not ready (or had not scraped every target) after ${timeoutMs} ms:\n${stderr}`);
    }
    await sleep(200);
  }
}

/** `promtool check metrics` on an exposition: the lint lines it prints (empty when clean). */
export function promtoolCheckMetrics(exposition: string): string[] {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  if (r.error) throw r.error;
  return `${r.stdout}${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}
