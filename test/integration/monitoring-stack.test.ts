/**
 * The monitoring stack end to end, as shipped: the real `prometheus` binary loads the committed
 * deploy/prometheus/prometheus.yml (only its targets rewritten to this test's ports, the intervals
 * shortened to 1 s and Alertmanager left out) and the committed deploy/prometheus/alerts.yml, and
 * scrapes a real API (`nest-egg serve`) and a real worker (`nest-egg worker`) sharing one Postgres
 * database and one Redis queue, while the test drives traffic that touches every dashboard panel:
 * 2xx, 4xx, 429, 5xx, database reads and writes, budget alerts and bank syncs run by the worker.
 *
 * Then:
 *  - every query of every panel of docs/grafana-dashboard.json (with $job/$instance set to the
 *    "All" values) evaluates without error, as an instant and as a range query, and returns data;
 *  - every rule of alerts.yml is healthy in Prometheus's /api/v1/rules, its expression evaluates,
 *    and every recording rule produces a series;
 *  - HighErrorRate: quiet under the normal traffic; with 5xx injected, a test copy derived from
 *    alerts.yml (same expression, `for:` shortened) reaches `firing` in /api/v1/alerts while the
 *    committed rule (for: 5m) is `pending`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { expandExpr, type Panel } from '../../deploy/grafana/dashboard.ts';
import { createPostgresDatabase } from '../helpers/db.ts';
import { freePort, startPrometheus, waitUntil, type RunningPrometheus, type Sample } from '../helpers/prometheus.ts';
import { CHILD_JWT_SECRET, spawnCli, startServer, type CliProcess, type ServerProcess } from '../helpers/server.ts';
import { deletePrefix } from '../helpers/redis.ts';
import { REDIS_TEST_URL, servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('monitoring stack', 'prometheus', 'postgres', 'redis');

const file = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const PROMETHEUS_YML = file('deploy/prometheus/prometheus.yml');
const ALERTS_YML = file('deploy/prometheus/alerts.yml');
const DASHBOARD_JSON = file('docs/grafana-dashboard.json');

const API_JOB = 'nestegg-api';
const WORKER_JOB = 'nestegg-worker';
/** The label that tells the test copy of HighErrorRate from the committed rule in /api/v1/alerts. */
const COPY_LABEL = 'rules_source';
const COPY_GROUP = 'e2e_test_copy';

interface RuleSpec {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: Array<{ name: string; rules: RuleSpec[] }>;
}

/**
 * The committed prometheus.yml with each static target pointed at this test's processes, 1 s
 * scrape and evaluation intervals, the given rule files, and no Alertmanager (there is none here;
 * Prometheus evaluates alerts and lists them in /api/v1/alerts without one). Everything else —
 * job names, metrics paths, labels — is the committed file's.
 */
function rewritePrometheusConfig(addresses: Record<string, string>, ruleFiles: string[]): string {
  const config = YAML.parse(readFileSync(PROMETHEUS_YML, 'utf8')) as {
    global?: Record<string, unknown>;
    rule_files?: string[];
    alerting?: unknown;
    scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }> }>;
  };
  config.global = { ...config.global, scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' };
  expect(config.rule_files, 'the committed config loads alerts.yml').toEqual(['alerts.yml']);
  config.rule_files = ruleFiles;
  delete config.alerting;
  expect(config.scrape_configs.map((s) => s.job_name).sort()).toEqual(Object.keys(addresses).sort());
  for (const scrape of config.scrape_configs) {
    expect(scrape.static_configs, `${scrape.job_name} has one static target`).toHaveLength(1);
    scrape.static_configs![0]!.targets = [addresses[scrape.job_name]!];
  }
  return JSON.stringify(config, null, 2);
}

/** A copy of HighErrorRate, derived from the committed rule: same expression and labels, `for:` shortened. */
function highErrorRateCopy(committed: RuleFile): RuleFile {
  const rule = committed.groups.flatMap((g) => g.rules).find((r) => r.alert === 'HighErrorRate');
  if (!rule) throw new Error('alerts.yml has no HighErrorRate alert');
  return { groups: [{ name: COPY_GROUP, rules: [{ ...rule, for: '2s', labels: { ...rule.labels, [COPY_LABEL]: 'test-copy' } }] }] };
}

/** Every query target of every panel, rows' nested panels included. */
function panelTargets(panels: Panel[]): Array<{ panel: string; type: string; refId: string; expr: string }> {
  return panels.flatMap((p) => [
    ...(p.targets ?? []).map((t) => ({ panel: `${p.id} ${p.title}`, type: p.type, refId: t.refId, expr: expandExpr(t.expr) })),
    ...panelTargets(p.panels ?? []),
  ]);
}

describe.skipIf(!ok)('monitoring stack: committed Prometheus config, rules and dashboard against a running API and worker', () => {
  const unique = randomBytes(4).toString('hex');
  const queuePrefix = `nest-egg-e2e-${unique}`;
  const rateLimitPrefix = `nest-egg-e2e-${unique}:rl:`;
  const committedRules = YAML.parse(readFileSync(ALERTS_YML, 'utf8')) as RuleFile;
  const dashboard = JSON.parse(readFileSync(DASHBOARD_JSON, 'utf8')) as { panels: Panel[] };
  let tmp: string;
  let dropDb: (() => Promise<void>) | undefined;
  let api: ServerProcess | undefined;
  let worker: CliProcess | undefined;
  let prom: RunningPrometheus;
  let apiAddress: string;
  let workerAddress: string;
  let workerPort: number;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'nest-egg-monitoring-stack-'));
    const db = await createPostgresDatabase();
    dropDb = db.drop;
    const shared = {
      ENVIRONMENT: 'test',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      DATABASE_URL: db.url,
      REDIS_URL: REDIS_TEST_URL,
      JOB_QUEUE_PREFIX: queuePrefix,
      JOB_QUEUE_NAME: `jobs-${unique}`,
      BANK_SYNC_PROVIDER: 'demo',
      // The API encrypts the linked item's access token; the worker decrypts it to sync.
      TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      JWT_SECRET: CHILD_JWT_SECRET,
      METRICS_ENABLED: 'true',
    };
    api = await startServer({
      port: await freePort(18700, 18749),
      env: {
        ...shared,
        BUSINESS_METRICS_INTERVAL_MS: '1000',
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_KEY_PREFIX: rateLimitPrefix,
        // One token refresh per minute, so a second one is a 429; everything else generous enough
        // that the rest of the traffic is never limited.
        RATE_LIMIT_POLICIES: [
          'auth-refresh=1/60',
          'auth-register=1000/3600',
          'auth-login=1000/60',
          'bank-linking=1000/60',
          'budget-check-alerts=1000/60',
          'transactions=10000/60',
          'default=10000/60',
          'anonymous=10000/60',
        ].join(','),
      },
    });
    apiAddress = `127.0.0.1:${api.port}`;
    // The API migrated the database; the worker starts on it (its own migrate finds nothing to do).
    workerPort = await freePort(18750, 18799);
    worker = spawnCli(['worker'], { ...shared, WORKER_PORT: String(workerPort) });
    await worker.waitForLog('worker_started', 60_000);
    workerAddress = `127.0.0.1:${workerPort}`;

    const copyFile = join(tmp, 'alerts.e2e-copy.yml');
    writeFileSync(copyFile, YAML.stringify(highErrorRateCopy(committedRules)));
    const promPort = await freePort(19700, 19799);
    const config = rewritePrometheusConfig(
      { [API_JOB]: apiAddress, [WORKER_JOB]: workerAddress, prometheus: `127.0.0.1:${promPort}` },
      [ALERTS_YML, copyFile],
    );
    prom = await startPrometheus({
      config,
      port: promPort,
      maxLifetimeSeconds: 300,
      // For the readiness wait: the three targets of the committed config.
      targets: [
        { job: API_JOB, address: apiAddress },
        { job: WORKER_JOB, address: workerAddress },
        { job: 'prometheus', address: `127.0.0.1:${promPort}` },
      ],
    });
  }, 150_000);

  afterAll(async () => {
    await prom?.stop();
    await worker?.stop();
    await api?.cleanup();
    const redis = new Redis(REDIS_TEST_URL, { maxRetriesPerRequest: 1 });
    await deletePrefix(redis, `${queuePrefix}:`);
    await deletePrefix(redis, rateLimitPrefix);
    redis.disconnect();
    await dropDb?.();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  const call = async (method: string, path: string, opts: { token?: string; body?: unknown } = {}) => {
    const res = await fetch(`http://${apiAddress}${path}`, {
      method,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
  };

  /** A new user with an account, a transaction and an overspent budget; returns its access token. */
  const userRound = async (n: number): Promise<string> => {
    const email = `stack-${n}-${unique}@example.com`;
    const password = 'correct horse battery staple';
    expect((await call('POST', '/api/v1/auth/register', { body: { email, password, full_name: 'Stack Tester' } })).status).toBe(201);
    const login = await call('POST', '/api/v1/auth/login', { body: { email, password } });
    expect(login.status).toBe(200);
    const token = login.body.access_token as string;
    const account = await call('POST', '/api/v1/accounts', { token, body: { name: 'Checking', type: 'checking', current_balance: '1000.00' } });
    expect(account.status).toBe(201);
    const today = new Date().toISOString().slice(0, 10);
    const spend = await call('POST', '/api/v1/transactions', {
      token,
      body: { account_id: account.body.id, date: today, amount: '-250.00', merchant_name: 'Grocer' },
    });
    expect(spend.status).toBe(201);
    expect((await call('POST', '/api/v1/budgets', { token, body: { name: 'Everything', amount: '100.00' } })).status).toBe(201);
    // 250.00 spent of 100.00: a high-priority budget alert (budget_alerts_total on the API).
    const check = await call('POST', '/api/v1/budgets/check-alerts', { token });
    expect(check.status).toBe(200);
    expect((check.body.alerts as Array<{ priority: string }>).map((a) => a.priority)).toContain('high');
    // Reads: 2xx well above the one 5xx per round, so the normal traffic stays under HighErrorRate's 5%.
    for (let i = 0; i < 15; i++) {
      expect((await call('GET', '/api/v1/transactions', { token })).status).toBe(200);
      expect((await call('GET', '/api/v1/accounts', { token })).status).toBe(200);
    }
    // 4xx: an unknown path, an unknown id, no token.
    expect((await call('GET', '/no/such/path')).status).toBe(404);
    expect((await call('GET', `/api/v1/budgets/${randomUUID()}`, { token })).status).toBe(404);
    expect((await call('GET', '/api/v1/transactions')).status).toBe(401);
    // 429: four token refreshes against a quota of one per minute (at least one is blocked even if
    // a window boundary falls among them).
    const refreshes: number[] = [];
    for (let i = 0; i < 4; i++) refreshes.push((await call('POST', '/api/v1/auth/refresh', { body: { refresh_token: 'not-a-refresh-token' } })).status);
    expect(refreshes).toContain(429);
    // One 5xx.
    expect((await call('POST', '/api/v1/dev/test-sentry', { body: {} })).status).toBe(500);
    return token;
  };

  /** Waits until the worker has finished a sync of the item (its last_synced_at moves past `after`). */
  const waitForSync = (token: string, itemId: string, after: string | null) =>
    waitUntil(
      async () => {
        const items = (await call('GET', '/api/v1/plaid/items', { token })).body.items as Array<{ id: string; last_synced_at: string | null; status: string }>;
        const item = items.find((i) => i.id === itemId);
        return item?.last_synced_at && item.last_synced_at !== after ? item.last_synced_at : undefined;
      },
      30_000,
      `the worker to sync item ${itemId}\nworker stdout:\n${worker?.stdout().slice(-4000)}`,
    );

  /** Waits until every rule group has been evaluated after `since` (ms). */
  const waitForRuleEvaluation = (since: number) =>
    waitUntil(
      async () => {
        const groups = (await prom.rules()) as Array<{ lastEvaluation: string }>;
        return groups.length > 0 && groups.every((g) => Date.parse(g.lastEvaluation) > since) ? true : undefined;
      },
      15_000,
      'a rule evaluation',
    );

  it('scrapes the API, the worker and itself from the committed prometheus.yml', async () => {
    const targets = await prom.targets();
    for (const job of [API_JOB, WORKER_JOB, 'prometheus']) {
      expect(targets.find((t) => t.job === job), job).toMatchObject({ health: 'up', lastError: '' });
    }
    expect(targets.find((t) => t.job === API_JOB)?.scrapeUrl).toBe(`http://${apiAddress}/metrics`);
    expect(targets.find((t) => t.job === WORKER_JOB)?.scrapeUrl).toBe(`http://${workerAddress}/metrics`);
    // The dashboard's template variables (label_values over these selectors) find both jobs.
    const up = await prom.query('up{job=~"nestegg-api|nestegg-worker"}');
    expect(up.map((s) => s.metric.job).sort()).toEqual([API_JOB, WORKER_JOB]);
    expect(up.map((s) => s.value)).toEqual([1, 1]);
  });

  it('generates traffic for every panel: HTTP 2xx/4xx/429/5xx, database, budget alerts and bank syncs on the worker', async () => {
    // Round 1 creates the series; round 2, after a scrape has seen them, moves them, so rate() and
    // increase() are above zero and the quantiles are numbers rather than NaN.
    const token = await userRound(1);
    expect((await call('POST', '/api/v1/plaid/link-token', { token })).status).toBe(200);
    const linked = await call('POST', '/api/v1/plaid/exchange-token', { token, body: { public_token: `public-demo-${unique}` } });
    expect(linked.status).toBe(201);
    const itemId = (linked.body.item as { id: string }).id;
    // The first sync runs on the worker: plaid_syncs_total, celery_tasks_total and the follow-up
    // check_budget_alerts task.
    const firstSync = await waitForSync(token, itemId, null);
    await prom.waitForScrapes(API_JOB, 1, { since: Date.now() });
    await prom.waitForScrapes(WORKER_JOB, 1, { since: Date.now() });

    await userRound(2);
    const resync = await call('POST', `/api/v1/plaid/sync/${itemId}`, { token });
    expect(resync.status).toBe(202);
    await waitForSync(token, itemId, firstSync);
    // The worker's dependency checks (nest_egg_dependency_up) run on its /health.
    expect((await fetch(`http://${workerAddress}/health`)).status).toBe(200);

    // Two scrapes of each process after the traffic, so every series has two samples for rate().
    const since = Date.now();
    await prom.waitForScrapes(API_JOB, 2, { since });
    await prom.waitForScrapes(WORKER_JOB, 2, { since });
    await waitForRuleEvaluation(Date.now());

    // The traffic is in Prometheus as the test made it.
    const sum = (samples: Sample[]) => samples.reduce((s, x) => s + x.value, 0);
    expect(sum(await prom.query(`http_requests_total{job="${API_JOB}", endpoint="/api/v1/dev/test-sentry", status="500"}`))).toBe(2);
    expect(sum(await prom.query(`rate_limit_hits_total{job="${API_JOB}", endpoint="/api/v1/auth/refresh"}`))).toBeGreaterThanOrEqual(2);
    expect(sum(await prom.query(`budget_alerts_total{job="${API_JOB}", priority="high"}`))).toBe(2);
    expect(sum(await prom.query(`plaid_syncs_total{job="${WORKER_JOB}", status="success"}`))).toBe(2);
    expect(sum(await prom.query(`celery_tasks_total{job="${WORKER_JOB}", task_name="sync_transactions", status="success"}`))).toBe(2);
    // The business gauges are refreshed every second, apart from the requests.
    await prom.waitForQuery(`users_total{job="${API_JOB}"} == 2`, (s) => s.length === 1);
  });

  it('every query of every dashboard panel evaluates without error and returns data', async () => {
    const targets = panelTargets(dashboard.panels);
    expect(targets.length).toBeGreaterThan(40);
    const errors: string[] = [];
    const noData: string[] = [];
    const end = new Date();
    const start = new Date(end.getTime() - 5 * 60_000);
    for (const t of targets) {
      const name = `${t.panel} [${t.refId}]: ${t.expr}`;
      try {
        const samples = await prom.query(t.expr);
        // Data: at least one series with a number (NaN, e.g. 0/0 for a task that never ran, is no data).
        if (!samples.some((s) => Number.isFinite(s.value))) noData.push(`${name} -> ${JSON.stringify(samples)}`);
        // Grafana draws time series from range queries: those must evaluate too.
        if (t.type === 'timeseries') await prom.queryRange(t.expr, start, end, 15);
      } catch (err) {
        errors.push(`${name}: ${(err as Error).message}`);
      }
    }
    expect({ errors, noData }).toEqual({ errors: [], noData: [] });
  });

  it('every rule of alerts.yml is loaded and healthy, its expression evaluates, and every recording rule produces a series', async () => {
    type LoadedRule = { name: string; type: 'alerting' | 'recording'; health: string; lastError?: string; query: string };
    const groups = (await prom.rules()) as Array<{ name: string; file: string; rules: LoadedRule[] }>;
    const loaded = groups.filter((g) => g.file === ALERTS_YML);
    // The API lists groups sorted by name, not in file order.
    expect(loaded.map((g) => g.name).sort()).toEqual(committedRules.groups.map((g) => g.name).sort());
    const unhealthy: string[] = [];
    const errors: string[] = [];
    const noSeries: string[] = [];
    for (const group of committedRules.groups) {
      const rules = loaded.find((g) => g.name === group.name)!.rules;
      expect(rules.map((r) => r.name)).toEqual(group.rules.map((r) => r.alert ?? r.record));
      for (const rule of rules) {
        if (rule.health !== 'ok') unhealthy.push(`${group.name}/${rule.name}: ${rule.health} ${rule.lastError ?? ''}`);
        try {
          const samples = await prom.query(rule.query);
          if (rule.type === 'recording' && !samples.some((s) => Number.isFinite(s.value))) noSeries.push(`${rule.name} -> ${JSON.stringify(samples)}`);
        } catch (err) {
          errors.push(`${group.name}/${rule.name}: ${(err as Error).message}`);
        }
      }
    }
    expect({ unhealthy, errors, noSeries }).toEqual({ unhealthy: [], errors: [], noSeries: [] });
    // And Prometheus stored what the recording rules computed.
    let recorded = 0;
    for (const group of committedRules.groups) {
      for (const rule of group.rules.filter((r) => r.record)) {
        expect((await prom.query(`${rule.record!}{job="${API_JOB}"}`)).length, rule.record).toBe(1);
        recorded++;
      }
    }
    expect(recorded).toBeGreaterThan(0);
  });

  it('HighErrorRate is quiet under normal traffic and, with 5xx injected, fires (test copy) while the committed rule is pending', async () => {
    const highErrorRate = async () => (await prom.alerts()).filter((a) => a.labels.alertname === 'HighErrorRate');
    // The normal traffic has about 2% 5xx: below the 5% threshold, nothing pending or firing.
    await waitForRuleEvaluation(Date.now());
    expect(await highErrorRate()).toEqual([]);

    // Inject 5xx: 60 failing requests on top of about 100 others.
    for (let i = 0; i < 60; i++) expect((await call('POST', '/api/v1/dev/test-sentry', { body: {} })).status).toBe(500);
    const firing = await waitUntil(
      async () => {
        const alerts = await highErrorRate();
        return alerts.some((a) => a.labels[COPY_LABEL] === 'test-copy' && a.state === 'firing') ? alerts : undefined;
      },
      30_000,
      'the test copy of HighErrorRate to fire',
    );
    const copy = firing.find((a) => a.labels[COPY_LABEL] === 'test-copy')!;
    expect(copy.labels).toMatchObject({ alertname: 'HighErrorRate', job: API_JOB, severity: 'critical' });
    expect(Number(copy.value)).toBeGreaterThan(0.05);
    expect(copy.annotations.runbook_url).toMatch(/runbooks\.md#higherrorrate$/);
    // The committed rule sees the same ratio but waits its 5 minutes.
    const committed = firing.find((a) => a.labels[COPY_LABEL] === undefined);
    expect(committed).toMatchObject({ state: 'pending', labels: { alertname: 'HighErrorRate', job: API_JOB, severity: 'critical' } });
  });
});
